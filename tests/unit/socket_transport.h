// A Transport over one end of a socketpair, so unit tests run a real
// Session loop (poll, eventfd wake-ups, timers) without Apache.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "runtime/transport.h"

namespace wsb {

class SocketTransport : public Transport {
 public:
  explicit SocketTransport(int fd) : fd_(fd) { fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK); }
  ReadStatus read(std::string& buf, size_t max) override {
    size_t old = buf.size();
    buf.resize(old + max);
    ssize_t n = ::recv(fd_, &buf[old], max, 0);
    buf.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n > 0) return ReadStatus::Data;
    if (n == 0) return ReadStatus::Eof;
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? ReadStatus::Again : ReadStatus::Error;
  }
  bool write(const std::vector<FramePtr>& frames) override {
    ++writes;
    for (const auto& f : frames) {
      size_t off = 0;
      while (off < f->size()) {
        ssize_t n = ::send(fd_, f->data() + off, f->size() - off, MSG_NOSIGNAL);
        if (n > 0) {
          off += static_cast<size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
          pollfd p{fd_, POLLOUT, 0};
          if (::poll(&p, 1, 2000) <= 0) return false;  // a stuck peer: give up like Apache's Timeout
        } else {
          return false;
        }
      }
    }
    return true;
  }
  int poll_fd() const override { return fd_; }
  int direct_write_fd() const override { return direct ? fd_ : -1; }
  int writes = 0;  // batches written (one per wake-up)
  bool direct = false;  // lend the socket to the hub (OutboundQueue direct writes)

 private:
  int fd_;
};

}  // namespace wsb
