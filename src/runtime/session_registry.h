// The live sessions of one process, so a stopping child can wake every one
// of them (a thread asleep in poll() hears nothing else).
#pragma once
#include <memory>
#include <mutex>
#include <unordered_set>

#include "runtime/outbound_queue.h"
#include "runtime/session.h"

namespace wsb {

class SessionRegistry {
 public:
  void add(const std::shared_ptr<OutboundQueue>& q) {
    std::lock_guard<std::mutex> lock(mu_);
    queues_.insert(q);
  }
  void remove(const std::shared_ptr<OutboundQueue>& q) {
    std::lock_guard<std::mutex> lock(mu_);
    queues_.erase(q);
  }
  // Sets the stop flag, then wakes every session so it sees it.
  void stop_all(StopFlag& flag) {
    flag.stopping.store(true, std::memory_order_release);
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& q : queues_) q->wake();
  }
  // A hard stop: Apache is closing (or has closed) every connection's
  // socket under its session; the hub must not write to those numbers again.
  void revoke_hub_writes() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& q : queues_) q->disable_direct();
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queues_.size();
  }

 private:
  mutable std::mutex mu_;
  std::unordered_set<std::shared_ptr<OutboundQueue>> queues_;
};

}  // namespace wsb
