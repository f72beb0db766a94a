#include "runtime/hub_thread.h"

#include "runtime/wake_batch.h"

#include <time.h>

#include <algorithm>
#include <vector>

namespace wsb {

HubThread::HubThread(Bus& bus, BusConsumer& consumer, uint64_t cursor)
    : bus_(bus), consumer_(consumer), cursor_(cursor) {
  // A process that starts after the log has wrapped begins at the oldest
  // record kept: what came before is not "lost" to it, it never had it (the
  // engine then treats its first record as a late start, not an overrun).
  if (cursor == 0) {
    uint64_t first = bus_.first_seq();
    if (first > 1) cursor_.store(first - 1);
  }
  thread_ = std::thread([this] { run(); });
}

HubThread::~HubThread() { stop(); }

void HubThread::stop() {
  stopping_.store(true, std::memory_order_release);
  bus_.wake();
  if (thread_.joinable()) thread_.join();
}

namespace {
int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
constexpr int kTickMs = 1000;
}  // namespace

void HubThread::run() {
  std::vector<BusRecord> batch;
  uint64_t cursor = cursor_.load();
  int64_t next_tick = now_ms() + kTickMs;
  while (!stopping_.load(std::memory_order_acquire)) {
    int64_t now = now_ms();
    if (now >= next_tick) {
      consumer_.on_tick();
      next_tick = now + kTickMs;
    }
    batch.clear();
    BusReadResult rr = bus_.read(&cursor, batch, 256);
    if (rr.overrun) {
      overruns_.fetch_add(1, std::memory_order_relaxed);
      consumer_.on_overrun(rr.lost_from, rr.lost_to);
    }
    {
      // One wake-up per session per batch, not per record.
      WakeBatch wakes;
      for (const BusRecord& rec : batch) consumer_.apply(rec.seq, rec.payload);
    }
    cursor_.store(cursor, std::memory_order_release);
    if (batch.empty() && !rr.overrun) {
      // Sleeps until a writer in any process appends (futex wake); the
      // timeout only bounds how long a lost stop request could go unseen.
      bus_.wait(cursor, static_cast<int>(std::max<int64_t>(1, next_tick - now_ms())));
    }
  }
}

}  // namespace wsb
