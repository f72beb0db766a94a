// Bus identity in the chat (docs/chat-protocol.md, "Resume after a
// reconnect"): the welcome names the bus, and a join's since counts only
// with this bus's id.
// ChatConnection + ChatEngine over MemoryBus, the hub played by pump().
#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <vector>

#include "chat/chat_connection.h"
#include "chat/chat_engine.h"
#include "chat/chat_record.h"
#include "runtime/bus_id.h"

#include "chat_test_support.h"  // last: CppUTest redefines new

using namespace wsb;
using namespace wsb_test;

TEST_GROUP(ChatBusId) {
  ChatConfig cfg;
  MemoryBus bus;
  std::unique_ptr<ChatEngine> engine;
  uint64_t cursor = 0;
  int next_conn = 1;
  // Kept open for the whole test: a closed connection publishes its leaves.
  std::vector<std::unique_ptr<ChatConnection>> open_conns;

  void setup() override { engine = std::make_unique<ChatEngine>(cfg); }

  void pump() {
    std::vector<BusRecord> out;
    bus.read(&cursor, out, 1000);
    for (const BusRecord& r : out) engine->apply(r.seq, r.payload);
  }

  std::unique_ptr<ChatConnection> connect(RecPeer* peer, rapidjson::Document* welcome = nullptr) {
    *peer = make_peer();
    auto c = std::make_unique<ChatConnection>(cfg, bus, *engine, "4242-" + std::to_string(next_conn++),
                                              "", false, *peer, 4242);
    FramePtr w = c->open(1);
    if (welcome) *welcome = json_of(w);
    return c;
  }

  // Six messages in room r (seq 2..7 after the talker's join at 1).
  void talk() {
    RecPeer p;
    ChatConnection* c = open_conns.emplace_back(connect(&p)).get();
    c->on_text(R"({"type":"join","room":"r"})", 1);
    for (int i = 0; i < 6; ++i) c->on_text(R"({"type":"message","room":"r","text":"m"})", 2);
    pump();
  }

  // The history frame a fresh connection gets for this join.
  rapidjson::Document resume(const std::string& join_json) {
    RecPeer p;
    ChatConnection* c = open_conns.emplace_back(connect(&p)).get();
    const ChatConnection::Action a = c->on_text(join_json, 3);
    CHECK_FALSE(a.reply);
    pump();
    rapidjson::Document h = json_of(p->frames().at(0));
    STRCMP_EQUAL("history", field(h, "type").c_str());
    return h;
  }

  static std::vector<uint64_t> seqs(const rapidjson::Document& h) {
    std::vector<uint64_t> v;
    for (const auto& m : h["messages"].GetArray()) v.push_back(m["seq"].GetUint64());
    return v;
  }
};

TEST(ChatBusId, WelcomeNamesTheBus) {
  RecPeer p;
  rapidjson::Document w;
  auto c = connect(&p, &w);
  STRCMP_EQUAL("00c0ffee00c0ffee", field(w, "bus").c_str());
  bus.set_id("");  // unknown (Redis unreachable): no field at all
  auto c2 = connect(&p, &w);
  CHECK_FALSE(w.HasMember("bus"));
}

TEST(ChatBusId, SameBusResumesExactly) {
  talk();
  const rapidjson::Document h = resume(R"({"type":"join","room":"r","since":4,"bus":"00c0ffee00c0ffee"})");
  CHECK(seqs(h) == (std::vector<uint64_t>{5, 6, 7}));
  CHECK_TRUE(h["complete"].GetBool());
  // Case does not matter: it is a number in hex.
  const rapidjson::Document upper = resume(R"({"type":"join","room":"r","since":7,"bus":"00C0FFEE00C0FFEE"})");
  CHECK(seqs(upper) == (std::vector<uint64_t>{8}));  // the previous resumer's join
  CHECK_TRUE(upper["complete"].GetBool());
}

TEST(ChatBusId, NoBusFieldKeepsTheOldRule) {
  talk();
  const rapidjson::Document h = resume(R"({"type":"join","room":"r","since":4})");
  CHECK(seqs(h) == (std::vector<uint64_t>{5, 6, 7}));
  CHECK_TRUE(h["complete"].GetBool());
}

TEST(ChatBusId, ForeignBusGetsEverythingKeptAndIncomplete) {
  talk();
  // The client saw seq 4 of another bus (before a hard restart): this bus's
  // 1..4 are not what it saw.
  const size_t before = bus.records.size();
  const rapidjson::Document h = resume(R"({"type":"join","room":"r","since":4,"bus":"0123456789abcdef"})");
  CHECK(seqs(h) == (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7}));
  CHECK_FALSE(h["complete"].GetBool());
  // The record names no since, so an engine of an older build cannot use it.
  const ChatRecord r = bus.record(before);
  CHECK_FALSE(r.has_since);
  CHECK_TRUE(r.foreign_since);
}

TEST(ChatBusId, UnknownOwnIdCountsAsForeign) {
  talk();
  bus.set_id("");
  const rapidjson::Document h = resume(R"({"type":"join","room":"r","since":4,"bus":"00c0ffee00c0ffee"})");
  CHECK(seqs(h) == (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7}));
  CHECK_FALSE(h["complete"].GetBool());
}

TEST(ChatBusId, BusWithoutSinceChangesNothing) {
  talk();
  const rapidjson::Document h = resume(R"({"type":"join","room":"r","bus":"0123456789abcdef"})");
  CHECK_EQUAL(7u, h["messages"].Size());
  CHECK_TRUE(h["complete"].GetBool());
}

TEST(ChatBusId, MalformedBusIsBadField) {
  RecPeer p;
  auto c = connect(&p);
  const char* cases[] = {
      R"({"type":"join","room":"r","since":1,"bus":"00c0ffee00c0ffe"})",    // 15 digits
      R"({"type":"join","room":"r","since":1,"bus":"00c0ffee00c0ffee0"})",  // 17
      R"({"type":"join","room":"r","since":1,"bus":"00c0ffee00c0ffeg"})",   // not hex
      R"({"type":"join","room":"r","since":1,"bus":" 0c0ffee00c0ffee"})",
      R"({"type":"join","room":"r","since":1,"bus":""})",
      R"({"type":"join","room":"r","since":1,"bus":12648430})",
      R"({"type":"join","room":"r","since":1,"bus":null})",
  };
  for (const char* json : cases) {
    const ChatConnection::Action a = c->on_text(json, 2);
    CHECK_TEXT(a.reply != nullptr, json);
    rapidjson::Document d = json_of(a.reply);
    STRCMP_EQUAL_TEXT("bad-field", field(d, "code").c_str(), json);
  }
  CHECK_EQUAL(0u, bus.records.size());
}

TEST(ChatBusId, ForeignFlagSurvivesTheRecordFormat) {
  ChatRecord r;
  r.type = RecordType::Join;
  r.room = "r", r.conn = "1-1", r.user = r.name = "a", r.pid = 1, r.ts = 5;
  r.foreign_since = true;
  ChatRecord back;
  CHECK_TRUE(parse_record(encode_record(r), &back));
  CHECK_TRUE(back.foreign_since);
  CHECK_FALSE(back.has_since);
  r.foreign_since = false;
  CHECK_TRUE(parse_record(encode_record(r), &back));
  CHECK_FALSE(back.foreign_since);
  CHECK_FALSE(parse_record(
      R"({"t":"join","room":"r","conn":"1-1","user":"a","name":"a","pid":1,"ts":5,"foreign":1})", &back));
}

TEST(ChatBusId, Helpers) {
  const std::string a = format_bus_id(random_bus_id()), b = format_bus_id(random_bus_id());
  CHECK_EQUAL(16u, a.size());
  CHECK_TRUE(is_valid_bus_id(a));
  CHECK(a != b);
  STRCMP_EQUAL("00000000000000ff", format_bus_id(255).c_str());
  CHECK_TRUE(same_bus_id("00000000000000FF", "00000000000000ff"));
  CHECK_FALSE(same_bus_id("00000000000000fe", "00000000000000ff"));
  CHECK_FALSE(same_bus_id("", ""));
  CHECK_FALSE(is_valid_bus_id("0x000000000000ff"));
}
