// Shared helpers of the chat unit tests (test_chat_*.cpp): reading server
// frames, a Peer that records what it is sent, bus records to feed
// ChatEngine::apply(), and an in-memory Bus.
//
// Include this last: it includes <CppUTest/TestHarness.h> (its helpers use
// CHECK_*), and CppUTest redefines new, which breaks placement new in
// headers after it.
#pragma once
#include <rapidjson/document.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_engine.h"
#include "chat/chat_record.h"
#include "runtime/bus.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

namespace wsb_test {

// Payload of an unmasked server frame.
inline std::string payload_of(const wsb::FramePtr& f) {
  const size_t len7 = static_cast<uint8_t>((*f)[1]) & 0x7F;
  return f->substr(len7 == 126 ? 4 : len7 == 127 ? 10 : 2);
}

inline rapidjson::Document json_of(const wsb::FramePtr& f) {
  const std::string p = payload_of(f);
  rapidjson::Document d;
  d.Parse(p.data(), p.size());
  CHECK_FALSE(d.HasParseError());
  return d;
}

inline std::string field(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString()) return "<none>";
  return v[key].GetString();
}

// The "members" of a presence frame, in order.
inline std::vector<std::string> presence_members(const rapidjson::Document& d) {
  std::vector<std::string> names;
  for (const auto& m : d["members"].GetArray()) names.push_back(m.GetString());
  return names;
}

// A Peer that keeps every frame delivered to it (thread-safe), or refuses
// them after set_refuse(true).
class RecordingPeer : public wsb::Peer {
 public:
  bool deliver(const wsb::FramePtr& frame) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (refuse_) return false;
    frames_.push_back(frame);
    return true;
  }
  std::vector<wsb::FramePtr> frames() const {
    std::lock_guard<std::mutex> lock(mu_);
    return frames_;
  }
  std::vector<std::string> types() const {
    std::vector<std::string> t;
    for (const wsb::FramePtr& f : frames()) t.push_back(field(json_of(f), "type"));
    return t;
  }
  wsb::FramePtr last() const { return frames().back(); }
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
  std::vector<wsb::FramePtr> frames_;
  bool refuse_ = false;
};
using RecPeer = std::shared_ptr<RecordingPeer>;
inline RecPeer make_peer() { return std::make_shared<RecordingPeer>(); }

// A Peer that only counts what it is sent (frames and their wire bytes), for
// storms too big to keep: single-threaded tests only.
class CountingPeer : public wsb::Peer {
 public:
  bool deliver(const wsb::FramePtr& frame) override {
    ++frames;
    bytes += frame->size();
    return true;
  }
  size_t frames = 0;
  size_t bytes = 0;
};

// Bus records, as the hub would read them.

inline std::string join_rec(const std::string& room, const std::string& conn,
                            const std::string& name, long pid = 1, int64_t since = -1,
                            const std::string& user = "") {
  wsb::ChatRecord r;
  r.type = wsb::RecordType::Join;
  r.room = room;
  r.conn = conn;
  r.name = name;
  r.user = user.empty() ? name : user;
  r.pid = pid;
  r.ts = 1000;
  r.has_since = since >= 0;
  r.since = since >= 0 ? static_cast<uint64_t>(since) : 0;
  return wsb::encode_record(r);
}

inline std::string leave_rec(const std::string& room, const std::string& conn) {
  wsb::ChatRecord r;
  r.type = wsb::RecordType::Leave;
  r.room = room;
  r.conn = conn;
  r.ts = 2000;
  return wsb::encode_record(r);
}

inline std::string msg_rec(const std::string& room, const std::string& conn,
                           const std::string& text, long pid = 1,
                           const std::string& from_hint = "") {
  wsb::ChatRecord r;
  r.type = wsb::RecordType::Msg;
  r.room = room;
  r.conn = conn;
  r.user = "u";
  r.pid = pid;
  r.from = from_hint;
  r.text = text;
  r.ts = 3000;
  return wsb::encode_record(r);
}

// A message published through the HTTP API (no connection).
inline std::string api_rec(const std::string& room, const std::string& from,
                           const std::string& text) {
  wsb::ChatRecord r;
  r.type = wsb::RecordType::Msg;
  r.room = room;
  r.from = from;
  r.text = text;
  r.ts = 4000;
  return wsb::encode_record(r);
}

inline std::string direct_rec(const std::string& conn, const std::string& from,
                              const std::string& to) {
  wsb::ChatRecord r;
  r.type = wsb::RecordType::Direct;
  r.conn = conn;
  r.from = from;
  r.to = to;
  r.text = "psst";
  r.ts = 5000;
  return wsb::encode_record(r);
}

// A "pub" record (a GRIP publish, a Pusher event) as the hub would read it,
// for the caller to add the fields of its kind to and encode.
inline wsb::ChatRecord pub_record(const std::string& ns, const std::string& channel,
                                  wsb::PublishKind kind, const std::string& data) {
  wsb::ChatRecord r;
  r.type = wsb::RecordType::Publish;
  r.ns = ns;
  r.channel = channel;
  r.kind = kind;
  r.data = data;
  r.ts = 1;
  return r;
}

// A "present" answer (to a late engine's sync request) naming members.
inline std::string present_rec(uint64_t base, int64_t ts,
                               std::vector<wsb::PresentMember> members) {
  wsb::ChatRecord r;
  r.type = wsb::RecordType::Present;
  r.base = base;
  r.ts = ts;
  r.members = std::move(members);
  return wsb::encode_record(r);
}

inline std::string gone_rec(long pid) {
  wsb::ChatRecord r;
  r.type = wsb::RecordType::Gone;
  r.pid = pid;
  r.ts = 6000;
  return wsb::encode_record(r);
}

// Feeds records to one or more engines with consecutive seqs.
struct Feed {
  std::vector<wsb::ChatEngine*> engines;
  uint64_t seq = 0;
  uint64_t operator()(const std::string& record) {
    ++seq;
    for (wsb::ChatEngine* e : engines) e->apply(seq, record);
    return seq;
  }
};

// The default engine configuration but for the history size.
inline wsb::ChatConfig config_with_history(size_t n) {
  wsb::ChatConfig c;
  c.history_size = n;
  return c;
}

// Peers attached to engine, in order, as connections 1-1, 1-2, ... with
// these names.
template <size_t N>
std::array<RecPeer, N> attach_peers(wsb::ChatEngine& engine, const char* const (&names)[N]) {
  std::array<RecPeer, N> peers;
  for (size_t i = 0; i < N; ++i) {
    peers[i] = make_peer();
    engine.attach("1-" + std::to_string(i + 1), names[i], peers[i]);
  }
  return peers;
}

// The same, then each of them joined to room through feed, in order.
template <size_t N>
std::array<RecPeer, N> join_peers(wsb::ChatEngine& engine, Feed& feed, const std::string& room,
                                  const char* const (&names)[N]) {
  std::array<RecPeer, N> peers = attach_peers(engine, names);
  for (size_t i = 0; i < N; ++i) feed(join_rec(room, "1-" + std::to_string(i + 1), names[i]));
  return peers;
}

// The fixture of the engine tests, for TEST_GROUP_BASE(Group, EngineTest):
// one engine with the default configuration, records fed to it in order.
struct EngineTest : public Utest {
  wsb::ChatEngine engine{wsb::ChatConfig()};
  Feed feed{{&engine}};
};

// Seqs of the message and system events p received for room, in order.
inline std::vector<uint64_t> event_seqs(const RecPeer& p, const std::string& room) {
  std::vector<uint64_t> seqs;
  for (const wsb::FramePtr& f : p->frames()) {
    rapidjson::Document d = json_of(f);
    const std::string t = field(d, "type");
    if ((t == "message" || t == "system") && field(d, "room") == room)
      seqs.push_back(d["seq"].GetUint64());
  }
  return seqs;
}

// The test double of the shared-memory ring: records in a vector, seq =
// index + 1. Thread-safe through its Bus methods; `records` and `refuse` may
// be touched directly by single-threaded tests. With refuse set, publish
// fails (returns 0) like a full or unavailable bus.
class MemoryBus : public wsb::Bus {
 public:
  uint64_t publish(std::string_view payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (refuse) return 0;
    records.emplace_back(payload);
    cv_.notify_all();
    return records.size();
  }
  wsb::BusReadResult read(uint64_t* cursor, std::vector<wsb::BusRecord>& out,
                          size_t max) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t n = 0; *cursor < records.size() && n < max; ++n, ++*cursor)
      out.push_back(wsb::BusRecord{*cursor + 1, records[*cursor]});
    return {};
  }
  bool wait(uint64_t cursor, int timeout_ms) override {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return records.size() > cursor || woken_; });
  }
  void wake() override {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
    cv_.notify_all();
  }
  uint64_t last_seq() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return records.size();
  }
  uint64_t first_seq() const override { return last_seq() == 0 ? 0 : 1; }
  std::string id() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return bus_id;
  }
  void set_id(std::string id) {
    std::lock_guard<std::mutex> lock(mu_);
    bus_id = std::move(id);
  }

  // Record i (0-based), parsed.
  wsb::ChatRecord record(size_t i) const {
    wsb::ChatRecord r;
    CHECK_TRUE(wsb::parse_record(records.at(i), &r));
    return r;
  }
  wsb::ChatRecord last() const { return record(records.size() - 1); }

  std::vector<std::string> records;
  bool refuse = false;

 private:
  std::string bus_id = "00c0ffee00c0ffee";
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

}  // namespace wsb_test
