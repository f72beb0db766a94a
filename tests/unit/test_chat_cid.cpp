// Client message ids (cid) and exactly-once: parsing, records, the bounded
// indexes, the engine's dedupe decision in bus order, the publish API's
// Idempotency-Key, and (for -fsanitize=thread) queries racing the hub.
#include <rapidjson/document.h>

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "chat/chat_connection.h"
#include "chat/chat_engine.h"
#include "chat/chat_protocol.h"
#include "chat/chat_record.h"
#include "chat/cid_index.h"
#include "chat/publish_api.h"
#include "chat/room.h"

// Last: it includes <CppUTest/TestHarness.h>, and CppUTest redefines new,
// which breaks placement new in headers after it.
#include "chat_test_support.h"

using namespace wsb;
using namespace wsb_test;

namespace {

std::string cid_msg(const std::string& room, const std::string& conn, const std::string& user,
                    const std::string& cid, const std::string& text = "hi", int64_t ts = 3000) {
  ChatRecord r;
  r.type = RecordType::Msg;
  r.room = room;
  r.conn = conn;
  r.user = user;
  r.pid = 1;
  r.text = text;
  r.cid = cid;
  r.ts = ts;
  return encode_record(r);
}

std::string cid_direct(const std::string& conn, const std::string& from, const std::string& to,
                       const std::string& cid, int64_t ts = 5000) {
  ChatRecord r;
  r.type = RecordType::Direct;
  r.conn = conn;
  r.from = from;
  r.to = to;
  r.text = "psst";
  r.cid = cid;
  r.ts = ts;
  return encode_record(r);
}

std::string api_cid(const std::string& room, const std::string& key) {
  ChatRecord r;
  r.type = RecordType::Msg;
  r.room = room;
  r.from = "server";
  r.text = "news";
  r.cid = key;
  r.ts = 4000;
  return encode_record(r);
}

// The message frames p received for room.
std::vector<FramePtr> messages_of(const RecPeer& p, const std::string& room = "r") {
  std::vector<FramePtr> out;
  for (const FramePtr& f : p->frames()) {
    rapidjson::Document d = json_of(f);
    if (field(d, "type") == "message" && field(d, "room") == room) out.push_back(f);
  }
  return out;
}

}  // namespace

TEST_GROUP(ChatCidParse){ChatConfig cfg;};

TEST(ChatCidParse, ValidCidIsKept) {
  ParsedCommand p = parse_client_command(R"({"type":"message","room":"r","text":"x","cid":"a-1_Z~"})", cfg);
  CHECK(p.error == ChatError::None);
  CHECK_TRUE(p.command.has_cid);
  STRCMP_EQUAL("a-1_Z~", p.command.cid.c_str());
  p = parse_client_command(R"({"type":"direct","to":"bob","text":"x","cid":"k"})", cfg);
  CHECK(p.error == ChatError::None);
  STRCMP_EQUAL("k", p.command.cid.c_str());
  p = parse_client_command(R"({"type":"message","room":"r","text":"x"})", cfg);
  CHECK(p.error == ChatError::None);
  CHECK_FALSE(p.command.has_cid);
}

TEST(ChatCidParse, InvalidCidIsBadCid) {
  const std::string too_long(65, 'a');
  const std::vector<std::string> bad = {R"(7)", R"("")", R"("a b")", R"("\u00e9")", R"("a\u0000")",
                                        R"(null)", R"(["x"])", "\"" + too_long + "\""};
  for (const std::string& cid : bad) {
    ParsedCommand p = parse_client_command(R"({"type":"message","room":"r","text":"x","cid":)" + cid + "}", cfg);
    CHECK_TRUE_TEXT(p.error == ChatError::BadCid, cid.c_str());
    p = parse_client_command(R"({"type":"direct","to":"bob","text":"x","cid":)" + cid + "}", cfg);
    CHECK_TRUE_TEXT(p.error == ChatError::BadCid, cid.c_str());
  }
  STRCMP_EQUAL("bad-cid", error_code_name(ChatError::BadCid));
  CHECK_TRUE(is_valid_cid(std::string(64, '~')));
}

TEST(ChatCidParse, EventsCarryTheCidOnlyWhenGiven) {
  rapidjson::Document d;
  const std::string with = encode_message_event("r", "bob", "hi", 5, 9, "c1");
  d.Parse(with.c_str());
  STRCMP_EQUAL("c1", field(d, "cid").c_str());
  const std::string without = encode_message_event("r", "bob", "hi", 5, 9);
  CHECK(without.find("cid") == std::string::npos);
  const std::string direct = encode_direct("a", "b", "hi", 9, "c2");
  d.Parse(direct.c_str());
  STRCMP_EQUAL("c2", field(d, "cid").c_str());
}

TEST(ChatCidParse, RecordsKeepTheCidAndRefuseBadOnes) {
  ChatRecord r;
  CHECK_TRUE(parse_record(cid_msg("r", "1-1", "alice", "c1"), &r));
  STRCMP_EQUAL("c1", r.cid.c_str());
  CHECK_TRUE(parse_record(cid_direct("1-1", "a", "b", "c2"), &r));
  STRCMP_EQUAL("c2", r.cid.c_str());
  CHECK_TRUE(parse_record(api_cid("r", "key"), &r));
  STRCMP_EQUAL("key", r.cid.c_str());
  CHECK_FALSE(parse_record(R"({"t":"msg","room":"r","from":"s","text":"x","cid":"a b","ts":1})", &r));
  CHECK_FALSE(parse_record(R"({"t":"msg","room":"r","from":"s","text":"x","cid":5,"ts":1})", &r));
}

TEST_GROUP(ChatCidIndex){};

TEST(ChatCidIndex, RecentCidsFirstWinsAndForgetsOldestByCountAndBytes) {
  RecentCids cids(3, 1000);
  cids.add("a", CidOriginal{1, make_frame("first")});
  cids.add("a", CidOriginal{2, make_frame("second")});
  CHECK_EQUAL(1u, cids.find("a")->seq);
  cids.add("b", CidOriginal{3, make_frame("x")});
  cids.add("c", CidOriginal{4, make_frame("x")});
  cids.add("d", CidOriginal{5, make_frame("x")});
  CHECK_EQUAL(3u, cids.size());
  CHECK(cids.find("a") == nullptr);
  CHECK(cids.find("d") != nullptr);

  RecentCids small(100, 10);
  small.add("a", CidOriginal{1, make_frame("123456")});
  small.add("b", CidOriginal{2, make_frame("123456")});  // 12 bytes > 10: a goes
  CHECK(small.find("a") == nullptr);
  CHECK(small.find("b") != nullptr);
  CHECK_EQUAL(6u, small.bytes());
}

TEST(ChatCidIndex, RoomRemembersACidAsLongAsItsEventIsInTheHistory) {
  Room room(3, 0);
  room.record(1, make_frame("m1"), room_cid_key("alice", "c1"));
  room.record(2, make_frame("j"));
  room.record(3, make_frame("m3"), room_cid_key("bob", "c1"));
  CHECK_EQUAL(1u, room.find_cid(room_cid_key("alice", "c1"))->seq);
  CHECK_EQUAL(3u, room.find_cid(room_cid_key("bob", "c1"))->seq);
  CHECK(room.find_cid(room_cid_key("carol", "c1")) == nullptr);
  room.record(4, make_frame("j"));  // m1 leaves the history, and its cid with it
  CHECK(room.find_cid(room_cid_key("alice", "c1")) == nullptr);
  CHECK_EQUAL(1u, room.cid_count());
  for (uint64_t s = 5; s < 100; ++s) room.record(s, make_frame("m"), room_cid_key("u", std::to_string(s)));
  CHECK_EQUAL(3u, room.cid_count());  // bounded by the history
  Room none(0, 0);
  none.record(1, make_frame("m"), room_cid_key("u", "c"));
  CHECK(none.find_cid(room_cid_key("u", "c")) == nullptr);
}

TEST_GROUP_BASE(ChatCidEngine, EngineTest) {};

TEST(ChatCidEngine, SameCidTwiceIsOneEventAndTheSenderGetsTheOriginal) {
  auto [a, b] = join_peers(engine, feed, "r", {"alice", "bob"});
  const uint64_t first = feed(cid_msg("r", "1-1", "alice", "c1", "hello", 3000));
  const uint64_t again = feed(cid_msg("r", "1-1", "alice", "c1", "hello", 3999));
  CHECK(again > first);
  CHECK_EQUAL(1u, messages_of(b).size());
  const std::vector<FramePtr> mine = messages_of(a);
  CHECK_EQUAL(2u, mine.size());
  CHECK(mine[0] == mine[1]);  // the very same frame: same seq, ts and cid
  rapidjson::Document d = json_of(mine[1]);
  CHECK_EQUAL(first, d["seq"].GetUint64());
  CHECK_EQUAL(3000, d["ts"].GetInt64());
  STRCMP_EQUAL("c1", field(d, "cid").c_str());
  CHECK_EQUAL(1u, engine.stats().cid_duplicates);
  CHECK_EQUAL(first, engine.cid_seq("r", "alice", "c1"));
}

TEST(ChatCidEngine, ResendFromANewConnectionOfTheSameUserGetsTheOriginalOnly) {
  auto [a, b] = join_peers(engine, feed, "r", {"alice", "bob"});
  RecPeer a2 = make_peer();
  const uint64_t first = feed(cid_msg("r", "1-1", "alice", "c1"));
  engine.detach("1-1");
  feed(leave_rec("r", "1-1"));
  engine.attach("2-1", "alice", a2);
  feed(join_rec("r", "2-1", "alice", 2, static_cast<int64_t>(first - 1)));
  // The resumed history holds the original with its cid.
  rapidjson::Document h = json_of(a2->frames()[0]);
  STRCMP_EQUAL("history", field(h, "type").c_str());
  bool found = false;
  for (const auto& m : h["messages"].GetArray()) found = found || field(m, "cid") == "c1";
  CHECK_TRUE(found);
  b->clear();
  a2->clear();
  feed(cid_msg("r", "2-1", "alice", "c1"));
  CHECK_EQUAL(0u, messages_of(b).size());
  const std::vector<FramePtr> back = messages_of(a2);
  CHECK_EQUAL(1u, back.size());
  CHECK_EQUAL(first, json_of(back[0])["seq"].GetUint64());
}

TEST(ChatCidEngine, KeysArePerUserAndRoom) {
  auto [a, b] = join_peers(engine, feed, "r", {"alice", "bob"});
  feed(join_rec("s", "1-1", "alice"));
  feed(cid_msg("r", "1-1", "alice", "same"));
  feed(cid_msg("r", "1-2", "bob", "same"));
  feed(cid_msg("s", "1-1", "alice", "same"));
  feed(msg_rec("r", "1-1", "no cid"));
  feed(msg_rec("r", "1-1", "no cid"));  // without a cid nothing is deduped
  CHECK_EQUAL(4u, messages_of(b).size());
  CHECK_EQUAL(1u, messages_of(a, "s").size());
  CHECK_EQUAL(0u, engine.stats().cid_duplicates);
}

TEST(ChatCidEngine, EveryEngineMakesTheSameDecision) {
  // Two processes: the first record on the bus wins in both; each answers
  // only its own local sender.
  ChatEngine other{ChatConfig()};
  Feed both{{&engine, &other}};
  RecPeer a1 = make_peer(), a2 = make_peer(), b = make_peer();
  engine.attach("1-1", "alice", a1);
  other.attach("2-1", "alice", a2);
  other.attach("2-2", "bob", b);
  both(join_rec("r", "1-1", "alice", 1));
  both(join_rec("r", "2-1", "alice", 2));
  both(join_rec("r", "2-2", "bob", 2));
  a1->clear();
  a2->clear();
  b->clear();
  // The same cid from two connections in two processes, racing: whichever
  // the bus ordered first is the message.
  const uint64_t first = both(cid_msg("r", "2-1", "alice", "race", "from 2"));
  both(cid_msg("r", "1-1", "alice", "race", "from 1"));
  CHECK_EQUAL(1u, messages_of(b).size());
  CHECK_EQUAL(1u, messages_of(a2).size());  // the live event; no duplicate answer (its record won)
  CHECK_EQUAL(2u, messages_of(a1).size());  // the live event, then the original as its answer
  for (const FramePtr& f : messages_of(a1)) {
    rapidjson::Document d = json_of(f);
    CHECK_EQUAL(first, d["seq"].GetUint64());
    STRCMP_EQUAL("from 2", field(d, "text").c_str());
  }
  CHECK_EQUAL(engine.cid_seq("r", "alice", "race"), other.cid_seq("r", "alice", "race"));
}

TEST(ChatCidEngine, BeyondTheHistoryACidIsForgotten) {
  ChatEngine small{config_with_history(2)};
  Feed f{{&small}};
  RecPeer a = make_peer();
  small.attach("1-1", "alice", a);
  f(join_rec("r", "1-1", "alice"));
  const uint64_t first = f(cid_msg("r", "1-1", "alice", "old"));
  CHECK_EQUAL(first, small.cid_seq("r", "alice", "old"));
  f(msg_rec("r", "1-1", "x"));
  f(msg_rec("r", "1-1", "y"));  // "old" left the history of 2
  CHECK_EQUAL(0u, small.cid_seq("r", "alice", "old"));
  a->clear();
  const uint64_t again = f(cid_msg("r", "1-1", "alice", "old"));
  CHECK_EQUAL(1u, messages_of(a).size());
  CHECK_EQUAL(again, json_of(messages_of(a)[0])["seq"].GetUint64());
}

TEST(ChatCidEngine, DirectsAreDedupedPerFromToAndCid) {
  RecPeer a = make_peer(), a2 = make_peer(), b = make_peer();
  engine.attach("1-1", "alice", a);
  engine.attach("1-3", "alice", a2);
  engine.attach("1-2", "bob", b);
  feed(cid_direct("1-1", "alice", "bob", "d1", 5000));
  feed(cid_direct("1-3", "alice", "bob", "d1", 6000));  // a resend from alice's other tab
  feed(cid_direct("1-1", "alice", "carol", "d1", 7000));  // another recipient: another key
  CHECK_EQUAL(1u, b->count());
  CHECK_EQUAL(2u, a->count());   // both directs of its own
  CHECK_EQUAL(3u, a2->count());  // both, plus the original as the answer to its resend
  CHECK(a2->frames()[1] == b->frames()[0]);
  rapidjson::Document d = json_of(b->frames()[0]);
  CHECK_EQUAL(5000, d["ts"].GetInt64());
  STRCMP_EQUAL("d1", field(d, "cid").c_str());
  CHECK(engine.direct_original("alice", "bob", "d1") == b->frames()[0]);
  CHECK(engine.direct_original("alice", "bob", "d2") == nullptr);
  CHECK_EQUAL(1u, engine.stats().cid_duplicates);
  CHECK_EQUAL(2u, engine.stats().direct_cids);
}

TEST(ChatCidEngine, DirectWindowIsBounded) {
  RecPeer a = make_peer();
  engine.attach("1-1", "alice", a);
  for (size_t i = 0; i < kDirectCidWindow + 10; ++i) feed(cid_direct("1-1", "alice", "bob", std::to_string(i)));
  CHECK_EQUAL(kDirectCidWindow, engine.stats().direct_cids);
  CHECK(engine.direct_original("alice", "bob", "0") == nullptr);
  CHECK(engine.direct_original("alice", "bob", std::to_string(kDirectCidWindow + 9)) != nullptr);
}

TEST(ChatCidEngine, ApiKeysAreTheirOwnNamespace) {
  RecPeer a = make_peer();
  engine.attach("1-1", "alice", a);
  feed(join_rec("r", "1-1", "alice"));
  const uint64_t first = feed(api_cid("r", "k"));
  feed(api_cid("r", "k"));
  feed(cid_msg("r", "1-1", "alice", "k"));  // a member's cid never meets an API key
  CHECK_EQUAL(2u, messages_of(a).size());
  CHECK_EQUAL(first, engine.cid_seq("r", "", "k"));
}

TEST(ChatCidEngine, ConnectionAnswersAKnownDirectWithoutPublishing) {
  ChatConfig cfg;
  MemoryBus bus;
  ChatEngine e{cfg};
  uint64_t cursor = 0;
  auto pump = [&] {
    std::vector<BusRecord> out;
    bus.read(&cursor, out, 1000);
    for (const BusRecord& r : out) e.apply(r.seq, r.payload);
  };
  RecPeer pa = make_peer(), pb = make_peer();
  ChatConnection alice(cfg, bus, e, "1-1", "alice", true, pa, 1);
  ChatConnection bob(cfg, bus, e, "1-2", "bob", true, pb, 1);
  alice.open(1);
  bob.open(1);
  CHECK_FALSE(alice.on_text(R"({"type":"direct","to":"bob","text":"hi","cid":"x1"})", 2).reply);
  pump();
  const size_t records = bus.records.size();
  bob.close(3);  // bob is gone: a resend still gets the original, not no-such-user
  ChatConnection::Action again = alice.on_text(R"({"type":"direct","to":"bob","text":"hi","cid":"x1"})", 4);
  CHECK(again.reply != nullptr);
  STRCMP_EQUAL("direct", field(json_of(again.reply), "type").c_str());
  STRCMP_EQUAL("x1", field(json_of(again.reply), "cid").c_str());
  CHECK_EQUAL(records, bus.records.size());
  ChatConnection::Action bad = alice.on_text(R"({"type":"message","room":"r","text":"x","cid":""})", 5);
  STRCMP_EQUAL("bad-cid", field(json_of(bad.reply), "code").c_str());
}

TEST_GROUP(ChatCidPublishApi) {
  ChatConfig cfg;
  MemoryBus bus;
  ChatEngine engine{ChatConfig()};
  uint64_t cursor = 0;
  Idempotency idem;
  void setup() override {
    // The glue's wait for the engine, played by applying the bus inline.
    idem.original = [this](const std::string& room, const std::string& key, uint64_t upto) {
      std::vector<BusRecord> out;
      bus.read(&cursor, out, 1000);
      for (const BusRecord& r : out) {
        if (r.seq <= upto) engine.apply(r.seq, r.payload);
      }
      if (cursor > upto) cursor = upto;
      return engine.cid_seq(room, "", key);
    };
  }
  PublishResult post(const std::string& key, const std::string& body = R"({"room":"news","text":"x"})") {
    idem.key = key;
    return publish_from_http(body, bus, cfg, 777, &idem);
  }
};

TEST(ChatCidPublishApi, SameKeyAnswersTheOriginalWithoutPublishing) {
  const PublishResult first = post("deploy-42");
  CHECK_EQUAL(202, first.http_status);
  CHECK_FALSE(first.replay);
  STRCMP_EQUAL("deploy-42", bus.last().cid.c_str());
  const size_t records = bus.records.size();
  const PublishResult again = post("deploy-42");
  CHECK_EQUAL(202, again.http_status);
  CHECK_TRUE(again.replay);
  CHECK_EQUAL(first.seq, again.seq);
  CHECK_EQUAL(records, bus.records.size());
  STRCMP_EQUAL(("{\"seq\":" + std::to_string(first.seq) + ",\"replay\":true}").c_str(),
               publish_response_body(again).c_str());
  const PublishResult other_room = post("deploy-42", R"({"room":"ops","text":"x"})");
  CHECK_FALSE(other_room.replay);
  CHECK(other_room.seq != first.seq);
}

TEST(ChatCidPublishApi, ARaceLostOnTheBusAnswersTheWinner) {
  // Another child's publish with the same key got onto the bus first and
  // this engine has not applied it yet when the pre-check runs.
  bus.publish(api_cid("news", "k"));
  cursor = 0;
  idem.key = "k";
  auto late = idem.original;
  idem.original = [&](const std::string& room, const std::string& key, uint64_t upto) {
    return upto == bus.records.size() && bus.records.size() == 1 ? 0 : late(room, key, upto);
  };
  const PublishResult r = publish_from_http(R"({"room":"news","text":"x"})", bus, cfg, 1, &idem);
  CHECK_EQUAL(2u, bus.records.size());  // published (the pre-check did not know)...
  CHECK_TRUE(r.replay);                  // ...and answered with the winner
  CHECK_EQUAL(1u, r.seq);
}

TEST(ChatCidPublishApi, BadKeyIs400BadCid) {
  const PublishResult r = post("has space");
  CHECK_EQUAL(400, r.http_status);
  STRCMP_EQUAL("bad-cid", r.error.c_str());
  CHECK_EQUAL(0u, bus.records.size());
  CHECK_EQUAL(400, post(std::string(65, 'k')).http_status);
}

TEST_GROUP(ChatCidConcurrency){};

// The publish API's reads (cid_seq, direct_original) on request threads
// while the hub applies duplicates; run under -fsanitize=thread.
TEST(ChatCidConcurrency, QueriesRaceTheHub) {
  ChatEngine e{ChatConfig()};
  RecPeer a = make_peer();
  e.attach("1-1", "alice", a);
  e.apply(1, join_rec("r", "1-1", "alice"));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> seen{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (e.cid_seq("r", "alice", "c7") != 0) seen.fetch_add(1);
        e.direct_original("alice", "bob", "d7");
        e.stats();
      }
    });
  }
  uint64_t seq = 1;
  for (int i = 0; i < 300; ++i) {
    const std::string cid = "c" + std::to_string(i % 20);
    e.apply(++seq, cid_msg("r", "1-1", "alice", cid));
    e.apply(++seq, cid_direct("1-1", "alice", "bob", "d" + std::to_string(i % 20)));
  }
  stop.store(true);
  for (std::thread& t : readers) t.join();
  // 20 messages, each answered again to its sender 14 times; the same for directs.
  std::set<uint64_t> seqs;
  for (const FramePtr& f : messages_of(a)) seqs.insert(json_of(f)["seq"].GetUint64());
  CHECK_EQUAL(300u, messages_of(a).size());
  CHECK_EQUAL(20u, seqs.size());
  CHECK_EQUAL(560u, e.stats().cid_duplicates);
  CHECK_TRUE(seen.load() > 0 || e.cid_seq("r", "alice", "c7") != 0);
}
