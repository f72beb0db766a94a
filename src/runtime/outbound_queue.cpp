// MPSC frame queue for one session (see outbound_queue.h).
//
// Wake-up protocol: a producer signals the eventfd only when it made the
// queue non-empty; the consumer must call clear_wake() *before* drain().
// Then no wake-up is lost: a signal cleared by clear_wake() was sent after
// its push had completed, so the drain that follows sees that frame, and a
// push that lands after the drain found the queue empty and signals again.
// Signals are sent after the lock is released so that producers never make
// each other wait on a system call.
#include "runtime/outbound_queue.h"

#include <iterator>
#include <utility>

namespace wsb {

OutboundQueue::OutboundQueue(size_t max_bytes) : max_bytes_(max_bytes) {}

OutboundQueue::PushResult OutboundQueue::push(const FramePtr& frame) {
  bool wake = false;
  PushResult result = push_deferred(frame, &wake);
  if (wake) efd_.signal();
  return result;
}

OutboundQueue::PushResult OutboundQueue::push_deferred(const FramePtr& frame, bool* wake_owed) {
  bool& wake = *wake_owed;
  wake = false;
  PushResult result = PushResult::Ok;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return PushResult::Closed;
    if (overflowed_) return PushResult::Overflow;
    if (!frame) return PushResult::Ok;  // nothing to send; keeps drain() null-free
    const size_t size = frame->size();
    if (size > max_bytes_ || bytes_ > max_bytes_ - size) {
      // The consumer must learn about the overflow even if it has nothing
      // left to drain, so it can disconnect the slow client.
      overflowed_ = true;
      wake = true;
      result = PushResult::Overflow;
    } else {
      wake = items_.empty();
      items_.push_back(frame);
      bytes_ += size;
    }
  }
  return result;
}

size_t OutboundQueue::drain(std::vector<FramePtr>& out, bool* overflowed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (overflowed) *overflowed = overflowed_;
  if (out.empty()) {
    // Swapping hands the consumer's spare capacity back to the producers,
    // so steady-state traffic allocates nothing and the lock is held O(1).
    out.swap(items_);
  } else {
    out.insert(out.end(), std::make_move_iterator(items_.begin()),
               std::make_move_iterator(items_.end()));
    items_.clear();
  }
  const size_t moved = bytes_;
  bytes_ = 0;
  return moved;
}

void OutboundQueue::close() {
  std::vector<FramePtr> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    dropped.swap(items_);
    bytes_ = 0;
  }
  // Frames are released outside the lock: the last reference may free a
  // large buffer, which producers need not wait for.
  dropped.clear();
  efd_.signal();
}

bool OutboundQueue::overflowed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overflowed_;
}

size_t OutboundQueue::queued_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace wsb
