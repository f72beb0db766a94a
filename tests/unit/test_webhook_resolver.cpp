// Webhook name lookup: literal addresses skip the resolver, answers are
// cached (ttl, bounded), a failed or slow lookup fails the POST within its
// deadline, and a lookup still under way is waited for, not started again.
// The resolver is a function the tests give (counts calls, sleeps); the
// HTTP exchange is real (TinyServer on loopback).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pusher/host_resolver.h"
#include "pusher/webhook_dispatcher.h"
#include "pusher/webhook_http.h"
#include "runtime/clock.h"
#include "tiny_http_server.h"

#include <CppUTest/TestHarness.h>  // last

using namespace wsb;

namespace {

// Shared with the lookup threads (which may outlive a call): by shared_ptr.
struct FakeDns {
  std::atomic<int> calls{0}, finished{0};
  int sleep_ms = 0;
  std::string error;  // "" = answer 127.0.0.1
};

std::shared_ptr<FakeDns> make_dns(int sleep_ms = 0, const std::string& error = "") {
  auto dns = std::make_shared<FakeDns>();
  dns->sleep_ms = sleep_ms;
  dns->error = error;
  return dns;
}

ResolveFn fake(const std::shared_ptr<FakeDns>& dns) {
  return [dns](const std::string&, std::vector<ResolvedAddress>* out) -> std::string {
    dns->calls++;
    if (dns->sleep_ms) std::this_thread::sleep_for(std::chrono::milliseconds(dns->sleep_ms));
    std::string why = dns->error;
    if (why.empty()) {
      ResolvedAddress a;
      auto* in = reinterpret_cast<sockaddr_in*>(&a.addr);
      in->sin_family = AF_INET;
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.len = sizeof(sockaddr_in);
      out->push_back(a);
    }
    dns->finished++;
    return why;
  };
}

// Lookup threads of a test end before the next test starts.
void wait_finished(const std::shared_ptr<FakeDns>& dns, int n) {
  for (int i = 0; i < 500 && dns->finished < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_EQUAL(n, dns->finished.load());
}

HttpPostResult post(HostResolver& r, const std::string& host, int port, int timeout_ms = 2000) {
  return http_post(host, port, "h", "/", {}, "{}", timeout_ms, &r);
}

int port_of(const ResolvedAddress& a) {
  return a.addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&a.addr)->sin6_port)
                                      : ntohs(reinterpret_cast<const sockaddr_in*>(&a.addr)->sin_port);
}

}  // namespace

TEST_GROUP(PusherWebhookResolver) {
  // The last lookup's answer and error.
  std::vector<ResolvedAddress> a;
  std::string why;
  // A lookup of host:port that may take wait_ms from now.
  bool resolve(HostResolver& r, const std::string& host, int port, int wait_ms) {
    return r.resolve(host, port, monotonic_ms() + wait_ms, &a, &why);
  }
};

TEST(PusherWebhookResolver, LiteralAddressesNeverReachTheResolver) {
  auto dns = make_dns(0, "must not be asked");
  HostResolver r(fake(dns));
  CHECK_TRUE(resolve(r, "::1", 8080, 1000));
  UNSIGNED_LONGS_EQUAL(1, a.size());
  CHECK_EQUAL(AF_INET6, a[0].addr.ss_family);
  CHECK_EQUAL(8080, port_of(a[0]));
  CHECK_TRUE(resolve(r, "10.1.2.3", 81, 1000));
  CHECK_EQUAL(AF_INET, a[0].addr.ss_family);
  CHECK_EQUAL(81, port_of(a[0]));
  TinyServer srv({204});
  CHECK_EQUAL(204, post(r, "127.0.0.1", srv.port()).status);
  CHECK_EQUAL(0, dns->calls.load());
  UNSIGNED_LONGS_EQUAL(0, r.cached());
}

TEST(PusherWebhookResolver, TheSystemResolverAnswersForLocalhost) {
  HostResolver r;  // getaddrinfo, on its helper thread (/etc/hosts)
  CHECK_TRUE(resolve(r, "localhost", 8080, 5000));
  CHECK_TRUE(!a.empty());
  CHECK_EQUAL(8080, port_of(a[0]));
  UNSIGNED_LONGS_EQUAL(1, r.cached());
  TinyServer srv({204});
  CHECK_EQUAL(204, post(r, "localhost", srv.port()).status);  // one of its addresses is 127.0.0.1
}

TEST(PusherWebhookResolver, AnswersAreCachedUntilTheirTtl) {
  auto dns = make_dns();
  HostResolver::Options o;
  o.ttl_ms = 300;
  HostResolver r(fake(dns), o);
  TinyServer srv({});
  for (int i = 0; i < 3; ++i) CHECK_EQUAL(200, post(r, "hooks.test", srv.port()).status);
  CHECK_EQUAL(1, dns->calls.load());
  UNSIGNED_LONGS_EQUAL(1, r.cached());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  CHECK_EQUAL(200, post(r, "hooks.test", srv.port()).status);
  CHECK_EQUAL(2, dns->calls.load());
  UNSIGNED_LONGS_EQUAL(3 + 1, srv.requests().size());
  wait_finished(dns, 2);
}

TEST(PusherWebhookResolver, TheCacheIsBoundedAndARefusedHostIsAskedAgain) {
  auto dns = make_dns();
  HostResolver::Options o;
  o.max_hosts = 2;
  HostResolver r(fake(dns), o);
  for (const char* h : {"a.test", "b.test", "c.test"}) CHECK_TRUE(resolve(r, h, 80, 2000));
  UNSIGNED_LONGS_EQUAL(2, r.cached());
  CHECK_TRUE(resolve(r, "c.test", 80, 2000));  // the newest stays
  CHECK_EQUAL(3, dns->calls.load());
  // Nobody listens there: the answer is forgotten, the next POST asks again.
  int port;
  {
    TinyServer gone({});
    port = gone.port();
  }
  HostResolver r2(fake(dns));
  STRCMP_CONTAINS("connect", post(r2, "gone.test", port).error.c_str());
  UNSIGNED_LONGS_EQUAL(0, r2.cached());
  post(r2, "gone.test", port);
  CHECK_EQUAL(5, dns->calls.load());
  wait_finished(dns, 5);
}

TEST(PusherWebhookResolver, AFailedLookupFailsThePostAndIsNotCached) {
  auto dns = make_dns(0, "Name or service not known");
  HostResolver r(fake(dns));
  HttpPostResult res = post(r, "nowhere.test", 9);
  CHECK_EQUAL(0, res.status);
  STRCMP_EQUAL("cannot resolve nowhere.test: Name or service not known", res.error.c_str());
  post(r, "nowhere.test", 9);
  CHECK_EQUAL(2, dns->calls.load());
  UNSIGNED_LONGS_EQUAL(0, r.cached());
  wait_finished(dns, 2);
}

TEST(PusherWebhookResolver, ASlowResolverFailsThePostWithinItsDeadline) {
  auto dns = make_dns(2500);
  HostResolver r(fake(dns));
  TinyServer srv({});
  int64_t t0 = monotonic_ms();
  HttpPostResult res = post(r, "slow.test", srv.port(), 300);
  int64_t took = monotonic_ms() - t0;
  CHECK_EQUAL(0, res.status);
  STRCMP_CONTAINS("name lookup of slow.test timed out", res.error.c_str());
  CHECK_TRUE(took >= 250);
  CHECK_TRUE(took < 1500);  // the deadline and slack, not the resolver's 2.5 s
  // Still under way: the next POST waits for the same lookup, no second one.
  CHECK_EQUAL(0, post(r, "slow.test", srv.port(), 300).status);
  CHECK_EQUAL(1, dns->calls.load());
  // Its late answer serves the next POST (the thread wrote only its own state).
  wait_finished(dns, 1);
  CHECK_EQUAL(200, post(r, "slow.test", srv.port()).status);
  CHECK_EQUAL(1, dns->calls.load());
  UNSIGNED_LONGS_EQUAL(1, srv.requests().size());
}

TEST(PusherWebhookResolver, LookupsUnderWayAreBounded) {
  auto dns = make_dns(800);
  HostResolver::Options o;
  o.max_pending = 1;
  HostResolver r(fake(dns), o);
  CHECK_FALSE(resolve(r, "a.test", 80, 50));
  CHECK_FALSE(resolve(r, "b.test", 80, 50));
  STRCMP_CONTAINS("cannot resolve b.test: 1 name lookups are still under way", why.c_str());
  CHECK_EQUAL(1, dns->calls.load());
  wait_finished(dns, 1);
  // a.test's late answer makes room (and is kept): b.test is asked. (The
  // lookup thread stores its answer just after the fake returns: poll.)
  bool ok = false;
  for (int i = 0; i < 200 && !(ok = resolve(r, "b.test", 80, 2000)); ++i) {
    STRCMP_CONTAINS("still under way", why.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK_TRUE(ok);
  CHECK_TRUE(resolve(r, "a.test", 80, 2000));
  CHECK_EQUAL(2, dns->calls.load());
  UNSIGNED_LONGS_EQUAL(2, r.cached());
  wait_finished(dns, 2);
}

TEST(PusherWebhookResolver, ALateAnswerOlderThanTheTtlIsNotUsed) {
  auto dns = make_dns(300);
  HostResolver::Options o;
  o.ttl_ms = 200;
  HostResolver r(fake(dns), o);
  CHECK_FALSE(resolve(r, "a.test", 80, 20));
  STRCMP_CONTAINS("name lookup of a.test timed out", why.c_str());
  wait_finished(dns, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // its answer is now past the ttl
  CHECK_TRUE(resolve(r, "a.test", 80, 2000));
  CHECK_EQUAL(2, dns->calls.load());
  wait_finished(dns, 2);
}

TEST(PusherWebhookResolver, TheDispatcherLogsOneLinePerFailedAttemptNamingTheHost) {
  auto dns = make_dns(0, "Temporary failure in name resolution");
  WebhookTarget t;
  t.ns = "pusher/1";
  t.url = "http://hooks.test/h";
  t.host = "hooks.test";
  t.port = 80;
  t.host_header = "hooks.test";
  t.path = "/h";
  WebhookPolicy policy;
  policy.batch_window_ms = 20;
  policy.max_attempts = 1;
  std::vector<std::string> logged;
  std::mutex log_mu;
  WebhookDispatcher d({t}, policy, 1000, [&](bool, const std::string& line) {
    std::lock_guard<std::mutex> l(log_mu);
    logged.push_back(line);
  }, std::make_shared<HostResolver>(fake(dns)));
  std::vector<PusherHook> hooks(3);
  for (size_t i = 0; i < hooks.size(); ++i) {
    hooks[i].kind = PusherHook::Occupied;
    hooks[i].ns = "pusher/1";
    hooks[i].channel = "c" + std::to_string(i);
  }
  d.add(hooks);
  for (int i = 0; i < 200 && d.stats().failed_attempts == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  d.stop(0);
  UNSIGNED_LONGS_EQUAL(1, d.stats().failed_attempts);
  std::lock_guard<std::mutex> l(log_mu);
  UNSIGNED_LONGS_EQUAL(1, logged.size());
  STRCMP_EQUAL("Pusher webhook http://hooks.test/h: cannot resolve hooks.test: Temporary failure in name resolution "
               "(attempt 1); 3 event(s) dropped",
               logged[0].c_str());
  wait_finished(dns, 1);
}
