// Session threads (ChatConnection: attach, publish, query, detach) racing
// the hub thread (ChatEngine::apply). Meant for -fsanitize=thread.
#include <rapidjson/document.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chat/chat_connection.h"
#include "chat/chat_engine.h"
#include "chat/chat_record.h"
#include "runtime/bus.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

// Payload of an unmasked server frame.
std::string payload_of(const FramePtr& f) {
  const size_t len7 = static_cast<uint8_t>((*f)[1]) & 0x7F;
  return f->substr(len7 == 126 ? 4 : len7 == 127 ? 10 : 2);
}

rapidjson::Document json_of(const FramePtr& f) {
  const std::string p = payload_of(f);
  rapidjson::Document d;
  d.Parse(p.data(), p.size());
  CHECK_FALSE(d.HasParseError());
  return d;
}

std::string field(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString()) return "<none>";
  return v[key].GetString();
}

class RecordingPeer : public Peer {
 public:
  bool deliver(const FramePtr& frame) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (refuse_) return false;
    frames_.push_back(frame);
    return true;
  }
  std::vector<FramePtr> frames() const {
    std::lock_guard<std::mutex> lock(mu_);
    return frames_;
  }
  std::vector<std::string> types() const {
    std::vector<std::string> t;
    for (const FramePtr& f : frames()) t.push_back(field(json_of(f), "type"));
    return t;
  }
  FramePtr last() const { return frames().back(); }
  rapidjson::Document last_json() const { return json_of(last()); }
  size_t count() const { return frames().size(); }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    frames_.clear();
  }
  void set_refuse(bool r) {
    std::lock_guard<std::mutex> lock(mu_);
    refuse_ = r;
  }

 private:
  mutable std::mutex mu_;
  std::vector<FramePtr> frames_;
  bool refuse_ = false;
};
using RecPeer = std::shared_ptr<RecordingPeer>;
RecPeer make_peer() { return std::make_shared<RecordingPeer>(); }

// A thread-safe in-memory bus: the test double of the shared-memory ring.
class MemoryBus : public Bus {
 public:
  uint64_t publish(std::string_view payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    records_.emplace_back(payload);
    cv_.notify_all();
    return records_.size();
  }
  BusReadResult read(uint64_t* cursor, std::vector<BusRecord>& out, size_t max) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t n = 0; *cursor < records_.size() && n < max; ++n, ++*cursor)
      out.push_back(BusRecord{*cursor + 1, records_[*cursor]});
    return {};
  }
  bool wait(uint64_t cursor, int timeout_ms) override {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return records_.size() > cursor || woken_; });
  }
  void wake() override {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
    cv_.notify_all();
  }
  uint64_t last_seq() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return records_.size();
  }
  uint64_t first_seq() const override { return last_seq() == 0 ? 0 : 1; }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> records_;
  bool woken_ = false;
};

std::vector<uint64_t> event_seqs(const RecPeer& p, const std::string& room) {
  std::vector<uint64_t> seqs;
  for (const FramePtr& f : p->frames()) {
    rapidjson::Document d = json_of(f);
    const std::string t = field(d, "type");
    if ((t == "message" || t == "system") && field(d, "room") == room)
      seqs.push_back(d["seq"].GetUint64());
  }
  return seqs;
}

}  // namespace

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
