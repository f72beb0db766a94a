// ShmBus: the shared-memory ring log, within one process, across threads and
// across fork()ed processes, including a writer killed while holding the lock.
//
// Helper threads and child processes never call CppUTest macros; the test
// thread checks what they recorded after joining/reaping them. Forked
// children only publish (or take the lock) and _exit, which keeps them safe
// under ThreadSanitizer.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/shm_bus.h"

#include <CppUTest/TestHarness.h>

using wsb::BusReadResult;
using wsb::BusRecord;
using wsb::ShmBus;
using Clock = std::chrono::steady_clock;

namespace {

// Owns one mapping for the length of a test.
struct Mapping {
  explicit Mapping(size_t ring) : bus(ShmBus::create(ring, &error)) {
    if (bus) base = bus->base(), size = bus->mapping_size();
  }
  ~Mapping() {
    bus.reset();
    ShmBus::destroy(base, size);
  }
  std::string error;
  std::unique_ptr<ShmBus> bus;
  void* base = nullptr;
  size_t size = 0;
};

// Deterministic content, so a torn or misplaced copy cannot go unnoticed.
std::string pattern(uint64_t seq, size_t len) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>(seq * 131 + i * 7);
  return s;
}

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

// A forked child that is SIGKILLed and reaped on scope exit if still alive.
class Child {
 public:
  template <class Body>
  explicit Child(Body body) : pid_(::fork()) {
    if (pid_ == 0) ::_exit(body() ? 0 : 1);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }
  void kill_now() { ::kill(pid_, SIGKILL); }
  // Exit status, or -1 if it did not exit within timeout_ms (or was killed).
  int reap(int timeout_ms) {
    const auto start = Clock::now();
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (elapsed_ms(start) > timeout_ms) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_;
};

// Reads until *cursor reaches `until` or the deadline passes. Returns false
// on an overrun or a seq gap, which these callers do not expect.
bool read_all(ShmBus& bus, uint64_t* cursor, uint64_t until, std::vector<BusRecord>& out,
              int timeout_ms) {
  const auto start = Clock::now();
  while (*cursor < until && elapsed_ms(start) < timeout_ms) {
    const size_t before = out.size();
    const uint64_t expect = *cursor + 1;
    if (bus.read(cursor, out, 64).overrun) return false;
    if (out.size() > before && out[before].seq != expect) return false;
    if (out.size() == before) bus.wait(*cursor, 200);
  }
  return *cursor >= until;
}

bool in_order(const std::vector<BusRecord>& records, uint64_t first) {
  for (size_t i = 0; i < records.size(); ++i)
    if (records[i].seq != first + i) return false;
  return true;
}

}  // namespace

TEST_GROUP(ShmBus) {};

TEST(ShmBus, PublishAndReadInOrder) {
  Mapping m(4096);
  CHECK_TEXT(m.bus != nullptr, m.error.c_str());
  ShmBus& bus = *m.bus;
  UNSIGNED_LONGLONGS_EQUAL(0, bus.last_seq());
  UNSIGNED_LONGLONGS_EQUAL(0, bus.first_seq());
  uint64_t cursor = 0;
  std::vector<BusRecord> out;
  BusReadResult r = bus.read(&cursor, out, 10);
  CHECK(out.empty() && !r.overrun);

  UNSIGNED_LONGLONGS_EQUAL(1, bus.publish("alpha"));
  UNSIGNED_LONGLONGS_EQUAL(2, bus.publish(""));
  UNSIGNED_LONGLONGS_EQUAL(3, bus.publish("gamma!!!"));  // exactly one word
  UNSIGNED_LONGLONGS_EQUAL(3, bus.last_seq());
  UNSIGNED_LONGLONGS_EQUAL(1, bus.first_seq());

  r = bus.read(&cursor, out, 2);
  CHECK_FALSE(r.overrun);
  UNSIGNED_LONGS_EQUAL(2, out.size());
  UNSIGNED_LONGLONGS_EQUAL(2, cursor);
  r = bus.read(&cursor, out, 10);
  UNSIGNED_LONGS_EQUAL(3, out.size());
  CHECK(in_order(out, 1));
  STRCMP_EQUAL("alpha", out[0].payload.c_str());
  CHECK(out[1].payload.empty());
  STRCMP_EQUAL("gamma!!!", out[2].payload.c_str());
  UNSIGNED_LONGLONGS_EQUAL(3, cursor);
  r = bus.read(&cursor, out, 10);
  CHECK(!r.overrun && out.size() == 3);
}

TEST(ShmBus, OversizeRecordIsRefused) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  UNSIGNED_LONGS_EQUAL(4096 / 4 - 16, bus.max_payload());
  UNSIGNED_LONGLONGS_EQUAL(0, bus.publish(std::string(bus.max_payload() + 1, 'x')));
  UNSIGNED_LONGLONGS_EQUAL(0, bus.last_seq());
  UNSIGNED_LONGLONGS_EQUAL(1, bus.publish(std::string(bus.max_payload(), 'x')));
  std::string error;
  CHECK(ShmBus::create(ShmBus::kMinCapacity - 1, &error) == nullptr);
  CHECK_FALSE(error.empty());
}

TEST(ShmBus, WrapsManyTimesWithVariedSizes) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  const size_t max = bus.max_payload();
  uint64_t cursor = 0, bytes = 0;
  size_t bad = 0;
  std::vector<BusRecord> out;
  for (uint64_t seq = 1; seq <= 20000; ++seq) {
    const size_t len = seq % 97 == 0 ? max : (seq * 37) % (max + 1);
    bytes += len;
    if (bus.publish(pattern(seq, len)) != seq) ++bad;
    if (seq % 3 != 0) continue;  // read in small bursts: never more than a ring behind
    out.clear();
    if (bus.read(&cursor, out, 100).overrun) ++bad;
    for (size_t i = 0; i < out.size(); ++i) {
      const uint64_t s = seq - out.size() + 1 + i;
      const size_t l = s % 97 == 0 ? max : (s * 37) % (max + 1);
      if (out[i].seq != s || out[i].payload != pattern(s, l)) ++bad;
    }
  }
  UNSIGNED_LONGS_EQUAL(0, bad);
  UNSIGNED_LONGLONGS_EQUAL(19998, cursor);
  CHECK(bytes / bus.capacity() > 1000);  // the ring wrapped over a thousand times
}

TEST(ShmBus, ReaderBehindByMoreThanTheRingGetsExactLostRange) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  for (uint64_t s = 1; s <= 5; ++s) bus.publish(pattern(s, 100));
  uint64_t cursor = 0;
  std::vector<BusRecord> out;
  bus.read(&cursor, out, 100);
  UNSIGNED_LONGLONGS_EQUAL(5, cursor);
  for (uint64_t s = 6; s <= 205; ++s) bus.publish(pattern(s, 100));

  const uint64_t first = bus.first_seq();
  CHECK(first > 6 && first < 205);
  out.clear();
  BusReadResult r = bus.read(&cursor, out, 3);
  CHECK(r.overrun);
  UNSIGNED_LONGLONGS_EQUAL(6, r.lost_from);
  UNSIGNED_LONGLONGS_EQUAL(first - 1, r.lost_to);
  UNSIGNED_LONGS_EQUAL(3, out.size());
  CHECK(in_order(out, first));
  // The rest follows without another overrun, and reading goes on normally.
  r = bus.read(&cursor, out, 1000);
  CHECK_FALSE(r.overrun);
  CHECK(in_order(out, first));
  UNSIGNED_LONGLONGS_EQUAL(205, cursor);
  for (const BusRecord& rec : out) CHECK(rec.payload == pattern(rec.seq, 100));
  bus.publish("next");
  out.clear();
  r = bus.read(&cursor, out, 10);
  CHECK(!r.overrun && out.size() == 1 && out[0].seq == 206);
}

TEST(ShmBus, UnknownCursorIsLocatedFromTheOldestRecord) {
  Mapping m(4096);
  for (uint64_t s = 1; s <= 300; ++s) m.bus->publish(pattern(s, 40));
  const uint64_t first = m.bus->first_seq();
  CHECK(first > 1);
  // A fresh reader at 0: everything before the oldest record is lost.
  std::unique_ptr<ShmBus> fresh = ShmBus::attach(m.base, m.size);
  uint64_t cursor = 0;
  std::vector<BusRecord> out;
  BusReadResult r = fresh->read(&cursor, out, 1000);
  CHECK(r.overrun && r.lost_from == 1 && r.lost_to == first - 1);
  CHECK(in_order(out, first) && cursor == 300);
  // A resumed cursor this object never handed out: no loss, no duplicate.
  cursor = first + 10;
  out.clear();
  r = fresh->read(&cursor, out, 1000);
  CHECK(!r.overrun && in_order(out, first + 11) && cursor == 300);
}

TEST(ShmBus, AttachWrapsTheSameMappingAndDestructionDoesNotUnmap) {
  Mapping m(8192);
  m.bus->publish("from the first wrapper");
  {
    std::unique_ptr<ShmBus> again = ShmBus::attach(m.base, m.size);
    CHECK(again != nullptr);
    UNSIGNED_LONGS_EQUAL(m.bus->capacity(), again->capacity());
    uint64_t cursor = 0;
    std::vector<BusRecord> out;
    again->read(&cursor, out, 10);
    UNSIGNED_LONGS_EQUAL(1, out.size());
    STRCMP_EQUAL("from the first wrapper", out[0].payload.c_str());
    UNSIGNED_LONGLONGS_EQUAL(2, again->publish("from the second"));
  }  // wrapper gone, mapping stays
  m.bus.reset();
  m.bus = ShmBus::attach(m.base, m.size);
  CHECK(m.bus != nullptr);
  UNSIGNED_LONGLONGS_EQUAL(2, m.bus->last_seq());
  UNSIGNED_LONGLONGS_EQUAL(3, m.bus->publish("still works"));

  CHECK(ShmBus::attach(m.base, m.size - 4096) == nullptr);  // wrong size
  std::vector<uint64_t> junk(1024, 0x5a5a5a5a5a5a5a5aULL);
  CHECK(ShmBus::attach(junk.data(), junk.size() * 8) == nullptr);
  CHECK(ShmBus::attach(nullptr, m.size) == nullptr);
}

TEST(ShmBus, WaitTimesOutWithoutPublish) {
  Mapping m(4096);
  const auto start = Clock::now();
  CHECK_FALSE(m.bus->wait(0, 60));
  CHECK(elapsed_ms(start) >= 50);
  CHECK_FALSE(m.bus->wait(0, 0));
  m.bus->publish("x");
  CHECK(m.bus->wait(0, 5000));  // already there: no sleep
  CHECK(elapsed_ms(start) < 2000);
}

TEST(ShmBus, WaitWakesOnPublishAndOnWake) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  std::thread publisher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    bus.publish("wake up");
  });
  auto start = Clock::now();
  const bool woke = bus.wait(0, 5000);
  const long took = elapsed_ms(start);
  publisher.join();
  CHECK(woke);
  CHECK(took < 2000);

  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    bus.wake();
  });
  start = Clock::now();
  const bool news = bus.wait(1, 5000);
  const long took2 = elapsed_ms(start);
  waker.join();
  CHECK_FALSE(news);  // woken, but nothing new
  CHECK(took2 < 2000);
}

TEST(ShmBus, ConcurrentWritersAndReadersSeeOneOrder) {
  constexpr uint32_t kWriters = 3, kPerWriter = 3000, kReaders = 3;
  constexpr uint64_t kTotal = uint64_t{kWriters} * kPerWriter;
  Mapping m(1 << 20);  // holds everything: no overrun expected here
  std::vector<std::unique_ptr<ShmBus>> views;
  for (uint32_t r = 0; r < kReaders; ++r) views.push_back(ShmBus::attach(m.base, m.size));
  std::vector<std::vector<BusRecord>> seen(kReaders);
  std::vector<char> ok(kReaders, 0);
  std::atomic<int> failed_publish{0};
  std::vector<std::thread> threads;
  for (uint32_t r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      uint64_t cursor = 0;
      ok[r] = read_all(*views[r], &cursor, kTotal, seen[r], 10000);
    });
  }
  for (uint32_t w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (uint32_t i = 0; i < kPerWriter; ++i)
        if (m.bus->publish(std::to_string(w) + ":" + std::to_string(i)) == 0)
          failed_publish++;
    });
  }
  for (auto& t : threads) t.join();
  LONGS_EQUAL(0, failed_publish.load());
  for (uint32_t r = 0; r < kReaders; ++r) {
    CHECK(ok[r]);
    UNSIGNED_LONGS_EQUAL(kTotal, seen[r].size());
    CHECK(in_order(seen[r], 1));
    std::vector<uint32_t> next(kWriters, 0);
    for (size_t i = 0; i < seen[r].size(); ++i) {
      CHECK(seen[r][i].payload == seen[0][i].payload);  // one order for all
      const std::string& p = seen[r][i].payload;
      const uint32_t w = static_cast<uint32_t>(std::stoul(p.substr(0, p.find(':'))));
      CHECK(w < kWriters && std::stoul(p.substr(p.find(':') + 1)) == next[w]);
      ++next[w];
    }
  }
}

TEST(ShmBus, LappedReadersNeverReturnATornRecord) {
  constexpr uint64_t kRecords = 30000;
  constexpr int kReaders = 2;  // two readers and a writer on two cores: copies get preempted
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  // Long records widen the window in which the writer laps a copy under way.
  auto length = [&](uint64_t seq) { return (seq * 53) % (bus.max_payload() + 1); };
  struct Tally {
    uint64_t cursor = 0, overruns = 0, delivered = 0, bad = 0;
  };
  std::vector<Tally> tally(kReaders);
  std::vector<std::unique_ptr<ShmBus>> views;
  for (int r = 0; r < kReaders; ++r) views.push_back(ShmBus::attach(m.base, m.size));
  std::vector<std::thread> threads;
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      Tally& t = tally[r];
      uint64_t prev = 0;
      std::vector<BusRecord> out;
      const auto start = Clock::now();
      while (t.cursor < kRecords && elapsed_ms(start) < 10000) {
        out.clear();
        const BusReadResult res = views[r]->read(&t.cursor, out, 16);
        if (res.overrun) {
          ++t.overruns;
          if (res.lost_from != prev + 1 || out.empty() || res.lost_to + 1 != out[0].seq) ++t.bad;
        } else if (!out.empty() && out[0].seq != prev + 1) {
          ++t.bad;
        }
        for (const BusRecord& rec : out) {
          if (rec.seq <= prev || rec.payload != pattern(rec.seq, length(rec.seq))) ++t.bad;
          prev = rec.seq;
          ++t.delivered;
        }
        if (out.empty()) views[r]->wait(t.cursor, 100);
      }
    });
  }
  threads.emplace_back([&] {
    for (uint64_t s = 1; s <= kRecords; ++s) bus.publish(pattern(s, length(s)));
  });
  for (auto& t : threads) t.join();
  uint64_t overruns = 0;
  for (const Tally& t : tally) {
    UNSIGNED_LONGLONGS_EQUAL(0, t.bad);
    UNSIGNED_LONGLONGS_EQUAL(kRecords, t.cursor);
    CHECK(t.delivered > 0);
    overruns += t.overruns;
  }
  CHECK(overruns > 0);  // the writer did lap the readers: the hard case was exercised
}

TEST(ShmBus, ForkedWritersAllReachTheParentInOneOrder) {
  constexpr uint32_t kChildren = 3, kPerChild = 2000;
  constexpr uint64_t kTotal = uint64_t{kChildren} * kPerChild;
  Mapping m(1 << 20);
  ShmBus& bus = *m.bus;
  std::vector<std::unique_ptr<Child>> children;
  for (uint32_t c = 0; c < kChildren; ++c) {
    children.push_back(std::make_unique<Child>([&bus, c] {
      for (uint32_t i = 0; i < kPerChild; ++i)
        if (bus.publish(std::to_string(c) + ":" + std::to_string(i)) == 0) return false;
      return true;
    }));
    CHECK(children.back()->started());
  }
  uint64_t cursor = 0;
  std::vector<BusRecord> out;
  const bool ok = read_all(bus, &cursor, kTotal, out, 10000);  // wakes via the shared futex
  for (auto& child : children) LONGS_EQUAL(0, child->reap(5000));
  CHECK(ok);
  UNSIGNED_LONGS_EQUAL(kTotal, out.size());
  CHECK(in_order(out, 1));
  std::vector<uint32_t> next(kChildren, 0);
  for (const BusRecord& rec : out) {
    const uint32_t c = static_cast<uint32_t>(std::stoul(rec.payload.substr(0, 1)));
    CHECK(c < kChildren && std::stoul(rec.payload.substr(2)) == next[c]);
    ++next[c];
  }
}

namespace {

// Forks a child that runs `hold` (which takes the writer lock and keeps it),
// waits until it has, then SIGKILLs it. Returns false on timeout.
template <class Hold>
bool kill_child_holding_lock(Hold hold) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  bool ready = false;
  {
    Child child([&] {
      hold();
      const char byte = 1;
      if (::write(fds[1], &byte, 1) != 1) return false;
      ::pause();  // until SIGKILL
      return false;
    });
    pollfd pfd{fds[0], POLLIN, 0};
    char byte = 0;
    ready = child.started() && ::poll(&pfd, 1, 5000) == 1 && ::read(fds[0], &byte, 1) == 1;
    child.kill_now();
    ready = child.reap(5000) == -1 && ready;  // -1: it died by the signal
  }
  ::close(fds[0]);
  ::close(fds[1]);
  return ready;
}

}  // namespace

TEST(ShmBus, WriterKilledWhileHoldingTheLockDoesNotWedgeTheBus) {
  Mapping m(1 << 16);
  ShmBus& bus = *m.bus;
  for (uint64_t s = 1; s <= 10; ++s) bus.publish(pattern(s, 20));
  CHECK(kill_child_holding_lock([&bus] { bus.lock_for_test(); }));

  UNSIGNED_LONGLONGS_EQUAL(11, bus.publish(pattern(11, 20)));  // EOWNERDEAD, repaired
  UNSIGNED_LONGLONGS_EQUAL(12, bus.publish(pattern(12, 20)));  // and consistent again
  uint64_t cursor = 0;
  std::vector<BusRecord> out;
  CHECK_FALSE(bus.read(&cursor, out, 100).overrun);
  UNSIGNED_LONGS_EQUAL(12, out.size());
  CHECK(in_order(out, 1));
  for (const BusRecord& rec : out) CHECK(rec.payload == pattern(rec.seq, 20));
}

TEST(ShmBus, WriterKilledMidPublishLeavesNoHalfRecordAndNoGap) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  for (uint64_t s = 1; s <= 60; ++s) bus.publish(pattern(s, 100));  // wrapped
  uint64_t cursor = 0;
  std::vector<BusRecord> out;
  bus.read(&cursor, out, 1000);
  UNSIGNED_LONGLONGS_EQUAL(60, cursor);
  // The dead writer had taken seq 61, evicted old records and written most of
  // a record, but never made it visible.
  CHECK(kill_child_holding_lock(
      [&bus] { bus.abandon_publish_for_test(std::string(bus.max_payload(), 'X')); }));
  out.clear();
  CHECK(!bus.read(&cursor, out, 10).overrun && out.empty());

  UNSIGNED_LONGLONGS_EQUAL(61, bus.publish(pattern(61, 100)));
  CHECK(!bus.read(&cursor, out, 10).overrun);
  UNSIGNED_LONGS_EQUAL(1, out.size());
  CHECK(out[0].seq == 61 && out[0].payload == pattern(61, 100));

  // A new reader sees a consistent log: the repaired oldest record first.
  std::unique_ptr<ShmBus> fresh = ShmBus::attach(m.base, m.size);
  uint64_t c2 = 0;
  out.clear();
  const BusReadResult r = fresh->read(&c2, out, 1000);
  CHECK(r.overrun && r.lost_to + 1 == bus.first_seq());
  CHECK(in_order(out, bus.first_seq()) && c2 == 61);
  for (const BusRecord& rec : out) CHECK(rec.payload == pattern(rec.seq, 100));
}
