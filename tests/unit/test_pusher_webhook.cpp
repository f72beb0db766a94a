// Pusher webhooks: the body and its signature, batching, retries with
// backoff, bounded queues, target parsing, which process reports what, and
// the HTTP client and webhook thread against a real loopback server.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chat/chat_engine.h"
#include "chat/chat_record.h"
#include "pusher/pusher_app.h"
#include "pusher/pusher_auth.h"
#include "pusher/pusher_webhook.h"
#include "pusher/webhook_dispatcher.h"
#include "pusher/webhook_http.h"
#include "tiny_http_server.h"

#include "chat_test_support.h"  // last: includes CppUTest

using namespace wsb;

namespace {

PusherHook hook(PusherHook::Kind k, const std::string& ch, const std::string& user = "") {
  PusherHook h;
  h.kind = k;
  h.ns = "pusher/1";
  h.channel = ch;
  h.user_id = user;
  return h;
}

WebhookPolicy small_policy() {
  WebhookPolicy p;
  p.batch_window_ms = 100;
  p.max_batch_events = 3;
  p.max_batch_bytes = 1000;
  p.max_queued = 5;
  p.max_attempts = 3;
  p.backoff_ms = 1000;
  p.max_backoff_ms = 3000;
  return p;
}

}  // namespace

TEST_GROUP(PusherWebhookFormat) {};

TEST(PusherWebhookFormat, EventsInPushersShape) {
  STRCMP_EQUAL("{\"name\":\"channel_occupied\",\"channel\":\"c\"}",
               encode_webhook_event(hook(PusherHook::Occupied, "c")).c_str());
  STRCMP_EQUAL("{\"name\":\"channel_vacated\",\"channel\":\"c\"}",
               encode_webhook_event(hook(PusherHook::Vacated, "c")).c_str());
  STRCMP_EQUAL("{\"name\":\"member_added\",\"channel\":\"presence-x\",\"user_id\":\"u\\\"1\"}",
               encode_webhook_event(hook(PusherHook::MemberAdded, "presence-x", "u\"1")).c_str());
  STRCMP_EQUAL("{\"name\":\"member_removed\",\"channel\":\"presence-x\",\"user_id\":\"u\"}",
               encode_webhook_event(hook(PusherHook::MemberRemoved, "presence-x", "u")).c_str());
  STRCMP_EQUAL("{\"name\":\"cache_miss\",\"channel\":\"cache-a\"}",
               encode_webhook_event(hook(PusherHook::CacheMiss, "cache-a")).c_str());
  PusherHook ce = hook(PusherHook::ClientEvent, "private-a");
  ce.event = "client-typing";
  ce.data = "{\"x\":1}";
  ce.socket_id = "123.456";
  // data is the event's data as a string, as Pusher sends it.
  STRCMP_EQUAL("{\"name\":\"client_event\",\"channel\":\"private-a\",\"event\":\"client-typing\","
               "\"data\":\"{\\\"x\\\":1}\",\"socket_id\":\"123.456\"}",
               encode_webhook_event(ce).c_str());
  ce.channel = "presence-a";
  ce.user_id = "bob";
  STRCMP_CONTAINS("\"socket_id\":\"123.456\",\"user_id\":\"bob\"}", encode_webhook_event(ce).c_str());
}

TEST(PusherWebhookFormat, BodyAndSignature) {
  std::string body = encode_webhook_body(1327078148132, {encode_webhook_event(hook(PusherHook::Occupied, "test_channel"))});
  STRCMP_EQUAL("{\"time_ms\":1327078148132,\"events\":[{\"name\":\"channel_occupied\",\"channel\":\"test_channel\"}]}",
               body.c_str());
  // Computed independently (Python's hmac module).
  STRCMP_EQUAL("709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa",
               webhook_signature("7ad3773142a6692b25b8", body).c_str());
  CHECK(verify_webhook("key", "7ad3773142a6692b25b8", "key", webhook_signature("7ad3773142a6692b25b8", body), body));
  CHECK(!verify_webhook("key", "7ad3773142a6692b25b8", "key", webhook_signature("other-secret", body), body));
  STRCMP_EQUAL("{\"time_ms\":5,\"events\":[]}", encode_webhook_body(5, {}).c_str());
}

TEST(PusherWebhookFormat, EventNamesAndBits) {
  UNSIGNED_LONGS_EQUAL(kHookMemberRemoved, webhook_event_bit(std::string_view("member_removed")));
  UNSIGNED_LONGS_EQUAL(kHookClientEvent, webhook_event_bit(PusherHook::ClientEvent));
  UNSIGNED_LONGS_EQUAL(0, webhook_event_bit(std::string_view("member_joined")));
  STRCMP_EQUAL("cache_miss", webhook_event_name(PusherHook::CacheMiss));
}

TEST_GROUP(PusherWebhookQueue) {};

TEST(PusherWebhookQueue, EventsWithinTheWindowGoInOneBatch) {
  WebhookQueue q(small_policy());
  CHECK_EQUAL(INT64_MAX, q.next_due());
  CHECK(q.add("{\"a\":1}", 1000));
  CHECK(q.add("{\"a\":2}", 1050));
  CHECK_EQUAL(1100, q.next_due());
  CHECK(!q.take(1099, 7).has_value());
  auto b = q.take(1100, 7);
  CHECK(b.has_value());
  STRCMP_EQUAL("{\"time_ms\":7,\"events\":[{\"a\":1},{\"a\":2}]}", b->body.c_str());
  UNSIGNED_LONGS_EQUAL(2, b->events);
  CHECK_EQUAL(1, b->attempt);
  CHECK(q.in_flight());
  CHECK(!q.take(5000, 7).has_value());  // one batch in flight at a time
  CHECK(q.done(true, 1110) == WebhookQueue::Outcome::Sent);
  UNSIGNED_LONGS_EQUAL(1, q.sent_batches());
  UNSIGNED_LONGS_EQUAL(2, q.sent_events());
  CHECK_EQUAL(INT64_MAX, q.next_due());
}

TEST(PusherWebhookQueue, AFullBatchGoesAtOnceAndTheRestFollows) {
  WebhookQueue q(small_policy());
  for (int i = 0; i < 4; ++i) CHECK(q.add("{\"i\":" + std::to_string(i) + "}", 1000));
  CHECK_EQUAL(1000, q.next_due());  // 3 (the batch size) are waiting: no window
  auto b = q.take(1000, 1);
  UNSIGNED_LONGS_EQUAL(3, b->events);
  q.done(true, 1001);
  UNSIGNED_LONGS_EQUAL(1, q.queued());
  auto rest = q.take(1100, 1);
  CHECK(rest.has_value());
  STRCMP_EQUAL("{\"time_ms\":1,\"events\":[{\"i\":3}]}", rest->body.c_str());
}

TEST(PusherWebhookQueue, ABatchStopsAtItsByteCapButAlwaysTakesOne) {
  WebhookQueue q(small_policy());
  q.add(std::string(1500, 'x'), 0);  // larger than the cap alone
  q.add("{}", 0);
  auto b = q.take(100, 1);
  UNSIGNED_LONGS_EQUAL(1, b->events);
  q.done(true, 100);
  q.add(std::string(600, 'y'), 200);
  auto c = q.take(300, 1);
  UNSIGNED_LONGS_EQUAL(2, c->events);  // "{}" and 600 bytes fit in 1000
}

TEST(PusherWebhookQueue, FailuresRetryTheSameBodyWithBackoffThenDrop) {
  WebhookQueue q(small_policy());
  q.add("{\"e\":1}", 0);
  auto b1 = q.take(100, 42);
  CHECK(q.done(false, 200) == WebhookQueue::Outcome::Retry);
  CHECK_EQUAL(1200, q.next_due());  // 1 s later
  q.add("{\"e\":2}", 300);          // waits behind the retry
  CHECK(!q.take(1199, 99).has_value());
  auto b2 = q.take(1200, 99);
  STRCMP_EQUAL(b1->body.c_str(), b2->body.c_str());  // the same body: the same signature
  CHECK_EQUAL(2, b2->attempt);
  CHECK(q.done(false, 1300) == WebhookQueue::Outcome::Retry);
  CHECK_EQUAL(3300, q.next_due());  // 2 s
  auto b3 = q.take(3300, 99);
  CHECK_EQUAL(3, b3->attempt);
  CHECK(q.done(false, 3400) == WebhookQueue::Outcome::Dropped);  // max_attempts = 3
  UNSIGNED_LONGS_EQUAL(1, q.dropped_events());
  UNSIGNED_LONGS_EQUAL(3, q.failed_attempts());
  auto next = q.take(3400, 5);  // the event that waited goes now
  STRCMP_EQUAL("{\"time_ms\":5,\"events\":[{\"e\":2}]}", next->body.c_str());
}

TEST(PusherWebhookQueue, BackoffDoublesUpToItsCap) {
  WebhookQueue q(small_policy());
  CHECK_EQUAL(1000, q.backoff(1));
  CHECK_EQUAL(2000, q.backoff(2));
  CHECK_EQUAL(3000, q.backoff(3));
  CHECK_EQUAL(3000, q.backoff(30));
}

TEST(PusherWebhookQueue, AFullQueueDropsAndCounts) {
  WebhookQueue q(small_policy());
  for (int i = 0; i < 5; ++i) CHECK(q.add("{}", 0));
  CHECK(!q.add("{}", 0));
  CHECK(!q.add("{}", 0));
  UNSIGNED_LONGS_EQUAL(2, q.dropped_events());
  UNSIGNED_LONGS_EQUAL(5, q.queued());
}

TEST_GROUP(PusherWebhookUrl) {};

TEST(PusherWebhookUrl, TargetsAreParsedOrRefusedWithAReason) {
  WebhookUrl u;
  std::string why;
  CHECK(parse_webhook_url("http://example.com:8080/hooks/pusher?x=1", &u, &why));
  CHECK(!u.local);
  STRCMP_EQUAL("example.com", u.host.c_str());
  CHECK_EQUAL(8080, u.port);
  STRCMP_EQUAL("/hooks/pusher?x=1", u.path.c_str());
  CHECK(parse_webhook_url("HTTP://h", &u, &why));
  CHECK_EQUAL(80, u.port);
  STRCMP_EQUAL("/", u.path.c_str());
  CHECK(parse_webhook_url("http://[::1]:9/p", &u, &why));
  STRCMP_EQUAL("::1", u.host.c_str());
  CHECK_EQUAL(9, u.port);
  CHECK(parse_webhook_url("/pusher/webhook.php?app=1", &u, &why));
  CHECK(u.local);
  STRCMP_EQUAL("/pusher/webhook.php?app=1", u.path.c_str());
  for (const char* bad : {"", "ftp://h/", "http://", "http://:80/", "http://h:0/", "http://h:65536/",
                          "http://h:x/", "http://u:p@h/", "//h/x", "/a b", "http://h/#f", "relative/path",
                          "http://[::1/"}) {
    why.clear();
    CHECK_TEXT(!parse_webhook_url(bad, &u, &why), bad);
    CHECK_TEXT(!why.empty(), bad);
  }
}

// Which process reports: the owner of the socket whose record caused it, or
// the process that published the gone record of a dead one.
TEST_GROUP(PusherWebhookReporter) {};

namespace {
constexpr long kHere = 7, kThere = 9, kDead = 11;
std::string rec_sub(const std::string& sock, const std::string& ch, long pid, const std::string& user = "") {
  ChatRecord r;
  r.type = RecordType::PusherSubscribe;
  r.ns = "pusher/1";
  r.channel = ch;
  r.conn = sock;
  r.pid = pid;
  r.user = user;
  r.data = user.empty() ? "" : "{}";
  r.ts = 1;
  return encode_record(r);
}
std::string rec_leave(const std::string& sock, const std::string& ch = "") {
  ChatRecord r;
  r.type = RecordType::PusherLeave;
  r.ns = "pusher/1";
  r.channel = ch;
  r.conn = sock;
  r.ts = 1;
  return encode_record(r);
}
std::string rec_event(const std::string& ch, const std::string& name, const std::string& sock, const std::string& user,
                      bool from_client = true) {
  ChatRecord r = wsb_test::pub_record("pusher/1", ch, PublishKind::Event, "{\"d\":1}");
  r.from = from_client ? "client" : "";
  r.name = name;
  r.conn = sock;
  r.user = user;
  return encode_record(r);
}
std::string rec_gone(long pid, long by) {
  ChatRecord r;
  r.type = RecordType::Gone;
  r.pid = pid;
  r.by = by;
  r.ts = 1;
  return encode_record(r);
}
struct TwoProcesses {
  ChatEngine here{ChatConfig()}, there{ChatConfig()};
  uint64_t seq = 0;
  TwoProcesses() {
    here.enable_pusher(std::make_unique<PusherFrames>(), kHere);
    there.enable_pusher(std::make_unique<PusherFrames>(), kThere);
  }
  void apply(const std::string& r) {
    ++seq;
    here.apply(seq, r);
    there.apply(seq, r);
  }
  static std::vector<std::string> names(ChatEngine& e) {
    std::vector<std::string> out;
    for (const PusherHook& h : e.take_pusher_hooks())
      out.push_back(std::string(webhook_event_name(h.kind)) + (h.user_id.empty() ? "" : ":" + h.user_id));
    return out;
  }
};
std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}
}  // namespace

TEST(PusherWebhookReporter, EachTransitionIsReportedByOneProcess) {
  TwoProcesses p;
  p.apply(rec_sub("1.1", "presence-r", kHere, "u1"));
  p.apply(rec_sub("2.1", "presence-r", kThere, "u1"));  // same user elsewhere: nothing
  p.apply(rec_sub("2.2", "presence-r", kThere, "u2"));
  CHECK(p.here.has_pusher_hooks());
  STRCMP_EQUAL("channel_occupied,member_added:u1", joined(TwoProcesses::names(p.here)).c_str());
  STRCMP_EQUAL("member_added:u2", joined(TwoProcesses::names(p.there)).c_str());
  CHECK(!p.here.has_pusher_hooks());
  p.apply(rec_leave("1.1"));  // u1 stays (2.1): nothing
  STRCMP_EQUAL("", joined(TwoProcesses::names(p.here)).c_str());
  p.apply(rec_leave("2.1", "presence-r"));
  p.apply(rec_leave("2.2"));
  STRCMP_EQUAL("", joined(TwoProcesses::names(p.here)).c_str());
  STRCMP_EQUAL("member_removed:u1,member_removed:u2,channel_vacated", joined(TwoProcesses::names(p.there)).c_str());
}

TEST(PusherWebhookReporter, TheLeavesOfADeadProcessAreReportedByTheGoneRecordsPublisher) {
  TwoProcesses p;
  p.apply(rec_sub("3.1", "presence-d", kDead, "ghost"));
  p.apply(rec_sub("3.2", "cache-d", kDead));
  TwoProcesses::names(p.here);
  TwoProcesses::names(p.there);
  p.apply(rec_gone(kDead, kThere));
  STRCMP_EQUAL("", joined(TwoProcesses::names(p.here)).c_str());
  std::vector<std::string> got = TwoProcesses::names(p.there);
  std::sort(got.begin(), got.end());
  STRCMP_EQUAL("channel_vacated,channel_vacated,member_removed:ghost", joined(got).c_str());
  // A gone record without "by" (an older child): nobody reports.
  p.apply(rec_sub("3.3", "c", kDead));
  TwoProcesses::names(p.here);
  TwoProcesses::names(p.there);
  p.apply(rec_gone(kDead, 0));
  CHECK(TwoProcesses::names(p.here).empty() && TwoProcesses::names(p.there).empty());
}

TEST(PusherWebhookReporter, ClientEventsAndCacheMissesByTheSendersProcess) {
  TwoProcesses p;
  auto peer = std::make_shared<wsb_test::RecordingPeer>();
  p.there.pusher_attach("2.1", "pusher/1", peer);  // the owner has the socket (the miss is sent to it)
  p.apply(rec_sub("1.1", "presence-c", kHere, "alice"));
  p.apply(rec_sub("2.1", "cache-x", kThere));
  TwoProcesses::names(p.here);
  STRCMP_EQUAL("channel_occupied,cache_miss", joined(TwoProcesses::names(p.there)).c_str());
  p.apply(rec_event("presence-c", "client-hi", "1.1", "alice"));
  p.apply(rec_event("presence-c", "client-api", "1.1", "", false));  // the HTTP API's, skipping 1.1: no hook
  std::vector<PusherHook> hooks = p.here.take_pusher_hooks();
  CHECK(p.there.take_pusher_hooks().empty());
  UNSIGNED_LONGS_EQUAL(1, hooks.size());
  CHECK(hooks[0].kind == PusherHook::ClientEvent);
  STRCMP_EQUAL("client-hi", hooks[0].event.c_str());
  STRCMP_EQUAL("{\"d\":1}", hooks[0].data.c_str());
  STRCMP_EQUAL("1.1", hooks[0].socket_id.c_str());
  STRCMP_EQUAL("alice", hooks[0].user_id.c_str());
}

TEST(PusherWebhookReporter, TheGoneRecordKeepsItsReporter) {
  ChatRecord r;
  CHECK(parse_record(rec_gone(5, 6), &r));
  CHECK_EQUAL(5, r.pid);
  CHECK_EQUAL(6, r.by);
  CHECK(parse_record("{\"t\":\"gone\",\"pid\":5,\"ts\":1}", &r));
  CHECK_EQUAL(0, r.by);
}

TEST_GROUP(PusherWebhookHttp) {};

TEST(PusherWebhookHttp, PostsAndReadsTheStatus) {
  TinyServer srv({204, 500, 0});
  HttpPostResult r = http_post("127.0.0.1", srv.port(), "hooks.test", "/h?x=1", {{"X-Pusher-Key", "k"}}, "{\"a\":1}", 2000);
  CHECK_EQUAL(204, r.status);
  std::string req = srv.requests().at(0);
  STRCMP_CONTAINS("POST /h?x=1 HTTP/1.1\r\nHost: hooks.test\r\n", req.c_str());
  STRCMP_CONTAINS("Content-Type: application/json\r\nContent-Length: 7\r\n", req.c_str());
  STRCMP_CONTAINS("X-Pusher-Key: k\r\n\r\n{\"a\":1}", req.c_str());
  CHECK_EQUAL(500, http_post("127.0.0.1", srv.port(), "h", "/", {}, "{}", 2000).status);
  HttpPostResult t = http_post("127.0.0.1", srv.port(), "h", "/", {}, "{}", 150);
  CHECK_EQUAL(0, t.status);
  STRCMP_CONTAINS("no answer in time", t.error.c_str());
}

TEST(PusherWebhookHttp, ARefusedConnectionIsAnError) {
  int port;
  {
    TinyServer gone({});
    port = gone.port();
  }
  HttpPostResult r = http_post("127.0.0.1", port, "h", "/", {}, "{}", 1000);
  CHECK_EQUAL(0, r.status);
  STRCMP_CONTAINS("connect", r.error.c_str());
}

TEST(PusherWebhookHttp, TheDispatcherSignsBatchesAndRetriesAfterA500) {
  TinyServer srv({500});
  WebhookTarget t;
  t.ns = "pusher/1";
  t.app_key = "key1";
  t.secret = "secret-0123456789";
  t.url = "test";
  t.events = kHookOccupied | kHookMemberAdded;
  t.host = "127.0.0.1";
  t.port = srv.port();
  t.host_header = "h";
  t.path = "/hook";
  WebhookPolicy policy;
  policy.batch_window_ms = 50;
  policy.backoff_ms = 100;
  std::vector<std::string> logged;
  std::mutex log_mu;
  WebhookDispatcher d({t}, policy, 2000, [&](bool, const std::string& line) {
    std::lock_guard<std::mutex> l(log_mu);
    logged.push_back(line);
  });
  PusherHook other = hook(PusherHook::Occupied, "c");
  other.ns = "pusher/2";  // another app: not this target's
  d.add({hook(PusherHook::Occupied, "c"), hook(PusherHook::Vacated, "c") /* not chosen */,
         hook(PusherHook::MemberAdded, "presence-c", "u"), other});
  for (int i = 0; i < 200 && d.stats().sent_batches == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  d.stop();
  WebhookStats st = d.stats();
  UNSIGNED_LONGS_EQUAL(1, st.sent_batches);
  UNSIGNED_LONGS_EQUAL(2, st.sent_events);
  UNSIGNED_LONGS_EQUAL(1, st.failed_attempts);
  std::vector<std::string> reqs = srv.requests();
  UNSIGNED_LONGS_EQUAL(2, reqs.size());
  std::string body1 = reqs[0].substr(reqs[0].find("\r\n\r\n") + 4);
  std::string body2 = reqs[1].substr(reqs[1].find("\r\n\r\n") + 4);
  STRCMP_EQUAL(body1.c_str(), body2.c_str());
  STRCMP_CONTAINS("\"events\":[{\"name\":\"channel_occupied\",\"channel\":\"c\"},"
                  "{\"name\":\"member_added\",\"channel\":\"presence-c\",\"user_id\":\"u\"}]}", body1.c_str());
  STRCMP_CONTAINS(("X-Pusher-Signature: " + webhook_signature("secret-0123456789", body1) + "\r\n").c_str(),
                  reqs[1].c_str());
  STRCMP_CONTAINS("X-Pusher-Key: key1\r\n", reqs[1].c_str());
  std::lock_guard<std::mutex> l(log_mu);
  UNSIGNED_LONGS_EQUAL(1, logged.size());
  STRCMP_CONTAINS("answered 500 (attempt 1); sending again later", logged[0].c_str());
}

TEST(PusherWebhookHttp, AFullQueueDropsAndLogsOncePerInterval) {
  WebhookTarget t;
  t.ns = "pusher/1";
  t.url = "nowhere";
  t.host = "127.0.0.1";
  t.port = 9;
  WebhookPolicy policy;
  policy.batch_window_ms = 60000;  // nothing is sent during the test
  policy.max_queued = 2;
  std::vector<std::string> logged;
  std::mutex log_mu;
  WebhookDispatcher d({t}, policy, 500, [&](bool, const std::string& line) {
    std::lock_guard<std::mutex> l(log_mu);
    logged.push_back(line);
  });
  d.add({hook(PusherHook::Occupied, "a"), hook(PusherHook::Occupied, "b"), hook(PusherHook::Occupied, "c"),
         hook(PusherHook::Occupied, "d")});
  d.add({hook(PusherHook::Occupied, "e")});  // within the interval: counted, not logged
  UNSIGNED_LONGS_EQUAL(3, d.stats().dropped_events);
  d.stop(0);  // no flush: the 2 waiting are dropped, and said so
  std::lock_guard<std::mutex> l(log_mu);
  UNSIGNED_LONGS_EQUAL(2, logged.size());
  STRCMP_CONTAINS("queue full (a receiver is down or too slow), 2 event(s) dropped", logged[0].c_str());
  STRCMP_CONTAINS("2 event(s) not sent (the process is stopping)", logged[1].c_str());
}
