// Client frames of the Pusher protocol -> commands, and the error table.
// The accepted frames are the ones pusher-js 8 sends (JSON.stringify of
// {event, data, channel?}, see its channel.ts and user.ts).
#include <string>

#include "pusher/pusher_protocol.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

PusherCommand cmd;
PusherError err;

bool parse(const std::string& text, const ParseLimits& limits = ParseLimits()) {
  return parse_client_frame(text, limits, &cmd, &err);
}

// A refusal that keeps the connection and carries "code": null.
void check_soft_error(const std::string& text, const char* message_start,
                      const ParseLimits& limits = ParseLimits()) {
  CHECK_FALSE_TEXT(parse(text, limits), text.c_str());
  CHECK_TEXT(err.message.find(message_start) == 0, (text + " -> " + err.message).c_str());
  LONGS_EQUAL(0, err.code);
  LONGS_EQUAL(0, err.close_code);
}

}  // namespace

TEST_GROUP(PusherProtocol){};

TEST(PusherProtocol, SubscribeAsPusherJsSendsIt) {
  CHECK_TRUE(parse(R"({"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}})"));
  CHECK(cmd.type == PusherCommandType::Subscribe);
  STRCMP_EQUAL("my-channel", cmd.channel.c_str());
  STRCMP_EQUAL("", cmd.auth.c_str());
  STRCMP_EQUAL("", cmd.channel_data.c_str());

  CHECK_TRUE(parse(R"({"event":"pusher:subscribe","data":{"auth":"k:abc",)"
                   R"("channel_data":"{\"user_id\":\"1\"}","channel":"presence-x"}})"));
  STRCMP_EQUAL("presence-x", cmd.channel.c_str());
  STRCMP_EQUAL("k:abc", cmd.auth.c_str());
  STRCMP_EQUAL(R"({"user_id":"1"})", cmd.channel_data.c_str());
}

TEST(PusherProtocol, DataMayBeAJsonEncodedString) {
  CHECK_TRUE(parse(R"({"event":"pusher:subscribe","data":"{\"channel\":\"private-a\",\"auth\":\"k:1\"}"})"));
  CHECK(cmd.type == PusherCommandType::Subscribe);
  STRCMP_EQUAL("private-a", cmd.channel.c_str());
  STRCMP_EQUAL("k:1", cmd.auth.c_str());
  CHECK_TRUE(parse(R"({"event":"pusher:unsubscribe","data":"{\"channel\":\"a\"}"})"));
  CHECK(cmd.type == PusherCommandType::Unsubscribe);
  STRCMP_EQUAL("a", cmd.channel.c_str());
}

TEST(PusherProtocol, NullMeansAbsentForOptionalFields) {
  CHECK_TRUE(parse(
      R"({"event":"pusher:subscribe","data":{"channel":"a","auth":null,"channel_data":null}})"));
  STRCMP_EQUAL("", cmd.auth.c_str());
  STRCMP_EQUAL("", cmd.channel_data.c_str());
}

TEST(PusherProtocol, StrictOnTypes) {
  check_soft_error(R"({"event":"pusher:subscribe","data":{"channel":5}})", "Invalid data");
  check_soft_error(R"({"event":"pusher:subscribe","data":{"channel":null}})", "Invalid data");
  check_soft_error(R"({"event":"pusher:subscribe","data":{}})", "Invalid data");
  check_soft_error(R"({"event":"pusher:subscribe","data":{"channel":"a","auth":1}})",
                   "Invalid data: data.auth");
  // channel_data is signed as a string; an object cannot be checked.
  check_soft_error(R"({"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:1",)"
                   R"("channel_data":{"user_id":"1"}}})",
                   "Invalid data: data.channel_data");
  check_soft_error(R"({"event":"pusher:subscribe"})", "Invalid data");
  check_soft_error(R"({"event":"pusher:subscribe","data":["a"]})", "Invalid data");
  check_soft_error(R"({"event":"pusher:subscribe","data":"not json"})", "Invalid data");
  check_soft_error(R"({"event":"pusher:subscribe","data":"[1]"})", "Invalid data");
  check_soft_error(R"({"event":"pusher:subscribe","data":7})", "Invalid data");
  check_soft_error(R"({"event":"pusher:unsubscribe","data":{}})", "Invalid data");
}

TEST(PusherProtocol, PingAndPong) {
  CHECK_TRUE(parse(R"({"event":"pusher:ping","data":{}})"));
  CHECK(cmd.type == PusherCommandType::Ping);
  CHECK_TRUE(parse(R"({"event":"pusher:ping"})"));
  CHECK(cmd.type == PusherCommandType::Ping);
  CHECK_TRUE(parse(R"({"event":"pusher:pong","data":"{}"})"));
  CHECK(cmd.type == PusherCommandType::Pong);
}

TEST(PusherProtocol, Signin) {
  CHECK_TRUE(parse(R"({"event":"pusher:signin","data":{"auth":"k:ab","user_data":"{\"id\":\"1\"}"}})"));
  CHECK(cmd.type == PusherCommandType::Signin);
  STRCMP_EQUAL("k:ab", cmd.auth.c_str());
  STRCMP_EQUAL(R"({"id":"1"})", cmd.user_data.c_str());
  check_soft_error(R"({"event":"pusher:signin","data":{"auth":"k:ab"}})", "Invalid data: data.user_data");
  check_soft_error(R"({"event":"pusher:signin","data":{"auth":"k:ab","user_data":{"id":"1"}}})",
                   "Invalid data: data.user_data");
  check_soft_error(R"({"event":"pusher:signin","data":{"user_data":"{}"}})", "Invalid data: data.auth");
}

TEST(PusherProtocol, ClientEventDataIsRelayedAsAString) {
  CHECK_TRUE(parse(R"({"event":"client-typing","data":{"id":123,"name":"Joe"},"channel":"private-chat"})"));
  CHECK(cmd.type == PusherCommandType::ClientEvent);
  STRCMP_EQUAL("client-typing", cmd.event.c_str());
  STRCMP_EQUAL("private-chat", cmd.channel.c_str());
  STRCMP_EQUAL(R"({"id":123,"name":"Joe"})", cmd.data.c_str());
  STRCMP_EQUAL(R"({"id":123,"name":"Joe"})", cmd.data_json.c_str());

  CHECK_TRUE(parse(R"({"event":"client-x","data":"hello \"you\"","channel":"presence-a"})"));
  STRCMP_EQUAL("hello \"you\"", cmd.data.c_str());
  STRCMP_EQUAL(R"("hello \"you\"")", cmd.data_json.c_str());

  CHECK_TRUE(parse(R"({"event":"client-x","data":[1,2.5,null,true],"channel":"private-encrypted-a"})"));
  STRCMP_EQUAL("[1,2.5,null,true]", cmd.data.c_str());

  CHECK_TRUE(parse(R"({"event":"client-x","channel":"private-cache-a"})"));
  STRCMP_EQUAL("", cmd.data.c_str());
  STRCMP_EQUAL("", cmd.data_json.c_str());
}

TEST(PusherProtocol, ClientEventRules) {
  // Public, cache and user channels take no client events.
  check_soft_error(R"({"event":"client-x","data":{},"channel":"public"})", "Client events are only");
  LONGS_EQUAL(0, err.code);
  STRCMP_EQUAL("public", err.channel.c_str());
  check_soft_error(R"({"event":"client-x","data":{},"channel":"cache-a"})", "Client events are only");
  check_soft_error(R"({"event":"client-x","data":{},"channel":"#server-to-user-1"})",
                   "Client events are only");
  check_soft_error(R"({"event":"client-x","data":{},"channel":"private a"})", "Invalid channel name");
  check_soft_error(R"({"event":"client-x","data":{}})", "Invalid data");
  check_soft_error(R"({"event":"client-x","data":{},"channel":1})", "Invalid data");

  ParseLimits limits;
  limits.max_client_data = 10;
  CHECK_TRUE(parse(R"({"event":"client-x","data":"0123456789","channel":"private-a"})", limits));
  check_soft_error(R"({"event":"client-x","data":"0123456789a","channel":"private-a"})",
                   "Client event too large", limits);
  // The limit counts the relayed string, not its JSON quotes.
  limits.max_client_data = 8;
  CHECK_TRUE(parse(R"({"event":"client-x","data":"01234567","channel":"private-a"})", limits));
  const std::string name200 = "client-" + std::string(193, 'n');
  CHECK_TRUE(parse(R"({"event":")" + name200 + R"(","channel":"private-a"})"));
  check_soft_error(R"({"event":")" + name200 + R"(n","channel":"private-a"})",
                   "Client event too large");
}

TEST(PusherProtocol, MalformedFramesKeepTheConnection) {
  check_soft_error("", "Invalid message");
  check_soft_error("not json", "Invalid message");
  check_soft_error("[1,2]", "Invalid message");
  check_soft_error(R"("pusher:ping")", "Invalid message");
  check_soft_error(R"({"data":{}})", "Invalid message");
  check_soft_error(R"({"event":5})", "Invalid message");
  check_soft_error(R"({"event":"pusher:ping"} trailing)", "Invalid message");
  check_soft_error("{\"event\":\"client-x\",\"channel\":\"private-a\",\"data\":\"\xC3\"}",
                   "Invalid message");
}

TEST(PusherProtocol, DeepNestingIsRefusedNotRecursed) {
  std::string deep = R"({"event":"client-x","channel":"private-a","data":)";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}";
  check_soft_error(deep, "Invalid message");
  // Brackets inside strings do not count.
  CHECK_TRUE(parse(R"({"event":"client-x","channel":"private-a","data":")" + std::string(500, '[') +
                   R"("})"));
}

TEST(PusherProtocol, UnknownEvents) {
  check_soft_error(R"({"event":"pusher:bogus","data":{}})", "Unsupported event: pusher:bogus");
  check_soft_error(R"({"event":"my-event","data":{}})", "Unsupported event: my-event");
  check_soft_error(R"({"event":"pusher_internal:member_added","data":{}})", "Unsupported event");
  check_soft_error(R"({"event":")" + std::string(300, 'e') + R"("})", "Unsupported event: (long name)");
}

TEST(PusherProtocol, ErrorTable) {
  struct Row {
    ErrorKind kind;
    int code, close;
  };
  const Row rows[] = {
      {ErrorKind::RateLimited, 4301, 0},     {ErrorKind::SigninRejected, 4009, 4009},
      {ErrorKind::SigninTimeout, 4009, 4009}, {ErrorKind::AppNotFound, 4001, 4001},
      {ErrorKind::AppDisabled, 4003, 4003},  {ErrorKind::OverQuota, 4004, 4004},
      {ErrorKind::UnsupportedProtocol, 4007, 4007}, {ErrorKind::NoProtocol, 4008, 4008},
      {ErrorKind::Unauthorized, 4009, 4009}, {ErrorKind::OverCapacity, 4100, 4100},
      {ErrorKind::GoingAway, 4200, 4200},    {ErrorKind::PongTimeout, 4201, 4201},
      {ErrorKind::NotSubscribed, 0, 0},      {ErrorKind::ClientEventsDisabled, 0, 0},
  };
  for (const Row& r : rows) {
    const PusherError e = make_error(r.kind);
    LONGS_EQUAL_TEXT(r.code, e.code, e.message.c_str());
    LONGS_EQUAL_TEXT(r.close, e.close_code, e.message.c_str());
    CHECK_FALSE(e.message.empty());
    // A close reason must fit a control frame (123 bytes after the code).
    CHECK(e.message.size() <= 123);
  }
  const PusherError e = make_error(ErrorKind::NotSubscribed, "private-a", "private-a");
  STRCMP_EQUAL("Not subscribed to this channel: private-a", e.message.c_str());
  STRCMP_EQUAL("private-a", e.channel.c_str());
}

TEST(PusherProtocol, ProtocolVersion) {
  PusherError e;
  CHECK_TRUE(check_protocol_version(true, "7", &e));
  CHECK_TRUE(check_protocol_version(true, "5", &e));
  CHECK_FALSE(check_protocol_version(false, "", &e));
  LONGS_EQUAL(4008, e.close_code);
  CHECK_FALSE(check_protocol_version(true, "4", &e));
  LONGS_EQUAL(4007, e.close_code);
  CHECK_FALSE(check_protocol_version(true, "8", &e));
  CHECK_FALSE(check_protocol_version(true, "7.0", &e));
  CHECK_FALSE(check_protocol_version(true, "", &e));
}
