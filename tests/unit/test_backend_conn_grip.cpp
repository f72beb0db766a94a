// BackendConnection with GRIP: message prefixes, control messages,
// Set-Meta-*, detach, and the timers (keep-alive, send-delayed,
// Keep-Alive-Interval).
#include <string>

#include "backend/backend_conn.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

BackendResponse answer(const std::string& body, HeaderList extra = {}) {
  BackendResponse r{200, {{"Content-Type", "application/websocket-events"}}, body};
  for (auto& h : extra) r.headers.push_back(std::move(h));
  return r;
}

std::string ev(const std::string& name, const std::string& content) {
  std::string body;
  append_event(body, WsEvent{name == "TEXT" ? WsEventType::Text : WsEventType::Binary, content});
  return body;
}

std::string ctl(const std::string& json) { return ev("TEXT", "c:" + json); }

std::string meta_string(const BackendConnection& conn) {
  std::string out;
  for (const auto& [k, v] : conn.meta()) out += k + "=" + v + ";";
  return out;
}

}  // namespace

TEST_GROUP(BackendConnGrip) {
  BackendConfig cfg;
  int64_t now = 1000;

  BackendConnection open(const std::string& extensions = "grip", const std::string& rest = "") {
    BackendConnection conn(cfg, "c");
    conn.take_request(0);
    HeaderList h;
    if (!extensions.empty()) h.emplace_back("Sec-WebSocket-Extensions", extensions);
    CHECK_TRUE(conn.on_open_response(answer("OPEN\r\n" + rest, h), now).accepted);
    return conn;
  }
  // One round trip: a client TEXT goes out, body comes back.
  BackendActions round(BackendConnection & conn, const std::string& body, HeaderList h = {}) {
    conn.push(WsEvent{WsEventType::Text, "x"});
    CHECK_TRUE(conn.ready());
    conn.take_request(0);
    return conn.on_response(answer(body, std::move(h)), now);
  }
};

TEST(BackendConnGrip, DefaultPrefixStripsAndUnprefixedIsDropped) {
  BackendConnection conn = open();
  const auto a = round(conn, ev("TEXT", "m:two") + ev("TEXT", "three") + ev("BINARY", "m:bin") +
                                 ev("BINARY", "raw") + ev("BINARY", "c:{}") + ev("TEXT", "m:"));
  CHECK_EQUAL(3u, a.sends.size());
  STRCMP_EQUAL("two", a.sends[0].data.c_str());
  CHECK(a.sends[1].kind == ClientSend::Binary);
  STRCMP_EQUAL("bin", a.sends[1].data.c_str());
  CHECK(a.sends[2].kind == ClientSend::Text && a.sends[2].data.empty());
  CHECK_EQUAL(3u, a.notes.size());
  STRCMP_EQUAL("dropped a TEXT without the message prefix", a.notes[0].c_str());
}

TEST(BackendConnGrip, ConfiguredAndAnsweredPrefixes) {
  cfg.default_message_prefix = "msg:";
  BackendConnection conn = open();
  STRCMP_EQUAL("a", round(conn, ev("TEXT", "msg:a")).sends[0].data.c_str());
  BackendConnection quoted = open("grip; message-prefix=\"p:\"");
  auto a = round(quoted, ev("TEXT", "p:one") + ev("TEXT", "m:two"));
  CHECK_EQUAL(1u, a.sends.size());
  STRCMP_EQUAL("one", a.sends[0].data.c_str());
  BackendConnection none = open("grip; message-prefix=\"\"");
  a = round(none, ev("TEXT", "p:one") + ev("TEXT", "three") +
                      ctl(R"({"type":"subscribe","channel":"c"})"));
  CHECK_EQUAL(2u, a.sends.size());  // "c:" is still a control message
  CHECK_EQUAL(1u, a.subscribe.size());
  BackendConnection upper = open("GRIP");  // not the grip extension: no GRIP
  CHECK_FALSE(upper.grip());
  STRCMP_EQUAL("c:{}", round(upper, ev("TEXT", "c:{}")).sends[0].data.c_str());
}

TEST(BackendConnGrip, SubscriptionsAreTrackedAndBounded) {
  cfg.max_subscriptions = 2;
  BackendConnection conn = open("grip", ctl(R"({"type":"subscribe","channel":"a"})"));
  auto a = round(conn, ctl(R"({"type":"subscribe","channel":"a"})") +
                           ctl(R"({"type":"subscribe","channel":"b"})") +
                           ctl(R"({"type":"subscribe","channel":"c"})"));
  CHECK_EQUAL(1u, a.subscribe.size());  // a again: nothing new
  STRCMP_EQUAL("b", a.subscribe[0].c_str());
  STRCMP_EQUAL("subscribe ignored: too many subscriptions", a.notes[0].c_str());
  a = round(conn, ctl(R"({"type":"unsubscribe","channel":"a"})") +
                      ctl(R"({"type":"unsubscribe","channel":"zz"})"));
  CHECK_EQUAL(1u, a.unsubscribe.size());
  CHECK_EQUAL(1u, conn.subscriptions().size());
  CHECK_EQUAL(1u, conn.subscriptions().count("b"));
}

TEST(BackendConnGrip, BadControlMessagesAreIgnored) {
  BackendConnection conn = open();
  const auto a = round(conn, ctl("not json") + ctl(R"({"type":"nope"})") + ev("TEXT", "m:after"));
  CHECK_FALSE(a.failed);
  CHECK_EQUAL(1u, a.sends.size());
  CHECK_EQUAL(2u, a.notes.size());
  STRCMP_EQUAL("control message ignored: unknown type", a.notes[1].c_str());
}

TEST(BackendConnGrip, SetMetaHeadersGoOnLaterRequests) {
  BackendConnection conn = open();
  round(conn, "", {{"Set-Meta-user", "alice"}, {"Set-Meta-Room", "1"}});
  STRCMP_EQUAL("user=alice;Room=1;", meta_string(conn).c_str());
  conn.push(WsEvent{WsEventType::Text, "x"});
  const auto req = conn.take_request(0);
  STRCMP_EQUAL("Meta-user", req.headers[req.headers.size() - 2].first.c_str());
  STRCMP_EQUAL("alice", req.headers[req.headers.size() - 2].second.c_str());
  conn.on_response(
      answer("", {{"Set-Meta-USER", "bob"}, {"Set-Meta-Room", ""}, {"Set-Meta-", "x"}}), now);
  STRCMP_EQUAL("USER=bob;", meta_string(conn).c_str());  // replaced (any case), deleted
}

TEST(BackendConnGrip, MetaIsBounded) {
  cfg.max_meta = 1;
  cfg.max_meta_value = 3;
  BackendConnection conn = open();
  const auto a =
      round(conn, "", {{"Set-Meta-a", "1"}, {"Set-Meta-b", "2"}, {"Set-Meta-a", "long"}});
  STRCMP_EQUAL("", meta_string(conn).c_str());  // a replaced by a too long value: gone
  CHECK_EQUAL(2u, a.notes.size());
}

TEST(BackendConnGrip, ControlMetaAndSessionAreKeptApart) {
  BackendConnection conn = open();
  round(conn, ctl(R"({"type":"set-meta","name":"foo","value":"bar"})") +
                  ctl(R"({"type":"session","id":"s1"})"));
  STRCMP_EQUAL("bar", conn.control_meta().at("foo").c_str());
  STRCMP_EQUAL("s1", conn.session_id().c_str());
  CHECK_TRUE(conn.meta().empty());  // as in Pushpin: no Meta-foo header
  round(conn, ctl(R"({"type":"set-meta","name":"foo"})"));
  CHECK_TRUE(conn.control_meta().empty());
}

TEST(BackendConnGrip, DetachClosesTheBackendSideOnly) {
  BackendConnection conn = open();
  conn.push(WsEvent{WsEventType::Text, "x"});
  conn.take_request(0);
  conn.push(WsEvent{WsEventType::Text, "queued"});
  const auto a = conn.on_response(answer(ctl(R"({"type":"detach"})") + ev("TEXT", "m:last")), now);
  CHECK_TRUE(a.detach);
  CHECK_EQUAL(1u, a.sends.size());  // the rest of that answer still goes
  CHECK_TRUE(conn.detached());
  CHECK(conn.push(WsEvent{WsEventType::Text, "after"}) == PushResult::Dropped);
  CHECK_TRUE(conn.ready());
  STRCMP_EQUAL("TEXT 6\r\nqueued\r\nCLOSE\r\n", conn.take_request(0).body.c_str());
  CHECK_FALSE(conn.finished());
  CHECK_TRUE(conn.on_response(answer(ev("TEXT", "m:ignored")), now).sends.empty());
  CHECK_TRUE(conn.finished());
  CHECK_FALSE(conn.ready());
}

TEST(BackendConnGrip, ADetachedConnectionKeepsItsKeepAlive) {
  BackendConnection conn = open("grip", ctl(R"({"type":"keep-alive","content":"ka","timeout":5})") +
                                            ctl(R"({"type":"subscribe","channel":"news"})"));
  round(conn, ctl(R"({"type":"detach"})"));
  conn.take_request(0);
  conn.on_response(answer(""), now);
  CHECK_TRUE(conn.finished());
  CHECK_EQUAL(1u, conn.subscriptions().size());
  CHECK_EQUAL(now + 5000, conn.next_deadline_ms());
  STRCMP_EQUAL("ka", conn.on_timer(now + 5000).sends[0].data.c_str());
}

TEST(BackendConnGrip, KeepAliveIdleMode) {
  BackendConnection conn = open();
  CHECK_EQUAL(-1, conn.next_deadline_ms());
  round(conn, ctl(R"({"type":"keep-alive","content":"ka","timeout":2})"));
  CHECK_TRUE(conn.keep_alive().enabled);
  CHECK_EQUAL(now + 2000, conn.next_deadline_ms());
  CHECK_TRUE(conn.on_timer(now + 1999).sends.empty());
  conn.note_client_send(now + 1500);  // a message went out: idle again from here
  CHECK_EQUAL(now + 3500, conn.next_deadline_ms());
  auto a = conn.on_timer(now + 3500);
  CHECK_EQUAL(1u, a.sends.size());
  STRCMP_EQUAL("ka", a.sends[0].data.c_str());
  CHECK_EQUAL(now + 5500, conn.next_deadline_ms());
  // Messages from the backend count as activity too.
  now += 5000;
  round(conn, ev("TEXT", "m:hi"));
  CHECK_EQUAL(now + 2000, conn.next_deadline_ms());
  round(conn, ctl(R"({"type":"keep-alive"})"));
  CHECK_FALSE(conn.keep_alive().enabled);
  CHECK_EQUAL(-1, conn.next_deadline_ms());
}

TEST(BackendConnGrip, KeepAliveIntervalModeDefaultAndBinary) {
  BackendConnection conn = open();
  round(conn, ctl(R"({"type":"keep-alive","content-bin":"AAE=","mode":"interval","timeout":3})"));
  CHECK(conn.keep_alive().message.kind == ClientSend::Binary);
  conn.note_client_send(now + 1000);
  CHECK_EQUAL(now + 3000, conn.next_deadline_ms());  // interval: activity does not matter
  round(conn, ctl(R"({"type":"keep-alive","content":"x"})"));
  CHECK_EQUAL(55, conn.keep_alive().timeout_s);
  CHECK_EQUAL(now + 55000, conn.next_deadline_ms());
}

TEST(BackendConnGrip, DelayedSendAndFlush) {
  BackendConnection conn = open();
  round(conn, ctl(R"({"type":"send-delayed","content":"later","timeout":2})"));
  CHECK_EQUAL(now + 2000, conn.next_deadline_ms());
  auto a = round(conn, ctl(R"({"type":"send-delayed","content":"second"})"));
  CHECK_EQUAL(1u, a.sends.size());  // the pending one goes first
  STRCMP_EQUAL("later", a.sends[0].data.c_str());
  CHECK_EQUAL(now + 1000, conn.next_deadline_ms());
  a = conn.on_timer(now + 1000);
  STRCMP_EQUAL("second", a.sends[0].data.c_str());
  CHECK_EQUAL(-1, conn.next_deadline_ms());
  round(conn, ctl(R"({"type":"send-delayed","content":"x","message-type":"ping"})"));
  a = round(conn, ctl(R"({"type":"flush-delayed"})"));
  CHECK(a.sends[0].kind == ClientSend::Ping);
  CHECK_EQUAL(-1, conn.next_deadline_ms());
  CHECK_TRUE(round(conn, ctl(R"({"type":"flush-delayed"})")).sends.empty());
}

TEST(BackendConnGrip, KeepAliveIntervalHeaderRefreshesTheBackend) {
  BackendConnection conn = open("grip");
  round(conn, "", {{"Keep-Alive-Interval", "5"}});  // Pushpin's floor: 20 s
  CHECK_EQUAL(now + 20000, conn.next_deadline_ms());
  CHECK_TRUE(conn.on_timer(now + 20000).sends.empty());
  CHECK_TRUE(conn.ready());
  STRCMP_EQUAL("", conn.take_request(0).body.c_str());
  CHECK_EQUAL(-1, conn.next_deadline_ms());  // re-armed by the answer
  conn.on_response(answer(""), now + 20050);
  CHECK_EQUAL(now + 40050, conn.next_deadline_ms());
  round(conn, "", {{"Keep-Alive-Interval", "0"}});
  CHECK_EQUAL(-1, conn.next_deadline_ms());
  round(conn, "", {{"Keep-Alive-Interval", "45"}});
  CHECK_EQUAL(now + 45000, conn.next_deadline_ms());
  round(conn, "", {{"Keep-Alive-Interval", "x"}});
  CHECK_EQUAL(-1, conn.next_deadline_ms());
}

TEST(BackendConnGrip, TimersStopWithTheConnection) {
  BackendConnection conn = open();
  round(conn, ctl(R"({"type":"keep-alive","content":"ka","timeout":2})"));
  conn.push(WsEvent{WsEventType::Text, "x"});
  conn.take_request(0);
  CHECK_TRUE(conn.on_response(answer("", {}), now).sends.empty());
  conn.push(WsEvent{WsEventType::Text, "x"});
  conn.take_request(0);
  CHECK_TRUE(conn.on_response(BackendResponse{500, {}, ""}, now).failed);
  CHECK_EQUAL(-1, conn.next_deadline_ms());
  CHECK_TRUE(conn.on_timer(now + 10000).sends.empty());
}

TEST(BackendConnGrip, NothingFollowsACloseFrame) {
  BackendConnection conn = open();
  round(conn, ctl(R"({"type":"keep-alive","content":"ka","timeout":1})") + "CLOSE\r\n");
  CHECK_TRUE(conn.on_timer(now + 1000).sends.empty());
}
