#include "runtime/hub_thread.h"

#include "runtime/clock.h"
#include "runtime/wake_batch.h"

#include <time.h>

#include <algorithm>
#include <vector>

namespace wsb {

HubThread::HubThread(Bus& bus, BusConsumer& consumer, uint64_t cursor, int64_t batch_window_us,
                     size_t busy_records)
    : bus_(bus),
      consumer_(consumer),
      batch_window_us_(batch_window_us),
      busy_records_(std::max<size_t>(1, busy_records)),
      cursor_(cursor) {
  thread_ = std::thread([this] { run(); });
}

HubThread::~HubThread() { stop(); }

void HubThread::stop() {
  stopping_.store(true, std::memory_order_release);
  bus_.wake();
  if (thread_.joinable()) thread_.join();
}

namespace {
constexpr int kTickMs = 1000;
constexpr size_t kMaxBatch = 256;

void sleep_us(int64_t us) {
  timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
  nanosleep(&ts, nullptr);  // an early return (EINTR) only flushes sooner
}
}  // namespace

// Sleeps in short slices so stop() is not kept waiting by a long window.
void HubThread::hold_until(int64_t due_us) {
  for (int64_t now = monotonic_us(); now < due_us && !stopping_.load(std::memory_order_acquire);
       now = monotonic_us())
    sleep_us(std::min<int64_t>(due_us - now, 5000));
}

void HubThread::run() {
  std::vector<BusRecord> batch, more;
  uint64_t cursor = cursor_.load();
  // A process that starts after the log has wrapped begins at the oldest
  // record kept: what came before is not "lost" to it, it never had it. Asked
  // here, on the hub thread, because for Redis it is a network round trip.
  if (cursor == 0) {
    uint64_t first = bus_.first_seq();
    if (first > 1) cursor = first - 1;
  }
  int64_t next_tick = monotonic_ms() + kTickMs;
  // Every delivery made on this thread is held here until flush(): one
  // write or wake-up per session per flush, however many records it saw.
  WakeBatch deliveries;
  auto read_and_apply = [&](std::vector<BusRecord>& into, size_t max) {
    into.clear();
    BusReadResult rr = bus_.read(&cursor, into, max);
    if (rr.overrun) {
      overruns_.fetch_add(1, std::memory_order_relaxed);
      consumer_.on_overrun(rr.lost_from, rr.lost_to);
    }
    for (const BusRecord& rec : into) consumer_.apply(rec.seq, rec.payload);
    cursor_.store(cursor, std::memory_order_release);
    return rr;
  };
  // Between the writes of a hand-over: records that arrived meanwhile are
  // applied at once, so the sessions not yet written take them in the same
  // write (coalescing what is already waiting, never waiting for more).
  // Bounded, so a busy bus cannot keep one hand-over going for ever.
  size_t merged = 0;
  auto merge_arrivals = [&] {
    if (merged >= kMaxBatch || !bus_.has_after(cursor)) return;
    read_and_apply(more, kMaxBatch - merged);
    merged += more.size();
  };
  int64_t last_flush_us = 0;
  size_t applied = 0;        // records applied since the last hand-over
  size_t last_handover = 0;  // records the last hand-over carried
  while (!stopping_.load(std::memory_order_acquire)) {
    int64_t now = monotonic_ms();
    if (now >= next_tick) {
      consumer_.on_tick();
      next_tick = now + kTickMs;
    }
    BusReadResult rr = read_and_apply(batch, kMaxBatch);
    applied += batch.size();
    if (deliveries.pending()) {
      if (batch_window_us_ > 0 && last_handover >= busy_records_) {
        const int64_t due_us = last_flush_us + batch_window_us_;
        if (monotonic_us() < due_us && applied < kMaxBatch) {
          // Under load (the last hand-over carried many records, so they
          // were queuing anyway): the previous hand-over was moments ago,
          // so let more records join this one, like Nagle's algorithm but
          // bounded by the window.
          hold_until(due_us);
          continue;
        }
      }
      // Otherwise no deliberate delay: what was applied goes out now.
      merged = 0;
      deliveries.flush(merge_arrivals);
      last_handover = applied + merged;
      applied = 0;
      last_flush_us = monotonic_us();
    }
    if (batch.empty() && !rr.overrun) {
      // Sleeps until a writer in any process appends (futex wake); the
      // timeout only bounds how long a lost stop request could go unseen.
      bus_.wait(cursor, static_cast<int>(std::max<int64_t>(1, next_tick - monotonic_ms())));
    }
  }
}

}  // namespace wsb
