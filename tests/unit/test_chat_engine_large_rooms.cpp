// ChatEngine above the presence limit (ChatConfig::presence_limit,
// WSBridgePresenceLimit, docs/large-rooms.md): the boundary (n-1, n, n+1
// members and back), what each member receives, the pace of folded
// presence updates, history and resume, names/suffixes/directs, several
// engines, and the frames of a join storm.
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "chat/chat_engine.h"
#include "chat/chat_record.h"
#include "chat/room.h"

// Last: it includes <CppUTest/TestHarness.h>, and CppUTest redefines new,
// which breaks placement new in headers after it.
#include "chat_test_support.h"

using namespace wsb;
using namespace wsb_test;

namespace {

constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

ChatConfig limit_config(size_t limit, size_t history = 100) {
  ChatConfig c;
  c.presence_limit = limit;
  c.history_size = history;
  return c;
}

std::string conn(int i) { return "1-" + std::to_string(i); }
std::string uname(int i) { return "u" + std::to_string(i); }

bool has(const rapidjson::Value& v, const char* key) { return v.IsObject() && v.HasMember(key); }

// What a page keeps of a room's members, by the rules of
// docs/chat-protocol.md: its presence, then join/leave events while the
// room is not truncated, and folded updates (members only when present).
struct ClientView {
  std::vector<std::string> members;
  size_t count = 0;
  bool truncated = false;
  std::string you;
  size_t seen = 0;  // frames of the peer applied so far

  void apply(const rapidjson::Document& d) {
    const std::string type = field(d, "type");
    if (type == "presence") {
      if (has(d, "you")) you = field(d, "you");
      if (has(d, "members")) members = presence_members(d);
      truncated = has(d, "truncated") && d["truncated"].GetBool();
      count = has(d, "count") ? d["count"].GetUint64() : members.size();
    } else if (type == "system" && !truncated) {
      const std::string name = field(d, "name");
      const auto it = std::find(members.begin(), members.end(), name);
      if (field(d, "event") == "join" && it == members.end()) members.push_back(name);
      if (field(d, "event") == "leave" && it != members.end()) members.erase(it);
      count = members.size();
    }
  }
  void follow(const RecPeer& p) {
    const std::vector<FramePtr> frames = p->frames();
    for (; seen < frames.size(); ++seen) apply(json_of(frames[seen]));
  }
};

// The room as the test knows it: names in join order.
struct Truth {
  std::vector<std::string> names;
  std::vector<std::string> shown(size_t limit) const {
    return std::vector<std::string>(names.begin(),
                                    names.begin() + static_cast<long>(std::min(limit, names.size())));
  }
};

void check_view(const ClientView& v, const Truth& t, size_t limit, const std::string& who) {
  const bool truncated = t.names.size() > limit;
  if (v.members != t.shown(limit) || v.count != t.names.size() || v.truncated != truncated) {
    std::string got, want;
    for (const std::string& n : v.members) got += n + " ";
    for (const std::string& n : t.shown(limit)) want += n + " ";
    FAIL(("view of " + who + ": [" + got + "] count " + std::to_string(v.count) +
          (v.truncated ? " truncated" : "") + "; want [" + want + "] count " +
          std::to_string(t.names.size()) + (truncated ? " truncated" : ""))
             .c_str());
  }
}

// Frames and bytes every member of a room receives while n members join
// one after another, dt_ms apart, plus a last tick a second later.
struct StormCost {
  size_t frames = 0, bytes = 0, history_bytes = 0, max_member_frames = 0, max_member_bytes = 0;
};

// Counts like CountingPeer, and the bytes of history frames apart.
class StormPeer : public CountingPeer {
 public:
  bool deliver(const FramePtr& frame) override {
    if (payload_of(frame).compare(0, 17, "{\"type\":\"history\"") == 0) history_bytes += frame->size();
    return CountingPeer::deliver(frame);
  }
  size_t history_bytes = 0;
};

StormCost join_storm(size_t n, size_t limit, int64_t dt_ms) {
  int64_t now = 0;
  ChatEngine e{limit_config(limit), [&now] { return now; }};
  Feed f{{&e}};
  std::vector<std::shared_ptr<StormPeer>> peers;
  for (size_t i = 0; i < n; ++i) {
    peers.push_back(std::make_shared<StormPeer>());
    const std::string c = "1-" + std::to_string(i);
    e.attach(c, "user" + std::to_string(i), peers.back());
    f(join_rec("storm", c, "user" + std::to_string(i)));
    now += dt_ms;
  }
  now += 1000;
  e.on_tick();
  StormCost cost;
  for (const auto& p : peers) {
    cost.frames += p->frames;
    cost.bytes += p->bytes;
    cost.history_bytes += p->history_bytes;
    cost.max_member_frames = std::max(cost.max_member_frames, p->frames);
    cost.max_member_bytes = std::max(cost.max_member_bytes, p->bytes);
  }
  return cost;
}

}  // namespace

TEST_GROUP(ChatEngineLargeRooms) {
  int64_t now = 0;
  ChatEngine engine{limit_config(3), [this] { return now; }};
  Feed feed{{&engine}};
  std::map<int, RecPeer> peers;
  Truth truth;

  RecPeer join(int i, const std::string& room = "big") {
    RecPeer p = make_peer();
    peers[i] = p;
    engine.attach(conn(i), uname(i), p);
    feed(join_rec(room, conn(i), uname(i)));
    if (room == "big") truth.names.push_back(uname(i));
    return p;
  }
  void leave(int i) {
    feed(leave_rec("big", conn(i)));
    truth.names.erase(std::find(truth.names.begin(), truth.names.end(), uname(i)));
  }
  std::vector<std::string> types_since(const RecPeer& p, size_t from) {
    std::vector<std::string> t = p->types();
    return std::vector<std::string>(t.begin() + static_cast<long>(from), t.end());
  }
};

TEST(ChatEngineLargeRooms, UpToTheLimitNothingChanges) {
  // The same records through an engine without a limit: byte-identical
  // frames for every member while the room has 1, 2 and 3 (= n) members.
  ChatEngine plain{limit_config(kNoLimit)};
  Feed both{{&engine, &plain}};
  RecPeer q[4];
  for (int i = 1; i <= 3; ++i) {
    peers[i] = make_peer();
    q[i] = make_peer();
    engine.attach(conn(i), uname(i), peers[i]);
    plain.attach(conn(i), uname(i), q[i]);
    both(join_rec("big", conn(i), uname(i)));
  }
  both(msg_rec("big", conn(2), "hi"));
  both(leave_rec("big", conn(3)));  // n -> n-1
  for (int i = 1; i <= 3; ++i) {
    CHECK_EQUAL(q[i]->count(), peers[i]->count());
    for (size_t k = 0; k < q[i]->count(); ++k) CHECK(*q[i]->frames()[k] == *peers[i]->frames()[k]);
  }
  const std::vector<std::string> first = {"history", "system", "presence", "system", "system",
                                          "message", "system"};
  CHECK(peers[1]->types() == first);
  rapidjson::Document p3 = json_of(peers[3]->frames()[2]);
  CHECK(presence_members(p3) == (std::vector<std::string>{"u1", "u2", "u3"}));
  CHECK_FALSE(has(p3, "count"));
  CHECK_FALSE(has(p3, "truncated"));
  CHECK_EQUAL(0u, engine.stats().quiet_events);
  CHECK_EQUAL(0u, engine.stats().presence_updates);
}

TEST(ChatEngineLargeRooms, TheJoinAboveTheLimitIsQuiet) {
  for (int i = 1; i <= 3; ++i) join(i);
  const size_t before[] = {0, peers[1]->count(), peers[2]->count(), peers[3]->count()};
  const uint64_t seq4 = feed.seq + 1;
  RecPeer p4 = join(4);
  // The joiner: history, its own join (with its seq), presence with the
  // first n names in join order, the count, and the first update (the room
  // had none yet, so it goes out at once).
  const std::vector<std::string> joiner = {"history", "system", "presence", "presence"};
  CHECK(p4->types() == joiner);
  rapidjson::Document own = json_of(p4->frames()[1]);
  STRCMP_EQUAL("u4", field(own, "name").c_str());
  CHECK_EQUAL(seq4, own["seq"].GetUint64());
  rapidjson::Document pres = json_of(p4->frames()[2]);
  CHECK(presence_members(pres) == (std::vector<std::string>{"u1", "u2", "u3"}));
  STRCMP_EQUAL("u4", field(pres, "you").c_str());
  CHECK_EQUAL(4u, pres["count"].GetUint64());
  CHECK_TRUE(pres["truncated"].GetBool());
  // The others: no join event, one update without names (theirs are the
  // first three already), the same frame for all.
  for (int i = 1; i <= 3; ++i) {
    CHECK(types_since(peers[i], before[i]) == std::vector<std::string>{"presence"});
    rapidjson::Document u = peers[i]->last_json();
    CHECK_EQUAL(4u, u["count"].GetUint64());
    CHECK_TRUE(u["truncated"].GetBool());
    CHECK_FALSE(has(u, "members"));
    CHECK_FALSE(has(u, "you"));
    CHECK(peers[i]->last().get() == p4->last().get());
  }
  CHECK_EQUAL(1u, engine.stats().quiet_events);
  CHECK_EQUAL(1u, engine.stats().presence_updates);
  for (int i = 1; i <= 4; ++i) {
    ClientView v;
    v.follow(peers[i]);
    check_view(v, truth, 3, uname(i));
  }
}

TEST(ChatEngineLargeRooms, UpdatesGoOutAtMostOncePerInterval) {
  for (int i = 1; i <= 4; ++i) join(i);  // the update for 4 went out at 0
  const size_t c1 = peers[1]->count();
  now = 10;
  for (int i = 5; i <= 20; ++i) join(i);  // folded: nothing for u1 yet
  CHECK_EQUAL(c1, peers[1]->count());
  now = 999;
  feed(msg_rec("big", conn(2), "still here"));  // a record, but not due
  CHECK(types_since(peers[1], c1) == std::vector<std::string>{"message"});
  now = 1000;
  engine.on_tick();  // no record needed
  CHECK(types_since(peers[1], c1) == (std::vector<std::string>{"message", "presence"}));
  CHECK_EQUAL(20u, peers[1]->last_json()["count"].GetUint64());
  CHECK_EQUAL(2u, engine.stats().presence_updates);
  engine.on_tick();  // nothing pending: nothing sent
  now = 5000;
  engine.on_tick();
  CHECK_EQUAL(2u, engine.stats().presence_updates);
  // After a quiet spell the first change goes out with its own record.
  join(21);
  CHECK_EQUAL(3u, engine.stats().presence_updates);
  CHECK_EQUAL(21u, peers[1]->last_json()["count"].GetUint64());
}

TEST(ChatEngineLargeRooms, UpdatesListNamesOnlyWhenTheShownNamesChange) {
  for (int i = 1; i <= 6; ++i) join(i);
  now = 1000;
  leave(6);  // not among the first three
  rapidjson::Document u = peers[1]->last_json();
  STRCMP_EQUAL("presence", field(u, "type").c_str());
  CHECK_EQUAL(5u, u["count"].GetUint64());
  CHECK_FALSE(has(u, "members"));
  now = 2000;
  leave(2);  // shown: u4 moves up
  u = peers[1]->last_json();
  CHECK_EQUAL(4u, u["count"].GetUint64());
  CHECK(presence_members(u) == (std::vector<std::string>{"u1", "u3", "u4"}));
  // The leavers got their own leave events and nothing after them.
  STRCMP_EQUAL("leave", field(peers[6]->last_json(), "event").c_str());
  STRCMP_EQUAL("leave", field(peers[2]->last_json(), "event").c_str());
  for (int i : {1, 3, 4, 5}) {
    ClientView v;
    v.follow(peers[i]);
    check_view(v, truth, 3, uname(i));
  }
}

TEST(ChatEngineLargeRooms, BackAtTheLimitListsAreWholeAtOnce) {
  for (int i = 1; i <= 5; ++i) join(i);  // update at 0 (count 4); 5 pending
  now = 100;
  leave(5);  // quiet, 4 left: folded
  const size_t c2 = peers[2]->count();
  leave(1);  // quiet, 3 left = n: an update now, whatever the pace
  CHECK(types_since(peers[2], c2) == std::vector<std::string>{"presence"});
  rapidjson::Document u = peers[2]->last_json();
  CHECK_EQUAL(3u, u["count"].GetUint64());
  CHECK_FALSE(u["truncated"].GetBool());
  CHECK(presence_members(u) == (std::vector<std::string>{"u2", "u3", "u4"}));
  // Within the limit again: join and leave events, as in any small room.
  const size_t c3 = peers[3]->count();
  leave(2);
  CHECK(types_since(peers[3], c3) == std::vector<std::string>{"system"});
  join(7);
  CHECK(types_since(peers[3], c3) == (std::vector<std::string>{"system", "system"}));
  STRCMP_EQUAL("u7", field(peers[3]->last_json(), "name").c_str());
  // Across the line and back in one interval: the second crossing is told
  // at once too; the names did not change (u8 was never shown).
  join(8);  // 4: quiet, pending (the last update was at 100)
  leave(8);  // 3 again
  u = peers[3]->last_json();
  CHECK_EQUAL(3u, u["count"].GetUint64());
  CHECK_FALSE(u["truncated"].GetBool());
  CHECK_FALSE(has(u, "members"));
  now = 5000;
  engine.on_tick();  // nothing left pending
  for (int i : {3, 4, 7}) {
    ClientView v;
    v.follow(peers[i]);
    check_view(v, truth, 3, uname(i));
  }
}

TEST(ChatEngineLargeRooms, RandomChurnKeepsEveryPageRight) {
  // Joins and leaves around the limit at random times: while the room is
  // within the limit every page's list is exact after every record; above
  // it, exact once the next update is out.
  std::mt19937 rng(12345);
  std::map<int, ClientView> views;
  for (int step = 0; step < 600; ++step) {
    now += static_cast<int64_t>(rng() % 400);
    const int i = 1 + static_cast<int>(rng() % 12);
    if (std::find(truth.names.begin(), truth.names.end(), uname(i)) == truth.names.end()) {
      join(i);
      views[i] = ClientView();
    } else {
      leave(i);
      views.erase(i);
    }
    if (rng() % 5 == 0) engine.on_tick();
    for (auto& v : views) v.second.follow(peers[v.first]);
    if (truth.names.size() <= 3) {
      for (const auto& v : views) check_view(v.second, truth, 3, uname(v.first));
    }
  }
  now += 1000;
  engine.on_tick();
  for (auto& v : views) {
    v.second.follow(peers[v.first]);
    check_view(v.second, truth, 3, uname(v.first));
  }
  CHECK(engine.stats().quiet_events > 0);
}

TEST(ChatEngineLargeRooms, NamesSuffixesAndDirectsStayExact) {
  RecPeer w = make_peer();
  engine.attach("1-9", "watch", w);
  feed(join_rec("big", "1-9", "watcher"));
  std::vector<RecPeer> sams;
  for (int k = 1; k <= 5; ++k) {
    sams.push_back(make_peer());
    const std::string c = "2-" + std::to_string(k);
    engine.attach(c, "sam", sams.back());
    feed(join_rec("big", c, "sam", 2));
  }
  const std::vector<std::string> you = {"sam", "sam#2", "sam#3", "sam#4", "sam#5"};
  for (size_t k = 0; k < sams.size(); ++k) {
    rapidjson::Document p = json_of(sams[k]->frames()[2]);
    CHECK(field(p, "you") == you[k]);
    CHECK(engine.member_name("2-" + std::to_string(k + 1), "big") == you[k]);
  }
  feed(leave_rec("big", "2-2"));  // frees sam#2, quietly
  RecPeer again = make_peer();
  engine.attach("2-6", "sam", again);
  feed(join_rec("big", "2-6", "sam", 2));
  STRCMP_EQUAL("sam#2", field(json_of(again->frames()[2]), "you").c_str());
  STRCMP_EQUAL("sam#2", field(json_of(again->frames()[1]), "name").c_str());
  // A member far beyond the listed names is online and gets directs.
  CHECK_TRUE(engine.user_online("sam"));
  const size_t before = again->count();
  feed(direct_rec("1-9", "watch", "sam"));
  CHECK_EQUAL(before + 1, again->count());
  STRCMP_EQUAL("direct", field(again->last_json(), "type").c_str());
  STRCMP_EQUAL("direct", field(w->last_json(), "type").c_str());
  // And what it says in the room carries its suffixed name.
  feed(msg_rec("big", "2-6", "hi", 2));
  STRCMP_EQUAL("sam#2", field(w->last_json(), "from").c_str());
  CHECK_EQUAL(6u, engine.room_list()[0].members);
}

TEST(ChatEngineLargeRooms, HistoryHoldsExactlyWhatMembersSawLive) {
  const uint64_t ja = feed.seq + 1;
  join(1);
  join(2);
  join(3);
  const uint64_t jc = feed.seq;  // u3's join: the last event within the limit
  join(4);                       // quiet
  join(5);                       // quiet
  feed(msg_rec("big", conn(4), "from the crowd"));
  leave(5);  // quiet
  leave(4);  // quiet: back at the limit
  feed(msg_rec("big", conn(1), "calm again"));
  leave(3);  // loud (3 -> 2)
  // A member's live room events and a newcomer's history are the same list.
  RecPeer late = join(9);  // 3: loud
  rapidjson::Document h = json_of(late->frames()[0]);
  std::vector<uint64_t> history;
  for (const auto& e : h["messages"].GetArray()) history.push_back(e["seq"].GetUint64());
  std::vector<uint64_t> live = event_seqs(peers[1], "big");
  live.pop_back();  // u9's join, after the history
  CHECK(history == live);
  CHECK_EQUAL(ja, history.front());
  CHECK_EQUAL(6u, history.size());  // u1, u2, u3 joins, two messages, u3's leave
  CHECK_TRUE(h["complete"].GetBool());
  // Resume from inside the quiet stretch: complete, and nothing quiet in it.
  RecPeer back = make_peer();
  engine.attach("1-50", "u50", back);
  feed(join_rec("big", "1-50", "u50", 1, static_cast<int64_t>(jc + 2)));
  rapidjson::Document r = json_of(back->frames()[0]);
  CHECK_TRUE(r["complete"].GetBool());
  std::vector<std::string> kinds;
  for (const auto& e : r["messages"].GetArray())
    kinds.push_back(field(e, "type") + ":" + (has(e, "text") ? field(e, "text") : field(e, "name")));
  const std::vector<std::string> want = {"message:from the crowd", "message:calm again",
                                         "system:u3", "system:u9"};
  CHECK(kinds == want);
}

TEST(ChatEngineLargeRooms, QuietEventsDoNotPushMessagesOutOfTheHistory) {
  ChatEngine e{limit_config(1, 3), [this] { return now; }};
  Feed f{{&e}};
  RecPeer a = make_peer();
  e.attach("1-1", "a", a);
  const uint64_t ja = f(join_rec("r", "1-1", "a"));
  const uint64_t m1 = f(msg_rec("r", "1-1", "m1"));
  f(msg_rec("r", "1-1", "m2"));
  for (int i = 2; i < 60; ++i) f(join_rec("r", conn(i), uname(i)));  // quiet
  RecPeer b = make_peer();
  e.attach("1-99", "b", b);
  f(join_rec("r", "1-99", "b"));
  rapidjson::Document h = json_of(b->frames()[0]);
  CHECK_EQUAL(3u, h["messages"].Size());
  CHECK_TRUE(h["complete"].GetBool());
  CHECK_EQUAL(m1, h["messages"][1]["seq"].GetUint64());
  // What a member saw live can still fall out: then resume says so.
  f(msg_rec("r", "1-1", "m3"));
  f(msg_rec("r", "1-1", "m4"));
  RecPeer c = make_peer();
  e.attach("1-98", "c", c);
  f(join_rec("r", "1-98", "c", 1, static_cast<int64_t>(ja)));  // m1 is gone
  CHECK_FALSE(json_of(c->frames()[0])["complete"].GetBool());
}

TEST(ChatEngineLargeRooms, EveryEngineKeepsTheSameHistory) {
  // Two processes with different local members apply the same records:
  // whether an event is quiet depends on the member count alone, so a
  // newcomer gets the same history in either.
  ChatEngine x{limit_config(3)}, y{limit_config(3)};
  Feed f{{&x, &y}};
  std::vector<RecPeer> keep;
  for (int i = 0; i < 12; ++i) {
    keep.push_back(make_peer());
    const std::string c = std::to_string(1 + i % 2) + "-" + std::to_string(i);
    (i % 2 ? y : x).attach(c, uname(i), keep.back());
    f(join_rec("r", c, uname(i), 1 + i % 2));
    if (i % 4 == 3) f(msg_rec("r", c, "m" + std::to_string(i), 1 + i % 2));
  }
  for (int i = 2; i < 11; ++i) f(leave_rec("r", std::to_string(1 + i % 2) + "-" + std::to_string(i)));
  RecPeer nx = make_peer(), ny = make_peer();
  x.attach("1-100", "nx", nx);
  y.attach("2-100", "ny", ny);
  f(join_rec("r", "1-100", "new", 1));
  f(join_rec("r", "2-100", "new", 2));
  CHECK(*nx->frames()[0] == *ny->frames()[0]);
  rapidjson::Document h = json_of(nx->frames()[0]);
  CHECK(h["messages"].Size() > 3u);
  CHECK_EQUAL(x.stats().quiet_events, y.stats().quiet_events);
}

TEST(ChatEngineLargeRooms, ADeadProcessLeavesQuietlyThenLoudly) {
  auto [a, b] = join_peers(engine, feed, "big", {"a", "b"});
  for (int k = 1; k <= 5; ++k) feed(join_rec("big", "2-" + std::to_string(k), "r" + std::to_string(k), 2));
  const size_t before = a->count();
  const uint64_t gone = feed(gone_rec(2));
  // 7 -> 3 quietly (the fourth leave brings it to the limit: an update),
  // then the fifth leave is an event like in any small room.
  const std::vector<std::string> want = {"presence", "system"};
  CHECK(types_since(a, before) == want);
  rapidjson::Document u = json_of(a->frames()[before]);
  CHECK_EQUAL(3u, u["count"].GetUint64());
  CHECK(presence_members(u) == (std::vector<std::string>{"a", "b", "r5"}));
  rapidjson::Document last = a->last_json();
  STRCMP_EQUAL("r5", field(last, "name").c_str());
  CHECK_EQUAL(gone, last["seq"].GetUint64());
  CHECK_EQUAL(2u, engine.room_list()[0].members);
}

TEST(ChatEngineLargeRooms, LimitZeroListsNobody) {
  ChatEngine e{limit_config(0), [this] { return now; }};
  Feed f{{&e}};
  auto [a, b] = attach_peers(e, {"a", "b"});
  f(join_rec("r", "1-1", "a"));
  rapidjson::Document p = json_of(a->frames()[2]);
  CHECK_EQUAL(0u, p["members"].Size());
  CHECK_EQUAL(1u, p["count"].GetUint64());
  STRCMP_EQUAL("a", field(p, "you").c_str());
  f(join_rec("r", "1-2", "b"));
  now = 1000;
  e.on_tick();
  CHECK_EQUAL(2u, a->last_json()["count"].GetUint64());
  f(msg_rec("r", "1-2", "hello"));
  STRCMP_EQUAL("b", field(a->last_json(), "from").c_str());
}

TEST(ChatEngineLargeRooms, SyncAnswersAboveTheLimitAreOneUpdate) {
  // A late engine learns silent members from a present answer: one
  // update for the room, not a presence frame per member.
  ChatEngine late{limit_config(2), [this] { return now; }};
  late.on_overrun(1, 10);  // a late start
  std::vector<RecPeer> local;
  for (int i = 1; i <= 3; ++i) {
    local.push_back(make_peer());
    late.attach(conn(i), uname(i), local.back());
    late.apply(10 + static_cast<uint64_t>(i), join_rec("r", conn(i), uname(i)));
  }
  now = 5000;
  late.on_tick();
  const uint64_t updates = late.stats().presence_updates;
  std::vector<PresentMember> old_members;
  for (int k = 1; k <= 4; ++k)
    old_members.push_back(PresentMember{"r", "7-" + std::to_string(k), "old", "old" + std::to_string(k), 7});
  const size_t before = local[0]->count();
  late.apply(14, present_rec(5, 1, old_members));
  CHECK_EQUAL(updates + 1, late.stats().presence_updates);
  CHECK_EQUAL(before + 1, local[0]->count());
  CHECK_EQUAL(7u, local[0]->last_json()["count"].GetUint64());
  CHECK(local[0]->last().get() == local[2]->last().get());
}

TEST(ChatEngineLargeRooms, AJoinStormCostsLinearFrames) {
  // 2,000 members join one room, 1 ms apart (2 s), limit 100. Without the
  // limit this is N(N+1)/2 join events; with it, the first 100 joins are
  // events to everybody in the room, and after that each joiner gets three
  // frames and every member one update per second.
  const size_t n = 2000, limit = 100;
  const StormCost c = join_storm(n, limit, 1);
  const size_t loud = limit * (limit + 1) / 2 + 2 * limit;  // join events + history + presence
  const size_t quiet = 3 * (n - limit);                     // history, own join, presence
  const size_t updates = 4 * n;                             // at 0.1 s, 1.1 s, 2.1 s, the last tick
  CHECK(c.frames <= loud + quiet + updates);
  CHECK(c.frames < 10 * n);
  CHECK(c.max_member_frames <= limit + 3 + 4);
  const StormCost before = join_storm(n, kNoLimit, 1);
  CHECK_EQUAL(n * (n + 1) / 2 + 2 * n, before.frames);
  // Bytes: what is left is mostly the joiners' history (the room's first
  // 100 join events here), the same for both.
  CHECK(before.bytes - before.history_bytes > 50 * (c.bytes - c.history_bytes));
}

TEST(ChatEngineLargeRooms, MeasureJoinStorms) {
  // The table of docs/large-rooms.md: WSB_MEASURE=1 build/unit_tests -sg
  // ChatEngineLargeRooms -sn MeasureJoinStorms (a few seconds without
  // the limit at 10,000).
  if (std::getenv("WSB_MEASURE") == nullptr) return;
  std::printf("\n%8s %8s %14s %16s %14s %12s %14s\n", "members", "limit", "frames", "bytes",
              "history bytes", "max frames", "max bytes");
  for (size_t n : {1000, 10000}) {
    for (size_t limit : {kNoLimit, size_t(100)}) {
      const StormCost c = join_storm(n, limit, 1);
      std::printf("%8zu %8s %14zu %16zu %14zu %12zu %14zu\n", n,
                  limit == kNoLimit ? "off" : std::to_string(limit).c_str(), c.frames, c.bytes,
                  c.history_bytes, c.max_member_frames, c.max_member_bytes);
    }
  }
}

TEST_GROUP(ChatRoomShownNames) {};

TEST(ChatRoomShownNames, FollowJoinOrderThroughAnyChurn) {
  // Against a plain vector: the first min(size, limit) names, and a version
  // that moves exactly when they change.
  for (size_t limit : {size_t(0), size_t(1), size_t(3), size_t(8)}) {
    Room room(10, 0, limit);
    std::vector<std::pair<std::string, std::string>> model;  // conn, name
    std::mt19937 rng(static_cast<unsigned>(limit) + 7);
    std::vector<std::string> shown_before;
    for (int step = 0; step < 500; ++step) {
      const std::string c = std::to_string(rng() % 16);
      const auto it = std::find_if(model.begin(), model.end(), [&](const auto& m) { return m.first == c; });
      const uint64_t version = room.shown_version();
      if (it == model.end()) {
        RoomMember m;
        m.conn_id = c;
        m.name = room.free_name("n" + std::to_string(rng() % 4));
        model.emplace_back(c, m.name);
        room.add(std::move(m));
      } else {
        RoomMember removed;
        CHECK_TRUE(room.remove(c, &removed));
        CHECK(removed.conn_id == c);
        model.erase(it);
      }
      std::vector<std::string> want;
      for (size_t k = 0; k < std::min(limit, model.size()); ++k) want.push_back(model[k].second);
      CHECK(room.shown_names() == want);
      CHECK_EQUAL(model.size() > limit, room.truncated());
      CHECK_EQUAL(want != shown_before, room.shown_version() != version);
      shown_before = want;
      for (const auto& m : model) CHECK(room.find(m.first) != nullptr && room.find(m.first)->name == m.second);
    }
  }
}
