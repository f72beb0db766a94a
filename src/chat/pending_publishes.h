// Records that had to be published but could not be (the bus was down):
// today the leaves of connections that closed during a Redis outage. Kept
// in order and published again from the hub's tick, so those members do not
// stay listed in every room until their process exits. Bounded: beyond
// max_records the oldest are dropped (and counted); their members then stay
// until their process's "gone" record.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "runtime/bus.h"

namespace wsb {

class PendingPublishes {
 public:
  explicit PendingPublishes(size_t max_records = 100000) : max_(max_records) {}

  // Any thread.
  void add(std::string payload);
  // Publishes what is kept, oldest first, until the bus refuses one.
  // Returns how many were published. One caller at a time (the hub).
  size_t retry(Bus& bus);

  size_t size() const;
  uint64_t dropped() const;

 private:
  const size_t max_;
  mutable std::mutex mu_;
  std::deque<std::string> records_;
  uint64_t dropped_ = 0;
};

}  // namespace wsb
