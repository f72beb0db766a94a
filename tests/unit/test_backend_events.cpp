// WebSocket-over-HTTP event bodies: the writer matches Pushpin byte for byte
// (bodies recorded from Pushpin 1.36, docs/backend.md), the parser takes
// what Pushpin writes and refuses the rest with a precise message.
#include <string>
#include <vector>

#include "backend/ws_events.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

std::string body_of(std::initializer_list<WsEvent> events) {
  std::string body;
  for (const WsEvent& e : events) append_event(body, e);
  return body;
}

std::string parse_error(const std::string& body) {
  std::vector<WsEvent> events;
  std::string error;
  CHECK_FALSE(parse_events(body, &events, &error));
  return error;
}

}  // namespace

TEST_GROUP(BackendEvents){};

TEST(BackendEvents, WritesWhatPushpinWrites) {
  // Each line is a body Pushpin sent to the backend in the reference run.
  STRCMP_EQUAL("OPEN\r\n", body_of({{WsEventType::Open, ""}}).c_str());
  STRCMP_EQUAL("TEXT 5\r\nhello\r\n", body_of({{WsEventType::Text, "hello"}}).c_str());
  STRCMP_EQUAL("TEXT\r\n", body_of({{WsEventType::Text, ""}}).c_str());
  STRCMP_EQUAL("TEXT f\r\nmeta:user=alice\r\n",
               body_of({{WsEventType::Text, "meta:user=alice"}}).c_str());
  STRCMP_EQUAL("PING\r\n", body_of({{WsEventType::Ping, ""}}).c_str());
  STRCMP_EQUAL("DISCONNECT\r\n", body_of({{WsEventType::Disconnect, ""}}).c_str());
  STRCMP_EQUAL("CLOSE\r\n", body_of({{WsEventType::Close, ""}}).c_str());
  const std::string batch = body_of({{WsEventType::Text, "h\xc3\xa9"},
                                     {WsEventType::Ping, ""},
                                     {WsEventType::Pong, "pp"},
                                     {WsEventType::Binary, ""}});
  CHECK(batch == "TEXT 3\r\nh\xc3\xa9\r\nPING\r\nPONG 2\r\npp\r\nBINARY\r\n");
  const std::string close = body_of({{WsEventType::Close, std::string("\x03\xe8"
                                                                      "done",
                                                                      6)}});
  CHECK(close == std::string("CLOSE 6\r\n\x03\xe8"
                             "done\r\n",
                             17));
}

TEST(BackendEvents, LongContentHasAMultiDigitLowercaseLength) {
  const std::string big(0x1a2b, 'x');
  const std::string body = body_of({{WsEventType::Binary, big}});
  CHECK(body.compare(0, 13, "BINARY 1a2b\r\n") == 0);
  std::vector<WsEvent> events;
  std::string error;
  CHECK_TRUE(parse_events(body, &events, &error));
  CHECK_EQUAL(1u, events.size());
  CHECK(events[0].content == big);
}

TEST(BackendEvents, RoundTripsEveryTypeAndBinaryBytes) {
  const std::string bytes("\0\r\n\xff", 4);
  const std::vector<WsEvent> in = {{WsEventType::Open, ""},
                                   {WsEventType::Text, "a b"},
                                   {WsEventType::Binary, bytes},
                                   {WsEventType::Ping, "p"},
                                   {WsEventType::Pong, ""},
                                   {WsEventType::Close,
                                    "\x0f\xa0"
                                    "bye"},
                                   {WsEventType::Disconnect, ""}};
  std::string body;
  for (const WsEvent& e : in) append_event(body, e);
  std::vector<WsEvent> out;
  std::string error;
  CHECK_TRUE(parse_events(body, &out, &error));
  CHECK_EQUAL(in.size(), out.size());
  for (size_t i = 0; i < in.size(); ++i) {
    CHECK(in[i].type == out[i].type);
    CHECK(in[i].content == out[i].content);
  }
}

TEST(BackendEvents, AcceptsWhatPushpinAccepts) {
  std::vector<WsEvent> events;
  std::string error;
  // No length, a zero length, both hex cases.
  CHECK_TRUE(parse_events("OPEN\r\n", &events, &error));
  CHECK_EQUAL(1u, events.size());
  CHECK_TRUE(parse_events("OPEN 0\r\n\r\n", &events, &error));
  CHECK(events[0].type == WsEventType::Open && events[0].content.empty());
  CHECK_TRUE(parse_events("TEXT a\r\n0123456789\r\nTEXT A\r\n0123456789\r\n", &events, &error));
  CHECK_EQUAL(2u, events.size());
  CHECK_TRUE(parse_events("TEXT 0000000a\r\n0123456789\r\n", &events, &error));
  CHECK_TRUE(parse_events("", &events, &error));
  CHECK_EQUAL(0u, events.size());
}

TEST(BackendEvents, RefusesUnknownOrLowercaseNames) {
  STRCMP_EQUAL("unknown event name 'FOO' at offset 0", parse_error("FOO 3\r\nabc\r\n").c_str());
  STRCMP_EQUAL("unknown event name 'text' at offset 0", parse_error("text 1\r\nx\r\n").c_str());
  STRCMP_EQUAL("unknown event name '' at offset 6", parse_error("OPEN\r\n\r\n").c_str());
  STRCMP_EQUAL("unknown event name 'A?B' at offset 0", parse_error("A\x01"
                                                                   "B\r\n")
                                                           .c_str());
}

TEST(BackendEvents, RefusesBadLengths) {
  STRCMP_EQUAL("bad hex length 'zz' at offset 0", parse_error("TEXT zz\r\nx\r\n").c_str());
  STRCMP_EQUAL("bad hex length '' at offset 0", parse_error("TEXT \r\n\r\n").c_str());
  STRCMP_EQUAL("bad hex length '0x3' at offset 0", parse_error("TEXT 0x3\r\nm:d\r\n").c_str());
  STRCMP_EQUAL("bad hex length '-1' at offset 0", parse_error("TEXT -1\r\n\r\n").c_str());
  STRCMP_EQUAL("bad hex length ' 1' at offset 0", parse_error("TEXT  1\r\nx\r\n").c_str());
  STRCMP_EQUAL("bad hex length '000000001' at offset 0",
               parse_error("TEXT 000000001\r\nx\r\n").c_str());
}

TEST(BackendEvents, RefusesWhatPushpinWouldTruncateOrSkip) {
  // Pushpin delivers "short\r\n" here (it takes what is there).
  STRCMP_EQUAL("length 16 beyond the body at offset 0",
               parse_error("TEXT 10\r\nm:short\r\n").c_str());
  // Pushpin delivers "a" and skips "XX".
  STRCMP_EQUAL("event content not followed by CRLF at offset 11",
               parse_error("TEXT 3\r\nm:aXX").c_str());
  STRCMP_EQUAL("event content not followed by CRLF at offset 11",
               parse_error("TEXT 3\r\nm:a").c_str());
  STRCMP_EQUAL("event content not followed by CRLF at offset 11",
               parse_error("TEXT 3\r\nm:a\r").c_str());
  STRCMP_EQUAL("event line without CRLF at offset 6", parse_error("OPEN\r\nTEXT").c_str());
  STRCMP_EQUAL("event line without CRLF at offset 0", parse_error("OPEN\n").c_str());
}

TEST(BackendEvents, ContentMayHoldCrlfAndNul) {
  std::vector<WsEvent> events;
  std::string error;
  const std::string body("BINARY 4\r\n\r\n\0x\r\nPONG\r\n", 22);
  CHECK_TRUE(parse_events(body, &events, &error));
  CHECK_EQUAL(2u, events.size());
  CHECK(events[0].content == std::string("\r\n\0x", 4));
  CHECK(events[1].type == WsEventType::Pong);
}

TEST(BackendEvents, LongGarbageNamesAreCutInTheError) {
  const std::string error = parse_error(std::string(100, 'Q') + "\r\n");
  STRCMP_EQUAL("unknown event name 'QQQQQQQQQQQQQQQQ...' at offset 0", error.c_str());
}
