#include "chat/pending_publishes.h"

#include <utility>

namespace wsb {

void PendingPublishes::add(std::string payload) {
  std::lock_guard<std::mutex> lock(mu_);
  if (max_ == 0) {
    ++dropped_;
    return;
  }
  if (records_.size() >= max_) {
    records_.pop_front();
    ++dropped_;
  }
  records_.push_back(std::move(payload));
}

size_t PendingPublishes::retry(Bus& bus) {
  size_t published = 0;
  for (;;) {
    std::string next;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (records_.empty()) break;
      next = std::move(records_.front());
      records_.pop_front();
    }
    // Outside the lock: for Redis this is a network round trip, and
    // closing sessions must not wait for it to add theirs.
    if (bus.publish(next) == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      records_.push_front(std::move(next));  // still first: order is kept
      break;
    }
    ++published;
  }
  return published;
}

size_t PendingPublishes::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_.size();
}

uint64_t PendingPublishes::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

}  // namespace wsb
