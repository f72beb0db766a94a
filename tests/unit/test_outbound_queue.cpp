// OutboundQueue: the MPSC frame queue plus its eventfd wake-up.
//
// Threads never call CppUTest's failure macros (a failure unwinds only the
// calling thread); they record what they saw and the test thread checks it
// after joining them.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/outbound_queue.h"

#include <CppUTest/TestHarness.h>

using wsb::FramePtr;
using wsb::make_frame;
using wsb::OutboundQueue;

namespace {

using Push = OutboundQueue::PushResult;

// Reads (and so resets) the eventfd counter: the number of signal() calls
// since the last read, 0 if none.
uint64_t take_signals(const OutboundQueue& q) {
  uint64_t value = 0;
  const ssize_t n = ::read(q.wake_fd(), &value, sizeof value);
  return n == static_cast<ssize_t>(sizeof value) ? value : 0;
}

bool readable(const OutboundQueue& q, int timeout_ms) {
  pollfd pfd{q.wake_fd(), POLLIN, 0};
  return ::poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN) != 0;
}

std::string encode(uint32_t producer, uint32_t n) {
  std::string bytes(8, '\0');
  std::memcpy(&bytes[0], &producer, 4);
  std::memcpy(&bytes[4], &n, 4);
  return bytes;
}

// Joins on scope exit so a failing check never leaves a thread running.
class Joiner {
 public:
  explicit Joiner(std::vector<std::thread>& threads) : threads_(threads) {}
  ~Joiner() { join(); }
  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  std::vector<std::thread>& threads_;
};

}  // namespace

TEST_GROUP(OutboundQueue) {};

TEST(OutboundQueue, ManyProducersOneConsumerLoseNothingAndKeepOrder) {
  constexpr uint32_t kProducers = 4, kPerProducer = 20000;
  OutboundQueue q(SIZE_MAX);
  CHECK(q.ok());
  std::atomic<bool> go{false};
  std::atomic<int> failed_pushes{0};
  std::vector<std::thread> producers;
  Joiner joiner(producers);
  for (uint32_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      while (!go.load()) std::this_thread::yield();
      for (uint32_t i = 0; i < kPerProducer; ++i)
        if (q.push(make_frame(encode(p, i))) != Push::Ok) failed_pushes++;
    });
  }
  go = true;

  std::vector<uint32_t> next(kProducers, 0);
  size_t total = 0, out_of_order = 0, bad_bytes = 0, wakeups = 0;
  bool lost_wakeup = false;
  std::vector<FramePtr> batch;
  while (total < kProducers * kPerProducer) {
    // Drain only after poll() says so: a missed signal shows as a timeout.
    if (!readable(q, 2000)) {
      lost_wakeup = true;
      break;
    }
    ++wakeups;
    q.clear_wake();  // before drain(), see outbound_queue.cpp
    batch.clear();
    const size_t bytes = q.drain(batch);
    if (bytes != batch.size() * 8) ++bad_bytes;
    for (const FramePtr& f : batch) {
      uint32_t p = 0, n = 0;
      std::memcpy(&p, f->data(), 4);
      std::memcpy(&n, f->data() + 4, 4);
      if (p >= kProducers || n != next[p]) {
        ++out_of_order;
        continue;
      }
      ++next[p];
      ++total;
    }
  }
  joiner.join();
  CHECK_FALSE(lost_wakeup);
  LONGS_EQUAL(0, failed_pushes.load());
  UNSIGNED_LONGS_EQUAL(0, out_of_order);
  UNSIGNED_LONGS_EQUAL(0, bad_bytes);
  for (uint32_t p = 0; p < kProducers; ++p) UNSIGNED_LONGS_EQUAL(kPerProducer, next[p]);
  // Nothing duplicated or left behind.
  batch.clear();
  q.drain(batch);
  UNSIGNED_LONGS_EQUAL(0, batch.size());
  UNSIGNED_LONGS_EQUAL(0, q.queued_bytes());
  CHECK(wakeups <= total);
}

TEST(OutboundQueue, BurstIntoUndrainedQueueSignalsOnce) {
  OutboundQueue q(1 << 20);
  CHECK_FALSE(readable(q, 0));
  for (int i = 0; i < 100; ++i) CHECK(q.push(make_frame("x")) == Push::Ok);
  UNSIGNED_LONGS_EQUAL(1, take_signals(q));  // only the empty -> non-empty push
  CHECK(q.push(make_frame("y")) == Push::Ok);
  UNSIGNED_LONGS_EQUAL(0, take_signals(q));  // still non-empty: no signal

  std::vector<FramePtr> out;
  UNSIGNED_LONGS_EQUAL(101, q.drain(out));
  UNSIGNED_LONGS_EQUAL(101, out.size());
  CHECK(q.push(make_frame("z")) == Push::Ok);  // empty again -> one signal
  CHECK(q.push(make_frame("z")) == Push::Ok);
  UNSIGNED_LONGS_EQUAL(1, take_signals(q));
}

// A consumer that is awake gets no signal: it drains before it sleeps, and
// try_sleep() refuses while anything is queued, so nothing is slept on.
TEST(OutboundQueue, AwakeConsumerIsNotSignalledAndCannotSleepOnFrames) {
  OutboundQueue q(1 << 20);
  q.mark_awake();
  CHECK(q.push(make_frame("a")) == Push::Ok);
  CHECK_FALSE(readable(q, 0));   // no signal while awake
  CHECK_FALSE(q.try_sleep());    // but it may not sleep on the frame
  std::vector<FramePtr> out;
  UNSIGNED_LONGS_EQUAL(1, q.drain(out));
  CHECK(q.try_sleep());          // empty: asleep from here on
  CHECK(q.push(make_frame("b")) == Push::Ok);
  UNSIGNED_LONGS_EQUAL(1, take_signals(q));  // asleep: woken once
  CHECK(q.push(make_frame("c")) == Push::Ok);
  UNSIGNED_LONGS_EQUAL(0, take_signals(q));
  q.mark_awake();
  out.clear();
  UNSIGNED_LONGS_EQUAL(2, q.drain(out));
  // Close requests and overflows wake an awake consumer too (they are not
  // frames it would find by draining).
  CHECK(q.request_close(1001, "bye"));
  CHECK(readable(q, 0));
}

TEST(OutboundQueue, DrainAppendsInPushOrderAndCountsBytes) {
  OutboundQueue q(1 << 20);
  std::vector<FramePtr> out{make_frame("old")};
  q.push(make_frame("a"));
  q.push(make_frame("bb"));
  q.push(make_frame("ccc"));
  UNSIGNED_LONGS_EQUAL(6, q.queued_bytes());
  UNSIGNED_LONGS_EQUAL(6, q.drain(out));
  UNSIGNED_LONGS_EQUAL(4, out.size());
  STRCMP_EQUAL("old", out[0]->c_str());
  STRCMP_EQUAL("a", out[1]->c_str());
  STRCMP_EQUAL("bb", out[2]->c_str());
  STRCMP_EQUAL("ccc", out[3]->c_str());
  UNSIGNED_LONGS_EQUAL(0, q.queued_bytes());
  UNSIGNED_LONGS_EQUAL(0, q.drain(out));
  UNSIGNED_LONGS_EQUAL(4, out.size());
}

TEST(OutboundQueue, OverflowDropsFrameIsStickyAndWakesConsumer) {
  OutboundQueue q(100);
  const FramePtr f40 = make_frame(std::string(40, 'a'));
  CHECK(q.push(f40) == Push::Ok);
  CHECK(q.push(f40) == Push::Ok);  // 80 bytes: fits
  UNSIGNED_LONGS_EQUAL(1, take_signals(q));
  CHECK_FALSE(q.overflowed());

  const FramePtr dropped = make_frame(std::string(40, 'b'));
  CHECK(q.push(dropped) == Push::Overflow);  // 120 > 100
  CHECK(q.overflowed());
  LONGS_EQUAL(1, dropped.use_count());  // the queue kept no reference
  // The queue was non-empty, yet the consumer is woken to see the overflow.
  UNSIGNED_LONGS_EQUAL(1, take_signals(q));
  UNSIGNED_LONGS_EQUAL(80, q.queued_bytes());

  std::vector<FramePtr> out;
  UNSIGNED_LONGS_EQUAL(80, q.drain(out));  // what fitted is still delivered
  UNSIGNED_LONGS_EQUAL(2, out.size());
  // Sticky: even a tiny frame into the now empty queue is refused.
  CHECK(q.push(make_frame("x")) == Push::Overflow);
  CHECK(q.overflowed());
  UNSIGNED_LONGS_EQUAL(0, q.queued_bytes());
}

TEST(OutboundQueue, FrameLargerThanLimitOverflowsEmptyQueue) {
  OutboundQueue q(16);
  CHECK(q.push(make_frame(std::string(17, 'x'))) == Push::Overflow);
  CHECK(q.overflowed());
  CHECK(readable(q, 0));
  std::vector<FramePtr> out;
  UNSIGNED_LONGS_EQUAL(0, q.drain(out));
  CHECK(out.empty());
}

TEST(OutboundQueue, ExactlyFullIsNotOverflow) {
  OutboundQueue q(10);
  CHECK(q.push(make_frame(std::string(4, 'x'))) == Push::Ok);
  CHECK(q.push(make_frame(std::string(6, 'x'))) == Push::Ok);
  CHECK_FALSE(q.overflowed());
  CHECK(q.push(make_frame("y")) == Push::Overflow);
}

TEST(OutboundQueue, CloseDropsFramesRefusesPushesAndWakes) {
  OutboundQueue q(1 << 20);
  const FramePtr f = make_frame("hello");
  q.push(f);
  q.push(f);
  LONGS_EQUAL(3, f.use_count());
  take_signals(q);

  q.close();
  LONGS_EQUAL(1, f.use_count());  // queued references released by close()
  UNSIGNED_LONGS_EQUAL(0, q.queued_bytes());
  UNSIGNED_LONGS_EQUAL(1, take_signals(q));
  CHECK(q.push(f) == Push::Closed);
  LONGS_EQUAL(1, f.use_count());
  std::vector<FramePtr> out;
  UNSIGNED_LONGS_EQUAL(0, q.drain(out));
  CHECK(out.empty());
  CHECK_FALSE(q.overflowed());
}

TEST(OutboundQueue, FrameFreedAfterLastHolder) {
  std::weak_ptr<const std::string> watch;
  {
    OutboundQueue a(1 << 20), b(1 << 20);
    {
      const FramePtr f = make_frame("shared by every receiver");
      watch = f;
      a.push(f);
      b.push(f);  // encode once, queue to many: one buffer
      LONGS_EQUAL(3, f.use_count());
    }
    LONGS_EQUAL(2, watch.use_count());  // only the two queues hold it
    std::vector<FramePtr> out;
    a.drain(out);
    LONGS_EQUAL(2, watch.use_count());  // drained by move, not copied
    out.clear();
    LONGS_EQUAL(1, watch.use_count());
  }  // b is destroyed with the frame still queued
  CHECK(watch.expired());

  {
    OutboundQueue c(1 << 20);
    c.push(make_frame("sent"));
    std::vector<FramePtr> out;
    c.drain(out);
    watch = out[0];
    LONGS_EQUAL(1, watch.use_count());  // the queue kept nothing
    out.clear();
    CHECK(watch.expired());
  }
}

TEST(OutboundQueue, WakeAndClearWake) {
  OutboundQueue q(64);
  CHECK_FALSE(readable(q, 0));
  q.wake();
  q.wake();
  CHECK(readable(q, 0));
  q.clear_wake();
  CHECK_FALSE(readable(q, 0));
  std::vector<FramePtr> out;
  UNSIGNED_LONGS_EQUAL(0, q.drain(out));  // a bare wake queues nothing
}

TEST(OutboundQueue, CloseWhileProducersPushStopsThemCleanly) {
  constexpr int kProducers = 3;
  constexpr long kMaxPushes = 1000000;  // bound: close() must stop them first
  OutboundQueue q(SIZE_MAX);
  const FramePtr f = make_frame("frame");
  std::atomic<int> saw_closed{0};
  std::atomic<long> pushed{0};
  std::vector<std::thread> producers;
  Joiner joiner(producers);
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      for (long i = 0; i < kMaxPushes; ++i) {
        const Push r = q.push(f);
        if (r == Push::Closed) {
          saw_closed++;
          return;
        }
        if (r == Push::Ok) pushed++;
      }
    });
  }
  // Let the producers get going, draining now and then like a session.
  std::vector<FramePtr> out;
  while (pushed.load() < 1000 && readable(q, 2000)) {
    q.clear_wake();
    out.clear();
    q.drain(out);
  }
  out.clear();
  q.close();
  CHECK(readable(q, 0));  // the consumer learns about the close
  joiner.join();
  LONGS_EQUAL(kProducers, saw_closed.load());
  UNSIGNED_LONGS_EQUAL(0, q.queued_bytes());
  LONGS_EQUAL(1, f.use_count());
}
