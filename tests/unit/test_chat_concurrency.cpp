// Session threads (ChatConnection: attach, publish, query, detach) racing
// the hub thread (ChatEngine::apply). Meant for -fsanitize=thread.
#include <rapidjson/document.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chat/chat_connection.h"
#include "chat/chat_engine.h"
#include "chat/chat_record.h"
#include "runtime/bus.h"

// Last: it includes <CppUTest/TestHarness.h>, and CppUTest redefines new,
// which breaks placement new in headers after it.
#include "chat_test_support.h"

using namespace wsb;
using namespace wsb_test;

TEST_GROUP(ChatConcurrency){};

// Session threads attach, publish, query and detach while the hub thread
// applies; run under -fsanitize=thread.
TEST(ChatConcurrency, ConcurrentSessionsAndHub) {
  ChatConfig cfg;
  cfg.rate_burst = 1000;
  ChatEngine e{cfg};
  MemoryBus bus;
  std::atomic<bool> stop{false};
  std::thread hub([&] {
    uint64_t cursor = 0;
    std::vector<BusRecord> batch;
    while (!stop.load() || cursor < bus.last_seq()) {
      bus.wait(cursor, 5);
      batch.clear();
      bus.read(&cursor, batch, 64);
      for (const BusRecord& r : batch) e.apply(r.seq, r.payload);
    }
  });
  constexpr int kSessions = 6, kMessages = 40;
  std::vector<RecPeer> peers;
  for (int i = 0; i < kSessions; ++i) peers.push_back(make_peer());
  std::vector<std::thread> sessions;
  for (int i = 0; i < kSessions; ++i) {
    sessions.emplace_back([&, i] {
      ChatConnection c(cfg, bus, e, "1-" + std::to_string(i), "", false, peers[i], 1);
      c.open(0);
      const std::string id = "1-" + std::to_string(i);
      c.on_text(R"({"type":"join","room":"r","name":"user)" + std::to_string(i) + "\"}", 0);
      // Wait for the hub to apply the join, so every message below reaches us.
      while (e.member_name(id, "r").empty()) std::this_thread::yield();
      for (int m = 0; m < kMessages; ++m) {
        c.on_text(R"({"type":"message","room":"r","text":"m"})", m);
        e.room_list();
        e.user_online("user0");
        e.member_name("1-" + std::to_string(i), "r");
        e.stats();
        if (m % 10 == 0)
          c.on_text(R"({"type":"direct","to":"user)" + std::to_string((i + 1) % kSessions) +
                        R"(","text":"d"})",
                    m);
      }
      const uint64_t published = bus.last_seq();
      while (e.stats().last_seq < published) std::this_thread::yield();
      c.close(kMessages);
    });
  }
  for (std::thread& t : sessions) t.join();
  stop.store(true);
  bus.wake();
  hub.join();
  CHECK_EQUAL(bus.last_seq(), e.stats().last_seq);
  CHECK_TRUE(e.room_list().empty());
  CHECK_EQUAL(0u, e.stats().local_connections);
  for (const RecPeer& p : peers) {
    // Other sessions' traffic before our join or after our close varies
    // from run to run; the order never does.
    std::vector<uint64_t> seqs = event_seqs(p, "r");
    CHECK_TRUE(seqs.size() >= kMessages + 1);  // at least its join and its messages
    for (size_t k = 1; k < seqs.size(); ++k) CHECK_TRUE(seqs[k - 1] < seqs[k]);
  }
}
