// BackendConnection: requests, the OPEN answer, closes, failures and
// disconnects (GRIP messages, controls and timers: test_backend_conn_grip).
#include <string>

#include "backend/backend_conn.h"
#include "backend/grip_sig.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

constexpr int64_t kNow = 1800000000;  // unix seconds for Grip-Sig
const std::string kEventsType = "application/websocket-events";

BackendResponse answer(const std::string& body, HeaderList extra = {}, int status = 200) {
  BackendResponse r;
  r.status = status;
  r.headers = {{"Content-Type", kEventsType}};
  for (auto& h : extra) r.headers.push_back(std::move(h));
  r.body = body;
  return r;
}

std::string names(const HeaderList& headers) {
  std::string out;
  for (const auto& [k, v] : headers) out += (out.empty() ? "" : ",") + k;
  return out;
}

WsEvent text(const std::string& s) { return WsEvent{WsEventType::Text, s}; }
WsEvent close_event(uint16_t code, const std::string& reason) {
  return WsEvent{WsEventType::Close, std::string{char(code >> 8), char(code & 0xFF)} + reason};
}

}  // namespace

TEST_GROUP(BackendConn) {
  BackendConfig cfg;
  void setup() override { cfg.sig_key = "key"; }

  // A connection whose OPEN was answered with GRIP on.
  BackendConnection open(BackendConfig c) {
    BackendConnection conn(std::move(c), "cid-1");
    conn.take_request(kNow);
    const auto r =
        conn.on_open_response(answer("OPEN\r\n", {{"Sec-WebSocket-Extensions", "grip"}}), 0);
    CHECK_TRUE(r.accepted);
    return conn;
  }
  BackendConnection open() { return open(cfg); }
};

TEST(BackendConn, OpenRequestHeadersInPushpinsOrder) {
  BackendConnection conn(cfg, "6a5359da-ccf2-4753-a5c3-5c1df227bf94");
  CHECK_TRUE(conn.ready());
  const auto req = conn.take_request(kNow);
  STRCMP_EQUAL("OPEN\r\n", req.body.c_str());
  STRCMP_EQUAL("Sec-WebSocket-Extensions,Grip-Sig,Accept,Connection-Id,Content-Type",
               names(req.headers).c_str());
  STRCMP_EQUAL("grip", req.headers[0].second.c_str());
  STRCMP_EQUAL(kEventsType.c_str(), req.headers[2].second.c_str());
  STRCMP_EQUAL("6a5359da-ccf2-4753-a5c3-5c1df227bf94", req.headers[3].second.c_str());
  std::string iss;
  CHECK_TRUE(verify_grip_sig("key", req.headers[1].second, kNow + 3599, &iss));
  CHECK_FALSE(verify_grip_sig("key", req.headers[1].second, kNow + 3600, &iss));
  STRCMP_EQUAL("wsbridge", iss.c_str());
  CHECK_FALSE(conn.ready());  // one request in flight
}

TEST(BackendConn, EveryRequestHasAFreshSignatureAndNoKeyMeansNone) {
  BackendConnection conn = open();
  conn.push(text("a"));
  const auto req = conn.take_request(kNow + 100);
  std::string iss;
  CHECK_TRUE(verify_grip_sig("key", req.headers[1].second, kNow + 3699, &iss));
  cfg.sig_key.clear();
  BackendConnection unsigned_conn(cfg, "c");
  STRCMP_EQUAL("Sec-WebSocket-Extensions,Accept,Connection-Id,Content-Type",
               names(unsigned_conn.take_request(kNow).headers).c_str());
}

TEST(BackendConn, AcceptedOpenGives101HeadersAndTheRestOfTheBody) {
  BackendConnection conn(cfg, "c");
  conn.take_request(kNow);
  const auto r = conn.on_open_response(
      answer("OPEN\r\nTEXT 7\r\nm:hello\r\n", {{"Sec-WebSocket-Extensions", "grip"},
                                               {"Sec-WebSocket-Protocol", "chat"},
                                               {"Set-Meta-User", "alice"},
                                               {"Keep-Alive-Interval", "30"},
                                               {"Date", "x"}}),
      0);
  CHECK_TRUE(r.accepted);
  CHECK_EQUAL(101, r.status);
  STRCMP_EQUAL("Sec-WebSocket-Protocol", names(r.headers).c_str());
  CHECK_TRUE(conn.grip());
  CHECK_EQUAL(1u, r.actions.sends.size());
  STRCMP_EQUAL("hello", r.actions.sends[0].data.c_str());
  STRCMP_EQUAL("User", conn.meta()[0].first.c_str());
  CHECK_FALSE(conn.ready());
}

TEST(BackendConn, OpenAnswersWithALengthAndWithoutGrip) {
  BackendConnection conn(cfg, "c");
  conn.take_request(kNow);
  const auto r = conn.on_open_response(answer("OPEN 0\r\n\r\nTEXT 3\r\nc:x\r\n"), 0);
  CHECK_TRUE(r.accepted);
  CHECK_FALSE(conn.grip());
  STRCMP_EQUAL("c:x", r.actions.sends[0].data.c_str());  // no GRIP: nothing is special
}

TEST(BackendConn, OpenAnswerMayCloseAtOnce) {
  BackendConnection conn(cfg, "c");
  conn.take_request(kNow);
  const auto r = conn.on_open_response(answer("OPEN\r\nCLOSE 4\r\n\x0f\xa0no\r\n"), 0);
  CHECK_TRUE(r.accepted);
  CHECK_EQUAL(1u, r.actions.sends.size());
  CHECK_EQUAL(4000, r.actions.sends[0].close_code);
  CHECK_FALSE(conn.finished());  // the client's close still goes to the backend
  conn.push(close_event(4000, "no"));
  conn.take_request(kNow);
  CHECK_TRUE(conn.on_response(answer(""), 0).sends.empty());  // no second close frame
  CHECK_TRUE(conn.finished());
}

TEST(BackendConn, RefusalIsPassedToTheClient) {
  cfg.max_error_body = 4;
  BackendConnection conn(cfg, "c");
  conn.take_request(kNow);
  const auto r = conn.on_open_response(
      answer("go away\n",
             {{"X-Why", "no"}, {"WWW-Authenticate", "Bearer"}, {"Content-Length", "8"}}, 403),
      0);
  CHECK_FALSE(r.accepted);
  CHECK_EQUAL(403, r.status);
  STRCMP_EQUAL("Content-Type,X-Why,WWW-Authenticate", names(r.headers).c_str());
  STRCMP_EQUAL("go a", r.body.c_str());
  STRCMP_EQUAL("backend refused the connection with 403", r.reason.c_str());
  CHECK_TRUE(conn.finished());
  CHECK_FALSE(conn.ready());
  CHECK(conn.push(text("x")) == PushResult::Dropped);
}

TEST(BackendConn, UnusableOpenAnswersAre502) {
  const auto result = [this](const BackendResponse& resp) {
    BackendConnection conn(cfg, "c");
    conn.take_request(kNow);
    auto r = conn.on_open_response(resp, 0);
    CHECK_FALSE(r.accepted);
    CHECK_EQUAL(502, r.status);
    CHECK_TRUE(conn.finished());
    return r.reason;
  };
  STRCMP_EQUAL(
      "backend answered 200 with Content-Type 'text/plain', not application/websocket-events",
      result(BackendResponse{200, {{"Content-Type", "text/plain"}}, "OPEN\r\n"}).c_str());
  STRCMP_EQUAL("malformed events: bad hex length 'zz' at offset 6",
               result(answer("OPEN\r\nTEXT zz\r\nx\r\n")).c_str());
  STRCMP_EQUAL("the answer to OPEN does not start with OPEN", result(answer("")).c_str());
  STRCMP_EQUAL("the answer to OPEN does not start with OPEN",
               result(answer("TEXT 3\r\nm:x\r\nOPEN\r\n")).c_str());
  STRCMP_EQUAL("backend answered OPEN with status 0", result(answer("", {}, 0)).c_str());
  STRCMP_EQUAL("backend answered OPEN with status 101", result(answer("", {}, 101)).c_str());
  cfg.max_response_body = 8;
  STRCMP_EQUAL("response body of 9 bytes", result(answer("OPEN\r\nXYZ")).c_str());
}

TEST(BackendConn, EventsQueueWhileARequestIsInFlight) {
  BackendConnection conn = open();
  CHECK(conn.push(text("one")) == PushResult::Queued);
  CHECK_TRUE(conn.ready());
  STRCMP_EQUAL("TEXT 3\r\none\r\n", conn.take_request(kNow).body.c_str());
  conn.push(text("a"));
  conn.push(WsEvent{WsEventType::Binary, std::string("\0", 1)});
  conn.push(WsEvent{WsEventType::Ping, ""});
  conn.push(WsEvent{WsEventType::Pong, "pp"});
  CHECK_FALSE(conn.ready());
  conn.on_response(answer(""), 0);
  CHECK_TRUE(conn.ready());
  const std::string body = conn.take_request(kNow).body;
  CHECK(body == std::string("TEXT 1\r\na\r\nBINARY 1\r\n\0\r\nPING\r\nPONG 2\r\npp\r\n", 42));
  CHECK(conn.push(WsEvent{WsEventType::Open, ""}) == PushResult::Dropped);
}

TEST(BackendConn, RequestsAreBoundedInEventsAndBytes) {
  cfg.max_events_per_request = 2;
  cfg.max_request_body = 64;
  BackendConnection conn = open();
  for (const char* s : {"a", "b", "c"}) conn.push(text(s));
  STRCMP_EQUAL("TEXT 1\r\na\r\nTEXT 1\r\nb\r\n", conn.take_request(kNow).body.c_str());
  conn.on_response(answer(""), 0);
  STRCMP_EQUAL("TEXT 1\r\nc\r\n", conn.take_request(kNow).body.c_str());
  conn.on_response(answer(""), 0);
  conn.push(text(std::string(100, 'x')));  // bigger than a request: goes alone
  conn.push(text("y"));
  CHECK(conn.take_request(kNow).body == "TEXT 64\r\n" + std::string(100, 'x') + "\r\n");
  conn.on_response(answer(""), 0);
  STRCMP_EQUAL("TEXT 1\r\ny\r\n", conn.take_request(kNow).body.c_str());
  conn.on_response(answer(""), 0);
  conn.push(text(std::string(30, 'z')));
  conn.push(text(std::string(30, 'w')));  // would pass 64 with the first: next request
  CHECK(conn.take_request(kNow).body == "TEXT 1e\r\n" + std::string(30, 'z') + "\r\n");
}

TEST(BackendConn, QueueOverflow) {
  // Each queued event counts its bytes plus 24 for its framing.
  cfg.max_queued_bytes = 60;
  BackendConnection conn = open();
  CHECK(conn.push(text("12345678")) == PushResult::Queued);  // 32
  CHECK(conn.push(text("12345")) == PushResult::Overflow);   // 61
  CHECK(conn.push(text("1234")) == PushResult::Queued);      // 60
  CHECK(conn.push(text("")) == PushResult::Overflow);        // empty ones count too
  conn.take_request(kNow);
  CHECK(conn.push(text(std::string(36, 'x'))) == PushResult::Queued);  // taken events free room
  // A close or a disconnect is never refused.
  CHECK(conn.push(WsEvent{WsEventType::Close, "\x03\xe8"}) == PushResult::Queued);
}

TEST(BackendConn, BackendCloseGoesToTheClientAndEndsTheStream) {
  BackendConnection conn = open();
  conn.push(text("close"));
  conn.take_request(kNow);
  const auto a = conn.on_response(answer("TEXT 3\r\nm:a\r\nCLOSE 5\r\n\x0f\xa0"
                                         "bye\r\nTEXT 3\r\nm:b\r\n"),
                                  0);
  CHECK_EQUAL(2u, a.sends.size());
  CHECK(a.sends[1].kind == ClientSend::Close);
  CHECK_EQUAL(4000, a.sends[1].close_code);
  STRCMP_EQUAL("bye", a.sends[1].data.c_str());
  // As with Pushpin, client messages still reach the backend until the
  // client's close; nothing more goes to the client.
  CHECK(conn.push(text("late")) == PushResult::Queued);
  conn.take_request(kNow);
  std::string body = "TEXT 3\r\nm:x\r\n";
  append_event(body, text(R"(c:{"type":"subscribe","channel":"news"})"));
  const auto later = conn.on_response(answer(body + "CLOSE\r\n"), 0);
  CHECK_FALSE(later.failed);
  CHECK_TRUE(later.sends.empty());
  CHECK_TRUE(later.subscribe.empty());  // control messages after our close are moot too
  conn.push(close_event(4000, "bye"));
  STRCMP_EQUAL(
      "CLOSE 5\r\n\x0f\xa0"
      "bye\r\n",
      conn.take_request(kNow).body.c_str());
  CHECK_TRUE(conn.on_response(answer("CLOSE 2\r\n\x0f\xa0\r\n"), 0).sends.empty());
  CHECK_TRUE(conn.finished());
}

TEST(BackendConn, BackendCloseCodes) {
  const auto close_of = [this](const std::string& event) {
    BackendConnection conn = open();
    conn.push(text("x"));
    conn.take_request(kNow);
    return conn.on_response(answer(event), 0);
  };
  auto a = close_of("CLOSE\r\n");
  CHECK_EQUAL(1000, a.sends[0].close_code);  // Pushpin's choice without a code
  a = close_of("CLOSE 1\r\nx\r\n");
  CHECK_EQUAL(1000, a.sends[0].close_code);
  a = close_of("CLOSE 2\r\n\x03\xed\r\n");  // 1005 may not be sent
  CHECK_TRUE(a.failed);
  STRCMP_EQUAL("CLOSE with code 1005, which a server may not send", a.fail_reason.c_str());
  a = close_of("CLOSE 3\r\n\x03\xe8\xff\r\n");
  STRCMP_EQUAL("CLOSE with a reason that is not UTF-8", a.fail_reason.c_str());
  const std::string reason = std::string(122, 'r') + "\xc3\xa9";  // 124 bytes, é across 123
  std::string ev = std::string("CLOSE 7e\r\n\x03\xe8") + reason + "\r\n";
  a = close_of(ev);
  CHECK_EQUAL(122u, a.sends[0].data.size());
  CHECK_EQUAL(1u, a.notes.size());
}

TEST(BackendConn, ClientCloseAnsweredOrEchoed) {
  BackendConnection conn = open();
  conn.push(close_event(1000, "done"));
  CHECK(conn.push(text("after")) == PushResult::Dropped);
  STRCMP_EQUAL(
      "CLOSE 6\r\n\x03\xe8"
      "done\r\n",
      conn.take_request(kNow).body.c_str());
  auto a = conn.on_response(answer("CLOSE 3\r\n\x0f\xa5x\r\n"), 0);
  CHECK_EQUAL(4005, a.sends[0].close_code);  // the backend's own code wins
  CHECK_TRUE(conn.finished());
  // A backend that does not answer the close: we finish the handshake
  // (Pushpin drops the TCP connection instead).
  BackendConnection quiet = open();
  quiet.push(close_event(1001, "bye"));
  quiet.take_request(kNow);
  a = quiet.on_response(answer(""), 0);
  CHECK_EQUAL(1001, a.sends[0].close_code);
  STRCMP_EQUAL("bye", a.sends[0].data.c_str());
  CHECK_TRUE(quiet.finished());
  BackendConnection bare = open();
  bare.push(WsEvent{WsEventType::Close, ""});
  STRCMP_EQUAL("CLOSE\r\n", bare.take_request(kNow).body.c_str());
  a = bare.on_response(answer("TEXT 3\r\nm:z\r\n"), 0);
  CHECK_EQUAL(2u, a.sends.size());
  CHECK_EQUAL(0, a.sends[1].close_code);  // a close frame without a code
}

TEST(BackendConn, FailuresAfterTheOpenCloseWith1011) {
  const auto fail_of = [this](const BackendResponse& resp) {
    BackendConnection conn = open();
    conn.push(text("x"));
    conn.take_request(kNow);
    const auto a = conn.on_response(resp, 0);
    CHECK_TRUE(a.failed);
    CHECK_TRUE(a.sends.empty());
    CHECK_TRUE(conn.finished());
    CHECK_FALSE(conn.ready());
    return a.fail_reason;
  };
  STRCMP_EQUAL("backend answered status 500", fail_of(answer("", {}, 500)).c_str());
  STRCMP_EQUAL("no answer from the backend", fail_of(answer("", {}, 0)).c_str());
  STRCMP_EQUAL("backend answered 200 with Content-Type '', not application/websocket-events",
               fail_of(BackendResponse{200, {}, ""}).c_str());
  STRCMP_EQUAL("malformed events: unknown event name 'FOO' at offset 0",
               fail_of(answer("FOO\r\n")).c_str());
  STRCMP_EQUAL("OPEN after the connection was open",
               fail_of(answer("TEXT 3\r\nm:a\r\nOPEN\r\n")).c_str());
  STRCMP_EQUAL("a TEXT event that is not UTF-8", fail_of(answer("TEXT 3\r\nm:\xff\r\n")).c_str());
  cfg.max_events_per_response = 2;
  STRCMP_EQUAL("too many events (3)", fail_of(answer("PONG\r\nPONG\r\nPONG\r\n")).c_str());
}

TEST(BackendConn, BackendDisconnectDropsTheClient) {
  BackendConnection conn = open();
  conn.push(text("x"));
  conn.take_request(kNow);
  const auto a = conn.on_response(answer("TEXT 3\r\nm:a\r\nDISCONNECT\r\nTEXT 3\r\nm:b\r\n"), 0);
  CHECK_TRUE(a.disconnect);
  CHECK_EQUAL(1u, a.sends.size());
  CHECK_TRUE(conn.finished());
}

TEST(BackendConn, ClientGoneSendsDisconnectAloneAndIgnoresTheAnswer) {
  BackendConnection conn = open();
  conn.push(text("a"));
  conn.take_request(kNow);
  conn.push(text("queued"));
  CHECK(conn.push(WsEvent{WsEventType::Disconnect, ""}) == PushResult::Queued);
  CHECK(conn.push(text("x")) == PushResult::Dropped);
  CHECK_TRUE(conn.on_response(answer("TEXT 3\r\nm:a\r\n"), 0).sends.empty());
  CHECK_TRUE(conn.ready());
  STRCMP_EQUAL("DISCONNECT\r\n", conn.take_request(kNow).body.c_str());
  CHECK_TRUE(conn.on_response(answer("", {}, 500), 0).sends.empty());
  CHECK_TRUE(conn.finished());
}

TEST(BackendConn, ClientGoneDuringOpen) {
  BackendConnection conn(cfg, "c");
  conn.take_request(kNow);
  conn.push(WsEvent{WsEventType::Disconnect, ""});
  auto r = conn.on_open_response(answer("OPEN\r\n"), 0);
  CHECK_FALSE(r.accepted);
  STRCMP_EQUAL("DISCONNECT\r\n", conn.take_request(kNow).body.c_str());
  conn.on_response(answer(""), 0);
  CHECK_TRUE(conn.finished());
  BackendConnection refused(cfg, "c");
  refused.take_request(kNow);
  refused.push(WsEvent{WsEventType::Disconnect, ""});
  refused.on_open_response(answer("no", {}, 403), 0);
  CHECK_TRUE(refused.finished());
  BackendConnection never(cfg, "c");  // OPEN not even sent
  never.push(WsEvent{WsEventType::Disconnect, ""});
  CHECK_FALSE(never.ready());
  CHECK_TRUE(never.finished());
}

TEST(BackendConn, BackendPingAndPong) {
  BackendConnection conn = open();
  conn.push(text("x"));
  conn.take_request(kNow);
  const std::string big = "PING 7e\r\n" + std::string(126, 'p') + "\r\n";
  const auto a = conn.on_response(answer("PING 2\r\npp\r\nPONG\r\n" + big), 0);
  CHECK_EQUAL(2u, a.sends.size());
  CHECK(a.sends[0].kind == ClientSend::Ping);
  STRCMP_EQUAL("pp", a.sends[0].data.c_str());
  CHECK(a.sends[1].kind == ClientSend::Pong);
  CHECK_EQUAL(1u, a.notes.size());
}
