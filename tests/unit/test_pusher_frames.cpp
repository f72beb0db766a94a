// Server frames of the Pusher protocol, byte for byte. What matters to
// clients is where "data" is a JSON-encoded string and where an object
// (pusher-js parses both, pusher-websocket-java/swift do not); the expected
// shapes follow the protocol page and what soketi 1.x sends.
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "pusher/pusher_protocol.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

// The "data" member of a frame decoded the way pusher-js decodes it: a
// string is parsed again as JSON.
std::string inner_data(const std::string& frame) {
  rapidjson::Document doc;
  doc.Parse(frame.c_str());
  CHECK_FALSE(doc.HasParseError());
  const auto& data = doc["data"];
  CHECK_TRUE(data.IsString());
  return std::string(data.GetString(), data.GetStringLength());
}

}  // namespace

TEST_GROUP(PusherFrames){};

TEST(PusherFrames, ConnectionEstablishedCarriesAStringHash) {
  const std::string f = render_connection_established("123.456", 120);
  STRCMP_EQUAL(
      R"({"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"})",
      f.c_str());
  STRCMP_EQUAL(R"({"socket_id":"123.456","activity_timeout":120})", inner_data(f).c_str());
}

TEST(PusherFrames, PingPong) {
  STRCMP_EQUAL(R"({"event":"pusher:pong","data":{}})", render_pong().c_str());
  STRCMP_EQUAL(R"({"event":"pusher:ping","data":{}})", render_ping().c_str());
}

TEST(PusherFrames, ErrorDataIsAnObject) {
  STRCMP_EQUAL(R"({"event":"pusher:error","data":{"code":4201,"message":"Pong reply not received"}})",
               render_error(make_error(ErrorKind::PongTimeout)).c_str());
  // Per-message errors carry "code": null, like Pusher's own.
  STRCMP_EQUAL(
      R"({"event":"pusher:error","channel":"public","data":{"code":null,"message":"Client events are only accepted on private, encrypted and presence channels"}})",
      render_error(make_error(ErrorKind::ClientEventRejected, {}, "public")).c_str());
}

TEST(PusherFrames, SubscriptionSucceeded) {
  STRCMP_EQUAL(
      R"({"event":"pusher_internal:subscription_succeeded","channel":"my-channel","data":"{}"})",
      render_subscription_succeeded("my-channel").c_str());
}

TEST(PusherFrames, PresenceSubscriptionSucceeded) {
  const std::vector<PresenceMember> members = {
      {"11814b369700141b222a3f3791cec2d9", R"({"name":"Phil Leggetter","twitter":"@leggetter"})"},
      {"10", "null"},
  };
  const std::string f = render_presence_subscription_succeeded("presence-example-channel", members);
  STRCMP_EQUAL(
      R"({"presence":{"ids":["11814b369700141b222a3f3791cec2d9","10"],"hash":{"11814b369700141b222a3f3791cec2d9":{"name":"Phil Leggetter","twitter":"@leggetter"},"10":null},"count":2}})",
      inner_data(f).c_str());
  CHECK(f.find(R"("event":"pusher_internal:subscription_succeeded","channel":"presence-example-channel")") !=
        std::string::npos);
  STRCMP_EQUAL(R"({"presence":{"ids":[],"hash":{},"count":0}})",
               inner_data(render_presence_subscription_succeeded("presence-a", {})).c_str());
}

TEST(PusherFrames, SubscriptionErrorAsPusherJsEmitsIt) {
  STRCMP_EQUAL(
      R"({"event":"pusher:subscription_error","channel":"private-a","data":{"type":"AuthError","error":"Invalid signature","status":401}})",
      render_subscription_error("private-a", "AuthError", "Invalid signature", 401).c_str());
}

TEST(PusherFrames, Members) {
  const std::string added =
      render_member_added("presence-a", PresenceMember{"u\"1", R"({"name":"Zo\u00eb"})"});
  STRCMP_EQUAL(
      R"({"event":"pusher_internal:member_added","channel":"presence-a","data":"{\"user_id\":\"u\\\"1\",\"user_info\":{\"name\":\"Zo\\u00eb\"}}"})",
      added.c_str());
  STRCMP_EQUAL(R"({"user_id":"u\"1","user_info":{"name":"Zo\u00eb"}})", inner_data(added).c_str());
  STRCMP_EQUAL(
      R"({"event":"pusher_internal:member_removed","channel":"presence-a","data":"{\"user_id\":\"7\"}"})",
      render_member_removed("presence-a", "7").c_str());
}

TEST(PusherFrames, CacheMissAndSignin) {
  STRCMP_EQUAL(R"({"event":"pusher:cache_miss","channel":"cache-a"})",
               render_cache_miss("cache-a").c_str());
  // user_data stays the string the client signed (pusher-js JSON.parses it).
  STRCMP_EQUAL(R"({"event":"pusher:signin_success","data":{"user_data":"{\"id\":\"1\"}"}})",
               render_signin_success(R"({"id":"1"})").c_str());
}

TEST(PusherFrames, ChannelEvents) {
  STRCMP_EQUAL(R"({"event":"my-event","channel":"my-channel","data":"{\"message\":\"hello world\"}"})",
               render_channel_event("my-event", "my-channel", R"({"message":"hello world"})").c_str());
  // Client events on presence channels name their sender.
  STRCMP_EQUAL(R"({"event":"client-msg","channel":"presence-chat","data":"hi","user_id":"42"})",
               render_channel_event("client-msg", "presence-chat", "hi", "42").c_str());
  // Control characters and non-ASCII survive as valid JSON.
  const std::string f = render_channel_event("e", "c", std::string("a\0b\n\xC3\xA9", 5));
  rapidjson::Document doc;
  doc.Parse(f.c_str(), f.size());
  CHECK_FALSE(doc.HasParseError());
  LONGS_EQUAL(5, doc["data"].GetStringLength());
}
