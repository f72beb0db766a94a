// RAII eventfd used to wake a session thread sleeping in poll().
#pragma once

namespace wsb {

class EventFd {
 public:
  EventFd();                    // non-blocking, close-on-exec; fd() < 0 on failure
  ~EventFd();
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;

  int fd() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void signal();                // adds 1; never blocks
  void drain();                 // resets the counter to 0; never blocks

 private:
  int fd_ = -1;
};

}  // namespace wsb
