// pusher:subscribe and pusher:signin decisions, fed with the auths the
// official `pusher` npm library (pusher-http-node 5.3.4) produced; see
// test_pusher_auth.cpp for how those vectors were made.
#include <string>

#include "pusher/pusher_auth.h"
#include "pusher/pusher_subscribe.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

const char kKey[] = "278d425bdf160c739803";
const char kSecret[] = "7ad3773142a6692b25b8";

PusherCommand subscribe(const std::string& channel, const std::string& auth = "",
                        const std::string& channel_data = "") {
  PusherCommand c;
  c.type = PusherCommandType::Subscribe;
  c.channel = channel;
  c.auth = auth;
  c.channel_data = channel_data;
  return c;
}

PusherCommand signin(const std::string& user_data, const std::string& auth) {
  PusherCommand c;
  c.type = PusherCommandType::Signin;
  c.user_data = user_data;
  c.auth = auth;
  return c;
}

SubscribeDecision check(const PusherCommand& c, const std::string& socket = "1234.1234",
                        const SignedInUser* user = nullptr, const MemberLimits& limits = {}) {
  return check_subscribe(c, kKey, kSecret, socket, user, limits);
}

}  // namespace

TEST_GROUP(PusherSubscribe){};

TEST(PusherSubscribe, PublicChannelsNeedNothing) {
  SubscribeDecision d = check(subscribe("my-channel"));
  CHECK_TRUE(d.ok);
  CHECK(d.kind == ChannelKind::Public);
  // pusher-js sends auth "" for public channels; anything else is ignored.
  CHECK_TRUE(check(subscribe("cache-x", "whatever")).ok);
}

TEST(PusherSubscribe, PrivateChannelWithTheLibrarysAuth) {
  const std::string auth =
      "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
  CHECK_TRUE(check(subscribe("private-foobar", auth)).ok);
  SubscribeDecision d = check(subscribe("private-foobar", auth), "1234.1235");
  CHECK_FALSE(d.ok);
  STRCMP_EQUAL("AuthError", d.error.type.c_str());
  LONGS_EQUAL(401, d.error.status);
  STRCMP_EQUAL(
      "Invalid signature: expected the HMAC-SHA256 hex digest of \"1234.1235:private-foobar\"",
      d.error.message.c_str());
  d = check(subscribe("private-foobar"));
  CHECK_FALSE(d.ok);
  STRCMP_EQUAL("Missing auth for this channel", d.error.message.c_str());
  LONGS_EQUAL(401, d.error.status);
  d = check(subscribe("private-foobar", "nocolon"));
  CHECK(d.error.message.find("Invalid auth") == 0);
  d = check(subscribe("private-foobar", "otherkey:" + auth.substr(21)));
  CHECK(d.error.message.find("Invalid auth: the key") == 0);
}

TEST(PusherSubscribe, PrivateChannelSignedWithChannelData) {
  // pusher-http-node signs channel_data whenever it is given, even for a
  // private channel, so it is part of the signed string when present.
  const std::string data = R"({"x":1})";
  const std::string auth = sign_channel(kKey, kSecret, "1.2", "private-a", data);
  CHECK_TRUE(check(subscribe("private-a", auth, data), "1.2").ok);
  CHECK_FALSE(check(subscribe("private-a", auth), "1.2").ok);
}

TEST(PusherSubscribe, PresenceMemberFromChannelData) {
  // The docs' own example: user_id 10 as a number.
  const std::string data = R"({"user_id":10,"user_info":{"name":"Mr. Channels"}})";
  const std::string auth =
      "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80";
  SubscribeDecision d = check(subscribe("presence-foobar", auth, data));
  CHECK_TRUE(d.ok);
  STRCMP_EQUAL("10", d.member.user_id.c_str());
  STRCMP_EQUAL(R"({"name":"Mr. Channels"})", d.member.user_info_json.c_str());

  const std::string unicode =
      "{\"user_id\":\"u-1\",\"user_info\":{\"name\":\"Zo\xC3\xAB \xF0\x9F\x9A\x80\","
      "\"quote\":\"a\\\"b\\\\c\"}}";
  const std::string unicode_auth =
      "278d425bdf160c739803:79a4707455f91d35b88dbb77410ca01e1b8db77998c75ef6d296376a5412442d";
  d = check(subscribe("presence-cache-room@1", unicode_auth, unicode), "98765.4321");
  CHECK_TRUE(d.ok);
  CHECK(d.kind == ChannelKind::CachePresence);
  STRCMP_EQUAL("u-1", d.member.user_id.c_str());
  STRCMP_EQUAL("{\"name\":\"Zo\xC3\xAB \xF0\x9F\x9A\x80\",\"quote\":\"a\\\"b\\\\c\"}",
               d.member.user_info_json.c_str());
}

TEST(PusherSubscribe, PresenceChannelDataIsChecked) {
  auto signed_check = [](const std::string& data, const MemberLimits& limits = {}) {
    return check(subscribe("presence-a", sign_channel(kKey, kSecret, "1.1", "presence-a", data),
                           data),
                 "1.1", nullptr, limits);
  };
  CHECK_TRUE(signed_check(R"({"user_id":"a"})").ok);
  STRCMP_EQUAL("null", signed_check(R"({"user_id":"a"})").member.user_info_json.c_str());
  CHECK_TRUE(signed_check(R"({"user_id":18446744073709551615})").ok);
  const char* bad[] = {R"({"user_id":""})",     R"({"user_id":1.5})", R"({"user_id":null})",
                       R"({"user_info":{}})",   R"([1])",             "not json",
                       R"({"user_id":true})",   R"({"user_id":"a\nb"})"};
  for (const char* data : bad) {
    const SubscribeDecision d = signed_check(data);
    CHECK_FALSE_TEXT(d.ok, data);
    STRCMP_EQUAL("AuthError", d.error.type.c_str());
    LONGS_EQUAL_TEXT(400, d.error.status, data);
  }
  CHECK_TRUE(signed_check("{\"user_id\":\"" + std::string(128, 'u') + "\"}").ok);
  CHECK_FALSE(signed_check("{\"user_id\":\"" + std::string(129, 'u') + "\"}").ok);
  // user_info {"n":"12345"} is 13 bytes of compact JSON.
  MemberLimits small;
  small.max_user_info_bytes = 13;
  CHECK_TRUE(signed_check(R"({"user_id":"a","user_info": {"n": "12345"}})", small).ok);
  small.max_user_info_bytes = 12;
  const SubscribeDecision d = signed_check(R"({"user_id":"a","user_info":{"n":"12345"}})", small);
  CHECK_FALSE(d.ok);
  STRCMP_EQUAL("LimitReached", d.error.type.c_str());
  LONGS_EQUAL(413, d.error.status);
}

TEST(PusherSubscribe, PresenceWithoutChannelDataUsesTheSignedInUser) {
  SignedInUser user{"alice", R"({"id":"alice","user_info":{"name":"Alice"}})", R"({"name":"Alice"})"};
  const std::string auth = sign_channel(kKey, kSecret, "5.6", "presence-room", "");
  SubscribeDecision d = check(subscribe("presence-room", auth), "5.6", &user);
  CHECK_TRUE(d.ok);
  STRCMP_EQUAL("alice", d.member.user_id.c_str());
  STRCMP_EQUAL(R"({"name":"Alice"})", d.member.user_info_json.c_str());
  d = check(subscribe("presence-room", auth), "5.6", nullptr);
  CHECK_FALSE(d.ok);
  LONGS_EQUAL(400, d.error.status);
}

TEST(PusherSubscribe, UserChannelsOnlyForThatUser) {
  SignedInUser alice{"alice", R"({"id":"alice"})", "null"};
  CHECK_TRUE(check(subscribe("#server-to-user-alice"), "1.1", &alice).ok);
  SubscribeDecision d = check(subscribe("#server-to-user-bob"), "1.1", &alice);
  CHECK_FALSE(d.ok);
  LONGS_EQUAL(403, d.error.status);
  CHECK_FALSE(check(subscribe("#server-to-user-alice"), "1.1", nullptr).ok);
}

TEST(PusherSubscribe, InvalidNames) {
  SubscribeDecision d = check(subscribe("bad name"));
  CHECK_FALSE(d.ok);
  STRCMP_EQUAL("InvalidChannel", d.error.type.c_str());
  LONGS_EQUAL(400, d.error.status);
  CHECK_FALSE(check(subscribe(std::string(165, 'a'))).ok);
  CHECK_FALSE(check(subscribe("")).ok);
}

TEST(PusherSubscribe, SigninWithTheLibrarysAuth) {
  const std::string data =
      R"({"id":"alice","user_info":{"name":"Alice"},"watchlist":["bob","carol"]})";
  const std::string auth =
      "278d425bdf160c739803:9e2418f182ab357da4f53acead7d21952c1cd0535ce56bdab2d4e2542d4e8142";
  SigninDecision d = check_signin(signin(data, auth), kKey, kSecret, "55.66", nullptr);
  CHECK_TRUE(d.ok);
  STRCMP_EQUAL("alice", d.user.id.c_str());
  STRCMP_EQUAL(data.c_str(), d.user.user_data.c_str());
  STRCMP_EQUAL(R"({"name":"Alice"})", d.user.user_info_json.c_str());
  // Signing in again as the same user is fine, as another user is not.
  CHECK_TRUE(check_signin(signin(data, auth), kKey, kSecret, "55.66", &d.user).ok);
  SignedInUser bob{"bob", "{}", "null"};
  SigninDecision again = check_signin(signin(data, auth), kKey, kSecret, "55.66", &bob);
  CHECK_FALSE(again.ok);
  LONGS_EQUAL(4009, again.error.close_code);

  SigninDecision bad = check_signin(signin(data, auth), kKey, kSecret, "55.67", nullptr);
  CHECK_FALSE(bad.ok);
  LONGS_EQUAL(4009, bad.error.code);
  LONGS_EQUAL(4009, bad.error.close_code);
  CHECK(bad.error.message.find("Sign-in rejected: Invalid signature") == 0);
}

TEST(PusherSubscribe, SigninUserDataNeedsAStringId) {
  const char* bad[] = {R"({"id":12345})", R"({"id":""})", R"({"name":"x"})", R"(["x"])", "x"};
  for (const char* data : bad) {
    const std::string auth = sign_user(kKey, kSecret, "1.1", data);
    const SigninDecision d = check_signin(signin(data, auth), kKey, kSecret, "1.1", nullptr);
    CHECK_FALSE_TEXT(d.ok, data);
    LONGS_EQUAL(4009, d.error.close_code);
  }
  const std::string ok = R"({"id":"12345"})";
  const SigninDecision d = check_signin(
      signin(ok, "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"),
      kKey, kSecret, "1234.1234", nullptr);
  CHECK_TRUE(d.ok);
  STRCMP_EQUAL("null", d.user.user_info_json.c_str());
}
