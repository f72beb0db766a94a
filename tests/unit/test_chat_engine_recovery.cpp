// ChatEngine when things go wrong: dead processes ("gone"), bus overruns and
// late starts, refusing peers, malformed records, the room limit.
#include <rapidjson/document.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chat/chat_engine.h"
#include "chat/chat_record.h"

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

std::string join_rec(const std::string& room, const std::string& conn, const std::string& name,
                     long pid = 1, int64_t since = -1, const std::string& user = "") {
  ChatRecord r;
  r.type = RecordType::Join;
  r.room = room;
  r.conn = conn;
  r.name = name;
  r.user = user.empty() ? name : user;
  r.pid = pid;
  r.ts = 1000;
  r.has_since = since >= 0;
  r.since = since >= 0 ? static_cast<uint64_t>(since) : 0;
  return encode_record(r);
}

std::string leave_rec(const std::string& room, const std::string& conn) {
  ChatRecord r;
  r.type = RecordType::Leave;
  r.room = room;
  r.conn = conn;
  r.ts = 2000;
  return encode_record(r);
}

std::string msg_rec(const std::string& room, const std::string& conn, const std::string& text,
                    long pid = 1, const std::string& from_hint = "") {
  ChatRecord r;
  r.type = RecordType::Msg;
  r.room = room;
  r.conn = conn;
  r.user = "u";
  r.pid = pid;
  r.from = from_hint;
  r.text = text;
  r.ts = 3000;
  return encode_record(r);
}

std::string api_rec(const std::string& room, const std::string& from, const std::string& text) {
  ChatRecord r;
  r.type = RecordType::Msg;
  r.room = room;
  r.from = from;
  r.text = text;
  r.ts = 4000;
  return encode_record(r);
}

std::string gone_rec(long pid) {
  ChatRecord r;
  r.type = RecordType::Gone;
  r.pid = pid;
  r.ts = 6000;
  return encode_record(r);
}

// Feeds records to one or more engines with consecutive seqs.
struct Feed {
  std::vector<ChatEngine*> engines;
  uint64_t seq = 0;
  uint64_t operator()(const std::string& record) {
    ++seq;
    for (ChatEngine* e : engines) e->apply(seq, record);
    return seq;
  }
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

TEST_GROUP(ChatEngineRecovery) {
  ChatEngine engine{ChatConfig()};
  Feed feed{{&engine}};
};

TEST(ChatEngineRecovery, RefusingPeerDoesNotDisturbOthers) {
  RecPeer a = make_peer(), b = make_peer(), c = make_peer();
  engine.attach("1-1", "a", a);
  engine.attach("1-2", "b", b);
  engine.attach("1-3", "c", c);
  feed(join_rec("r", "1-1", "a"));
  feed(join_rec("r", "1-2", "b"));
  feed(join_rec("r", "1-3", "c"));
  b->set_refuse(true);
  const size_t b_before = b->count();
  const uint64_t refused_before = engine.stats().deliveries_refused;
  const uint64_t m1 = feed(msg_rec("r", "1-1", "x"));
  const uint64_t m2 = feed(msg_rec("r", "1-3", "y"));
  CHECK_EQUAL(b_before, b->count());
  CHECK_EQUAL(refused_before + 2, engine.stats().deliveries_refused);
  CHECK_EQUAL(m1, event_seqs(a, "r")[3]);
  CHECK_EQUAL(m2, event_seqs(c, "r").back());
  CHECK_EQUAL(m2, event_seqs(a, "r").back());
}

TEST(ChatEngineRecovery, GoneRemovesTheDeadProcessMembers) {
  RecPeer a = make_peer();
  engine.attach("1-1", "a", a);
  feed(join_rec("r", "1-1", "a", 1));
  feed(join_rec("r", "2-1", "x", 2));
  feed(join_rec("r", "2-2", "y", 2));
  feed(join_rec("s", "2-1", "x", 2));
  feed(join_rec("s", "1-1", "a", 1));
  feed(join_rec("r", "3-1", "z", 3));
  a->clear();
  const uint64_t gone = feed(gone_rec(2));
  // One leave per dead member and room, all with the gone record's seq.
  std::vector<std::string> left;
  for (const FramePtr& f : a->frames()) {
    rapidjson::Document d = json_of(f);
    STRCMP_EQUAL("leave", field(d, "event").c_str());
    CHECK_EQUAL(gone, d["seq"].GetUint64());
    left.push_back(field(d, "room") + ":" + field(d, "name"));
  }
  CHECK(left == (std::vector<std::string>{"r:x", "r:y", "s:x"}));
  CHECK_FALSE(engine.user_online("x"));
  CHECK_TRUE(engine.user_online("z"));
  const std::vector<RoomCount> rooms = engine.room_list();
  CHECK_EQUAL(2u, rooms[0].members);  // r: a, z
  CHECK_EQUAL(1u, rooms[1].members);  // s: a
  // A gone naming a pid whose connections are attached here removes nothing
  // of them (the pid was reused by a live process).
  feed(gone_rec(1));
  CHECK_EQUAL(2u, engine.room_list()[0].members);
}

TEST(ChatEngineRecovery, OverrunSendsHistoryLostAndResumeIsIncomplete) {
  RecPeer a = make_peer(), b = make_peer(), idle = make_peer();
  engine.attach("1-1", "a", a);
  engine.attach("1-2", "b", b);
  engine.attach("1-3", "idle", idle);
  feed(join_rec("r", "1-1", "a"));
  feed(join_rec("s", "1-1", "a"));
  feed(join_rec("r", "1-2", "b"));
  a->clear();
  b->clear();
  engine.on_overrun(4, 9);
  feed.seq = 9;
  CHECK_EQUAL(1u, a->count());  // once per connection, not per room
  STRCMP_EQUAL("history-lost", field(a->last_json(), "code").c_str());
  CHECK(a->last().get() == b->last().get());
  CHECK_EQUAL(1u, idle->count());
  CHECK_EQUAL(1u, engine.stats().overruns);

  RecPeer c = make_peer(), d = make_peer(), e = make_peer();
  engine.attach("1-4", "c", c);
  engine.attach("1-5", "d", d);
  engine.attach("1-6", "e", e);
  feed(join_rec("r", "1-4", "c", 1, 3));  // saw up to 3: 4..9 are gone
  CHECK_FALSE(json_of(c->frames()[0])["complete"].GetBool());
  feed(join_rec("r", "1-5", "d", 1, 9));
  CHECK_TRUE(json_of(d->frames()[0])["complete"].GetBool());
  feed(join_rec("new", "1-6", "e", 1, 2));  // a room created after the gap
  CHECK_FALSE(json_of(e->frames()[0])["complete"].GetBool());
}

TEST(ChatEngineRecovery, SeqJumpIsAnOverrunAndOldSeqsAreSkipped) {
  RecPeer a = make_peer();
  engine.attach("1-1", "a", a);
  feed(join_rec("r", "1-1", "a"));
  a->clear();
  engine.apply(5, msg_rec("r", "1-1", "late"));
  CHECK(a->types() == (std::vector<std::string>{"error", "message"}));
  STRCMP_EQUAL("history-lost", field(json_of(a->frames()[0]), "code").c_str());
  engine.apply(5, msg_rec("r", "1-1", "dup"));
  engine.apply(3, msg_rec("r", "1-1", "old"));
  CHECK_EQUAL(2u, a->count());
  CHECK_EQUAL(2u, engine.stats().records_skipped);
  CHECK_EQUAL(5u, engine.stats().last_seq);
}

TEST(ChatEngineRecovery, LateStartIsSilentButResumesAreIncomplete) {
  // HubThread starts at cursor 0; the ring already dropped 1..99.
  RecPeer a = make_peer(), b = make_peer();
  engine.attach("1-1", "a", a);
  engine.attach("1-2", "b", b);
  engine.on_overrun(1, 99);
  CHECK_EQUAL(0u, a->count());
  CHECK_EQUAL(0u, engine.stats().overruns);
  engine.apply(100, join_rec("r", "1-1", "a", 1, 50));
  CHECK_FALSE(json_of(a->frames()[0])["complete"].GetBool());
  // Same without the explicit report: the first seq alone shows the gap.
  ChatEngine late{ChatConfig()};
  late.attach("1-2", "b", b);
  late.apply(100, join_rec("r", "1-2", "b", 1, 50));
  CHECK(b->types() == (std::vector<std::string>{"history", "system", "presence"}));
  CHECK_FALSE(json_of(b->frames()[0])["complete"].GetBool());
}

TEST(ChatEngineRecovery, MessageFromNonMemberIsIgnoredUntilAGap) {
  RecPeer a = make_peer();
  engine.attach("1-1", "a", a);
  feed(join_rec("r", "1-1", "a"));
  const size_t n = a->count();
  feed(msg_rec("r", "2-1", "intruder", 2, "ghost"));
  CHECK_EQUAL(n, a->count());
  // After a gap the sender's join may be among the lost records: the
  // publisher's name for it is trusted so the conversation goes on.
  engine.on_overrun(feed.seq + 1, feed.seq + 1);
  ++feed.seq;
  feed(msg_rec("r", "2-1", "still here", 2, "veteran"));
  STRCMP_EQUAL("veteran", field(a->last_json(), "from").c_str());
  CHECK_EQUAL(2u, engine.room_list()[0].members);
  feed(msg_rec("r", "2-2", "no hint", 2));
  STRCMP_EQUAL("still here", field(a->last_json(), "text").c_str());
  feed(gone_rec(2));
  CHECK_EQUAL(1u, engine.room_list()[0].members);
}

TEST(ChatEngineRecovery, MalformedRecordsAreSkipped) {
  RecPeer a = make_peer();
  engine.attach("1-1", "a", a);
  feed(join_rec("r", "1-1", "a"));
  const size_t n = a->count();
  for (const char* bad : {"", "{", "[1]", R"({"t":"msg"})", R"({"t":"join","room":"r"})",
                          R"({"t":"msg","room":"../x","from":"s","text":"x","ts":1})"})
    feed(bad);
  feed(leave_rec("nowhere", "1-1"));
  feed(leave_rec("r", "7-7"));
  CHECK_EQUAL(n, a->count());
  CHECK_EQUAL(6u, engine.stats().records_skipped);
}

TEST(ChatEngineRecovery, MaxRoomsForgetsTheLongestIdleEmptyRoom) {
  ChatConfig cfg;
  cfg.max_rooms = 2;
  ChatEngine e{cfg};
  Feed f{{&e}};
  RecPeer a = make_peer();
  e.attach("1-1", "a", a);
  f(api_rec("old", "server", "x"));          // 1, empty room
  f(join_rec("busy", "1-1", "a"));           // 2
  f(api_rec("third", "server", "y"));        // 3: forgets "old"
  CHECK_EQUAL(2u, e.stats().rooms);
  RecPeer b = make_peer();
  e.attach("1-2", "b", b);
  f(join_rec("old", "1-2", "b", 1, 0));      // 4: forgets "third"; resume from 0 is incomplete
  rapidjson::Document h = json_of(b->frames()[0]);
  CHECK_EQUAL(0u, h["messages"].Size());
  CHECK_FALSE(h["complete"].GetBool());
  // Every room has members now: a new room is refused, to the joiner only.
  a->clear();
  f(join_rec("fourth", "1-1", "a"));
  STRCMP_EQUAL("too-many-rooms", field(a->last_json(), "code").c_str());
  STRCMP_EQUAL("fourth", field(a->last_json(), "room").c_str());
  CHECK_EQUAL(2u, e.stats().rooms);
}

TEST(ChatEngineRecovery, DetachStopsDeliveryBeforeTheLeaveArrives) {
  RecPeer a = make_peer(), b = make_peer();
  engine.attach("1-1", "a", a);
  engine.attach("1-2", "b", b);
  feed(join_rec("r", "1-1", "a"));
  feed(join_rec("r", "1-2", "b"));
  engine.detach("1-2");
  const size_t n = b->count();
  feed(msg_rec("r", "1-1", "x"));
  CHECK_EQUAL(n, b->count());
  CHECK_EQUAL(2u, engine.room_list()[0].members);  // until the leave record
  feed(leave_rec("r", "1-2"));
  CHECK_EQUAL(1u, engine.room_list()[0].members);
  CHECK_EQUAL(std::string(), engine.member_name("1-2", "r"));
}
