// WakeBatch: deliveries inside a batch queue at once but wake each session
// once, when the batch ends.
#include <poll.h>

#include <memory>
#include <thread>

#include "runtime/outbound_queue.h"
#include "runtime/wake_batch.h"

#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {
bool readable(const OutboundQueue& q) {
  pollfd p{q.wake_fd(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}
FramePtr frame() { return make_frame("x"); }

// Pushes like the session's Peer does: deferred while a batch is active.
void deliver(const std::shared_ptr<OutboundQueue>& q) {
  WakeBatch* b = WakeBatch::current();
  if (!b) {
    q->push(frame());
    return;
  }
  bool owed = false;
  q->push_deferred(frame(), &owed);
  if (owed) b->defer(q);
}
}  // namespace

TEST_GROUP(WakeBatch) {};

TEST(WakeBatch, DefersTheSignalUntilTheBatchEnds) {
  auto a = std::make_shared<OutboundQueue>(1 << 20);
  auto b = std::make_shared<OutboundQueue>(1 << 20);
  {
    WakeBatch batch;
    for (int i = 0; i < 10; ++i) {
      deliver(a);
      deliver(b);
    }
    CHECK_FALSE(readable(*a));
    CHECK_FALSE(readable(*b));
    CHECK_EQUAL(10u, a->queued_bytes());
    CHECK_EQUAL(10u, b->queued_bytes());
  }
  CHECK_TRUE(readable(*a));
  CHECK_TRUE(readable(*b));
  std::vector<FramePtr> out;
  a->clear_wake();
  a->drain(out);
  CHECK_EQUAL(10u, out.size());
}

TEST(WakeBatch, WithoutABatchEveryFirstPushSignals) {
  auto a = std::make_shared<OutboundQueue>(1 << 20);
  CHECK(WakeBatch::current() == nullptr);
  deliver(a);
  CHECK_TRUE(readable(*a));
}

TEST(WakeBatch, IsPerThreadAndNests) {
  auto a = std::make_shared<OutboundQueue>(1 << 20);
  WakeBatch outer;
  {
    WakeBatch inner;
    CHECK(WakeBatch::current() == &inner);
    std::thread other([&] { CHECK(WakeBatch::current() == nullptr); });
    other.join();
    deliver(a);
    CHECK_FALSE(readable(*a));
  }
  CHECK(WakeBatch::current() == &outer);
  CHECK_TRUE(readable(*a));  // the inner batch flushed its own debt
}

TEST(WakeBatch, OverflowIsOwedAWakeToo) {
  auto a = std::make_shared<OutboundQueue>(1);
  {
    WakeBatch batch;
    deliver(a);  // 1 byte frame fits exactly? "x" is 1 byte: fits
    deliver(a);  // overflows
    CHECK_FALSE(readable(*a));
  }
  CHECK_TRUE(a->overflowed());
  CHECK_TRUE(readable(*a));
}
