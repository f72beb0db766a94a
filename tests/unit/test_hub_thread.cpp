// HubThread's batching. By default (no window) every batch goes out at once
// and records that arrive during a hand-over join it. With a window, the
// first record after a quiet spell is handed out at once; records that
// follow within the window are held and handed out together when it ends. Over a real ShmBus; generous time bounds (the
// window is 300 ms, the checks allow for a loaded machine and sanitizers).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runtime/hub_thread.h"
#include "runtime/outbound_queue.h"
#include "runtime/shm_bus.h"
#include "runtime/wake_batch.h"

#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

using Clock = std::chrono::steady_clock;

// Every record becomes one frame for one session queue, delivered the way
// the chat engine's peers do (the wake-up owed to the hub's batch).
class QueueConsumer : public BusConsumer {
 public:
  std::shared_ptr<OutboundQueue> q = std::make_shared<OutboundQueue>(1 << 20);
  void apply(uint64_t, std::string_view payload) override {
    bool owed = false;
    q->push_deferred(make_frame(std::string(payload)), &owed);
    if (owed && WakeBatch::current()) WakeBatch::current()->defer(q);
    else if (owed) q->wake();
  }
  void on_overrun(uint64_t, uint64_t) override {}
};

bool woken_within(const OutboundQueue& q, int ms) {
  pollfd p{q.wake_fd(), POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

// Clears the wake-up and returns what was queued.
std::vector<std::string> take(OutboundQueue& q) {
  q.clear_wake();
  std::vector<FramePtr> frames;
  q.drain(frames);
  std::vector<std::string> out;
  for (const auto& f : frames) out.push_back(*f);
  return out;
}

long ms_since(Clock::time_point t) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

struct Fixture {
  std::string error;
  std::unique_ptr<ShmBus> bus{ShmBus::create(ShmBus::kMinCapacity, &error)};
  void* base = bus ? bus->base() : nullptr;
  size_t size = bus ? bus->mapping_size() : 0;
  QueueConsumer consumer;
  ~Fixture() {
    bus.reset();
    if (base) ShmBus::destroy(base, size);
  }
};

}  // namespace

TEST_GROUP(HubThread) {};

TEST(HubThread, WithinTheWindowRecordsAreHeldAndHandedOutTogether) {
  Fixture f;
  CHECK_TEXT(f.bus != nullptr, f.error.c_str());
  HubThread hub(*f.bus, f.consumer, 0, 300 * 1000, 1);  // held after every hand-over

  // Quiet until now: the first record is not delayed by the window.
  f.bus->publish("first");
  CHECK_TRUE(woken_within(*f.consumer.q, 250));
  Clock::time_point flushed = Clock::now();
  CHECK(take(*f.consumer.q) == std::vector<std::string>{"first"});

  // Two more right after: held until the window since that flush ends.
  f.bus->publish("second");
  f.bus->publish("third");
  CHECK_FALSE(woken_within(*f.consumer.q, 120));
  CHECK_TRUE(woken_within(*f.consumer.q, 2000));
  CHECK(ms_since(flushed) >= 200);
  CHECK(take(*f.consumer.q) == (std::vector<std::string>{"second", "third"}));
  hub.stop();
}

TEST(HubThread, OnlyAfterABusyHandOverIsTheNextOneHeld) {
  Fixture f;
  CHECK_TEXT(f.bus != nullptr, f.error.c_str());
  // Queued before the hub starts: its first hand-over carries all of them.
  std::vector<std::string> burst;
  for (size_t i = 0; i < HubThread::kDefaultBusyRecords; ++i) {
    burst.push_back("b" + std::to_string(i));
    f.bus->publish(burst.back());
  }
  HubThread hub(*f.bus, f.consumer, 0, 1000 * 1000);  // 1 s
  CHECK_TRUE(woken_within(*f.consumer.q, 1000));
  Clock::time_point flushed = Clock::now();
  CHECK(take(*f.consumer.q) == burst);

  // Busy: the next record waits for the window since that hand-over.
  f.bus->publish("held");
  CHECK_FALSE(woken_within(*f.consumer.q, 300));
  CHECK_TRUE(woken_within(*f.consumer.q, 3000));
  CHECK(ms_since(flushed) >= 700);
  CHECK(take(*f.consumer.q) == std::vector<std::string>{"held"});

  // That hand-over carried one record: light load again, nothing is held.
  for (int i = 0; i < 3; ++i) {
    f.bus->publish("r" + std::to_string(i));
    CHECK_TRUE(woken_within(*f.consumer.q, 250));  // held, it would take ~1 s
    CHECK(take(*f.consumer.q) == std::vector<std::string>{"r" + std::to_string(i)});
  }
  hub.stop();
}

TEST(HubThread, WithoutAWindowEveryBatchGoesOutAtOnce) {
  Fixture f;
  CHECK_TEXT(f.bus != nullptr, f.error.c_str());
  HubThread hub(*f.bus, f.consumer, 0, 0);
  for (int i = 0; i < 3; ++i) {
    f.bus->publish("r" + std::to_string(i));
    CHECK_TRUE(woken_within(*f.consumer.q, 250));
    CHECK(take(*f.consumer.q) == std::vector<std::string>{"r" + std::to_string(i)});
  }
  hub.stop();
}

TEST(HubThread, StoppingHandsOutWhatIsHeld) {
  Fixture f;
  CHECK_TEXT(f.bus != nullptr, f.error.c_str());
  auto hub = std::make_unique<HubThread>(*f.bus, f.consumer, 0, 5 * 1000 * 1000, 1);  // 5 s
  f.bus->publish("first");
  CHECK_TRUE(woken_within(*f.consumer.q, 250));
  take(*f.consumer.q);
  f.bus->publish("held");
  CHECK_FALSE(woken_within(*f.consumer.q, 100));
  Clock::time_point t = Clock::now();
  hub->stop();
  CHECK(ms_since(t) < 1500);  // the hold is interrupted by stop()
  CHECK_TRUE(woken_within(*f.consumer.q, 0));
  CHECK(take(*f.consumer.q) == std::vector<std::string>{"held"});
}

namespace {
// One lent socket per member (SOCK_SEQPACKET: one packet per write). The
// first record published on the bus makes its apply() publish another, which
// thus arrives while the hub is about to hand the first one out.
class ChainingConsumer : public BusConsumer {
 public:
  struct Member {
    int fds[2] = {-1, -1};
    SessionStats stats;
    std::shared_ptr<OutboundQueue> q = std::make_shared<OutboundQueue>(1 << 20);
  };
  Bus* bus = nullptr;
  std::vector<std::unique_ptr<Member>> members;
  explicit ChainingConsumer(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      auto m = std::make_unique<Member>();
      CHECK_EQUAL(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, m->fds));
      m->q->enable_direct(m->fds[0], &m->stats);
      members.push_back(std::move(m));
    }
  }
  ~ChainingConsumer() override {
    for (auto& m : members) {
      m->q->close();
      close(m->fds[0]);
      close(m->fds[1]);
    }
  }
  void apply(uint64_t, std::string_view payload) override {
    for (auto& m : members) {
      bool owed = false;
      m->q->push_deferred(make_frame(std::string(payload)), &owed);
      if (owed) WakeBatch::current()->defer(m->q);
    }
    if (payload == "a") bus->publish("b");
  }
  void on_overrun(uint64_t, uint64_t) override {}
};

// Packets readable on fd within ms, until `frames` frames have arrived.
std::vector<std::string> packets(int fd, size_t frames, int ms) {
  std::vector<std::string> out;
  size_t got = 0;
  Clock::time_point until = Clock::now() + std::chrono::milliseconds(ms);
  char buf[4096];
  while (got < frames && Clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) != 1) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    out.emplace_back(buf, static_cast<size_t>(n));
    got += static_cast<size_t>(n);  // one byte per frame
  }
  return out;
}
}  // namespace

TEST(HubThread, ByDefaultARecordArrivingDuringAHandOverJoinsIt) {
  std::string error;
  std::unique_ptr<ShmBus> bus(ShmBus::create(ShmBus::kMinCapacity, &error));
  CHECK_TEXT(bus != nullptr, error.c_str());
  void* base = bus->base();
  const size_t size = bus->mapping_size();
  {
    ChainingConsumer consumer(2 * WakeBatch::kBetweenEvery);
    consumer.bus = bus.get();
    HubThread hub(*bus, consumer, 0, 0);
    bus->publish("a");
    for (size_t i = 0; i < consumer.members.size(); ++i) {
      const std::vector<std::string> got = packets(consumer.members[i]->fds[1], 2, 2000);
      if (i < WakeBatch::kBetweenEvery)
        CHECK(got == (std::vector<std::string>{"a", "b"}));  // written before "b" came
      else
        CHECK(got == std::vector<std::string>{"ab"});  // not reached yet: one write
      CHECK_FALSE(woken_within(*consumer.members[i]->q, 0));
    }
    hub.stop();
  }
  bus.reset();
  ShmBus::destroy(base, size);
}
