// Opening handshake: every status the validator can answer, in the order the
// checks run, plus the helpers (accept key, key shape, token lists, origins).
#include <string>
#include <vector>

#include "protocol/handshake.h"

#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

// What Chrome sends, give or take the key.
HandshakeRequest browser_request() {
  HandshakeRequest r;
  r.method = "GET";
  r.http_major = 1;
  r.http_minor = 1;
  r.host = "chat.example.com";
  r.has_host = true;
  r.upgrade = "websocket";
  r.connection = "Upgrade";
  r.key = "dGhlIHNhbXBsZSBub25jZQ==";
  r.has_key = true;
  r.version = "13";
  r.has_version = true;
  r.origin = "https://chat.example.com";
  r.has_origin = true;
  r.is_https = true;
  return r;
}

void expect_status(int status, const HandshakeRequest& r, const HandshakePolicy& p = {}) {
  HandshakeResult res = validate_handshake(r, p);
  LONGS_EQUAL(status, res.status);
  if (status == 101) {
    CHECK_TRUE(res.error.empty());
  } else {
    CHECK_FALSE(res.error.empty());
    CHECK_TRUE(res.accept.empty());
  }
}

bool same_host(const char* origin, const char* host, bool https = false) {
  return origin_allowed(origin, host, https, {});
}

}  // namespace

TEST_GROUP(Handshake) {};

// RFC 6455 §1.3 and §4.2.2 give s3pPLMBiTxaQ9kYGzzhZRbK+xOo= for the sample
// nonce; the second pair is the widely quoted Wikipedia example.
TEST(Handshake, AcceptKeyKnownAnswers) {
  STRCMP_EQUAL("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", compute_accept_key("dGhlIHNhbXBsZSBub25jZQ==").c_str());
  STRCMP_EQUAL("HSmrc0sMlYUkAGmm5OPpG2HaGWk=", compute_accept_key("x3JJHMbDL1EzLkh9GBhXDw==").c_str());
  LONGS_EQUAL(28, compute_accept_key("").size());
}

TEST(Handshake, SuccessfulUpgrade) {
  HandshakeResult res = validate_handshake(browser_request(), {});
  LONGS_EQUAL(101, res.status);
  STRCMP_EQUAL("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", res.accept.c_str());
  STRCMP_EQUAL("", res.subprotocol.c_str());
  STRCMP_EQUAL("", res.error.c_str());
  CHECK_FALSE(res.send_version_header || res.send_upgrade_header || res.send_allow_get);
}

TEST(Handshake, MethodMustBeGet) {
  for (const char* m : {"POST", "HEAD", "get", "CONNECT", ""}) {
    HandshakeRequest r = browser_request();
    r.method = m;
    HandshakeResult res = validate_handshake(r, {});
    LONGS_EQUAL(405, res.status);
    CHECK_TRUE(res.send_allow_get);
    STRCMP_EQUAL("method not allowed: WebSocket upgrade needs GET", res.error.c_str());
  }
  // The method is checked first, before the HTTP version.
  HandshakeRequest r = browser_request();
  r.method = "POST";
  r.http_minor = 0;
  expect_status(405, r);
}

TEST(Handshake, NeedsHttp11OrLater) {
  HandshakeRequest r = browser_request();
  r.http_minor = 0;
  HandshakeResult res = validate_handshake(r, {});
  LONGS_EQUAL(400, res.status);
  STRCMP_EQUAL("HTTP/1.1 or later required", res.error.c_str());
  r.http_major = 0;
  r.http_minor = 9;
  expect_status(400, r);
  r.http_major = 1;
  r.http_minor = 2;
  expect_status(101, r);
  r.http_major = 2;
  r.http_minor = 0;
  expect_status(101, r);
}

TEST(Handshake, PlainGetGets426WithHints) {
  HandshakeRequest r = browser_request();
  r.upgrade = "";
  r.connection = "keep-alive";
  r.has_key = r.has_version = false;
  HandshakeResult res = validate_handshake(r, {});
  LONGS_EQUAL(426, res.status);
  CHECK_TRUE(res.send_upgrade_header);
  CHECK_TRUE(res.send_version_header);
  CHECK_FALSE(res.send_allow_get);
  STRCMP_EQUAL("this is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)",
               res.error.c_str());
  r.connection = "";
  expect_status(426, r);
}

TEST(Handshake, UpgradeMustNameWebsocket) {
  HandshakeRequest r = browser_request();
  for (const char* up : {"h2c", "websockets", "web socket", "HTTP/2.0"}) {
    r.upgrade = up;
    HandshakeResult res = validate_handshake(r, {});
    LONGS_EQUAL(400, res.status);
    CHECK_FALSE(res.send_upgrade_header);
  }
  // Connection says upgrade but no Upgrade header: a broken upgrade, not a page load.
  r.upgrade = "";
  expect_status(400, r);
  for (const char* up : {"WebSocket", "WEBSOCKET", "h2c, websocket", " websocket "}) {
    r.upgrade = up;
    expect_status(101, r);
  }
}

TEST(Handshake, ConnectionMustListUpgrade) {
  HandshakeRequest r = browser_request();
  for (const char* c : {"keep-alive", "", "upgraded", "close"}) {
    r.connection = c;
    expect_status(400, r);
  }
  for (const char* c : {"keep-alive, Upgrade", "Upgrade, keep-alive", "upgrade", "UPGRADE",
                        "keep-alive,upgrade", "  keep-alive ,\tUpgrade\t"}) {
    r.connection = c;
    expect_status(101, r);
  }
}

TEST(Handshake, HostRequired) {
  HandshakeRequest r = browser_request();
  r.has_origin = false;
  r.has_host = false;
  r.host = "";
  expect_status(400, r);
  r.has_host = true;
  expect_status(400, r);
  r.host = "chat.example.com";
  expect_status(101, r);
}

TEST(Handshake, VersionMustBe13) {
  HandshakeRequest r = browser_request();
  r.has_version = false;
  r.version = "";
  HandshakeResult res = validate_handshake(r, {});
  LONGS_EQUAL(426, res.status);
  CHECK_TRUE(res.send_version_header);
  CHECK_TRUE(res.send_upgrade_header);
  for (const char* v : {"8", "12", "14", "13, 8", "013", "", " 13"}) {
    r.has_version = true;
    r.version = v;
    res = validate_handshake(r, {});
    LONGS_EQUAL(426, res.status);
    CHECK_TRUE(res.send_version_header);
  }
}

TEST(Handshake, KeyRequiredAndWellFormed) {
  HandshakeRequest r = browser_request();
  r.has_key = false;
  r.key = "";
  expect_status(400, r);
  r.has_key = true;
  r.key = "AAAAAAAAAAAAAAAAAAAAAA";  // 22 chars, no padding
  expect_status(400, r);
  r.key = "x3JJHMbDL1EzLkh9GBhXDw==";
  expect_status(101, r);
  // The version check comes before the key check.
  r.key = "bogus";
  r.version = "8";
  expect_status(426, r);
}

TEST(Handshake, KeyShape) {
  CHECK_TRUE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK_TRUE(is_valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  CHECK_TRUE(is_valid_websocket_key("+/+/+/+/+/+/+/+/+/+/+w=="));
  CHECK_FALSE(is_valid_websocket_key(""));
  CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ="));     // 23 chars
  CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ==="));   // 25 chars
  CHECK_FALSE(is_valid_websocket_key(" dGhlIHNhbXBsZSBub25jZQ=="));   // 25 with space
  CHECK_FALSE(is_valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAAAA"));    // 18 bytes
  CHECK_FALSE(is_valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAAA="));    // 17 bytes
  CHECK_FALSE(is_valid_websocket_key("AAAAAAAAAAAAAAAAAAAA"));        // 15 bytes
  CHECK_FALSE(is_valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAA"));  // 21 bytes
  CHECK_FALSE(is_valid_websocket_key("AAAAAAAAAAAAAAAAAAAAA==="));    // '=' inside
  CHECK_FALSE(is_valid_websocket_key("AAAA=AAAAAAAAAAAAAAAAA=="));
  CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ-_"));    // url-safe alphabet
  CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25j ZQ="));
  CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZ.=="));
  CHECK_FALSE(is_valid_websocket_key(std::string("dGhlIHNhbXBsZSBub25j\0Q==", 24)));
  CHECK_FALSE(is_valid_websocket_key("========================"));
}

TEST(Handshake, HeaderTokens) {
  CHECK_TRUE(header_has_token("keep-alive, Upgrade", "upgrade"));
  CHECK_TRUE(header_has_token("Upgrade", "upgrade"));
  CHECK_TRUE(header_has_token("upgrade", "UPGRADE"));
  CHECK_TRUE(header_has_token(",, upgrade ,,", "upgrade"));
  CHECK_TRUE(header_has_token("a,\tupgrade\t,b", "upgrade"));
  CHECK_FALSE(header_has_token("keep-alive", "upgrade"));
  CHECK_FALSE(header_has_token("upgrades", "upgrade"));
  CHECK_FALSE(header_has_token("xupgrade, upgradex", "upgrade"));
  CHECK_FALSE(header_has_token("up grade", "upgrade"));
  CHECK_FALSE(header_has_token("", "upgrade"));
  CHECK_FALSE(header_has_token("a,,b", ""));
}

TEST(Handshake, OriginChecks) {
  HandshakeRequest r = browser_request();
  HandshakePolicy p;
  r.origin = "https://evil.example.net";
  HandshakeResult res = validate_handshake(r, p);
  LONGS_EQUAL(403, res.status);
  // A non-browser client sends no Origin: allowed.
  r.has_origin = false;
  expect_status(101, r, p);
  r.has_origin = true;
  p.allowed_origins = {"https://evil.example.net"};
  expect_status(101, r, p);
  p.allowed_origins = {"*"};
  expect_status(101, r, p);
}

TEST(Handshake, SameHostOrigins) {
  CHECK_TRUE(same_host("http://a.com", "a.com"));
  CHECK_TRUE(same_host("http://a.com", "a.com:80"));
  CHECK_TRUE(same_host("http://a.com:80", "a.com"));
  CHECK_TRUE(same_host("HTTP://A.Com", "a.COM"));
  CHECK_TRUE(same_host("http://a.com:8080", "a.com:8080"));
  CHECK_TRUE(same_host("https://a.com", "a.com", true));
  CHECK_TRUE(same_host("https://a.com", "a.com:443", true));
  CHECK_TRUE(same_host("https://a.com:443", "a.com", true));
  CHECK_TRUE(same_host("http://[::1]:8080", "[::1]:8080"));
  CHECK_TRUE(same_host("http://a.com/", "a.com"));
  CHECK_FALSE(same_host("http://a.com:8080", "a.com"));
  CHECK_FALSE(same_host("http://a.com", "a.com:8080"));
  CHECK_FALSE(same_host("https://a.com", "a.com:80", true));
  CHECK_FALSE(same_host("http://evil.com", "a.com"));
  CHECK_FALSE(same_host("http://a.com.evil.com", "a.com"));
  CHECK_FALSE(same_host("http://evil.com/a.com", "a.com"));
  CHECK_FALSE(same_host("http://a.com@evil.com", "evil.com"));
  CHECK_FALSE(same_host("null", "a.com"));
  CHECK_FALSE(same_host("a.com", "a.com"));
  CHECK_FALSE(same_host("http://", ""));
  CHECK_FALSE(same_host("http://a.com:", "a.com"));
  CHECK_FALSE(same_host("http://a.com:99999", "a.com:99999"));
  CHECK_FALSE(same_host("http://a.com:8o", "a.com:8o"));
  CHECK_FALSE(same_host("http://a.com", ""));
}

TEST(Handshake, ListedOrigins) {
  const std::vector<std::string> allowed = {"https://chat.example.com", "http://localhost:8080/"};
  auto ok = [&](const char* o) { return origin_allowed(o, "ignored.host", false, allowed); };
  CHECK_TRUE(ok("https://chat.example.com"));
  CHECK_TRUE(ok("HTTPS://Chat.Example.COM"));
  CHECK_TRUE(ok("https://chat.example.com:443"));
  CHECK_TRUE(ok("https://chat.example.com/"));
  CHECK_TRUE(ok("http://localhost:8080"));
  CHECK_FALSE(ok("http://chat.example.com"));
  CHECK_FALSE(ok("https://chat.example.com:8443"));
  CHECK_FALSE(ok("https://chat.example.com.evil.net"));
  CHECK_FALSE(ok("http://localhost"));
  CHECK_FALSE(ok("null"));
  CHECK_FALSE(ok(""));
  // "null" is refused even when listed: only "*" admits it.
  CHECK_FALSE(origin_allowed("null", "a", false, {"null"}));
  CHECK_TRUE(origin_allowed("null", "a", false, {"https://x.com", "*"}));
  CHECK_TRUE(origin_allowed("anything at all", "", false, {"*"}));
}

TEST(Handshake, SubprotocolSelection) {
  HandshakeRequest r = browser_request();
  HandshakePolicy p;
  p.subprotocols = {"chat.v2", "chat"};
  r.protocols = "chat, chat.v2";
  STRCMP_EQUAL("chat.v2", validate_handshake(r, p).subprotocol.c_str());  // server order
  r.protocols = "chat";
  STRCMP_EQUAL("chat", validate_handshake(r, p).subprotocol.c_str());
  r.protocols = "CHAT, Chat.V2";  // tokens are case-sensitive
  STRCMP_EQUAL("", validate_handshake(r, p).subprotocol.c_str());
  r.protocols = "xmpp,\tchat ";
  STRCMP_EQUAL("chat", validate_handshake(r, p).subprotocol.c_str());
  r.protocols = "";
  STRCMP_EQUAL("", validate_handshake(r, p).subprotocol.c_str());
  r.protocols = "chat";
  p.subprotocols.clear();
  STRCMP_EQUAL("", validate_handshake(r, p).subprotocol.c_str());
  LONGS_EQUAL(101, validate_handshake(r, p).status);
}

TEST(Handshake, ErrorStringsAreShortForTheLog) {
  HandshakeRequest bad[8];
  for (auto& r : bad) r = browser_request();
  bad[0].method = "PUT";
  bad[1].http_minor = 0;
  bad[2].upgrade = "", bad[2].connection = "";
  bad[3].upgrade = "h2c";
  bad[4].connection = "close";
  bad[5].has_host = false;
  bad[6].version = "7";
  bad[7].key = "short";
  for (const auto& r : bad) {
    HandshakeResult res = validate_handshake(r, {});
    CHECK_TRUE(res.status >= 400 && res.status < 500);
    CHECK_TRUE(!res.error.empty() && res.error.size() < 100);
    CHECK_TRUE(res.error.find('\n') == std::string::npos);
  }
}
