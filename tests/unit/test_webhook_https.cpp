// Webhooks over https (pusher/tls_client.h, http_post with a context): a
// real OpenSSL server on loopback with a certificate made for the test.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "pusher/pusher_auth.h"
#include "pusher/pusher_webhook.h"
#include "pusher/webhook_dispatcher.h"
#include "pusher/webhook_http.h"
#include "runtime/clock.h"
#include "tiny_tls_server.h"

#include <CppUTest/TestHarness.h>  // last

using namespace wsb;

namespace {

std::shared_ptr<TlsClientContext> trusting(const TinyTlsServer& srv) {
  std::string why;
  auto ctx = TlsClientContext::create(srv.cert_file(), &why);
  CHECK_TEXT(ctx != nullptr, why.c_str());
  return ctx;
}

}  // namespace

TEST_GROUP(WebhookHttps) {
  void setup() override { ::signal(SIGPIPE, SIG_IGN); }  // as in Apache (tls_client.h)
};

TEST(WebhookHttps, PostsToATrustedCertificateByAddress) {
  TinyTlsServer srv("IP:127.0.0.1", 204);
  auto ctx = trusting(srv);
  HttpPostResult r = http_post("127.0.0.1", srv.port(), "hooks.test", "/h?x=1", {{"X-Pusher-Key", "k"}},
                               "{\"a\":1}", 3000, nullptr, ctx.get());
  STRCMP_EQUAL("", r.error.c_str());
  CHECK_EQUAL(204, r.status);
  std::vector<std::string> reqs = srv.requests();
  CHECK_EQUAL(1u, reqs.size());
  STRCMP_CONTAINS("POST /h?x=1 HTTP/1.1\r\nHost: hooks.test\r\n", reqs[0].c_str());
  STRCMP_CONTAINS("X-Pusher-Key: k\r\n\r\n{\"a\":1}", reqs[0].c_str());
}

TEST(WebhookHttps, PostsToATrustedCertificateByName) {
  TinyTlsServer srv("DNS:localhost");
  auto ctx = trusting(srv);
  HttpPostResult r = http_post("localhost", srv.port(), "localhost", "/", {}, "{}", 3000, nullptr, ctx.get());
  STRCMP_EQUAL("", r.error.c_str());
  CHECK_EQUAL(200, r.status);
}

TEST(WebhookHttps, AnUntrustedCertificateGetsNoRequest) {
  TinyTlsServer srv("IP:127.0.0.1");
  std::string why;
  auto system_cas = TlsClientContext::create("", &why);  // the system's store: it never heard of this one
  CHECK_TEXT(system_cas != nullptr, why.c_str());
  HttpPostResult r = http_post("127.0.0.1", srv.port(), "h", "/", {}, "{\"secret\":1}", 3000, nullptr, system_cas.get());
  CHECK_EQUAL(0, r.status);
  STRCMP_CONTAINS("the certificate of 127.0.0.1 is not trusted: self", r.error.c_str());
  CHECK_EQUAL(0u, srv.requests().size());
}

TEST(WebhookHttps, ACertificateForAnotherNameIsRefused) {
  TinyTlsServer srv("DNS:other.example");
  auto ctx = trusting(srv);
  HttpPostResult by_ip = http_post("127.0.0.1", srv.port(), "h", "/", {}, "{}", 3000, nullptr, ctx.get());
  CHECK_EQUAL(0, by_ip.status);
  STRCMP_CONTAINS("not trusted: IP address mismatch", by_ip.error.c_str());
  HttpPostResult by_name = http_post("localhost", srv.port(), "h", "/", {}, "{}", 3000, nullptr, ctx.get());
  CHECK_EQUAL(0, by_name.status);
  STRCMP_CONTAINS("the certificate of localhost is not trusted: hostname mismatch", by_name.error.c_str());
  CHECK_EQUAL(0u, srv.requests().size());
}

TEST(WebhookHttps, AReceiverThatNeverAnswersTheHandshakeTimesOut) {
  TinyTlsServer srv("IP:127.0.0.1", 200, false);
  auto ctx = trusting(srv);
  const int64_t t0 = monotonic_ms();
  HttpPostResult r = http_post("127.0.0.1", srv.port(), "h", "/", {}, "{}", 300, nullptr, ctx.get());
  const int64_t took = monotonic_ms() - t0;
  CHECK_EQUAL(0, r.status);
  STRCMP_CONTAINS("TLS handshake: timed out", r.error.c_str());
  CHECK_TEXT(took >= 250 && took < 1500, std::to_string(took).c_str());
}

TEST(WebhookHttps, PlainHttpToATlsReceiverFailsInsteadOfHanging) {
  TinyTlsServer srv("IP:127.0.0.1");
  HttpPostResult r = http_post("127.0.0.1", srv.port(), "h", "/", {}, "{}", 1000);
  CHECK_EQUAL(0, r.status);
  CHECK(!r.error.empty());
}

TEST(WebhookHttps, ACaFileThatIsMissingOrNotPemIsRefusedWithItsName) {
  std::string why;
  CHECK(TlsClientContext::create("/nonexistent/ca.pem", &why) == nullptr);
  STRCMP_CONTAINS("cannot load CA certificates from /nonexistent/ca.pem", why.c_str());
  char tmpl[] = "/tmp/wsb-not-pem-XXXXXX";
  int fd = mkstemp(tmpl);
  CHECK(fd >= 0);
  const char junk[] = "this is not a certificate\n";
  CHECK(write(fd, junk, sizeof junk - 1) == static_cast<ssize_t>(sizeof junk - 1));
  close(fd);
  why.clear();
  CHECK(TlsClientContext::create(tmpl, &why) == nullptr);
  STRCMP_CONTAINS(tmpl, why.c_str());
  unlink(tmpl);
}

TEST(WebhookHttps, HttpsTargetsParseWithPort443ByDefault) {
  WebhookUrl u;
  std::string why;
  CHECK(parse_webhook_url("https://hooks.example.com/pusher", &u, &why));
  CHECK(u.tls && !u.local);
  STRCMP_EQUAL("hooks.example.com", u.host.c_str());
  CHECK_EQUAL(443, u.port);
  STRCMP_EQUAL("/pusher", u.path.c_str());
  CHECK(parse_webhook_url("HTTPS://[::1]:8443", &u, &why));
  CHECK(u.tls);
  STRCMP_EQUAL("::1", u.host.c_str());
  CHECK_EQUAL(8443, u.port);
  STRCMP_EQUAL("/", u.path.c_str());
  CHECK(parse_webhook_url("http://h/", &u, &why));
  CHECK(!u.tls);
  CHECK_EQUAL(80, u.port);
  for (const char* bad : {"https://", "https://:443/", "https://h:0/", "https://u:p@h/", "httpss://h/"}) {
    why.clear();
    CHECK_TEXT(!parse_webhook_url(bad, &u, &why), bad);
    CHECK_TEXT(!why.empty(), bad);
  }
}

TEST(WebhookHttps, TheDispatcherSignsAndPostsOverTls) {
  TinyTlsServer srv("IP:127.0.0.1");
  WebhookTarget t;
  t.ns = "pusher/1";
  t.app_key = "key1";
  t.secret = "secret1";
  t.url = "https://127.0.0.1/hook";
  t.host = "127.0.0.1";
  t.port = srv.port();
  t.host_header = "127.0.0.1";
  t.path = "/hook";
  t.tls = trusting(srv);
  WebhookPolicy policy;
  policy.batch_window_ms = 10;
  WebhookDispatcher d({t}, policy, 3000, [](bool, const std::string& line) { FAIL(line.c_str()); });
  PusherHook h;
  h.kind = PusherHook::Occupied;
  h.ns = "pusher/1";
  h.channel = "orders";
  d.add({h});
  for (int i = 0; i < 300 && d.stats().sent_batches == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  d.stop();
  UNSIGNED_LONGS_EQUAL(1, d.stats().sent_batches);
  std::vector<std::string> reqs = srv.requests();
  CHECK_EQUAL(1u, reqs.size());
  STRCMP_CONTAINS("POST /hook HTTP/1.1\r\n", reqs[0].c_str());
  STRCMP_CONTAINS("X-Pusher-Key: key1\r\n", reqs[0].c_str());
  const std::string body = reqs[0].substr(reqs[0].find("\r\n\r\n") + 4);
  STRCMP_CONTAINS("\"name\":\"channel_occupied\",\"channel\":\"orders\"", body.c_str());
  STRCMP_CONTAINS(("X-Pusher-Signature: " + webhook_signature("secret1", body) + "\r\n").c_str(), reqs[0].c_str());
}
