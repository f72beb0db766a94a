#include "runtime/hub_thread.h"

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

void HubThread::run() {
  std::vector<BusRecord> batch;
  uint64_t cursor = cursor_.load();
  while (!stopping_.load(std::memory_order_acquire)) {
    batch.clear();
    BusReadResult rr = bus_.read(&cursor, batch, 256);
    if (rr.overrun) {
      overruns_.fetch_add(1, std::memory_order_relaxed);
      consumer_.on_overrun(rr.lost_from, rr.lost_to);
    }
    for (const BusRecord& rec : batch) consumer_.apply(rec.seq, rec.payload);
    cursor_.store(cursor, std::memory_order_release);
    if (batch.empty() && !rr.overrun) {
      // Sleeps until a writer in any process appends (futex wake); the
      // timeout only bounds how long a lost stop request could go unseen.
      bus_.wait(cursor, 1000);
    }
  }
}

}  // namespace wsb
