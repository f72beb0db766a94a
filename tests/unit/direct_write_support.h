// Helpers shared by the direct-write tests (test_direct_write.cpp,
// test_direct_write_encoded.cpp): a queue's wake-up state, what a socket
// holds, and a delivery the way the hub makes one.
#pragma once
#include <poll.h>
#include <sys/socket.h>

#include <memory>
#include <string>

#include "runtime/outbound_queue.h"
#include "runtime/wake_batch.h"

namespace wsb {
namespace direct_write_test {

inline bool woken(const OutboundQueue& q) {
  pollfd p{q.wake_fd(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

// Everything readable on fd right now (non-blocking).
inline std::string read_all(int fd) {
  std::string got;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Delivers like the session's Peer: queued at once, the wake-up owed to the
// batch that is active on this thread.
inline void deliver(const std::shared_ptr<OutboundQueue>& q, const std::string& bytes) {
  bool owed = false;
  q->push_deferred(make_frame(bytes), &owed);
  if (owed) WakeBatch::current()->defer(q);
}

}  // namespace direct_write_test
}  // namespace wsb
