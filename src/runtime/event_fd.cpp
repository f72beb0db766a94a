// RAII eventfd (see event_fd.h). Both operations are non-blocking so that a
// producer holding no lock, or the hub thread, can never be stalled by a
// session that is slow to drain its wake-ups.
#include "runtime/event_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace wsb {

EventFd::EventFd() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

EventFd::~EventFd() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFd::signal() {
  if (fd_ < 0) return;
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated: the consumer is already due to
  // wake, so dropping this increment loses nothing.
  while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void EventFd::drain() {
  if (fd_ < 0) return;
  uint64_t value = 0;
  // One read resets a non-semaphore eventfd. A signal that lands after it
  // leaves the fd readable, which costs at most one extra wake-up; a second
  // read "to be sure" would cost a syscall (EAGAIN) on every wake-up instead.
  while (::read(fd_, &value, sizeof value) < 0 && errno == EINTR) {
  }
}

}  // namespace wsb
