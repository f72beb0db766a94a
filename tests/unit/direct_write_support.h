// Helpers shared by the direct-write tests (test_direct_write.cpp,
// test_direct_write_encoded.cpp): a queue lent one end of a socketpair, a
// queue's wake-up state, what a socket holds, and a delivery the way the hub
// makes one.
//
// Include this last: it includes <CppUTest/TestHarness.h> (Pair checks
// socketpair() with CHECK_EQUAL), and CppUTest redefines new.
#pragma once
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>

#include "runtime/outbound_queue.h"
#include "runtime/wake_batch.h"

#include <CppUTest/TestHarness.h>

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

// A session's queue and its socket: fds[0] is the session's end (lent to
// the queue for direct writes), fds[1] the client's.
struct Pair {
  int fds[2] = {-1, -1};
  SessionStats stats;
  std::shared_ptr<OutboundQueue> q;
  explicit Pair(size_t max_bytes = 8u << 20, int type = SOCK_STREAM)
      : q(std::make_shared<OutboundQueue>(max_bytes)) {
    CHECK_EQUAL(0, socketpair(AF_UNIX, type, 0, fds));
  }
  ~Pair() {
    close(fds[0]);
    close(fds[1]);
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  void lend(DirectEncoder* encoder = nullptr) { q->enable_direct(fds[0], &stats, encoder); }
  // Small socket buffers, so that a batch of large frames fills the socket.
  void shrink_buffers() {
    int small = 4096;
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
};

// Delivers like the session's Peer: queued at once, the wake-up owed to the
// batch that is active on this thread.
inline void deliver(const std::shared_ptr<OutboundQueue>& q, const std::string& bytes) {
  bool owed = false;
  q->push_deferred(make_frame(bytes), &owed);
  if (owed) WakeBatch::current()->defer(q);
}

// Delivers the frames in one WakeBatch, which has ended when this returns.
inline void deliver_batch(const std::shared_ptr<OutboundQueue>& q,
                          std::initializer_list<std::string> frames) {
  WakeBatch batch;
  for (const std::string& f : frames) deliver(q, f);
}

// One batch of 64 frames of about 4 KB each, more than shrunken socket
// buffers take; returns the frames' bytes in order.
inline std::string deliver_large_batch(const std::shared_ptr<OutboundQueue>& q) {
  std::string bytes;
  WakeBatch batch;
  for (int i = 0; i < 64; ++i) {
    std::string f(4000 + i, static_cast<char>('A' + i % 26));
    bytes += f;
    deliver(q, f);
  }
  return bytes;
}

}  // namespace direct_write_test
}  // namespace wsb
