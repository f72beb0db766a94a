// Channel and user auth signatures, webhooks and socket ids, checked
// against what the official `pusher` npm library (pusher-http-node 5.3.4)
// produces.
//
// How the vectors were made: `npm install pusher@5` in a scratch directory,
// then a node script with
//   const p = new Pusher({appId: '3', key: '278d425bdf160c739803',
//                         secret: '7ad3773142a6692b25b8', host: 'api.example.test'});
//   p.authorizeChannel('1234.1234', 'private-foobar')
//   p.authorizeChannel('1234.1234', 'presence-foobar', {user_id: 10, user_info: {name: 'Mr. Channels'}})
//   p.authorizeChannel('98765.4321', 'presence-cache-room@1',
//                      {user_id: 'u-1', user_info: {name: 'Zoë 🚀', quote: 'a"b\\c'}})
//   p.authenticateUser('1234.1234', {id: '12345'})
//   p.authenticateUser('55.66', {id: 'alice', user_info: {name: 'Alice'}, watchlist: ['bob', 'carol']})
//   new Pusher.Token(key, secret).sign(webhookBody)   (and p.webhook(...).isValid() === true)
// and the printed results pasted below. The key and secret are the ones of
// the Pusher docs' worked examples, whose published results (private-foobar
// and the {"id":"12345"} user) the library reproduces.
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pusher/pusher_auth.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

const char kKey[] = "278d425bdf160c739803";
const char kSecret[] = "7ad3773142a6692b25b8";

const char kPrivateAuth[] =
    "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";

const char kPresenceData[] = R"({"user_id":10,"user_info":{"name":"Mr. Channels"}})";
const char kPresenceAuth[] =
    "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80";

// JSON.stringify leaves non-ASCII as UTF-8 and escapes only " and \.
const char kUnicodeData[] =
    "{\"user_id\":\"u-1\",\"user_info\":{\"name\":\"Zo\xC3\xAB \xF0\x9F\x9A\x80\","
    "\"quote\":\"a\\\"b\\\\c\"}}";
const char kUnicodeAuth[] =
    "278d425bdf160c739803:79a4707455f91d35b88dbb77410ca01e1b8db77998c75ef6d296376a5412442d";

const char kUserData[] = R"({"id":"12345"})";
const char kUserAuth[] =
    "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba";

const char kUserData2[] =
    R"({"id":"alice","user_info":{"name":"Alice"},"watchlist":["bob","carol"]})";
const char kUserAuth2[] =
    "278d425bdf160c739803:9e2418f182ab357da4f53acead7d21952c1cd0535ce56bdab2d4e2542d4e8142";

const char kWebhookBody[] =
    R"({"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"test_channel"}]})";
const char kWebhookSignature[] = "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa";

std::string upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

}  // namespace

TEST_GROUP(PusherAuth){};

TEST(PusherAuth, ChannelAuthSameBytesAsTheNodeLibrary) {
  STRCMP_EQUAL(kPrivateAuth, sign_channel(kKey, kSecret, "1234.1234", "private-foobar", "").c_str());
  STRCMP_EQUAL(kPresenceAuth,
               sign_channel(kKey, kSecret, "1234.1234", "presence-foobar", kPresenceData).c_str());
  STRCMP_EQUAL(kUnicodeAuth,
               sign_channel(kKey, kSecret, "98765.4321", "presence-cache-room@1", kUnicodeData).c_str());
  STRCMP_EQUAL("1234.1234:presence-foobar:{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Channels\"}}",
               channel_string_to_sign("1234.1234", "presence-foobar", kPresenceData).c_str());
}

TEST(PusherAuth, VerifiesChannelAuth) {
  CHECK_TRUE(verify_channel_auth(kKey, kSecret, "1234.1234", "private-foobar", "", kPrivateAuth));
  CHECK_TRUE(verify_channel_auth(kKey, kSecret, "1234.1234", "presence-foobar", kPresenceData,
                                 kPresenceAuth));
  CHECK_TRUE(verify_channel_auth(kKey, kSecret, "98765.4321", "presence-cache-room@1",
                                 kUnicodeData, kUnicodeAuth));
  // Hex digits in either case.
  CHECK_TRUE(verify_channel_auth(kKey, kSecret, "1234.1234", "private-foobar", "",
                                 std::string(kKey) + ":" + upper(std::string(kPrivateAuth).substr(21))));
}

TEST(PusherAuth, RefusesEveryAlteration) {
  // Another socket, channel, secret, or channel_data: each changes the digest.
  CHECK(check_channel_auth(kKey, kSecret, "1234.1235", "private-foobar", "", kPrivateAuth) ==
        AuthCheck::BadSignature);
  CHECK(check_channel_auth(kKey, kSecret, "1234.1234", "private-foobaz", "", kPrivateAuth) ==
        AuthCheck::BadSignature);
  CHECK(check_channel_auth(kKey, "other", "1234.1234", "private-foobar", "", kPrivateAuth) ==
        AuthCheck::BadSignature);
  CHECK(check_channel_auth(kKey, kSecret, "1234.1234", "presence-foobar",
                           R"({"user_id":11,"user_info":{"name":"Mr. Channels"}})",
                           kPresenceAuth) == AuthCheck::BadSignature);
  // channel_data re-encoded (spaces) is not what was signed.
  CHECK(check_channel_auth(kKey, kSecret, "1234.1234", "presence-foobar",
                           R"({"user_id": 10, "user_info": {"name": "Mr. Channels"}})",
                           kPresenceAuth) == AuthCheck::BadSignature);
  CHECK(check_channel_auth("otherkey", kSecret, "1234.1234", "private-foobar", "", kPrivateAuth) ==
        AuthCheck::WrongKey);
  const std::string sig = std::string(kPrivateAuth).substr(21);
  CHECK(check_channel_auth(kKey, kSecret, "1234.1234", "private-foobar", "", sig) ==
        AuthCheck::Malformed);
  CHECK(check_channel_auth(kKey, kSecret, "1234.1234", "private-foobar", "", ":" + sig) ==
        AuthCheck::Malformed);
  CHECK(check_channel_auth(kKey, kSecret, "1234.1234", "private-foobar", "",
                           std::string(kKey) + ":") == AuthCheck::Malformed);
  CHECK(check_channel_auth(kKey, kSecret, "1234.1234", "private-foobar", "",
                           std::string(kKey) + ":zz" + sig.substr(2)) == AuthCheck::Malformed);
  // Truncated or extended signatures.
  CHECK(check_channel_auth(kKey, kSecret, "1234.1234", "private-foobar", "",
                           std::string(kPrivateAuth).substr(0, 84)) == AuthCheck::BadSignature);
  CHECK(check_channel_auth(kKey, kSecret, "1234.1234", "private-foobar", "",
                           std::string(kPrivateAuth) + "0") == AuthCheck::BadSignature);
  CHECK_FALSE(verify_channel_auth(kKey, kSecret, "1234.1234", "private-foobar", "", ""));
}

TEST(PusherAuth, UserAuthSameBytesAsTheNodeLibrary) {
  STRCMP_EQUAL(kUserAuth, sign_user(kKey, kSecret, "1234.1234", kUserData).c_str());
  STRCMP_EQUAL(kUserAuth2, sign_user(kKey, kSecret, "55.66", kUserData2).c_str());
  STRCMP_EQUAL("1234.1234::user::{\"id\":\"12345\"}",
               user_string_to_sign("1234.1234", kUserData).c_str());
  CHECK_TRUE(verify_user_auth(kKey, kSecret, "1234.1234", kUserData, kUserAuth));
  CHECK_TRUE(verify_user_auth(kKey, kSecret, "55.66", kUserData2, kUserAuth2));
  CHECK_FALSE(verify_user_auth(kKey, kSecret, "55.67", kUserData2, kUserAuth2));
  CHECK_FALSE(verify_user_auth(kKey, kSecret, "1234.1234", R"({"id":"12346"})", kUserAuth));
  // A channel auth is not a user auth, even over the same socket.
  CHECK_FALSE(verify_user_auth(kKey, kSecret, "1234.1234", "private-foobar", kPrivateAuth));
  CHECK(check_user_auth("k2", kSecret, "1234.1234", kUserData, kUserAuth) == AuthCheck::WrongKey);
}

TEST(PusherAuth, WebhookSignature) {
  STRCMP_EQUAL(kWebhookSignature, webhook_signature(kSecret, kWebhookBody).c_str());
  CHECK_TRUE(verify_webhook(kKey, kSecret, kKey, kWebhookSignature, kWebhookBody));
  CHECK_TRUE(verify_webhook(kKey, kSecret, kKey, upper(kWebhookSignature), kWebhookBody));
  CHECK_FALSE(verify_webhook(kKey, kSecret, "other", kWebhookSignature, kWebhookBody));
  CHECK_FALSE(verify_webhook(kKey, kSecret, kKey, kWebhookSignature, std::string(kWebhookBody) + " "));
  CHECK_FALSE(verify_webhook(kKey, kSecret, kKey, "", kWebhookBody));
}

TEST(PusherAuth, DigestsAndComparison) {
  // RFC 1321 and RFC 4231 test case 2.
  STRCMP_EQUAL("d41d8cd98f00b204e9800998ecf8427e", md5_hex("").c_str());
  STRCMP_EQUAL("900150983cd24fb0d6963f7d28e17f72", md5_hex("abc").c_str());
  STRCMP_EQUAL("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
               hmac_sha256_hex("Jefe", "what do ya want for nothing?").c_str());
  CHECK_TRUE(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
  CHECK_TRUE(constant_time_equal("", ""));
}

TEST(PusherAuth, SocketIdFormat) {
  CHECK_TRUE(is_valid_socket_id("1234.1234"));
  CHECK_TRUE(is_valid_socket_id("0.0"));
  CHECK_FALSE(is_valid_socket_id(""));
  CHECK_FALSE(is_valid_socket_id("1234"));
  CHECK_FALSE(is_valid_socket_id(".1234"));
  CHECK_FALSE(is_valid_socket_id("1234."));
  CHECK_FALSE(is_valid_socket_id("12.34.56"));
  CHECK_FALSE(is_valid_socket_id("-1.2"));
  CHECK_FALSE(is_valid_socket_id("1.2 "));
  CHECK_FALSE(is_valid_socket_id("1a.2"));
  CHECK_FALSE(is_valid_socket_id("\xD9\xA1.1"));  // Arabic-Indic digit one: \d is ASCII here
  CHECK_TRUE(is_valid_socket_id(std::string(31, '1') + "." + std::string(32, '2')));
  CHECK_FALSE(is_valid_socket_id(std::string(32, '1') + "." + std::string(32, '2')));
}

TEST(PusherAuth, SocketIdGenerator) {
  SocketIdGenerator gen(42);
  STRCMP_EQUAL("42.1", gen.next().c_str());
  STRCMP_EQUAL("42.2", gen.next().c_str());
  const uint64_t prefix = SocketIdGenerator::process_prefix();
  CHECK(prefix >= 1000000000ULL);                 // pid * 10^9 + r, pid >= 1
  CHECK(prefix < (1ULL << 53));                   // safe as a JS number, too
  CHECK_TRUE(is_valid_socket_id(SocketIdGenerator(prefix).next()));
  // Two prefixes of one process differ only in the random part.
  CHECK_EQUAL(prefix / 1000000000ULL, SocketIdGenerator::process_prefix() / 1000000000ULL);
}

TEST(PusherAuth, SocketIdsAreUniqueAcrossThreads) {
  SocketIdGenerator gen(SocketIdGenerator::process_prefix());
  std::vector<std::vector<std::string>> ids(4);
  std::vector<std::thread> threads;
  for (auto& out : ids) {
    threads.emplace_back([&gen, &out] {
      for (int i = 0; i < 1000; ++i) out.push_back(gen.next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& out : ids) all.insert(out.begin(), out.end());
  LONGS_EQUAL(4000, all.size());
}
