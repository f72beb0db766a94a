// The hub thread of one process: tails the bus and hands every record, in
// order, to the consumer (the chat engine), which fans out to local sessions.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <thread>

#include "runtime/bus.h"

namespace wsb {

class BusConsumer {
 public:
  virtual ~BusConsumer() = default;
  virtual void apply(uint64_t seq, std::string_view payload) = 0;
  virtual void on_overrun(uint64_t lost_from, uint64_t lost_to) = 0;
  // Housekeeping, about once a second (e.g. noticing dead processes).
  virtual void on_tick() {}
};

class HubThread {
 public:
  // Starts reading after `cursor` (0: from the oldest record the bus keeps,
  // so a new process rebuilds room history from the log).
  // Batching: every batch is handed to the sessions (written or woken) as
  // soon as it is applied, with no deliberate delay, and records that
  // arrive during a hand-over join it for the sessions it has not reached
  // yet, so only what is already waiting is coalesced. Under load, when
  // the last hand-over carried at least busy_records records (they were
  // queuing anyway), the next one is held until batch_window_us after it,
  // so that more records share each write. batch_window_us 0: never held;
  // busy_records 1: held whenever records keep coming (a fixed window).
  HubThread(Bus& bus, BusConsumer& consumer, uint64_t cursor = 0, int64_t batch_window_us = 0,
            size_t busy_records = kDefaultBusyRecords);
  static constexpr size_t kDefaultBusyRecords = 8;
  ~HubThread();  // stops and joins
  HubThread(const HubThread&) = delete;
  HubThread& operator=(const HubThread&) = delete;

  void stop();
  uint64_t cursor() const { return cursor_.load(std::memory_order_acquire); }
  uint64_t overruns() const { return overruns_.load(std::memory_order_relaxed); }

 private:
  void run();
  void hold_until(int64_t due_us);

  Bus& bus_;
  BusConsumer& consumer_;
  const int64_t batch_window_us_;
  const size_t busy_records_;
  std::atomic<uint64_t> cursor_;
  std::atomic<uint64_t> overruns_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace wsb
