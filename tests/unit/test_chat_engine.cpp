// ChatEngine: fan-out, order, history/resume, presence, names, directs.
// Records are fed straight to apply(); Peers record what they receive.
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

TEST_GROUP_BASE(ChatEngine, EngineTest) {};

TEST(ChatEngine, JoinSendsHistoryThenOwnJoinThenPresence) {
  RecPeer a = make_peer();
  engine.attach("1-1", "alice", a);
  feed(join_rec("lobby", "1-1", "alice"));
  const std::vector<std::string> expected = {"history", "system", "presence"};
  CHECK(a->types() == expected);
  rapidjson::Document h = json_of(a->frames()[0]);
  CHECK_EQUAL(0u, h["messages"].Size());
  CHECK_TRUE(h["complete"].GetBool());
  rapidjson::Document s = json_of(a->frames()[1]);
  STRCMP_EQUAL("join", field(s, "event").c_str());
  STRCMP_EQUAL("alice", field(s, "name").c_str());
  CHECK_EQUAL(1u, s["seq"].GetUint64());
  CHECK_EQUAL(1000, s["ts"].GetInt64());
  rapidjson::Document p = json_of(a->frames()[2]);
  STRCMP_EQUAL("alice", field(p, "you").c_str());
  CHECK(presence_members(p) == std::vector<std::string>{"alice"});
}

TEST(ChatEngine, EveryMemberGetsEveryEventOnceInSeqOrder) {
  auto [a, b, c] = attach_peers(engine, {"a", "b", "c"});
  std::vector<uint64_t> all;
  all.push_back(feed(join_rec("r", "1-1", "a")));
  all.push_back(feed(msg_rec("r", "1-1", "one")));
  const uint64_t b_join = feed(join_rec("r", "1-2", "b"));
  all.push_back(b_join);
  feed(join_rec("other", "1-3", "c"));  // another room: not seen by a/b
  for (int i = 0; i < 5; ++i) all.push_back(feed(msg_rec("r", i % 2 ? "1-1" : "1-2", "m")));
  all.push_back(feed(api_rec("r", "server", "notice")));
  all.push_back(feed(leave_rec("r", "1-2")));
  all.push_back(feed(msg_rec("r", "1-1", "after")));
  CHECK(event_seqs(a, "r") == all);
  // b: from its own join to its own leave, each once.
  const std::vector<uint64_t> b_expected(all.begin() + 2, all.end() - 1);
  CHECK(event_seqs(b, "r") == b_expected);
  CHECK_TRUE(event_seqs(c, "r").empty());
}

TEST(ChatEngine, BroadcastEncodesOnceAndSharesTheFrame) {
  auto [a, b, c] = join_peers(engine, feed, "r", {"a", "b", "c"});
  feed(msg_rec("r", "1-2", "hello"));
  CHECK(a->last().get() == b->last().get());
  CHECK(b->last().get() == c->last().get());
  STRCMP_EQUAL("hello", field(a->last_json(), "text").c_str());
  STRCMP_EQUAL("b", field(a->last_json(), "from").c_str());
}

TEST(ChatEngine, TwoEnginesSameRecordsSameFrames) {
  // Two processes: engine x holds connections 1-1 and 1-2, engine y holds
  // 2-1; a replica z holds the same connections as x.
  ChatEngine x{ChatConfig()}, y{ChatConfig()}, z{ChatConfig()};
  RecPeer x1 = make_peer(), x2 = make_peer(), y1 = make_peer(), z1 = make_peer(),
          z2 = make_peer();
  x.attach("1-1", "ann", x1);
  x.attach("1-2", "ann", x2);
  z.attach("1-1", "ann", z1);
  z.attach("1-2", "ann", z2);
  y.attach("2-1", "ann", y1);
  Feed f{{&x, &y, &z}};
  f(join_rec("r", "1-1", "ann", 1));
  f(join_rec("r", "2-1", "ann", 2));  // -> ann#2 in every engine
  f(join_rec("r", "1-2", "ann", 1));  // -> ann#3
  f(msg_rec("r", "2-1", "hi", 2));
  f(api_rec("r", "server", "note"));
  f(leave_rec("r", "1-1"));
  f(join_rec("r", "3-1", "ann", 3));  // -> ann (free again)
  f(msg_rec("r", "3-1", "back", 3));

  // Replicas: byte-identical frame sequences.
  CHECK_EQUAL(x1->count(), z1->count());
  CHECK_EQUAL(x2->count(), z2->count());
  for (size_t i = 0; i < x1->count(); ++i) CHECK(*x1->frames()[i] == *z1->frames()[i]);
  for (size_t i = 0; i < x2->count(); ++i) CHECK(*x2->frames()[i] == *z2->frames()[i]);

  // Across processes: after the later joiner's presence, y1 and x2 see the
  // same room events byte for byte (same seqs, names, order).
  auto tail_after_presence = [](const RecPeer& p) {
    std::vector<std::string> out;
    bool seen = false;
    for (const FramePtr& f : p->frames()) {
      const std::string t = field(json_of(f), "type");
      if (seen && (t == "message" || t == "system")) out.push_back(*f);
      if (t == "presence") seen = true;
    }
    return out;
  };
  const std::vector<std::string> tx = tail_after_presence(x2);
  std::vector<std::string> ty = tail_after_presence(y1);
  // y1 joined before x2: drop y1's events up to x2's join.
  ty.erase(ty.begin(), ty.end() - static_cast<long>(tx.size()));
  CHECK(tx == ty);
  CHECK_EQUAL(5u, tx.size());  // hi, note, leave, join, back
  STRCMP_EQUAL("ann#3", field(json_of(x2->frames()[2]), "you").c_str());
  STRCMP_EQUAL("ann#2", field(json_of(y1->frames()[2]), "you").c_str());
  rapidjson::Document hi;
  hi.Parse(tx[0].substr(2).c_str());
  STRCMP_EQUAL("ann#2", field(hi, "from").c_str());
  rapidjson::Document rejoin;
  rejoin.Parse(tx[3].substr(2).c_str());
  STRCMP_EQUAL("ann", field(rejoin, "name").c_str());
}

TEST(ChatEngine, HistoryWithoutSinceKeepsTheLastEvents) {
  ChatEngine e{config_with_history(3)};
  Feed f{{&e}};
  f(join_rec("r", "9-1", "zed", 9));
  for (int i = 0; i < 4; ++i) f(msg_rec("r", "9-1", "m" + std::to_string(i), 9));
  RecPeer a = make_peer();
  e.attach("1-1", "a", a);
  f(join_rec("r", "1-1", "a"));
  rapidjson::Document h = json_of(a->frames()[0]);
  CHECK_EQUAL(3u, h["messages"].Size());
  CHECK_EQUAL(3u, h["messages"][0]["seq"].GetUint64());
  CHECK_EQUAL(5u, h["messages"][2]["seq"].GetUint64());
  STRCMP_EQUAL("m3", field(h["messages"][2], "text").c_str());
  CHECK_FALSE(h["complete"].GetBool());
}

TEST(ChatEngine, HistoryEventsAreTheLiveObjects) {
  auto [a, b] = attach_peers(engine, {"a", "b"});
  feed(join_rec("r", "1-1", "a"));
  feed(msg_rec("r", "1-1", "hi \"there\""));
  feed(join_rec("r", "1-2", "b"));
  const std::string live_join = payload_of(a->frames()[1]);
  const std::string live_msg = payload_of(a->frames()[3]);
  const std::string history = payload_of(b->frames()[0]);
  CHECK(history.find(live_join) != std::string::npos);
  CHECK(history.find(live_msg) != std::string::npos);
  CHECK_TRUE(json_of(b->frames()[0])["complete"].GetBool());
}

TEST(ChatEngine, HistoryKeepsEventsOfEverySizeIntact) {
  // History shares the live frame: its JSON is the payload after a 2-, 4-
  // or 10-byte header, depending on the length.
  auto [a, b] = attach_peers(engine, {"a", "b"});
  feed(join_rec("r", "1-1", "a"));
  const std::vector<std::string> texts = {"s", std::string(300, 'm'), std::string(70000, 'L')};
  for (const std::string& t : texts) feed(msg_rec("r", "1-1", t));
  feed(join_rec("r", "1-2", "b"));
  rapidjson::Document h = json_of(b->frames()[0]);
  STRCMP_EQUAL("history", field(h, "type").c_str());
  CHECK_EQUAL(4u, h["messages"].Size());  // a's join and the three messages
  for (size_t i = 0; i < texts.size(); ++i)
    CHECK(field(h["messages"][static_cast<rapidjson::SizeType>(i + 1)], "text") == texts[i]);
}

TEST(ChatEngine, ResumeWindows) {
  ChatEngine e{config_with_history(3)};
  Feed f{{&e}};
  f(join_rec("r", "9-1", "zed", 9));          // 1
  for (int i = 0; i < 5; ++i) f(msg_rec("r", "9-1", "m", 9));  // 2..6; kept: 4,5,6; evicted_upto 3
  auto resume = [&](int64_t since, const std::string& conn) {
    RecPeer p = make_peer();
    e.attach(conn, "p", p);
    f(join_rec("r", conn, "p", 1, since));
    return json_of(p->frames()[0]);
  };
  rapidjson::Document inside = resume(4, "1-1");  // seq 7 is 1-1's join
  CHECK_EQUAL(2u, inside["messages"].Size());
  CHECK_EQUAL(5u, inside["messages"][0]["seq"].GetUint64());
  CHECK_TRUE(inside["complete"].GetBool());

  // History now: 5, 6, 7. Edge: since == evicted_upto (4).
  rapidjson::Document edge = resume(4, "1-2");
  CHECK_EQUAL(3u, edge["messages"].Size());
  CHECK_TRUE(edge["complete"].GetBool());

  // History now: 6, 7, 8; evicted_upto 5. Older than the history:
  rapidjson::Document old = resume(2, "1-3");
  CHECK_EQUAL(3u, old["messages"].Size());
  CHECK_EQUAL(6u, old["messages"][0]["seq"].GetUint64());
  CHECK_FALSE(old["complete"].GetBool());

  // Up to date: nothing to replay.
  rapidjson::Document fresh = resume(9, "1-4");
  CHECK_EQUAL(0u, fresh["messages"].Size());
  CHECK_TRUE(fresh["complete"].GetBool());
}

TEST(ChatEngine, SinceFromAnotherBusGetsPlainHistory) {
  RecPeer a = make_peer();
  feed(api_rec("r", "server", "one"));
  feed(api_rec("r", "server", "two"));
  engine.attach("1-1", "a", a);
  feed(join_rec("r", "1-1", "a", 1, 5000));  // since far beyond this bus
  rapidjson::Document h = json_of(a->frames()[0]);
  CHECK_EQUAL(2u, h["messages"].Size());
  CHECK_TRUE(h["complete"].GetBool());
}

TEST(ChatEngine, PresenceFollowsJoinsAndLeaves) {
  auto [a, b, c] = attach_peers(engine, {"amy", "bo", "cy"});
  feed(join_rec("r", "1-1", "amy"));
  feed(join_rec("r", "1-2", "bo"));
  CHECK(presence_members(b->last_json()) == (std::vector<std::string>{"amy", "bo"}));
  const uint64_t leave = feed(leave_rec("r", "1-2"));
  // The leaver gets its own leave event as confirmation, then nothing more.
  STRCMP_EQUAL("leave", field(b->last_json(), "event").c_str());
  CHECK_EQUAL(leave, b->last_json()["seq"].GetUint64());
  STRCMP_EQUAL("leave", field(a->last_json(), "event").c_str());
  const size_t b_count = b->count();
  feed(join_rec("r", "1-3", "cy"));
  CHECK_EQUAL(b_count, b->count());
  CHECK(presence_members(c->last_json()) == (std::vector<std::string>{"amy", "cy"}));
  STRCMP_EQUAL("cy", field(c->last_json(), "you").c_str());
  CHECK_EQUAL(2u, engine.room_list()[0].members);
}

TEST(ChatEngine, NameClashesGetSmallestFreeSuffix) {
  RecPeer p = make_peer();
  engine.attach("1-9", "watch", p);
  feed(join_rec("r", "1-9", "watcher"));
  feed(join_rec("r", "2-1", "sam", 2));
  feed(join_rec("r", "2-2", "sam", 2));
  feed(join_rec("r", "2-3", "sam", 2));
  feed(leave_rec("r", "2-2"));  // frees sam#2
  feed(join_rec("r", "2-4", "sam", 2));
  feed(join_rec("r", "2-5", "sam", 2));
  std::vector<std::string> names;
  for (const FramePtr& f : p->frames()) {
    rapidjson::Document d = json_of(f);
    if (field(d, "event") == "join") names.push_back(field(d, "name"));
  }
  const std::vector<std::string> expected = {"watcher", "sam", "sam#2", "sam#3", "sam#2", "sam#4"};
  CHECK(names == expected);
  // Names are per room: another room starts over.
  RecPeer q = make_peer();
  engine.attach("1-8", "sam", q);
  feed(join_rec("other", "1-8", "sam"));
  STRCMP_EQUAL("sam", field(q->last_json(), "you").c_str());
  CHECK_EQUAL(std::string("sam"), engine.member_name("1-8", "other"));
}

TEST(ChatEngine, RepeatedJoinIsIgnored) {
  RecPeer a = make_peer();
  engine.attach("1-1", "a", a);
  feed(join_rec("r", "1-1", "a"));
  const size_t n = a->count();
  feed(join_rec("r", "1-1", "a"));
  CHECK_EQUAL(n, a->count());
  CHECK_EQUAL(1u, engine.room_list()[0].members);
}

TEST(ChatEngine, DirectReachesEveryConnectionOfRecipientAndSender) {
  RecPeer bob1 = make_peer(), bob2 = make_peer(), al1 = make_peer(), al2 = make_peer(),
          cy = make_peer();
  engine.attach("1-1", "bob", bob1);
  engine.attach("1-2", "bob", bob2);
  engine.attach("1-3", "alice", al1);
  engine.attach("1-4", "alice", al2);
  engine.attach("1-5", "cy", cy);
  feed(direct_rec("1-3", "alice", "bob"));
  for (const RecPeer& p : {bob1, bob2, al1, al2}) {
    CHECK_EQUAL(1u, p->count());
    STRCMP_EQUAL("direct", field(p->last_json(), "type").c_str());
    STRCMP_EQUAL("alice", field(p->last_json(), "from").c_str());
    STRCMP_EQUAL("bob", field(p->last_json(), "to").c_str());
    CHECK(p->last().get() == bob1->last().get());
  }
  CHECK_EQUAL(0u, cy->count());
  // To oneself: each connection once.
  feed(direct_rec("1-5", "cy", "cy"));
  CHECK_EQUAL(1u, cy->count());
}

TEST(ChatEngine, UserOnlineLocallyOrAsAMemberAnywhere) {
  CHECK_FALSE(engine.user_online("bob"));
  RecPeer b = make_peer();
  engine.attach("1-1", "bob", b);
  CHECK_TRUE(engine.user_online("bob"));
  engine.rename("1-1", "robert");
  CHECK_FALSE(engine.user_online("bob"));
  CHECK_TRUE(engine.user_online("robert"));
  engine.detach("1-1");
  CHECK_FALSE(engine.user_online("robert"));
  feed(join_rec("r", "2-1", "nick", 2, -1, "remote"));  // member in another process
  CHECK_TRUE(engine.user_online("remote"));
  CHECK_FALSE(engine.user_online("nick"));  // directs go to base names
  feed(leave_rec("r", "2-1"));
  CHECK_FALSE(engine.user_online("remote"));
}

TEST(ChatEngine, ApiMessagesWaitInHistory) {
  feed(api_rec("news", "server", "first"));
  CHECK_TRUE(engine.room_list().empty());  // no members yet
  RecPeer a = make_peer();
  engine.attach("1-1", "a", a);
  feed(join_rec("news", "1-1", "a"));
  rapidjson::Document h = json_of(a->frames()[0]);
  CHECK_EQUAL(1u, h["messages"].Size());
  STRCMP_EQUAL("server", field(h["messages"][0], "from").c_str());
  feed(api_rec("news", "cron job", "second"));
  STRCMP_EQUAL("cron job", field(a->last_json(), "from").c_str());
}

TEST(ChatEngine, CountsForTheStatusPage) {
  RecPeer a = make_peer();
  engine.attach("1-1", "a", a);
  feed(join_rec("r", "1-1", "a"));
  feed(msg_rec("r", "1-1", "x"));
  const ChatEngineStats s = engine.stats();
  CHECK_EQUAL(2u, s.events_applied);
  CHECK_EQUAL(4u, s.frames_delivered);  // history, join, presence, message
  CHECK_EQUAL(0u, s.deliveries_refused);
  CHECK_EQUAL(1u, s.rooms);
  CHECK_EQUAL(1u, s.local_connections);
}
