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
    flush([] {});
  }
  // The same, calling between() after every kBetweenEvery queues while some
  // are left. between() may deliver more (the hub applies records that
  // arrived meanwhile): a queue not yet handed out takes them in the same
  // write, one already handed out is owed again and handed out before this
  // returns, in order either way.
  template <class Between>
  void flush(Between&& between) {
    // By index: between() may append to owed_.
    for (size_t i = 0; i < owed_.size(); ++i) {
      if (i > 0 && i % kBetweenEvery == 0) between();
      const std::shared_ptr<OutboundQueue>& q = owed_[i];
      if (!q->write_direct()) q->wake();
    }
    owed_.clear();
  }
  static constexpr size_t kBetweenEvery = 8;

 private:
  static thread_local WakeBatch* current_;
  WakeBatch* outer_;
  std::vector<std::shared_ptr<OutboundQueue>> owed_;
};

}  // namespace wsb
