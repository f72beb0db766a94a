// The worker reserve: capacity from the MPM's figures, and the gate that
// counts WebSockets per child and per server.
#include "runtime/worker_reserve.h"

#include <atomic>
#include <thread>
#include <vector>

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

TEST_GROUP(WorkerReserve){};

TEST(WorkerReserve, DefaultIsAnEighthOfAChildAtLeastFourAtMostHalf) {
  CHECK_EQUAL(4, default_reserve({true, 25, 4}));     // make run: 25 threads
  CHECK_EQUAL(32, default_reserve({true, 256, 10}));
  CHECK_EQUAL(2, default_reserve({true, 4, 4}));      // half of a tiny child
  CHECK_EQUAL(1, default_reserve({true, 1, 8}));      // a thread is always kept
  CHECK_EQUAL(18, default_reserve({false, 1, 150}));  // prefork: of the server
}

TEST(WorkerReserve, ThreadedCapacityIsPerChildTimesChildren) {
  // make run: MaxRequestWorkers 100 = 4 children x 25 threads.
  Capacity c = compute_capacity({true, 25, 4}, -1, -1);
  CHECK_EQUAL(4, c.reserve);
  CHECK_TRUE(c.per_child);
  CHECK_EQUAL(21, c.child_limit);
  CHECK_EQUAL(84, c.mpm_limit);
  CHECK_EQUAL(84, c.server_limit);
  CHECK_FALSE(c.configured_above_mpm);
}

TEST(WorkerReserve, PreforkKeepsTheReserveOfTheServer) {
  Capacity c = compute_capacity({false, 1, 150}, 10, -1);
  CHECK_FALSE(c.per_child);
  CHECK_EQUAL(140, c.mpm_limit);
  CHECK_EQUAL(140, c.server_limit);
}

TEST(WorkerReserve, ConfiguredMaximumIsCappedByTheMpmAndFlagged) {
  Capacity above = compute_capacity({true, 25, 4}, -1, 10000);
  CHECK_EQUAL(84, above.server_limit);
  CHECK_TRUE(above.configured_above_mpm);
  Capacity below = compute_capacity({true, 25, 4}, -1, 10);
  CHECK_EQUAL(10, below.server_limit);
  CHECK_FALSE(below.configured_above_mpm);
}

TEST(WorkerReserve, ReserveZeroLetsWebSocketsTakeEveryThread) {
  Capacity c = compute_capacity({true, 8, 2}, 0, -1);
  CHECK_EQUAL(8, c.child_limit);
  CHECK_EQUAL(16, c.server_limit);
}

TEST(WorkerReserve, ReserveAboveTheChildLeavesNoRoom) {
  Capacity c = compute_capacity({true, 8, 2}, 50, -1);
  CHECK_EQUAL(8, c.reserve);
  CHECK_EQUAL(0, c.child_limit);
  ConnectionGate gate;
  gate.set_capacity(c);
  ConnectionGate::Ticket t;
  CHECK(gate.admit(&t) == Admission::ChildFull);
  CHECK_EQUAL(0, gate.child_open());
}

TEST(WorkerReserve, GateRefusesPastTheChildLimitAndGivesPlacesBack) {
  std::atomic<int64_t> server{0};
  ConnectionGate gate(&server);
  gate.set_capacity(compute_capacity({true, 6, 4}, 2, -1));  // 4 per child
  std::vector<ConnectionGate::Ticket> held(4);
  for (auto& t : held) CHECK(gate.admit(&t) == Admission::Ok);
  ConnectionGate::Ticket extra;
  CHECK(gate.admit(&extra) == Admission::ChildFull);
  CHECK_EQUAL(4, gate.child_open());
  CHECK_EQUAL(4, server.load());
  held[0].release();
  CHECK(gate.admit(&extra) == Admission::Ok);
  CHECK_EQUAL(4, server.load());
}

TEST(WorkerReserve, GateRefusesPastTheServerLimitCountedByOtherChildren) {
  std::atomic<int64_t> server{0};
  ConnectionGate gate(&server);
  gate.set_capacity(compute_capacity({true, 25, 4}, -1, 5));
  server.store(4);  // four held by other children
  ConnectionGate::Ticket a, b;
  CHECK(gate.admit(&a) == Admission::Ok);
  CHECK(gate.admit(&b) == Admission::ServerFull);
  CHECK_EQUAL(5, server.load());
  CHECK_EQUAL(1, gate.child_open());
}

TEST(WorkerReserve, TicketMovesAndReleasesOnce) {
  std::atomic<int64_t> server{0};
  ConnectionGate gate(&server);
  gate.set_capacity(compute_capacity({true, 25, 4}, -1, -1));
  {
    ConnectionGate::Ticket t;
    CHECK(gate.admit(&t) == Admission::Ok);
    ConnectionGate::Ticket moved(std::move(t));
    CHECK_EQUAL(1, server.load());
  }
  CHECK_EQUAL(0, server.load());
  CHECK_EQUAL(0, gate.child_open());
}

TEST(WorkerReserve, ConcurrentAdmissionsFillExactlyTheChildLimit) {
  std::atomic<int64_t> server{0};
  ConnectionGate gate(&server);
  gate.set_capacity(compute_capacity({true, 40, 4}, 10, -1));  // 30 per child
  std::atomic<int> admitted{0}, done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      std::vector<ConnectionGate::Ticket> mine(20);  // 80 tries for 30 places, all held
      for (auto& t : mine)
        if (gate.admit(&t) == Admission::Ok) admitted.fetch_add(1);
      done.fetch_add(1);
      while (done.load() < 4) std::this_thread::yield();
    });
  }
  for (auto& t : threads) t.join();
  CHECK_EQUAL(30, admitted.load());
  CHECK_EQUAL(0, server.load());
  CHECK_EQUAL(0, gate.child_open());
}
