// Coalesces session wake-ups while one thread hands out many frames.
//
// The hub applies bus records in batches; without this, every record would
// signal every member's eventfd as soon as the member drained the previous
// one. While a WakeBatch is alive on a thread, deliveries made on that thread
// queue their frames at once but defer the eventfd write; when the batch
// ends, each queue that is owed a wake-up is written directly or signalled
// exactly once (and outside the chat engine's lock).
#pragma once
#include <memory>
#include <vector>

#include "runtime/outbound_queue.h"

namespace wsb {

class WakeBatch {
 public:
  WakeBatch() : outer_(current_) { current_ = this; }
  ~WakeBatch() {
    flush();
    current_ = outer_;
  }
  WakeBatch(const WakeBatch&) = delete;
  WakeBatch& operator=(const WakeBatch&) = delete;

  // The batch active on this thread, or null.
  static WakeBatch* current() { return current_; }

  void defer(const std::shared_ptr<OutboundQueue>& q) { owed_.push_back(q); }
  bool pending() const { return !owed_.empty(); }
  // Each owed queue is written to its socket right here when the session
  // lent it (OutboundQueue::write_direct); only the rest are woken.
  void flush() {
    for (const auto& q : owed_) {
      if (!q->write_direct()) q->wake();
    }
    owed_.clear();
  }

 private:
  static thread_local WakeBatch* current_;
  WakeBatch* outer_;
  std::vector<std::shared_ptr<OutboundQueue>> owed_;
};

}  // namespace wsb
