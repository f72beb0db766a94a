// Late engines catching up on members they never saw join: "sync" requests
// and "present" answers (chat_record.h). Two engines, one that has read
// every record and one that started after the bus dropped the first ones.
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

TEST_GROUP(ChatEngineSync) {
  ChatEngine full{ChatConfig()};  // has read every record
  ChatEngine late{ChatConfig()};  // starts reading after `start`
  uint64_t seq = 0;
  bool late_reading = false;

  // One record on the bus: every engine that is reading applies it.
  uint64_t bus(const std::string& record) {
    ++seq;
    full.apply(seq, record);
    if (late_reading) late.apply(seq, record);
    return seq;
  }
  // The late engine starts: records 1..seq are gone from the bus.
  void start_late() {
    late.on_overrun(1, seq);
    late_reading = true;
  }
};

TEST(ChatEngineSync, ALateEngineLearnsSilentMembersFromTheAnswers) {
  RecPeer amy = make_peer(), bob = make_peer();
  full.attach("1-1", "amy", amy);
  bus(join_rec("r", "1-1", "amy", 1));
  for (int i = 0; i < 3; ++i) bus(api_rec("r", "news", "filler"));

  start_late();
  std::vector<std::string> asked = late.take_outbox();
  CHECK_EQUAL(1u, asked.size());  // a late start asks once
  ChatRecord sync;
  CHECK_TRUE(parse_record(asked[0], &sync));
  CHECK(sync.type == RecordType::Sync);
  const uint64_t sync_seq = bus(asked[0]);
  CHECK_TRUE(late.take_outbox().empty());  // nothing local to tell yet

  std::vector<std::string> answers = full.take_outbox();
  CHECK_EQUAL(1u, answers.size());
  ChatRecord present;
  CHECK_TRUE(parse_record(answers[0], &present));
  CHECK(present.type == RecordType::Present);
  CHECK_EQUAL(sync_seq, present.base);
  CHECK_EQUAL(1u, present.members.size());
  STRCMP_EQUAL("amy", present.members[0].name.c_str());

  // bob joins in the late process before the answer is on the bus: his
  // presence lacks amy, whom this process never saw join.
  late.attach("2-1", "bob", bob);
  bus(join_rec("r", "2-1", "bob", 2));
  CHECK(presence_members(bob->last_json()) == std::vector<std::string>{"bob"});
  CHECK_FALSE(late.user_online("amy"));

  const size_t full_frames = amy->count();
  bus(answers[0]);
  CHECK(presence_members(bob->last_json()) == (std::vector<std::string>{"bob", "amy"}));
  STRCMP_EQUAL("bob", field(bob->last_json(), "you").c_str());
  CHECK_TRUE(late.user_online("amy"));
  CHECK_EQUAL(full_frames, amy->count());  // the complete engine changed nothing

  bus(msg_rec("r", "1-1", "hello", 1));  // no name hint needed any more
  STRCMP_EQUAL("amy", field(bob->last_json(), "from").c_str());
}

TEST(ChatEngineSync, ALeaveAfterTheSnapshotIsNotUndoneByIt) {
  RecPeer amy = make_peer();
  full.attach("1-1", "amy", amy);
  bus(join_rec("r", "1-1", "amy", 1));
  start_late();
  bus(late.take_outbox().at(0));
  std::vector<std::string> answers = full.take_outbox();
  CHECK_EQUAL(1u, answers.size());
  // amy leaves after her process took the snapshot, before it is on the bus
  bus(leave_rec("r", "1-1"));
  bus(answers[0]);
  CHECK_FALSE(late.user_online("amy"));
  CHECK_TRUE(late.room_list().empty());
}

TEST(ChatEngineSync, ACompleteEngineIgnoresAnswers) {
  bus(present_rec(1, 1, {PresentMember{"r", "9-9", "ghost", "ghost", 9}}));
  CHECK_FALSE(full.user_online("ghost"));
  CHECK_TRUE(full.room_list().empty());
  CHECK_TRUE(full.take_outbox().empty());
}

TEST(ChatEngineSync, ManyMembersAreAnsweredInSeveralRecords) {
  std::vector<RecPeer> peers;
  for (int i = 0; i < 120; ++i) {
    peers.push_back(make_peer());
    const std::string conn = "1-" + std::to_string(i);
    full.attach(conn, "u" + std::to_string(i), peers.back());
    bus(join_rec("r", conn, "u" + std::to_string(i), 1));
  }
  start_late();
  bus(late.take_outbox().at(0));
  std::vector<std::string> answers = full.take_outbox();
  CHECK_EQUAL(3u, answers.size());  // 50 + 50 + 20
  for (const std::string& a : answers) bus(a);
  CHECK_EQUAL(1u, late.room_list().size());
  CHECK_EQUAL(120u, late.room_list()[0].members);
}

TEST(ChatEngineSync, OverrunsAskAtMostOncePerSpacing) {
  bus(api_rec("r", "news", "x"));
  full.on_overrun(2, 10);
  CHECK_EQUAL(1u, full.take_outbox().size());
  full.on_overrun(11, 20);  // soon after: no second request
  CHECK_TRUE(full.take_outbox().empty());
  full.on_overrun(21, 20000);
  CHECK_EQUAL(1u, full.take_outbox().size());
}

TEST(ChatEngineSync, RecordsRoundTripAndMalformedAnswersAreRefused) {
  ChatRecord back;
  CHECK_TRUE(parse_record(present_rec(42, 7, {PresentMember{"lobby", "1-1", "amy", "amy#2", 1}}), &back));
  CHECK(back.type == RecordType::Present);
  CHECK_EQUAL(42u, back.base);
  CHECK_EQUAL(1u, back.members.size());
  STRCMP_EQUAL("amy#2", back.members[0].name.c_str());
  CHECK_EQUAL(1, back.members[0].pid);
  CHECK_FALSE(parse_record(R"({"t":"present","ts":1,"members":[]})", &back));  // no base
  CHECK_FALSE(parse_record(R"({"t":"present","ts":1,"base":1,"members":{}})", &back));
  CHECK_FALSE(parse_record(
      R"({"t":"present","ts":1,"base":1,"members":[{"room":"r","user":"u","name":"n","pid":1}]})", &back));
  CHECK_FALSE(parse_record(
      R"({"t":"present","ts":1,"base":1,"members":[{"room":"bad room!","conn":"c","user":"u","name":"n","pid":1}]})",
      &back));
  CHECK_TRUE(parse_record(R"({"t":"sync","pid":3,"ts":1})", &back));
  CHECK(back.type == RecordType::Sync);
}
