// Per-connection state of the load generator and its output buffer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "frame_walker.h"

typedef struct ssl_st SSL;

namespace lg {

// A byte queue that grows only when a burst outruns it (never per
// message once warm): append at the tail, consume from the head, compact
// instead of reallocating when the head has moved.
class ByteBuf {
 public:
  size_t size() const { return tail_ - head_; }
  const uint8_t* data() const { return buf_.get() + head_; }
  void reserve_total(size_t cap) {
    if (cap > cap_) grow(cap);
  }
  uint8_t* prepare(size_t n) {
    if (tail_ + n > cap_) {
      if (head_) {
        std::memmove(buf_.get(), buf_.get() + head_, size());
        tail_ -= head_;
        head_ = 0;
      }
      if (tail_ + n > cap_) grow(std::max(cap_ * 2, tail_ + n));
    }
    return buf_.get() + tail_;
  }
  void commit(size_t n) { tail_ += n; }
  void consume(size_t n) {
    head_ += n;
    if (head_ == tail_) head_ = tail_ = 0;
  }
  void append(const void* p, size_t n) {
    std::memcpy(prepare(n), p, n);
    commit(n);
  }

 private:
  void grow(size_t cap) {
    std::unique_ptr<uint8_t[]> b(new uint8_t[cap]);
    if (size()) std::memcpy(b.get(), buf_.get() + head_, size());
    tail_ -= head_;
    head_ = 0;
    buf_ = std::move(b);
    cap_ = cap;
  }
  static size_t max(size_t a, size_t b) { return a > b ? a : b; }

  std::unique_ptr<uint8_t[]> buf_;
  size_t cap_ = 0;
  size_t head_ = 0;
  size_t tail_ = 0;
};

enum class ConnState : uint8_t { Idle, Connecting, Handshaking, Open, Closing, Done };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;  // wss://: set once TCP connects; Connecting lasts until the TLS handshake is done
  uint32_t gid = 0;  // index over all threads; senders are gid < senders
  ConnState st = ConnState::Idle;
  bool sender = false;
  bool joined = false;
  bool out_armed = false;   // EPOLLOUT registered
  bool dirty = false;       // on the worker's flush list
  bool close_sent = false;
  int8_t pid_slot = -1;       // chat: which Apache child serves us (welcome "pid")
  uint32_t inflight = 0;
  uint32_t seq = 0;
  int64_t next_ns = 0;        // rate mode: the next scheduled send
  int64_t last_progress = 0;  // closed loop: last own message seen back
  int64_t t_connect = 0;
  ByteBuf out;
  // A large message's shared, pre-masked remainder, written after `out`
  // (writev) instead of copied per send.
  const uint8_t* tail = nullptr;
  size_t tail_len = 0;
  std::string hs;  // handshake response until its blank line
  FrameWalker walker;
};

}  // namespace lg
