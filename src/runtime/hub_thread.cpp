#include "runtime/hub_thread.h"

#include "runtime/clock.h"
#include "runtime/wake_batch.h"

#include <algorithm>
#include <vector>

namespace wsb {

HubThread::HubThread(Bus& bus, BusConsumer& consumer, uint64_t cursor)
    : bus_(bus), consumer_(consumer), cursor_(cursor) {
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
}  // namespace

void HubThread::run() {
  std::vector<BusRecord> batch;
  uint64_t cursor = cursor_.load();
  // A process that starts after the log has wrapped begins at the oldest
  // record kept: what came before is not "lost" to it, it never had it. Asked
  // here, on the hub thread, because for Redis it is a network round trip.
  if (cursor == 0) {
    uint64_t first = bus_.first_seq();
    if (first > 1) cursor = first - 1;
  }
  int64_t next_tick = monotonic_ms() + kTickMs;
  while (!stopping_.load(std::memory_order_acquire)) {
    int64_t now = monotonic_ms();
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
      bus_.wait(cursor, static_cast<int>(std::max<int64_t>(1, next_tick - monotonic_ms())));
    }
  }
}

}  // namespace wsb
