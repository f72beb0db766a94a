// GRIP control messages (the JSON after "c:"): every type Pushpin 1.36
// knows, its defaults, and what is ignored.
#include <string>

#include "backend/grip_control.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

GripControl parsed(const std::string& json) {
  GripControl c;
  std::string error;
  CHECK_TRUE_TEXT(parse_grip_control(json, &c, &error), error.c_str());
  return c;
}

std::string ignored(const std::string& json) {
  GripControl c;
  std::string error;
  CHECK_FALSE(parse_grip_control(json, &c, &error));
  return error;
}

}  // namespace

TEST_GROUP(BackendGripControl){};

TEST(BackendGripControl, SubscribeAndUnsubscribe) {
  GripControl c = parsed(R"({"type":"subscribe","channel":"news"})");
  CHECK(c.type == GripControlType::Subscribe);
  STRCMP_EQUAL("news", c.channel.c_str());
  c = parsed(R"({"type":"subscribe","channel":"n","filters":["skip-self"]})");
  CHECK_EQUAL(1u, c.filters.size());
  c = parsed(R"({"type":"unsubscribe","channel":"news","extra":1})");
  CHECK(c.type == GripControlType::Unsubscribe);
  STRCMP_EQUAL("no string 'channel'", ignored(R"({"type":"subscribe"})").c_str());
  STRCMP_EQUAL("no string 'channel'", ignored(R"({"type":"subscribe","channel":5})").c_str());
  STRCMP_EQUAL("invalid channel name", ignored(R"({"type":"subscribe","channel":""})").c_str());
  STRCMP_EQUAL("invalid channel name",
               ignored(R"({"type":"subscribe","channel":"a\u0001b"})").c_str());
  ignored(R"({"type":"subscribe","channel":")" + std::string(257, 'c') + "\"}");
  parsed(R"({"type":"subscribe","channel":")" + std::string(256, 'c') + "\"}");
  ignored(R"({"type":"subscribe","channel":"n","filters":"x"})");
  ignored(R"({"type":"subscribe","channel":"n","filters":[1]})");
}

TEST(BackendGripControl, KeepAliveDefaultsAndForms) {
  GripControl c = parsed(R"({"type":"keep-alive","content":"{}","timeout":30})");
  CHECK(c.type == GripControlType::KeepAlive);
  CHECK_TRUE(c.has_content);
  CHECK(c.message_type == WsMessageType::Text);
  STRCMP_EQUAL("{}", c.content.c_str());
  CHECK_EQUAL(30, c.timeout_s);
  CHECK(c.mode == KeepAliveMode::Idle);
  c = parsed(R"({"type":"keep-alive","content":"x"})");
  CHECK_EQUAL(0, c.timeout_s);  // the caller applies the 55 s default
  c = parsed(R"({"type":"keep-alive","content":"x","mode":"interval","timeout":2.9})");
  CHECK(c.mode == KeepAliveMode::Interval);
  CHECK_EQUAL(2, c.timeout_s);
  c = parsed(R"({"type":"keep-alive","content":"x","mode":"whatever"})");
  CHECK(c.mode == KeepAliveMode::Idle);
  c = parsed(R"({"type":"keep-alive"})");
  CHECK_FALSE(c.has_content);  // keep-alives off
}

TEST(BackendGripControl, KeepAliveMessageTypes) {
  GripControl c = parsed(R"({"type":"keep-alive","content-bin":"AAE="})");
  CHECK(c.message_type == WsMessageType::Binary);  // Pushpin: text (docs/backend.md)
  CHECK(c.content == std::string("\0\1", 2));
  c = parsed(R"({"type":"keep-alive","content-bin":"aGk=","message-type":"text"})");
  CHECK(c.message_type == WsMessageType::Text);
  STRCMP_EQUAL("hi", c.content.c_str());
  c = parsed(R"({"type":"keep-alive","content":"p","message-type":"ping"})");
  CHECK(c.message_type == WsMessageType::Ping);
  c = parsed(R"({"type":"keep-alive","content":"","message-type":"pong"})");
  CHECK(c.message_type == WsMessageType::Pong);
  CHECK_TRUE(c.has_content);
  STRCMP_EQUAL("bad 'message-type'",
               ignored(R"({"type":"keep-alive","content":"x","message-type":"close"})").c_str());
  STRCMP_EQUAL("'content-bin' is not base64",
               ignored(R"({"type":"keep-alive","content-bin":"*"})").c_str());
  STRCMP_EQUAL(
      "text content is not UTF-8",
      ignored(R"({"type":"keep-alive","content-bin":"/w==","message-type":"text"})").c_str());
  STRCMP_EQUAL("ping/pong content over 125 bytes",
               ignored(R"({"type":"keep-alive","message-type":"ping","content":")" +
                       std::string(126, 'p') + "\"}")
                   .c_str());
  ignored(R"({"type":"keep-alive","content":7})");
  ignored(R"({"type":"keep-alive","content":"x","timeout":-1})");
  ignored(R"({"type":"keep-alive","content":"x","timeout":"30"})");
  ignored(R"({"type":"keep-alive","content":"x","timeout":86401})");
  ignored(R"({"type":"keep-alive","content":"x","mode":1})");
}

TEST(BackendGripControl, SetMetaSessionDetach) {
  GripControl c = parsed(R"({"type":"set-meta","name":"user","value":"alice"})");
  CHECK(c.type == GripControlType::SetMeta);
  STRCMP_EQUAL("user", c.name.c_str());
  CHECK_TRUE(c.has_value);
  c = parsed(R"({"type":"set-meta","name":"user"})");
  CHECK_FALSE(c.has_value);  // delete
  ignored(R"({"type":"set-meta","name":""})");
  ignored(R"({"type":"set-meta","value":"x"})");
  ignored(R"({"type":"set-meta","name":"a","value":1})");
  c = parsed(R"({"type":"session","id":"s1"})");
  CHECK(c.type == GripControlType::Session);
  STRCMP_EQUAL("s1", c.session_id.c_str());
  c = parsed(R"({"type":"session"})");
  CHECK_TRUE(c.session_id.empty());
  CHECK(parsed(R"({"type":"detach"})").type == GripControlType::Detach);
}

TEST(BackendGripControl, DelayedSend) {
  GripControl c = parsed(R"({"type":"send-delayed","content":"later","timeout":3})");
  CHECK(c.type == GripControlType::SendDelayed);
  STRCMP_EQUAL("later", c.content.c_str());
  CHECK_EQUAL(3, c.timeout_s);
  CHECK(parsed(R"({"type":"flush-delayed"})").type == GripControlType::FlushDelayed);
}

TEST(BackendGripControl, IgnoredAsPushpinIgnoresThem) {
  STRCMP_EQUAL("not valid JSON", ignored("not json").c_str());
  STRCMP_EQUAL("not valid JSON", ignored("").c_str());
  STRCMP_EQUAL("not a JSON object", ignored("[]").c_str());
  STRCMP_EQUAL("no string 'type'", ignored("{}").c_str());
  STRCMP_EQUAL("no string 'type'", ignored(R"({"type":1})").c_str());
  STRCMP_EQUAL("unknown type", ignored(R"({"type":"nope"})").c_str());
  STRCMP_EQUAL("unknown type",
               ignored(R"({"type":"close"})").c_str());  // there is no close control
  STRCMP_EQUAL("not valid JSON", ignored("{\"type\":\"detach\"} x").c_str());
  STRCMP_EQUAL("not valid JSON", ignored("{\"type\":\"\xff\"}").c_str());
}
