// Multi-producer single-consumer queue of shared frames for one session.
// Producers (the hub, other threads) push; the session thread drains
// everything at once and writes it as one batch. The eventfd is written only
// when the queue goes from empty to non-empty (or on overflow/close), so a
// burst of pushes costs one wake-up.
#pragma once
#include <cstddef>
#include <mutex>
#include <vector>

#include "runtime/event_fd.h"
#include "runtime/frame.h"

namespace wsb {

class OutboundQueue {
 public:
  enum class PushResult { Ok, Overflow, Closed };

  explicit OutboundQueue(size_t max_bytes);

  // Appends a frame (a null frame is ignored). When the queued bytes would exceed max_bytes the frame
  // is dropped, the queue is marked overflowed (sticky), the consumer is
  // woken and Overflow is returned; later pushes return Overflow too.
  // After close() pushes return Closed.
  PushResult push(const FramePtr& frame);
  // The same, but the eventfd write is left to the caller: *wake_owed says
  // whether push() would have signalled (see WakeBatch).
  PushResult push_deferred(const FramePtr& frame, bool* wake_owed);

  // Moves every queued frame to out (appending) in push order; returns the
  // number of bytes moved. Consumer thread only.
  // *overflowed (if given) reports the sticky overflow flag under the same
  // lock, so the consumer needs no second lock per wake-up.
  size_t drain(std::vector<FramePtr>& out, bool* overflowed = nullptr);

  // Stops accepting frames (consumer is going away) and drops queued ones.
  void close();

  // Wakes the consumer without queueing anything (e.g. server stopping).
  void wake() { efd_.signal(); }
  // Called by the consumer after poll() reported the fd readable, and
  // BEFORE drain(): in the other order a push between the two could leave
  // a frame queued with its wake-up already consumed.
  void clear_wake() { efd_.drain(); }

  int wake_fd() const { return efd_.fd(); }
  bool ok() const { return efd_.ok(); }
  bool overflowed() const;
  size_t queued_bytes() const;

 private:
  mutable std::mutex mu_;
  std::vector<FramePtr> items_;
  size_t bytes_ = 0;
  const size_t max_bytes_;
  bool overflowed_ = false;
  bool closed_ = false;
  EventFd efd_;
};

}  // namespace wsb
