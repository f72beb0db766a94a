// ShmBus: the shared-memory ring log, within one process, across threads and
// across fork()ed processes, including a writer killed while holding the lock.
// Helper threads and children never use CppUTest macros; the test thread
// checks what they recorded after joining/reaping them. Children only publish
// (or take the lock) and _exit, which keeps them safe under TSan.
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/bus_id.h"
#include "runtime/shm_bus.h"

#include <CppUTest/TestHarness.h>

using wsb::BusReadResult;
using wsb::BusRecord;
using wsb::ShmBus;
using Clock = std::chrono::steady_clock;
using Records = std::vector<BusRecord>;

namespace {

// Owns one mapping for the length of a test.
struct Mapping {
  explicit Mapping(size_t ring) : bus(ShmBus::create(ring, &error)) {
    CHECK_TEXT(bus != nullptr, error.c_str());
    base = bus->base(), size = bus->mapping_size();
  }
  ~Mapping() {
    bus.reset();
    ShmBus::destroy(base, size);
  }
  std::unique_ptr<ShmBus> view() const { return ShmBus::attach(base, size); }
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

// A forked child, SIGKILLed and reaped on scope exit if still alive.
class Child {
 public:
  template <class Body>
  explicit Child(Body body) : pid_(::fork()) {
    if (pid_ == 0) {
      // Straight to the kernel: TSan's _exit hook would turn the status into
      // 66 if this process (before fork, in any other test) had a report. A
      // single-threaded child cannot race, so nothing of its own is hidden.
      ::syscall(SYS_exit_group, body() ? 0 : 1);
      ::_exit(1);  // not reached
    }
  }
  ~Child() {
    kill_now();
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  void kill_now() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);  // never kill(-1): that signals everything
  }
  // Exit status; -1 if killed by a signal, fork failed or still running.
  int reap(int timeout_ms) {
    if (pid_ <= 0) return -1;
    const auto start = Clock::now();
    int status = 0;
    pid_t done = 0;
    while ((done = ::waitpid(pid_, &status, WNOHANG)) == 0) {
      if (elapsed_ms(start) > timeout_ms) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    pid_ = -1;
    return done > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_;
};

// Reads until *cursor reaches `until` or the deadline passes; false on an
// overrun or a seq gap, which these callers do not expect.
bool read_all(ShmBus& bus, uint64_t* cursor, uint64_t until, Records& out, int timeout_ms) {
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

bool in_order(const Records& records, uint64_t first) {
  for (size_t i = 0; i < records.size(); ++i)
    if (records[i].seq != first + i) return false;
  return true;
}

bool patterned(const Records& records, size_t len) {
  return std::all_of(records.begin(), records.end(),
                     [&](const BusRecord& r) { return r.payload == pattern(r.seq, len); });
}

// Payloads are "<writer>:<n>": each writer's records appear exactly once, in
// the order it published them.
bool each_writer_in_order(const Records& records, uint32_t writers, uint32_t per_writer) {
  std::vector<uint32_t> next(writers, 0);
  for (const BusRecord& rec : records) {
    const size_t colon = rec.payload.find(':');
    const auto w = static_cast<uint32_t>(std::stoul(rec.payload.substr(0, colon)));
    if (w >= writers || std::stoul(rec.payload.substr(colon + 1)) != next[w]) return false;
    ++next[w];
  }
  return std::all_of(next.begin(), next.end(), [&](uint32_t n) { return n == per_writer; });
}

std::string tag(uint32_t writer, uint32_t n) {
  return std::to_string(writer) + ":" + std::to_string(n);
}

}  // namespace

TEST_GROUP(ShmBus) {};

TEST(ShmBus, PublishAndReadInOrder) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  uint64_t cursor = 0;
  Records out;
  CHECK(bus.last_seq() == 0 && bus.first_seq() == 0);
  CHECK(!bus.read(&cursor, out, 10).overrun && out.empty());

  UNSIGNED_LONGLONGS_EQUAL(1, bus.publish("alpha"));
  UNSIGNED_LONGLONGS_EQUAL(2, bus.publish(""));
  UNSIGNED_LONGLONGS_EQUAL(3, bus.publish("gamma!!!"));  // exactly one word
  CHECK(bus.last_seq() == 3 && bus.first_seq() == 1);
  CHECK_FALSE(bus.read(&cursor, out, 2).overrun);
  CHECK(out.size() == 2 && cursor == 2);
  bus.read(&cursor, out, 10);
  UNSIGNED_LONGS_EQUAL(3, out.size());
  CHECK(in_order(out, 1) && cursor == 3);
  STRCMP_EQUAL("alpha", out[0].payload.c_str());
  CHECK(out[1].payload.empty());
  STRCMP_EQUAL("gamma!!!", out[2].payload.c_str());
  CHECK(!bus.read(&cursor, out, 10).overrun && out.size() == 3);
}

TEST(ShmBus, OversizeRecordIsRefused) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  UNSIGNED_LONGS_EQUAL(4096 / 4 - 16, bus.max_payload());
  UNSIGNED_LONGLONGS_EQUAL(0, bus.publish(std::string(bus.max_payload() + 1, 'x')));
  UNSIGNED_LONGLONGS_EQUAL(0, bus.last_seq());
  UNSIGNED_LONGLONGS_EQUAL(1, bus.publish(std::string(bus.max_payload(), 'x')));
  std::string error;
  CHECK(ShmBus::create(ShmBus::kMinCapacity - 1, &error) == nullptr && !error.empty());
}

TEST(ShmBus, WrapsManyTimesWithVariedSizes) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  auto length = [&](uint64_t s) { return s % 97 == 0 ? bus.max_payload() : (s * 37) % 1009; };
  uint64_t cursor = 0, bytes = 0, bad = 0;
  Records out;
  for (uint64_t seq = 1; seq <= 20000; ++seq) {
    bytes += length(seq);
    if (bus.publish(pattern(seq, length(seq))) != seq) ++bad;
    if (seq % 3 != 0) continue;  // read in small bursts: never a ring behind
    out.clear();
    if (bus.read(&cursor, out, 100).overrun || !in_order(out, seq - 2)) ++bad;
    for (const BusRecord& r : out) bad += r.payload != pattern(r.seq, length(r.seq));
  }
  UNSIGNED_LONGLONGS_EQUAL(0, bad);
  UNSIGNED_LONGLONGS_EQUAL(19998, cursor);
  CHECK(bytes / bus.capacity() > 1000);  // the ring wrapped over a thousand times
}

TEST(ShmBus, ReaderBehindByMoreThanTheRingGetsExactLostRange) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  for (uint64_t s = 1; s <= 5; ++s) bus.publish(pattern(s, 100));
  uint64_t cursor = 0;
  Records out;
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
  CHECK(out.size() == 3 && in_order(out, first));
  // The rest follows without another overrun, and reading goes on normally.
  CHECK_FALSE(bus.read(&cursor, out, 1000).overrun);
  CHECK(in_order(out, first) && patterned(out, 100) && cursor == 205);
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
  std::unique_ptr<ShmBus> fresh = m.view();
  uint64_t cursor = 0;
  Records out;
  BusReadResult r = fresh->read(&cursor, out, 1000);
  CHECK(r.overrun && r.lost_from == 1 && r.lost_to == first - 1);
  CHECK(in_order(out, first) && cursor == 300);
  // A resumed cursor this object never handed out: no loss, no duplicate.
  cursor = first + 10;
  out.clear();
  r = fresh->read(&cursor, out, 1000);
  CHECK(!r.overrun && in_order(out, first + 11) && cursor == 300 && patterned(out, 40));
}

TEST(ShmBus, AttachWrapsTheSameMappingAndDestructionDoesNotUnmap) {
  Mapping m(8192);
  m.bus->publish("from the first wrapper");
  {
    std::unique_ptr<ShmBus> again = m.view();
    CHECK(again != nullptr && again->capacity() == m.bus->capacity());
    uint64_t cursor = 0;
    Records out;
    again->read(&cursor, out, 10);
    UNSIGNED_LONGS_EQUAL(1, out.size());
    STRCMP_EQUAL("from the first wrapper", out[0].payload.c_str());
    UNSIGNED_LONGLONGS_EQUAL(2, again->publish("from the second"));
  }  // wrapper gone, mapping stays
  m.bus = m.view();  // as the parent does after the DSO is reloaded
  CHECK(m.bus != nullptr);
  UNSIGNED_LONGLONGS_EQUAL(2, m.bus->last_seq());
  UNSIGNED_LONGLONGS_EQUAL(3, m.bus->publish("still works"));

  CHECK(ShmBus::attach(m.base, m.size - 4096) == nullptr);  // wrong size
  std::vector<uint64_t> junk(1024, 0x5a5a5a5a5a5a5a5aULL);
  CHECK(ShmBus::attach(junk.data(), junk.size() * 8) == nullptr);
  CHECK(ShmBus::attach(nullptr, m.size) == nullptr);
}

TEST(ShmBus, IdIsKeptByTheMappingAndNewPerCreate) {
  Mapping m(4096);
  const std::string id = m.bus->id();
  CHECK_TRUE(wsb::is_valid_bus_id(id));
  m.bus->publish("one");
  {
    auto child = m.view();  // another child, or the DSO reloaded on a graceful restart
    CHECK(child != nullptr);
    STRCMP_EQUAL(id.c_str(), child->id().c_str());
  }
  m.bus = m.view();
  STRCMP_EQUAL(id.c_str(), m.bus->id().c_str());
  // A hard stop and start: a fresh mapping numbers from 1 again, and says so.
  Mapping fresh(4096);
  UNSIGNED_LONGLONGS_EQUAL(1, fresh.bus->publish("one"));
  CHECK_TRUE(wsb::is_valid_bus_id(fresh.bus->id()));
  CHECK(fresh.bus->id() != id);
}

TEST(ShmBus, WaitWakesOnPublishOrWakeAndTimesOutOtherwise) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  auto start = Clock::now();
  CHECK_FALSE(bus.wait(0, 60));
  CHECK(elapsed_ms(start) >= 50);
  CHECK_FALSE(bus.wait(0, 0));
  // Another thread acts after 30 ms while this one waits up to 5 s.
  auto wait_while = [&](uint64_t cursor, auto act) {
    std::thread t([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      act();
    });
    start = Clock::now();
    const bool result = bus.wait(cursor, 5000);
    t.join();
    return result;
  };
  CHECK(wait_while(0, [&] { bus.publish("wake up"); }));
  CHECK(elapsed_ms(start) < 2000);
  CHECK_FALSE(wait_while(1, [&] { bus.wake(); }));  // woken, but nothing new
  CHECK(elapsed_ms(start) < 2000);
  start = Clock::now();
  CHECK(bus.wait(0, 5000));  // a record is already there: no sleep
  CHECK(elapsed_ms(start) < 2000);
}

TEST(ShmBus, WaitWakesOnPublishFromAnotherProcess) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  const auto start = Clock::now();
  Child child([&bus] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return bus.publish("from the child") == 1;
  });
  const bool woke = bus.wait(0, 5000);  // needs a shared (non-private) futex
  const long took = elapsed_ms(start);
  LONGS_EQUAL(0, child.reap(5000));
  CHECK(woke && took < 2000);
}

TEST(ShmBus, ConcurrentWritersAndReadersSeeOneOrder) {
  constexpr uint32_t kWriters = 3, kPerWriter = 3000, kReaders = 3;
  constexpr uint64_t kTotal = uint64_t{kWriters} * kPerWriter;
  Mapping m(1 << 20);  // holds everything: no overrun expected here
  std::vector<std::unique_ptr<ShmBus>> views;
  std::vector<Records> seen(kReaders);
  std::vector<char> ok(kReaders, 0);
  std::atomic<int> failed_publish{0};
  std::vector<std::thread> threads;
  // One wrapper per reading thread, as in Apache; all made before any thread
  // starts, so `views` never reallocates under a running reader.
  for (uint32_t r = 0; r < kReaders; ++r) views.push_back(m.view());
  for (uint32_t r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      uint64_t cursor = 0;
      ok[r] = read_all(*views[r], &cursor, kTotal, seen[r], 10000);
    });
  }
  for (uint32_t w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (uint32_t i = 0; i < kPerWriter; ++i)
        if (m.bus->publish(tag(w, i)) == 0) failed_publish++;
    });
  }
  for (auto& t : threads) t.join();
  LONGS_EQUAL(0, failed_publish.load());
  for (uint32_t r = 0; r < kReaders; ++r) {
    CHECK(ok[r] && seen[r].size() == kTotal && in_order(seen[r], 1));
    CHECK(each_writer_in_order(seen[r], kWriters, kPerWriter));
    for (size_t i = 0; i < seen[r].size(); ++i)  // one order for all readers
      CHECK(seen[r][i].payload == seen[0][i].payload);
  }
}

TEST(ShmBus, LappedReadersNeverReturnATornRecord) {
  constexpr uint64_t kRecords = 30000;
  constexpr int kReaders = 2;  // two readers and a writer on two cores: copies get preempted
  Mapping m(4096);
  // Long records widen the window in which the writer laps a copy under way.
  auto length = [&](uint64_t seq) { return (seq * 53) % (m.bus->max_payload() + 1); };
  struct Tally { uint64_t cursor = 0, overruns = 0, delivered = 0, bad = 0; };
  std::vector<Tally> tally(kReaders);
  std::vector<std::unique_ptr<ShmBus>> views;
  std::vector<std::thread> threads;
  for (int r = 0; r < kReaders; ++r) views.push_back(m.view());
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      Tally& t = tally[r];
      uint64_t prev = 0;
      Records out;
      const auto start = Clock::now();
      while (t.cursor < kRecords && elapsed_ms(start) < 10000) {
        out.clear();
        const BusReadResult res = views[r]->read(&t.cursor, out, 16);
        t.overruns += res.overrun;
        // Every gap is reported, exactly, and only right before what follows it.
        if (res.overrun ? res.lost_from != prev + 1 || out.empty() || res.lost_to + 1 != out[0].seq
                        : !out.empty() && out[0].seq != prev + 1)
          ++t.bad;
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
    for (uint64_t s = 1; s <= kRecords; ++s) m.bus->publish(pattern(s, length(s)));
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
        if (bus.publish(tag(c, i)) == 0) return false;
      return true;
    }));
  }
  uint64_t cursor = 0;
  Records out;
  const bool ok = read_all(bus, &cursor, kTotal, out, 10000);  // woken via the shared futex
  for (auto& child : children) LONGS_EQUAL(0, child->reap(5000));
  CHECK(ok && out.size() == kTotal && in_order(out, 1));
  CHECK(each_writer_in_order(out, kChildren, kPerChild));
}

namespace {

// Forks a child that runs `hold` (which takes the writer lock and keeps it),
// waits until it has, then SIGKILLs it. False if any step failed.
template <class Hold>
bool kill_child_holding_lock(Hold hold) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  Child child([&] {
    hold();
    const char byte = 1;
    if (::write(fds[1], &byte, 1) == 1) ::pause();  // until SIGKILL
    return false;
  });
  pollfd pfd{fds[0], POLLIN, 0};
  char byte = 0;
  const bool held = ::poll(&pfd, 1, 5000) == 1 && ::read(fds[0], &byte, 1) == 1;
  child.kill_now();
  const bool killed = child.reap(5000) == -1;  // -1: died by the signal
  ::close(fds[0]);
  ::close(fds[1]);
  return held && killed;
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
  Records out;
  CHECK_FALSE(bus.read(&cursor, out, 100).overrun);
  CHECK(out.size() == 12 && in_order(out, 1) && patterned(out, 20));
}

TEST(ShmBus, WriterKilledMidPublishLeavesNoHalfRecordAndNoGap) {
  Mapping m(4096);
  ShmBus& bus = *m.bus;
  for (uint64_t s = 1; s <= 60; ++s) bus.publish(pattern(s, 100));  // wrapped
  uint64_t cursor = 0;
  Records out;
  bus.read(&cursor, out, 1000);
  UNSIGNED_LONGLONGS_EQUAL(60, cursor);
  // The dead writer had taken seq 61, evicted old records and written a
  // whole record, but never made it visible.
  CHECK(kill_child_holding_lock(
      [&bus] { bus.abandon_publish_for_test(std::string(bus.max_payload(), 'X')); }));
  out.clear();
  CHECK(!bus.read(&cursor, out, 10).overrun && out.empty());
  UNSIGNED_LONGLONGS_EQUAL(60, bus.last_seq());

  UNSIGNED_LONGLONGS_EQUAL(61, bus.publish(pattern(61, 100)));
  CHECK(!bus.read(&cursor, out, 10).overrun && out.size() == 1);
  CHECK(out[0].seq == 61 && out[0].payload == pattern(61, 100));

  // A new reader sees a consistent log: the repaired oldest record first.
  std::unique_ptr<ShmBus> fresh = m.view();
  uint64_t c2 = 0;
  out.clear();
  const BusReadResult r = fresh->read(&c2, out, 1000);
  CHECK(r.overrun && r.lost_to + 1 == bus.first_seq());
  CHECK(in_order(out, bus.first_seq()) && c2 == 61 && patterned(out, 100));
}

// A bus in a file (WSBridgeBusFile): reopened as it was after a clean close,
// new after anything else; one server per file.
namespace {

struct BusDir {
  BusDir() {
    char tmpl[] = "/tmp/wsb-busfile-XXXXXX";
    CHECK(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    path = dir + "/bus";
  }
  ~BusDir() {
    unlink(path.c_str());
    rmdir(dir.c_str());
  }
  std::string dir, path;
};

struct FileBus {
  FileBus(const std::string& path, size_t ring) {
    bus = ShmBus::open_file(path, ring, &fd, &reopened, &why_new, &error);
  }
  // As the parent does at a stop.
  void close_cleanly() {
    void* base = bus->base();
    size_t size = bus->mapping_size();
    bus.reset();
    ShmBus::close_file(base, size, fd);
  }
  // As a killed parent leaves it: unmapped and unlocked, not marked.
  void drop() {
    void* base = bus->base();
    size_t size = bus->mapping_size();
    bus.reset();
    ShmBus::destroy(base, size);
    close(fd);
  }
  std::unique_ptr<ShmBus> bus;
  int fd = -1;
  bool reopened = false;
  std::string why_new, error;
};

}  // namespace

TEST_GROUP(ShmBusFile) {};

TEST(ShmBusFile, AClosedCleanlyBusIsReopenedWithItsIdSeqsAndRecords) {
  BusDir d;
  std::string id;
  uint64_t first = 0;
  {
    FileBus f(d.path, 4096);
    CHECK_TEXT(f.bus != nullptr, f.error.c_str());
    CHECK(!f.reopened);
    STRCMP_EQUAL("a new file", f.why_new.c_str());
    for (uint64_t s = 1; s <= 60; ++s) UNSIGNED_LONGLONGS_EQUAL(s, f.bus->publish(pattern(s, 100)));  // wrapped
    id = f.bus->id();
    first = f.bus->first_seq();
    CHECK(first > 1);
    f.close_cleanly();
  }
  FileBus g(d.path, 4096);
  CHECK_TEXT(g.bus != nullptr, g.error.c_str());
  CHECK(g.reopened);
  STRCMP_EQUAL(id.c_str(), g.bus->id().c_str());
  UNSIGNED_LONGLONGS_EQUAL(60, g.bus->last_seq());
  UNSIGNED_LONGLONGS_EQUAL(first, g.bus->first_seq());
  uint64_t cursor = first - 1;
  Records out;
  CHECK_FALSE(g.bus->read(&cursor, out, 1000).overrun);
  CHECK(out.size() == 60 - first + 1 && in_order(out, first) && patterned(out, 100));
  UNSIGNED_LONGLONGS_EQUAL(61, g.bus->publish(pattern(61, 100)));  // the writers' lock works
  g.close_cleanly();
}

TEST(ShmBusFile, ABusNotClosedCleanlyIsNotTrusted) {
  BusDir d;
  std::string id;
  {
    FileBus f(d.path, 4096);
    CHECK_TEXT(f.bus != nullptr, f.error.c_str());
    for (uint64_t s = 1; s <= 5; ++s) f.bus->publish(pattern(s, 20));
    id = f.bus->id();
    f.drop();
  }
  FileBus g(d.path, 4096);
  CHECK_TEXT(g.bus != nullptr, g.error.c_str());
  CHECK(!g.reopened);
  STRCMP_CONTAINS("not closed cleanly", g.why_new.c_str());
  CHECK(id != g.bus->id());
  UNSIGNED_LONGLONGS_EQUAL(0, g.bus->last_seq());
  UNSIGNED_LONGLONGS_EQUAL(1, g.bus->publish(pattern(1, 20)));
  g.close_cleanly();
}

TEST(ShmBusFile, AnotherSizeOrForeignBytesStartANewBus) {
  BusDir d;
  {
    FileBus f(d.path, 4096);
    CHECK_TEXT(f.bus != nullptr, f.error.c_str());
    f.bus->publish(pattern(1, 20));
    f.close_cleanly();
  }
  {
    FileBus g(d.path, 8192);
    CHECK_TEXT(g.bus != nullptr, g.error.c_str());
    CHECK(!g.reopened);
    STRCMP_CONTAINS("another WSBridgeBusSize", g.why_new.c_str());
    UNSIGNED_LONGLONGS_EQUAL(0, g.bus->last_seq());
    size_t size = g.bus->mapping_size();
    g.close_cleanly();
    // Same length, but not a bus.
    FILE* junk = fopen(d.path.c_str(), "w");
    for (size_t i = 0; i < size; ++i) fputc('x', junk);
    fclose(junk);
  }
  FileBus h(d.path, 8192);
  CHECK_TEXT(h.bus != nullptr, h.error.c_str());
  CHECK(!h.reopened);
  STRCMP_CONTAINS("does not hold a bus of this layout", h.why_new.c_str());
  UNSIGNED_LONGLONGS_EQUAL(1, h.bus->publish(pattern(1, 20)));
  h.close_cleanly();
}

TEST(ShmBusFile, OneServerPerFile) {
  BusDir d;
  FileBus f(d.path, 4096);
  CHECK_TEXT(f.bus != nullptr, f.error.c_str());
  FileBus g(d.path, 4096);
  CHECK(g.bus == nullptr && g.fd == -1);
  STRCMP_CONTAINS(("bus file " + d.path + ": another server uses it").c_str(), g.error.c_str());
  f.close_cleanly();
  FileBus h(d.path, 4096);  // free again, and closed cleanly
  CHECK(h.bus != nullptr && h.reopened);
  h.close_cleanly();
  FileBus bad(d.dir + "/no/such/dir/bus", 4096);
  CHECK(bad.bus == nullptr);
  STRCMP_CONTAINS("cannot open it: No such file or directory", bad.error.c_str());
}

TEST(ShmBusFile, AWriterThatDiedHoldingTheLockDoesNotFollowTheBusIntoTheNextStart) {
  BusDir d;
  {
    FileBus f(d.path, 1 << 16);
    CHECK_TEXT(f.bus != nullptr, f.error.c_str());
    for (uint64_t s = 1; s <= 10; ++s) f.bus->publish(pattern(s, 20));
    ShmBus& bus = *f.bus;
    CHECK(kill_child_holding_lock([&bus] { bus.lock_for_test(); }));
    f.close_cleanly();
  }
  FileBus g(d.path, 1 << 16);
  CHECK_TEXT(g.bus != nullptr, g.error.c_str());
  CHECK(g.reopened);
  UNSIGNED_LONGLONGS_EQUAL(11, g.bus->publish(pattern(11, 20)));
  uint64_t cursor = 0;
  Records out;
  CHECK_FALSE(g.bus->read(&cursor, out, 100).overrun);
  CHECK(out.size() == 11 && in_order(out, 1) && patterned(out, 20));
  g.close_cleanly();
}
