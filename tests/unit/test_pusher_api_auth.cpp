// HTTP API request signatures, checked against requests the official
// `pusher` npm library (pusher-http-node 5.3.4) sends, and against the
// worked example of the Pusher "HTTP API reference".
//
// How the vectors were made: `npm install pusher@5` in a scratch directory;
// a node script pinned Date.now() to 1353088179000 and replaced node-fetch
// with a recorder (Module._load hook), then called, with appId '3', key
// '278d425bdf160c739803', secret '7ad3773142a6692b25b8':
//   p.trigger('my-channel', 'my-event', {message: 'hello world'})
//   p.trigger(['a', 'presence-b'], 'ev', 'plain string',
//             {socket_id: '123.456', info: 'user_count,subscription_count'})
//   p.triggerBatch([{channel: 'c1', name: 'e1', data: {x: 1}},
//                   {channel: 'presence-c2', name: 'e2', data: 'y', info: 'user_count'}])
//   p.get({path: '/channels', params: {filter_by_prefix: 'presence-', info: 'user_count'}})
//   p.get({path: '/channels/presence-foobar', params: {info: 'user_count,subscription_count'}})
//   p.get({path: '/channels/presence-foobar/users'})
//   p.terminateUserConnections('alice')
//   p.sendToUser('alice', 'notice', {n: 1})
// and printed each recorded request's method, URL path, query and body.
#include <string>
#include <vector>

#include "pusher/pusher_api_auth.h"
#include "pusher/pusher_auth.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

const char kKey[] = "278d425bdf160c739803";
const char kSecret[] = "7ad3773142a6692b25b8";
constexpr int64_t kNow = 1353088179;

struct Recorded {
  const char* method;
  const char* path;
  const char* query;
  const char* body;
};

const Recorded kRequests[] = {
    {"POST", "/apps/3/events",
     "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5="
     "15d251b35306a6da7efa515a0e971f80&auth_signature="
     "12dcfff7c81150add9fa7e5c4bb328f41fc9a9f7ad07ed734c4c8f578f313c48",
     R"({"name":"my-event","data":"{\"message\":\"hello world\"}","channels":["my-channel"]})"},
    {"POST", "/apps/3/events",
     "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5="
     "9b33cac895f9ea2ea6b5c30468affffe&auth_signature="
     "cb317034738dd79636bd63bf3633ed5d472f8480f64c77e8f2488f2f22d44b1b",
     R"({"name":"ev","data":"plain string","channels":["a","presence-b"],"socket_id":"123.456",)"
     R"("info":"user_count,subscription_count"})"},
    {"POST", "/apps/3/batch_events",
     "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5="
     "47baf7305796bdc6641ec765adee2634&auth_signature="
     "5c43918408c7ca5e69c255ba79cbfed75337b94e5fe4707628b9b92ec2648fb0",
     R"({"batch":[{"channel":"c1","name":"e1","data":"{\"x\":1}"},)"
     R"({"channel":"presence-c2","name":"e2","data":"y","info":"user_count"}]})"},
    {"GET", "/apps/3/channels",
     "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&filter_by_prefix="
     "presence-&info=user_count&auth_signature="
     "16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291",
     ""},
    {"GET", "/apps/3/channels/presence-foobar",
     "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&info=user_count,"
     "subscription_count&auth_signature="
     "377ee9260ea002a70c0d40cd887d55cb36db9f7f821297f5efacbcce66be356d",
     ""},
    {"GET", "/apps/3/channels/presence-foobar/users",
     "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&auth_signature="
     "5567dd30e7f8575e66be615d2aac3f608a0c311c31ddab8513a278b022e9597e",
     ""},
    {"POST", "/apps/3/users/alice/terminate_connections",
     "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5="
     "99914b932bd37a50b983c5e7c90ae93b&auth_signature="
     "580629b25ed0654ef0b01a3d3aaa3495d33ebc5ffcd6853d8cfd82cb5ac7e732",
     "{}"},
    {"POST", "/apps/3/events",
     "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5="
     "25f499d8e0a939be4cbec81d46ca7aca&auth_signature="
     "3f07adbe2c911422f45e70cc0de8d600f73ba42ddf170d8720a7b287a9eb7523",
     R"({"name":"notice","data":"{\"n\":1}","channels":["#server-to-user-alice"]})"},
};

// The reference's worked example (trigger "foo" on "project-3").
const char kDocBody[] = R"({"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"})";
const char kDocQuery[] =
    "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5="
    "ec365a775a4cd0599faeb73354201b6f&auth_signature="
    "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

std::vector<QueryParam> query(const std::string& raw) {
  std::vector<QueryParam> params;
  CHECK_TRUE(parse_query_string(raw, &params));
  return params;
}

ApiAuthResult verify(const std::string& method, const std::string& path, const std::string& raw,
                     const std::string& body, int64_t now = kNow) {
  return verify_api_request(kKey, kSecret, method, path, query(raw), body, now);
}

// raw with the value of key replaced.
std::string with(std::string raw, const std::string& key, const std::string& value) {
  const size_t at = raw.find(key + "=");
  const size_t end = raw.find('&', at);
  return raw.replace(at + key.size() + 1,
                     (end == std::string::npos ? raw.size() : end) - at - key.size() - 1, value);
}

}  // namespace

TEST_GROUP(PusherApiAuth){};

TEST(PusherApiAuth, AcceptsEveryRequestTheNodeLibrarySends) {
  for (const Recorded& r : kRequests) {
    const ApiAuthResult res = verify(r.method, r.path, r.query, r.body);
    CHECK_TRUE_TEXT(res.ok(), (std::string(r.path) + ": " + res.error).c_str());
  }
}

TEST(PusherApiAuth, TheReferenceWorkedExample) {
  STRCMP_EQUAL("ec365a775a4cd0599faeb73354201b6f", md5_hex(kDocBody).c_str());
  const std::vector<QueryParam> params = query(kDocQuery);
  STRCMP_EQUAL(
      "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&"
      "auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f",
      api_string_to_sign("POST", "/apps/3/events", params).c_str());
  STRCMP_EQUAL("da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
               sign_api_request(kSecret, "post", "/apps/3/events", params).c_str());
  CHECK_TRUE(verify("POST", "/apps/3/events", kDocQuery, kDocBody).ok());
}

TEST(PusherApiAuth, KeysLowercasedSortedAndNotEscaped) {
  // The reference's note: auth_key=foo, Name="Something else" signs as
  // "auth_key=foo&name=Something else". The query on the wire is escaped.
  const std::vector<QueryParam> params = query("Name=Something%20else&auth_key=foo");
  STRCMP_EQUAL("GET\n/x\nauth_key=foo&name=Something else",
               api_string_to_sign("get", "/x", params).c_str());
  // Parameter order on the wire does not matter.
  const Recorded& r = kRequests[3];
  const std::string reordered =
      "info=user_count&auth_signature=16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291"
      "&auth_version=1.0&filter_by_prefix=presence-&auth_timestamp=1353088179"
      "&auth_key=278d425bdf160c739803";
  CHECK_TRUE(verify(r.method, r.path, reordered, "").ok());
  // Nor does escaping: %2C is the comma the library sent raw.
  const Recorded& one = kRequests[4];
  CHECK_TRUE(verify(one.method, one.path,
                    with(one.query, "info", "user_count%2Csubscription_count"), "").ok());
}

TEST(PusherApiAuth, TimestampWithin600SecondsEitherWay) {
  const Recorded& r = kRequests[0];
  CHECK_TRUE(verify(r.method, r.path, r.query, r.body, kNow + 600).ok());
  CHECK_TRUE(verify(r.method, r.path, r.query, r.body, kNow - 600).ok());
  ApiAuthResult late = verify(r.method, r.path, r.query, r.body, kNow + 601);
  LONGS_EQUAL(401, late.status);
  CHECK(late.error.find("Timestamp expired") == 0);
  LONGS_EQUAL(401, verify(r.method, r.path, r.query, r.body, kNow - 601).status);
  LONGS_EQUAL(401, verify(r.method, r.path, with(r.query, "auth_timestamp", "abc"), r.body).status);
  LONGS_EQUAL(401, verify(r.method, r.path, with(r.query, "auth_timestamp", ""), r.body).status);
  LONGS_EQUAL(401, verify(r.method, r.path, with(r.query, "auth_timestamp", "-1"), r.body).status);
  LONGS_EQUAL(401, verify(r.method, r.path,
                          with(r.query, "auth_timestamp", "99999999999999999999"), r.body).status);
}

TEST(PusherApiAuth, RefusesWithReasons) {
  const Recorded& r = kRequests[0];
  struct Case {
    std::string query, body, method, path, why;
  };
  const Case cases[] = {
      {with(r.query, "auth_key", "nope"), r.body, "POST", r.path, "Unknown auth_key"},
      {std::string(r.query).substr(std::string(r.query).find('&') + 1), r.body, "POST", r.path,
       "Missing auth_key"},
      {std::string(r.query).substr(0, std::string(r.query).find("&auth_signature")), r.body, "POST",
       r.path, "Missing auth_signature"},
      {with(r.query, "auth_version", "2.0"), r.body, "POST", r.path, "Missing or unsupported"},
      {with(r.query, "body_md5", "00000000000000000000000000000000"), r.body, "POST", r.path,
       "body_md5 does not match"},
      {r.query, std::string(r.body) + " ", "POST", r.path, "body_md5 does not match"},
      {r.query, r.body, "PUT", r.path, "Invalid signature"},
      {r.query, r.body, "POST", "/apps/4/events", "Invalid signature"},
      {with(r.query, "auth_signature", std::string(64, '0')), r.body, "POST", r.path,
       "Invalid signature"},
      {with(r.query, "auth_signature", ""), r.body, "POST", r.path, "Invalid signature"},
      // An extra parameter the client did not sign.
      {std::string(r.query) + "&extra=1", r.body, "POST", r.path, "Invalid signature"},
  };
  for (const Case& c : cases) {
    const ApiAuthResult res = verify(c.method, c.path, c.query, c.body);
    LONGS_EQUAL_TEXT(401, res.status, c.why.c_str());
    CHECK_TEXT(res.error.find(c.why) == 0, (c.why + " vs " + res.error).c_str());
  }
}

TEST(PusherApiAuth, BodyMd5RequiredWithABody) {
  // GET channels signed without body_md5, then sent with a body: refused.
  const Recorded& r = kRequests[3];
  const ApiAuthResult res = verify(r.method, r.path, r.query, "{}");
  LONGS_EQUAL(401, res.status);
  STRCMP_EQUAL("Missing body_md5", res.error.c_str());
}

TEST(PusherApiAuth, DuplicateKeysAreRefused) {
  const Recorded& r = kRequests[3];
  ApiAuthResult res = verify(r.method, r.path, std::string(r.query) + "&info=x", "");
  LONGS_EQUAL(400, res.status);
  // Case-folded duplicates too: AUTH_KEY and auth_key.
  res = verify(r.method, r.path, std::string(r.query) + "&AUTH_KEY=278d425bdf160c739803", "");
  LONGS_EQUAL(400, res.status);
}

TEST(PusherApiAuth, UppercaseSignatureAndKeysAccepted) {
  const Recorded& r = kRequests[5];
  std::string q = r.query;
  const size_t at = q.find("auth_signature=") + 15;
  for (size_t i = at; i < q.size(); ++i) {
    if (q[i] >= 'a' && q[i] <= 'f') q[i] = static_cast<char>(q[i] - 'a' + 'A');
  }
  CHECK_TRUE(verify(r.method, r.path, q, "").ok());
  q.replace(0, 8, "AUTH_KEY");
  CHECK_TRUE(verify(r.method, r.path, q, "").ok());
}

TEST(PusherApiAuth, QueryStringDecoding) {
  std::vector<QueryParam> p;
  CHECK_TRUE(parse_query_string("a=1&&b=x+y%2Bz&c&=v&d=", &p));
  LONGS_EQUAL(5, p.size());
  STRCMP_EQUAL("a", p[0].key.c_str());
  STRCMP_EQUAL("1", p[0].value.c_str());
  STRCMP_EQUAL("x y+z", p[1].value.c_str());
  STRCMP_EQUAL("c", p[2].key.c_str());
  STRCMP_EQUAL("", p[2].value.c_str());
  STRCMP_EQUAL("", p[3].key.c_str());
  STRCMP_EQUAL("d", p[4].key.c_str());
  CHECK_TRUE(parse_query_string("", &p));
  LONGS_EQUAL(0, p.size());
  CHECK_FALSE(parse_query_string("a=%", &p));
  CHECK_FALSE(parse_query_string("a=%4", &p));
  CHECK_FALSE(parse_query_string("a=%zz", &p));
  CHECK_FALSE(parse_query_string("%g0=1", &p));
  std::string out;
  CHECK_TRUE(percent_decode("presence-a%40b+c", false, &out));
  STRCMP_EQUAL("presence-a@b+c", out.c_str());
  CHECK_TRUE(find_param(query("Info=x"), "info") != nullptr);
  CHECK_TRUE(find_param(query("info=x"), "filter_by_prefix") == nullptr);
}
