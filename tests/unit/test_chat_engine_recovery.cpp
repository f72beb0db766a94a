// ChatEngine when things go wrong: dead processes ("gone"), bus overruns and
// late starts, refusing peers, malformed records, the room limit.
#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <vector>

#include "chat/chat_engine.h"
#include "chat/chat_record.h"

// Last: it includes <CppUTest/TestHarness.h>, and CppUTest redefines new,
// which breaks placement new in headers after it.
#include "chat_test_support.h"

using namespace wsb;
using namespace wsb_test;

TEST_GROUP_BASE(ChatEngineRecovery, EngineTest) {};

TEST(ChatEngineRecovery, RefusingPeerDoesNotDisturbOthers) {
  auto [a, b, c] = join_peers(engine, feed, "r", {"a", "b", "c"});
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
  auto [a, b, idle] = attach_peers(engine, {"a", "b", "idle"});
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
  auto [a, b] = attach_peers(engine, {"a", "b"});
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
  auto [a, b] = join_peers(engine, feed, "r", {"a", "b"});
  engine.detach("1-2");
  const size_t n = b->count();
  feed(msg_rec("r", "1-1", "x"));
  CHECK_EQUAL(n, b->count());
  CHECK_EQUAL(2u, engine.room_list()[0].members);  // until the leave record
  feed(leave_rec("r", "1-2"));
  CHECK_EQUAL(1u, engine.room_list()[0].members);
  CHECK_EQUAL(std::string(), engine.member_name("1-2", "r"));
}
