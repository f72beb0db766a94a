// WSBridgeMaxConnectionsPerIP's shared table: addresses, the limit across
// owners (children), giving back the places of dead children, a full table,
// and (PerIpTableConcurrency, also under TSan) many threads at once.
#include "runtime/per_ip_table.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

IpKey key(const char* s) {
  IpKey k;
  CHECK_TRUE_TEXT(ip_key_from_string(s, &k), s);
  return k;
}

// Owners that "die" when the test says so, as children of Apache would.
struct FakeLiveness {
  std::vector<int> dead;
  static bool check(const PerIpOwner& o, void* ctx) {
    for (int pid : static_cast<FakeLiveness*>(ctx)->dead)
      if (pid == o.pid) return false;
    return true;
  }
};

struct TableFixture {
  PerIpTable::Block* block = PerIpTable::create(0, 42);
  ~TableFixture() { PerIpTable::destroy(block); }
  PerIpTable child(int pid, FakeLiveness* live = nullptr) {
    PerIpTable t(block);
    t.set_owner({pid, pid % 7, 1});
    if (live) t.set_alive_check(FakeLiveness::check, live);
    return t;
  }
};

using R = PerIpTable::Result;

}  // namespace

TEST_GROUP(PerIpTable){};

TEST(PerIpTable, Ipv4AndMappedAreOneAddressIpv6CountsBySlash64) {
  CHECK_TRUE(key("192.0.2.7") == key("::ffff:192.0.2.7"));
  CHECK_TRUE(key("192.0.2.7") != key("192.0.2.8"));
  CHECK_TRUE(key("2001:db8:1:2::1") == key("2001:db8:1:2:abcd:ef01:2345:6789"));
  CHECK_TRUE(key("2001:db8:1:2::1") != key("2001:db8:1:3::1"));
  CHECK_TRUE(key("fe80::1%eth0") == key("fe80::2"));
  STRCMP_EQUAL("192.0.2.7", ip_key_to_string(key("::ffff:192.0.2.7")).c_str());
  STRCMP_EQUAL("2001:db8:1:2::/64", ip_key_to_string(key("2001:db8:1:2::99")).c_str());
  IpKey k;
  CHECK_FALSE(ip_key_from_string("", &k));
  CHECK_FALSE(ip_key_from_string(nullptr, &k));
  CHECK_FALSE(ip_key_from_string("example.com", &k));
  CHECK_FALSE(ip_key_from_string("192.0.2.256", &k));
  CHECK_FALSE(ip_key_from_string("%eth0", &k));
  CHECK_FALSE(ip_key_from_string(std::string(100, '1').c_str(), &k));
}

TEST(PerIpTable, TableSizeIsAPowerOfTwoWithinBounds) {
  TableFixture f;
  CHECK_EQUAL(PerIpTable::kMinEntries, PerIpTable::entries_of(f.block));
  PerIpTable::Block* big = PerIpTable::create(5000, 1);
  CHECK_EQUAL(8192u, PerIpTable::entries_of(big));
  PerIpTable::destroy(big);
  PerIpTable::Block* huge = PerIpTable::create(1u << 30, 1);
  CHECK_EQUAL(PerIpTable::kMaxEntries, PerIpTable::entries_of(huge));
  PerIpTable::destroy(huge);
  CHECK_TRUE(PerIpTable::attach(f.block) == f.block);
}

TEST(PerIpTable, RefusesOverTheLimitAndAdmitsAgainAfterARelease) {
  TableFixture f;
  PerIpTable t = f.child(getpid());
  std::vector<PerIpTable::Ticket> held(3);
  for (int i = 0; i < 3; ++i) {
    PerIpTable::Admission a = t.admit(key("198.51.100.1"), 3, &held[i]);
    CHECK(a.result == R::Admitted);
    CHECK_EQUAL(static_cast<uint32_t>(i + 1), a.open);
    CHECK_TRUE(held[i].held());
  }
  PerIpTable::Ticket extra;
  PerIpTable::Admission over = t.admit(key("198.51.100.1"), 3, &extra);
  CHECK(over.result == R::OverLimit);
  CHECK_EQUAL(3u, over.open);
  CHECK_FALSE(extra.held());
  // Another address is not affected.
  CHECK(t.admit(key("198.51.100.2"), 3, &extra).result == R::Admitted);
  extra.release();
  held[0].release();
  CHECK(t.admit(key("198.51.100.1"), 3, &extra).result == R::Admitted);
  PerIpTable::Stats s = t.stats();
  CHECK_EQUAL(3u, s.connections);
  CHECK_EQUAL(1u, s.addresses);
  CHECK_EQUAL(3u, s.busiest);
}

TEST(PerIpTable, LimitZeroIsOff) {
  TableFixture f;
  PerIpTable t = f.child(getpid());
  PerIpTable::Ticket ticket;
  CHECK(t.admit(key("198.51.100.1"), 0, &ticket).result == R::Untracked);
  CHECK_FALSE(ticket.held());
  PerIpTable none;  // no shared block: nothing counted, nobody refused
  CHECK(none.admit(key("198.51.100.1"), 1, &ticket).result == R::Untracked);
}

TEST(PerIpTable, ATicketGivesItsPlaceBackExactlyOnce) {
  TableFixture f;
  PerIpTable t = f.child(getpid());
  PerIpTable::Ticket a, b;
  CHECK(t.admit(key("203.0.113.9"), 2, &a).result == R::Admitted);
  CHECK(t.admit(key("203.0.113.9"), 2, &b).result == R::Admitted);
  PerIpTable::Ticket moved(std::move(a));
  CHECK_FALSE(a.held());
  a.release();  // nothing left to give back
  moved.release();
  moved.release();
  CHECK_EQUAL(1u, t.stats().connections);
  {
    PerIpTable::Ticket scoped;
    CHECK(t.admit(key("203.0.113.9"), 2, &scoped).result == R::Admitted);
    CHECK_EQUAL(2u, t.stats().connections);
  }
  CHECK_EQUAL(1u, t.stats().connections);  // the destructor released it
  PerIpTable::Ticket assigned;
  CHECK(t.admit(key("203.0.113.10"), 2, &assigned).result == R::Admitted);
  assigned = std::move(b);  // gives back 203.0.113.10's place, takes b's
  CHECK_EQUAL(1u, t.stats().connections);
  CHECK_EQUAL(0u, [&] { assigned.release(); return t.stats().connections; }());
}

TEST(PerIpTable, EveryChildCountsTowardsOneLimit) {
  TableFixture f;
  FakeLiveness live;
  PerIpTable c1 = f.child(101, &live), c2 = f.child(102, &live);
  PerIpTable::Ticket t1, t2, t3, t4;
  CHECK(c1.admit(key("192.0.2.1"), 3, &t1).result == R::Admitted);
  CHECK(c2.admit(key("192.0.2.1"), 3, &t2).result == R::Admitted);
  PerIpTable::Admission a = c2.admit(key("192.0.2.1"), 3, &t3);
  CHECK(a.result == R::Admitted);
  CHECK_EQUAL(3u, a.open);
  CHECK(c1.admit(key("192.0.2.1"), 3, &t4).result == R::OverLimit);
  // c2's release does not touch c1's count.
  t3.release();
  CHECK_EQUAL(2u, c1.stats().connections);
  CHECK(c1.admit(key("192.0.2.1"), 3, &t4).result == R::Admitted);
}

TEST(PerIpTable, ADeadChildsConnectionsAreGivenBackWhenTheyMatter) {
  TableFixture f;
  FakeLiveness live;
  PerIpTable killed = f.child(201, &live), other = f.child(202, &live);
  std::vector<PerIpTable::Ticket> held(4);
  for (auto& t : held) CHECK(killed.admit(key("192.0.2.50"), 4, &t).result == R::Admitted);
  PerIpTable::Ticket t;
  CHECK(other.admit(key("192.0.2.50"), 4, &t).result == R::OverLimit);
  live.dead.push_back(201);  // SIGKILL: its tickets are never released
  CHECK_EQUAL(0u, other.stats().connections);  // the status does not count the dead
  PerIpTable::Admission a = other.admit(key("192.0.2.50"), 4, &t);
  CHECK(a.result == R::Admitted);
  CHECK_EQUAL(1u, a.open);
  CHECK_EQUAL(4u, other.stats().reclaimed);
  // Its tickets' destructors would run only in the dead process; here they
  // find their entry owned by nobody alive and change nothing.
  for (auto& h : held) h.release();
  CHECK_EQUAL(1u, other.stats().connections);
}

TEST(PerIpTable, ANewChildInTheDeadOnesSlotDoesNotInheritItsCounts) {
  TableFixture f;
  PerIpTable old_gen(f.block), new_gen(f.block);
  old_gen.set_owner({301, 5, 1});
  new_gen.set_owner({301, 5, 2});  // the same pid again, the slot's next generation
  struct Slot { int pid = 301; uint32_t gen = 2; } slot;
  auto alive = [](const PerIpOwner& o, void* ctx) {
    auto* s = static_cast<Slot*>(ctx);
    return o.pid == s->pid && o.gen == s->gen;
  };
  new_gen.set_alive_check(alive, &slot);
  PerIpTable::Ticket a, b;
  CHECK(old_gen.admit(key("192.0.2.60"), 1, &a).result == R::Admitted);
  CHECK(new_gen.admit(key("192.0.2.60"), 1, &b).result == R::Admitted);
  CHECK_EQUAL(1u, new_gen.stats().reclaimed);
}

TEST(PerIpTable, AFullTableLetsConnectionsInUncountedAndSaysSo) {
  TableFixture f;
  PerIpTable t = f.child(getpid());
  const uint32_t n = PerIpTable::entries_of(f.block) * 2;
  std::vector<PerIpTable::Ticket> held(n);
  uint32_t admitted = 0, untracked = 0;
  for (uint32_t i = 0; i < n; ++i) {
    std::string addr = "10." + std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." +
                       std::to_string(i & 255);
    PerIpTable::Admission a = t.admit(key(addr.c_str()), 1, &held[i]);
    CHECK_FALSE(a.result == R::OverLimit);  // every address is new
    (a.result == R::Admitted ? admitted : untracked)++;
  }
  CHECK(admitted <= PerIpTable::entries_of(f.block));
  CHECK(untracked >= n - PerIpTable::entries_of(f.block));
  PerIpTable::Stats s = t.stats();
  CHECK_EQUAL(untracked, s.untracked);
  CHECK_EQUAL(admitted, s.connections);
  CHECK_EQUAL(admitted, s.used);
  for (auto& h : held) h.release();
  CHECK_EQUAL(0u, t.stats().connections);
  PerIpTable::Ticket again;
  CHECK(t.admit(key("10.0.0.1"), 1, &again).result == R::Admitted);
}

TEST(PerIpTable, AProcessKilledWhileHoldingPlacesGivesThemBack) {
  // A real child process, killed with SIGKILL like an Apache child.
  TableFixture f;
  int ready[2];
  CHECK_EQUAL(0, pipe(ready));
  pid_t pid = fork();
  if (pid == 0) {
    PerIpTable t(f.block);
    t.set_owner({getpid(), -1, 0});
    static PerIpTable::Ticket held[3];
    for (auto& h : held) t.admit(key("192.0.2.99"), 3, &h);
    char c = 'x';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  char c = 0;
  CHECK_EQUAL(1, read(ready[0], &c, 1));
  PerIpTable parent(f.block);
  parent.set_owner({getpid(), -1, 0});
  PerIpTable::Ticket t;
  CHECK(parent.admit(key("192.0.2.99"), 3, &t).result == R::OverLimit);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  CHECK(parent.admit(key("192.0.2.99"), 3, &t).result == R::Admitted);
  CHECK_EQUAL(3u, parent.stats().reclaimed);
  close(ready[0]);
  close(ready[1]);
}

TEST(PerIpTable, LogLinesAreRateLimitedAcrossProcesses) {
  TableFixture f;
  PerIpTable a(f.block), b(f.block);
  uint64_t suppressed = 99;
  CHECK_TRUE(a.log_due(1000, 10, &suppressed));
  CHECK_EQUAL(0u, suppressed);
  CHECK_FALSE(b.log_due(1001, 10, &suppressed));
  CHECK_FALSE(a.log_due(1009, 10, &suppressed));
  CHECK_TRUE(b.log_due(1010, 10, &suppressed));
  CHECK_EQUAL(2u, suppressed);
}

TEST_GROUP(PerIpTableConcurrency){};

TEST(PerIpTableConcurrency, ThreadsNeverHoldMoreThanTheLimit) {
  TableFixture f;
  PerIpTable t = f.child(getpid());
  constexpr int kThreads = 8, kRounds = 2000;
  constexpr uint32_t kLimit = 5;
  std::atomic<int> holding{0}, worst{0};
  std::atomic<uint64_t> admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      IpKey k = key(i % 2 ? "192.0.2.1" : "::ffff:192.0.2.1");  // one address
      for (int r = 0; r < kRounds; ++r) {
        PerIpTable::Ticket ticket;
        PerIpTable::Admission a = t.admit(k, kLimit, &ticket);
        if (a.result != R::Admitted) {
          refused.fetch_add(1);
          continue;
        }
        admitted.fetch_add(1);
        int now = holding.fetch_add(1) + 1;
        int w = worst.load();
        while (now > w && !worst.compare_exchange_weak(w, now)) {
        }
        holding.fetch_sub(1);  // before the ticket gives the place back
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(worst.load() <= static_cast<int>(kLimit));
  CHECK_EQUAL(static_cast<uint64_t>(kThreads * kRounds), admitted.load() + refused.load());
  CHECK(admitted.load() > 0);
  PerIpTable::Stats s = t.stats();
  CHECK_EQUAL(0u, s.connections);
  CHECK_EQUAL(0u, s.untracked);
}
