// ChatConnection: validation, rate limit, records it publishes, close.
// The hub is played inline by pump(): bus records -> ChatEngine::apply.
#include <rapidjson/document.h>

#include <memory>
#include <string>
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

namespace {

std::string error_code(const ChatConnection::Action& a) {
  if (!a.reply) return "<no reply>";
  rapidjson::Document d = json_of(a.reply);
  CHECK_EQUAL(std::string("error"), field(d, "type"));
  return field(d, "code");
}

}  // namespace

TEST_GROUP(ChatConnection) {
  ChatConfig cfg;
  MemoryBus bus;
  std::unique_ptr<ChatEngine> engine;
  uint64_t cursor = 0;

  void setup() override { engine = std::make_unique<ChatEngine>(cfg); }

  // The hub thread's job, done inline.
  void pump() {
    std::vector<BusRecord> out;
    bus.read(&cursor, out, 1000);
    for (const BusRecord& r : out) engine->apply(r.seq, r.payload);
  }

  std::unique_ptr<ChatConnection> connect(const std::string& id, const std::string& name,
                                          bool fixed, std::shared_ptr<RecordingPeer>* peer) {
    *peer = std::make_shared<RecordingPeer>();
    auto c = std::make_unique<ChatConnection>(cfg, bus, *engine, id, name, fixed, *peer, 4242);
    c->open(1);
    return c;
  }
};

TEST(ChatConnection, OpenWelcomesWithRoomsAndAttaches) {
  std::shared_ptr<RecordingPeer> p1, p2;
  auto c1 = connect("4242-1", "alice", true, &p1);
  c1->on_text(R"({"type":"join","room":"lobby"})", 1);
  pump();
  auto p = std::make_shared<RecordingPeer>();
  ChatConnection c2(cfg, bus, *engine, "4242-2", "", false, p, 4242);
  rapidjson::Document w = json_of(c2.open(2));
  STRCMP_EQUAL("welcome", field(w, "type").c_str());
  STRCMP_EQUAL("guest-4242-2", field(w, "you").c_str());
  STRCMP_EQUAL("4242-2", field(w, "id").c_str());
  CHECK_EQUAL(4242, w["pid"].GetInt64());
  CHECK_EQUAL(1u, w["rooms"].Size());
  STRCMP_EQUAL("lobby", field(w["rooms"][0], "room").c_str());
  CHECK_EQUAL(1u, w["rooms"][0]["members"].GetUint64());
  CHECK_TRUE(engine->user_online("guest-4242-2"));
}

TEST(ChatConnection, JoinPublishesARecordAndTheEngineAnswers) {
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "", false, &p);
  const ChatConnection::Action a =
      c->on_text(R"({"type":"join","room":"lobby","name":"Zoë","since":7,"extra":true})", 1234);
  CHECK_FALSE(a.reply);
  CHECK_FALSE(a.close);
  const ChatRecord r = bus.last();
  CHECK(r.type == RecordType::Join);
  STRCMP_EQUAL("lobby", r.room.c_str());
  STRCMP_EQUAL("4242-1", r.conn.c_str());
  STRCMP_EQUAL("Zoë", r.name.c_str());
  STRCMP_EQUAL("Zoë", r.user.c_str());  // the first join's name is the user name
  CHECK_EQUAL(4242, r.pid);
  CHECK_EQUAL(1234, r.ts);
  CHECK_TRUE(r.has_since);
  CHECK_EQUAL(7u, r.since);
  STRCMP_EQUAL("Zoë", c->user_name().c_str());
  CHECK_TRUE(engine->user_online("Zoë"));
  pump();
  CHECK_EQUAL(3u, p->frames().size());
  STRCMP_EQUAL("Zoë", field(p->last_json(), "you").c_str());
}

TEST(ChatConnection, LaterJoinNamesAreOnlyRoomNames) {
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "", false, &p);
  c->on_text(R"({"type":"join","room":"a"})", 1);
  STRCMP_EQUAL("guest-4242-1", bus.last().user.c_str());
  c->on_text(R"({"type":"join","room":"b","name":"bob"})", 1);
  STRCMP_EQUAL("bob", bus.last().name.c_str());
  STRCMP_EQUAL("guest-4242-1", bus.last().user.c_str());
}

TEST(ChatConnection, TokenNameWinsOverJoinName) {
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "alice", true, &p);
  c->on_text(R"({"type":"join","room":"r","name":"mallory"})", 1);
  STRCMP_EQUAL("alice", bus.last().name.c_str());
  STRCMP_EQUAL("alice", bus.last().user.c_str());
  STRCMP_EQUAL("alice", c->user_name().c_str());
}

TEST(ChatConnection, MessageAndLeaveNeedMembership) {
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "amy", true, &p);
  CHECK_EQUAL(std::string("not-joined"),
              error_code(c->on_text(R"({"type":"message","room":"r","text":"x"})", 1)));
  CHECK_EQUAL(std::string("not-joined"), error_code(c->on_text(R"({"type":"leave","room":"r"})", 1)));
  CHECK_TRUE(bus.records.empty());
  c->on_text(R"({"type":"join","room":"r"})", 1);
  CHECK_EQUAL(std::string("already-joined"),
              error_code(c->on_text(R"({"type":"join","room":"r"})", 1)));
  pump();
  CHECK_FALSE(c->on_text(R"({"type":"message","room":"r","text":"hi"})", 5).reply);
  ChatRecord m = bus.last();
  CHECK(m.type == RecordType::Msg);
  STRCMP_EQUAL("hi", m.text.c_str());
  STRCMP_EQUAL("amy", m.from.c_str());  // the engine's name for us, as a hint
  CHECK_EQUAL(5, m.ts);
  CHECK_FALSE(c->on_text(R"({"type":"leave","room":"r"})", 6).reply);
  CHECK(bus.last().type == RecordType::Leave);
  CHECK_EQUAL(std::string("not-joined"),
              error_code(c->on_text(R"({"type":"message","room":"r","text":"x"})", 7)));
  pump();
  STRCMP_EQUAL("leave", field(p->last_json(), "event").c_str());
}

TEST(ChatConnection, RoomLimitPerConnection) {
  cfg.max_rooms_per_connection = 2;
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "amy", true, &p);
  c->on_text(R"({"type":"join","room":"a"})", 1);
  c->on_text(R"({"type":"join","room":"b"})", 1);
  const ChatConnection::Action a = c->on_text(R"({"type":"join","room":"c"})", 1);
  CHECK_EQUAL(std::string("too-many-rooms"), error_code(a));
  STRCMP_EQUAL("c", field(json_of(a.reply), "room").c_str());
  c->on_text(R"({"type":"leave","room":"a"})", 1);
  CHECK_FALSE(c->on_text(R"({"type":"join","room":"c"})", 1).reply);
}

TEST(ChatConnection, InvalidCommandsGetTheRightCode) {
  cfg.max_text_length = 5;
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "amy", true, &p);
  c->on_text(R"({"type":"join","room":"r"})", 1);
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "bad-json"},
      {"[1,2]", "bad-json"},
      {R"({"room":"r"})", "missing-field"},
      {R"({"type":null})", "bad-field"},
      {R"({"type":"shout"})", "unknown-type"},
      {R"({"type":"join","room":"no spaces"})", "bad-room"},
      {R"({"type":"join","room":{}})", "bad-field"},
      {R"({"type":"join","room":"x","name":" lead"})", "bad-name"},
      {R"({"type":"join","room":"x","since":-3})", "bad-field"},
      {R"({"type":"message","room":"r","text":"toolong"})", "too-long"},
      {R"({"type":"message","room":"r","text":""})", "bad-field"},
      {R"({"type":"message","room":"r","text":7})", "bad-field"},
      {R"({"type":"message","room":"r"})", "missing-field"},
      {R"({"type":"direct","to":"nobody","text":"hi"})", "no-such-user"},
      {R"({"type":"direct","to":"x#2","text":"hi"})", "bad-name"},
  };
  const size_t published = bus.records.size();
  for (const auto& tc : cases) {
    const ChatConnection::Action a = c->on_text(tc.first, 2);
    CHECK_EQUAL(std::string(tc.second), error_code(a));
    CHECK_FALSE(a.close);
  }
  CHECK_EQUAL(published, bus.records.size());
}

TEST(ChatConnection, DirectNeedsAnOnlineUser) {
  std::shared_ptr<RecordingPeer> pa, pb1, pb2;
  auto a = connect("4242-1", "amy", true, &pa);
  auto b1 = connect("4242-2", "bob", true, &pb1);
  auto b2 = connect("4242-3", "bob", true, &pb2);
  CHECK_FALSE(a->on_text(R"({"type":"direct","to":"bob","text":"hey"})", 9).reply);
  const ChatRecord r = bus.last();
  CHECK(r.type == RecordType::Direct);
  STRCMP_EQUAL("amy", r.from.c_str());
  STRCMP_EQUAL("bob", r.to.c_str());
  pump();
  CHECK_EQUAL(1u, pa->frames().size());
  CHECK_EQUAL(1u, pb1->frames().size());
  CHECK_EQUAL(1u, pb2->frames().size());
  STRCMP_EQUAL("hey", field(pb2->last_json(), "text").c_str());
  b1->close(10);
  b2->close(10);
  CHECK_EQUAL(std::string("no-such-user"),
              error_code(a->on_text(R"({"type":"direct","to":"bob","text":"hey"})", 11)));
}

TEST(ChatConnection, RateLimitThenStrikeClose) {
  cfg.rate_per_sec = 1;
  cfg.rate_burst = 2;
  cfg.rate_strikes = 3;
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "amy", true, &p);
  CHECK_FALSE(c->on_text(R"({"type":"join","room":"r"})", 0).reply);
  CHECK_FALSE(c->on_text(R"({"type":"message","room":"r","text":"1"})", 0).reply);
  ChatConnection::Action a = c->on_text(R"({"type":"message","room":"r","text":"2"})", 0);
  CHECK_EQUAL(std::string("rate-limited"), error_code(a));
  CHECK_FALSE(a.close);
  // Malformed frames cost a token too; leave does not.
  CHECK_EQUAL(std::string("rate-limited"), error_code(c->on_text("garbage", 0)));
  // A token comes back after a second: the strike count restarts.
  CHECK_FALSE(c->on_text(R"({"type":"message","room":"r","text":"3"})", 1000).reply);
  CHECK_EQUAL(std::string("rate-limited"),
              error_code(c->on_text(R"({"type":"direct","to":"amy","text":"x"})", 1000)));
  CHECK_EQUAL(std::string("rate-limited"),
              error_code(c->on_text(R"({"type":"join","room":"s"})", 1000)));
  a = c->on_text(R"({"type":"message","room":"r","text":"4"})", 1000);
  CHECK_EQUAL(std::string("rate-limited"), error_code(a));
  CHECK_TRUE(a.close);
  CHECK_EQUAL(1008, a.close_code);
  STRCMP_EQUAL("rate limit exceeded", a.close_reason.c_str());
}

TEST(ChatConnection, LeaveIsNeverRateLimited) {
  cfg.rate_per_sec = 0;
  cfg.rate_burst = 1;
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "amy", true, &p);
  c->on_text(R"({"type":"join","room":"r"})", 0);
  CHECK_EQUAL(std::string("rate-limited"),
              error_code(c->on_text(R"({"type":"message","room":"r","text":"x"})", 0)));
  CHECK_FALSE(c->on_text(R"({"type":"leave","room":"r"})", 0).reply);
  CHECK(bus.last().type == RecordType::Leave);
}

TEST(ChatConnection, CloseLeavesEveryRoomOnceAndDetaches) {
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "amy", true, &p);
  c->on_text(R"({"type":"join","room":"a"})", 1);
  c->on_text(R"({"type":"join","room":"b"})", 1);
  pump();
  c->close(50);
  CHECK_EQUAL(4u, bus.records.size());
  CHECK(bus.record(2).type == RecordType::Leave);
  CHECK(bus.record(3).type == RecordType::Leave);
  CHECK_EQUAL(50, bus.record(3).ts);
  c->close(60);
  c.reset();  // the destructor publishes nothing more
  CHECK_EQUAL(4u, bus.records.size());
  CHECK_EQUAL(0u, engine->stats().local_connections);
  pump();
  CHECK_TRUE(engine->room_list().empty());
  CHECK_FALSE(engine->user_online("amy"));
}

TEST(ChatConnection, LeavesRefusedAtCloseArePublishedOnceTheBusIsBack) {
  // A Redis outage while a client disconnects: its leaves wait in
  // PendingPublishes and the hub's tick publishes them later, in order.
  PendingPublishes pending;
  auto p = std::make_shared<RecordingPeer>();
  auto c = std::make_unique<ChatConnection>(cfg, bus, *engine, "4242-1", "amy", true, p, 4242, &pending);
  c->open(1);
  c->on_text(R"({"type":"join","room":"a"})", 1);
  c->on_text(R"({"type":"join","room":"b"})", 1);
  pump();
  bus.refuse = true;
  c->close(50);
  CHECK_EQUAL(2u, bus.records.size());
  CHECK_EQUAL(2u, pending.size());
  CHECK_EQUAL(0u, pending.retry(bus));  // still down: nothing lost, nothing published
  CHECK_EQUAL(2u, pending.size());
  bus.refuse = false;
  CHECK_EQUAL(2u, pending.retry(bus));
  CHECK_EQUAL(0u, pending.size());
  CHECK(bus.record(2).type == RecordType::Leave && bus.record(2).room == "a");
  CHECK(bus.record(3).type == RecordType::Leave && bus.record(3).room == "b");
  pump();
  CHECK_TRUE(engine->room_list().empty());
  CHECK_FALSE(engine->user_online("amy"));
}

TEST(ChatConnection, PendingPublishesAreBoundedDroppingTheOldest) {
  PendingPublishes pending(2);
  pending.add("one");
  pending.add("two");
  pending.add("three");
  CHECK_EQUAL(2u, pending.size());
  CHECK_EQUAL(1u, pending.dropped());
  CHECK_EQUAL(2u, pending.retry(bus));
  CHECK_EQUAL(std::string("two"), bus.records[0]);
  CHECK_EQUAL(std::string("three"), bus.records[1]);
}

TEST(ChatConnection, DestructorLeavesWhenCloseWasForgotten) {
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "amy", true, &p);
  c->on_text(R"({"type":"join","room":"a"})", 1);
  c.reset();
  CHECK(bus.last().type == RecordType::Leave);
  CHECK_EQUAL(0u, engine->stats().local_connections);
}

TEST(ChatConnection, BusRefusalIsReportedAndNotRemembered) {
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "amy", true, &p);
  bus.refuse = true;
  const ChatConnection::Action a = c->on_text(R"({"type":"join","room":"r"})", 1);
  CHECK_EQUAL(std::string("unavailable"), error_code(a));
  CHECK_TRUE(c->rooms().empty());
  bus.refuse = false;
  CHECK_FALSE(c->on_text(R"({"type":"join","room":"r"})", 1).reply);
  bus.refuse = true;
  CHECK_EQUAL(std::string("unavailable"), error_code(c->on_text(R"({"type":"leave","room":"r"})", 1)));
  CHECK_EQUAL(1u, c->rooms().size());  // close() will try the leave again
}

TEST(ChatConnection, NothingAfterClose) {
  std::shared_ptr<RecordingPeer> p;
  auto c = connect("4242-1", "amy", true, &p);
  c->close(1);
  const ChatConnection::Action a = c->on_text(R"({"type":"join","room":"r"})", 1);
  CHECK_FALSE(a.reply);
  CHECK_TRUE(bus.records.empty());
}
