// FrameParser: every rule of RFC 6455 §5/§7 it enforces, each checked when
// the input arrives at once, split at every point, and one byte at a time.
#include <cctype>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "protocol/frame_parser.h"

#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

constexpr uint8_t kFin = 0x80;
constexpr uint8_t kText = 0x1, kBinary = 0x2, kCont = 0x0, kClose = 0x8, kPing = 0x9, kPong = 0xA;
const uint8_t kKey[4] = {0xA1, 0x07, 0x5C, 0xF3};

struct Recorder : FrameSink {
  std::vector<std::string> events;
  // Runs after each event with the payload view, for re-entry tests.
  std::function<void(const std::string&, std::string_view)> hook;
  void add(std::string e, std::string_view payload = {}) {
    events.push_back(e);
    if (hook) hook(e, payload);
  }
  void on_message(Opcode op, std::string_view p) override {
    add((op == Opcode::Text ? "text:" : op == Opcode::Binary ? "binary:" : "bad-op:") +
            std::string(p),
        p);
  }
  void on_ping(std::string_view p) override { add("ping:" + std::string(p)); }
  void on_pong(std::string_view p) override { add("pong:" + std::string(p)); }
  void on_close(uint16_t code, std::string_view r) override {
    add("close:" + std::to_string(code) + ":" + std::string(r));
  }
  void on_error(uint16_t code, const char* why) override {
    // The reason goes to the error log: present, short, lower-case.
    CHECK_TRUE(why != nullptr && *why != '\0' && std::strlen(why) < 80);
    for (const char* c = why; *c; ++c) CHECK_FALSE(std::isupper(static_cast<unsigned char>(*c)));
    add("error:" + std::to_string(code));
  }
};

enum class Len { Minimal, Force16, Force64 };

// A frame with every field under the test's control, masked by hand so the
// parser is not checked against its own masking code.
std::string frame(uint8_t b0, std::string_view payload, bool masked = true, Len form = Len::Minimal,
                  uint64_t declared = ~0ull) {
  uint64_t n = declared == ~0ull ? payload.size() : declared;
  std::string f(1, static_cast<char>(b0));
  uint8_t mask_bit = masked ? 0x80 : 0;
  if (form == Len::Minimal && n <= 125) {
    f.push_back(static_cast<char>(mask_bit | n));
  } else if (form != Len::Force64 && n <= 0xFFFF) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>(n >> (8 * i)));
  }
  if (masked) f.append(reinterpret_cast<const char*>(kKey), 4);
  for (size_t i = 0; i < payload.size(); ++i)
    f.push_back(static_cast<char>(payload[i] ^ (masked ? kKey[i % 4] : 0)));
  return f;
}

std::string text(std::string_view p, bool fin = true) { return frame((fin ? kFin : 0) | kText, p); }
std::string binary(std::string_view p, bool fin = true) {
  return frame((fin ? kFin : 0) | kBinary, p);
}
std::string cont(std::string_view p, bool fin = true) { return frame((fin ? kFin : 0) | kCont, p); }
std::string ping(std::string_view p) { return frame(kFin | kPing, p); }
std::string pong(std::string_view p) { return frame(kFin | kPong, p); }
std::string close_frame(std::string_view p) { return frame(kFin | kClose, p); }
std::string close_with(uint16_t code, std::string_view reason = {}) {
  std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  return close_frame(p + std::string(reason));
}

ParserLimits limits(uint64_t max_message = 1 << 20, uint64_t max_frame = 1 << 20,
                    bool require_mask = true) {
  ParserLimits l;
  l.max_message_size = max_message;
  l.max_frame_size = max_frame;
  l.require_mask = require_mask;
  return l;
}

// Feeds wire in pieces of the given sizes (the last piece takes the rest) and
// checks feed()'s return value against the parser's state on every call.
std::vector<std::string> feed_pieces(std::string wire, const std::vector<size_t>& sizes,
                                     const ParserLimits& l = limits()) {
  FrameParser parser(l);
  Recorder sink;
  size_t pos = 0, i = 0;
  bool stopped = false;
  while (pos < wire.size() || i == 0) {
    size_t n = i < sizes.size() ? sizes[i] : wire.size() - pos;
    if (n > wire.size() - pos) n = wire.size() - pos;
    size_t before = sink.events.size();
    bool more = parser.feed(reinterpret_cast<uint8_t*>(&wire[0]) + pos, n, sink);
    CHECK_EQUAL(!(parser.failed() || parser.closed()), more);
    if (stopped) {
      CHECK_FALSE(more);
      LONGS_EQUAL(before, sink.events.size());  // ignored after error/close
    }
    stopped = stopped || !more;
    pos += n;
    ++i;
  }
  return sink.events;
}

std::vector<std::string> feed_all(const std::string& wire, const ParserLimits& l = limits()) {
  return feed_pieces(wire, {}, l);
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += "[" + e + "]";
  return s;
}

// The split-invariance property: at once, every two-way split, one byte at a
// time and a few irregular chunkings must all give the same events.
std::vector<std::string> expect_split_invariant(const std::string& wire,
                                                const ParserLimits& l = limits()) {
  std::vector<std::string> once = feed_all(wire, l);
  for (size_t k = 0; k <= wire.size(); ++k)
    STRCMP_EQUAL(join(once).c_str(), join(feed_pieces(wire, {k}, l)).c_str());
  std::vector<size_t> ones(wire.size(), 1);
  STRCMP_EQUAL(join(once).c_str(), join(feed_pieces(wire, ones, l)).c_str());
  for (size_t step : {2u, 3u, 5u, 7u, 13u}) {
    std::vector<size_t> sizes;
    for (size_t p = 0; p < wire.size(); p += step) sizes.push_back(step);
    STRCMP_EQUAL(join(once).c_str(), join(feed_pieces(wire, sizes, l)).c_str());
  }
  return once;
}

void expect_events(const std::vector<std::string>& want, const std::string& wire,
                   const ParserLimits& l = limits()) {
  STRCMP_EQUAL(join(want).c_str(), join(expect_split_invariant(wire, l)).c_str());
}

}  // namespace

TEST_GROUP(FrameParser) {};

TEST(FrameParser, MaskedTextAndBinary) {
  expect_events({"text:hello", "binary:\x01\x02"}, text("hello") + binary("\x01\x02"));
}

TEST(FrameParser, UnmasksPayloadInPlace) {
  std::string wire = text("hello");
  FrameParser parser(limits());
  Recorder sink;
  CHECK_TRUE(parser.feed(reinterpret_cast<uint8_t*>(&wire[0]), wire.size(), sink));
  STRCMP_EQUAL("hello", wire.substr(6).c_str());
}

TEST(FrameParser, UnmaskedClientFrameIsProtocolError) {
  expect_events({"error:1002"}, frame(kFin | kText, "hi", false));
  // Detected from the two fixed bytes: the payload never has to arrive.
  expect_events({"error:1002"}, frame(kFin | kText, "hi", false).substr(0, 2));
  // Without the requirement both forms are accepted.
  expect_events({"text:hi", "text:yo"}, frame(kFin | kText, "hi", false) + text("yo"),
                limits(1 << 20, 1 << 20, false));
}

TEST(FrameParser, ReservedBitsAreProtocolErrors) {
  for (uint8_t rsv : {0x40, 0x20, 0x10, 0x70}) {
    expect_events({"error:1002"}, frame(kFin | rsv | kText, "x"));
    expect_events({"error:1002"}, frame(kFin | rsv | kText, "x").substr(0, 2));
  }
}

TEST(FrameParser, ReservedOpcodesAreProtocolErrors) {
  for (uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    expect_events({"error:1002"}, frame(kFin | op, ""));
    expect_events({"text:ok", "error:1002"}, text("ok") + frame(kFin | op, "abc") + text("no"));
  }
}

TEST(FrameParser, ControlFramesMustBeShortAndFinal) {
  std::string p125(125, 'p'), p126(126, 'p');
  expect_events({"ping:" + p125, "pong:" + p125}, ping(p125) + pong(p125));
  expect_events({"error:1002"}, ping(p126));
  expect_events({"error:1002"}, frame(kFin | kPing, "abc", true, Len::Force16, 126));
  expect_events({"error:1002"}, frame(kPing, "abc"));                 // FIN clear
  expect_events({"error:1002"}, frame(kPong, ""));
  expect_events({"error:1002"}, frame(kClose, std::string("\x03\xE8", 2)));
  // Non-minimal but small: allowed (the receiver accepts any encoding), so
  // the limit applies to the decoded length.
  expect_events({"ping:abc"}, frame(kFin | kPing, "abc", true, Len::Force16));
  expect_events({"pong:"}, frame(kFin | kPong, "", true, Len::Force64));
  expect_events({"error:1002"}, frame(kFin | kPing, "", true, Len::Force64, 126).substr(0, 10));
}

TEST(FrameParser, ContinuationRules) {
  expect_events({"error:1002"}, cont("x"));
  expect_events({"error:1002"}, cont("x", false));
  expect_events({"text:ab", "error:1002"}, text("ab") + cont("c"));
  expect_events({"error:1002"}, text("a", false) + text("b"));
  expect_events({"error:1002"}, text("a", false) + binary("b", false));
  expect_events({"error:1002"}, binary("a", false) + cont("b", false) + text("c"));
}

TEST(FrameParser, FragmentsWithInterleavedControlFrames) {
  std::string wire = text("Hel", false) + ping("1") + cont("lo", false) + pong("2") + ping("") +
                     cont(", world") + binary("b");
  expect_events({"ping:1", "pong:2", "ping:", "text:Hello, world", "binary:b"}, wire);
}

TEST(FrameParser, EmptyMessagesAndFragments) {
  expect_events({"text:", "binary:"}, text("") + binary(""));
  expect_events({"text:a", "binary:"},
                text("", false) + cont("", false) + cont("a") + binary("", false) + cont(""));
  expect_events({"ping:", "pong:"}, ping("") + pong(""));
}

TEST(FrameParser, SixteenAndSixtyFourBitLengths) {
  std::string p300(300, 'm'), p70k(70000, 'n');
  expect_events({"binary:" + p300}, binary(p300));
  std::vector<std::string> ev = feed_all(binary(p70k));
  LONGS_EQUAL(1, ev.size());
  CHECK_TRUE(ev[0] == "binary:" + p70k);
  ev = feed_pieces(binary(p70k), std::vector<size_t>(100, 997));
  CHECK_TRUE(ev.size() == 1 && ev[0] == "binary:" + p70k);
  // Non-minimal encodings of small lengths are legal.
  expect_events({"text:tiny", "text:tiny", "text:"},
                frame(kFin | kText, "tiny", true, Len::Force16) +
                    frame(kFin | kText, "tiny", true, Len::Force64) +
                    frame(kFin | kText, "", true, Len::Force64));
}

TEST(FrameParser, SixtyFourBitLengthWithHighBitIsProtocolError) {
  std::string wire = frame(kFin | kBinary, "", true, Len::Force64, 0x8000000000000000ull);
  // The 10 length bytes decide it, before the mask key arrives.
  expect_events({"error:1002"}, wire.substr(0, 10));
  expect_events({"error:1002"}, frame(kFin | kBinary, "", true, Len::Force64, ~1ull));
}

TEST(FrameParser, FrameSizeLimitFromHeader) {
  ParserLimits l = limits(1 << 20, 100);
  expect_events({"binary:" + std::string(100, 'x')}, binary(std::string(100, 'x')), l);
  std::string big = binary(std::string(101, 'x'));
  expect_events({"error:1009"}, big, l);
  expect_events({"error:1009"}, big.substr(0, 4), l);  // header only, no mask, no payload
  expect_events({"error:1009"}, frame(kFin | kBinary, "", true, Len::Force64, 1ull << 40), l);
  // The frame limit applies to control frames too.
  expect_events({"error:1009"}, ping(std::string(50, 'p')), limits(1 << 20, 20));
}

TEST(FrameParser, MessageSizeLimitFromHeaderBeforeBuffering) {
  ParserLimits l = limits(100, 1000);
  expect_events({"text:" + std::string(100, 'a')},
                text(std::string(60, 'a'), false) + cont(std::string(40, 'a')), l);
  std::string over = text(std::string(60, 'a'), false) + cont(std::string(41, 'a'));
  expect_events({"error:1009"}, over, l);
  // Detected from the second frame's header: its payload is never needed.
  size_t second_header_end = text(std::string(60, 'a'), false).size() + 2;
  expect_events({"error:1009"}, over.substr(0, second_header_end), l);
  expect_events({"error:1009"}, binary(std::string(101, 'b')), l);
  expect_events({"error:1009"}, binary(std::string(101, 'b')).substr(0, 4), l);
  // Control frames do not count towards the message.
  expect_events({"ping:" + std::string(50, 'p'), "text:" + std::string(100, 'a')},
                text(std::string(50, 'a'), false) + ping(std::string(50, 'p')) +
                    cont(std::string(50, 'a')),
                l);
  // Near the top of the 64-bit range the sum is still checked exactly.
  std::string huge = text("a", false) + frame(kCont, "", true, Len::Force64, 0x7FFFFFFFFFFFFFFFull);
  expect_events({"error:1009"}, huge, limits(0x7FFFFFFFFFFFFFFFull, ~0ull));
  expect_events({}, huge, limits(0x8000000000000000ull, ~0ull));
}

TEST(FrameParser, InvalidUtf8InTextIs1007) {
  expect_events({"error:1007"}, text("ab\xC0\xAF"));
  expect_events({"error:1007"}, text("\xED\xA0\x80"));
  expect_events({"text:ok", "error:1007"}, text("ok") + text("\xF4\x90\x80\x80") + text("no"));
  // Binary payloads are not text.
  expect_events({"binary:\xFF\xFE\xC0"}, binary("\xFF\xFE\xC0"));
}

TEST(FrameParser, Utf8FailsFastInsideAFrame) {
  // A 1000-byte text frame whose 4th byte is impossible: the error comes as
  // soon as that byte has arrived, the rest of the frame never does.
  std::string payload = "ab\xC3(" + std::string(996, 'z');
  std::string wire = text(payload);
  size_t header = wire.size() - payload.size();
  expect_events({"error:1007"}, wire.substr(0, header + 4));
  expect_events({}, wire.substr(0, header + 3));
}

TEST(FrameParser, Utf8FailsFastAcrossFragments) {
  std::string wire = text("caf\xC3", false) + cont("\xA9 ok", false) +
                     cont("\xCE\xBA\xE1\xBD\xB9\xF4\x90\x80\x80", false);
  expect_events({"error:1007"}, wire);  // no final fragment needed
  expect_events({"text:caf\xC3\xA9 ok!"}, text("caf\xC3", false) + cont("\xA9 ok", false) +
                                              cont("!"));
}

TEST(FrameParser, TextEndingInsideASequenceIs1007) {
  expect_events({"error:1007"}, text("euro \xE2\x82"));
  expect_events({"error:1007"}, text("\xF0\x9F", false) + cont("\x98"));
  // ...but a sequence may span fragments.
  expect_events({"text:\xF0\x9F\x98\x80"},
                text("\xF0\x9F", false) + cont("\x98", false) + cont("", false) + cont("\x80"));
}

TEST(FrameParser, CloseFrames) {
  expect_events({"close:1005:"}, close_frame(""));
  expect_events({"error:1002"}, close_frame("\x03"));
  expect_events({"close:1000:"}, close_with(1000));
  expect_events({"close:1000:bye"}, close_with(1000, "bye"));
  expect_events({"close:4999:\xC3\xA9t\xC3\xA9"}, close_with(4999, "\xC3\xA9t\xC3\xA9"));
  expect_events({"error:1007"}, close_with(1000, "bad \xC0\xAF"));
  expect_events({"error:1007"}, close_with(1000, "cut \xE2\x82"));
  for (uint16_t ok : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999})
    expect_events({"close:" + std::to_string(ok) + ":"}, close_with(ok));
  for (uint16_t bad : {0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535})
    expect_events({"error:1002"}, close_with(bad, "r"));
  // 125-byte close payload is the maximum.
  expect_events({"close:1000:" + std::string(123, 'r')}, close_with(1000, std::string(123, 'r')));
  expect_events({"error:1002"}, close_with(1000, std::string(124, 'r')));
}

TEST(FrameParser, NothingAfterClose) {
  std::string wire = text("a") + close_with(1001, "away") + text("ignored") + frame(0xFF, "x");
  expect_events({"text:a", "close:1001:away"}, wire);
  FrameParser parser(limits());
  Recorder sink;
  CHECK_FALSE(parser.feed(reinterpret_cast<uint8_t*>(&wire[0]), wire.size(), sink));
  CHECK_TRUE(parser.closed());
  CHECK_FALSE(parser.failed());
  std::string more = text("late");
  CHECK_FALSE(parser.feed(reinterpret_cast<uint8_t*>(&more[0]), more.size(), sink));
  LONGS_EQUAL(2, sink.events.size());
}

TEST(FrameParser, CloseInsideFragmentedMessage) {
  expect_events({"close:1000:"}, text("part", false) + close_with(1000) + cont("rest"));
}

TEST(FrameParser, ExactlyOneErrorThenIgnoresInput) {
  std::string wire = text("a") + cont("x") + cont("y") + frame(0x83, "") + text("b");
  expect_events({"text:a", "error:1002"}, wire);
  FrameParser parser(limits());
  Recorder sink;
  CHECK_FALSE(parser.feed(reinterpret_cast<uint8_t*>(&wire[0]), wire.size(), sink));
  CHECK_TRUE(parser.failed());
  std::string more = text("c") + cont("z");
  CHECK_FALSE(parser.feed(reinterpret_cast<uint8_t*>(&more[0]), more.size(), sink));
  CHECK_FALSE(parser.feed(nullptr, 0, sink));
  LONGS_EQUAL(2, sink.events.size());
}

TEST(FrameParser, MultiFrameStreamsAreSplitInvariant) {
  const std::string streams[] = {
      text("hello") + binary(std::string("\x00\xFF", 2)) + ping("p") + text("bye"),
      text("frag", false) + ping("1") + cont("men", false) + pong("2") + cont("ted") +
          close_with(1000, "done"),
      binary(std::string(200, 'b')) + text("\xE2\x82", false) + cont("\xAC") +
          frame(kFin | kText, "x", true, Len::Force64),
      text("ok") + text("\xE2\x28\xA1"),                   // 1007 mid-stream
      text("ok") + frame(kFin | 0x40 | kBinary, "z"),       // 1002 mid-stream
      text("a", false) + cont("", false) + cont("b") + close_frame("") + text("after"),
      ping("x") + frame(kFin | kBinary, "", true, Len::Force64, 0x8000000000000001ull),
      std::string(),
  };
  for (const std::string& s : streams) expect_split_invariant(s);
  expect_split_invariant(streams[2], limits(150, 150));
}

TEST(FrameParser, BufferedCountsThePartialMessage) {
  FrameParser parser(limits());
  Recorder sink;
  std::string a = text("abc", false), b = cont("de"), c = binary("whole");
  CHECK_TRUE(parser.feed(reinterpret_cast<uint8_t*>(&a[0]), a.size(), sink));
  LONGS_EQUAL(3, parser.buffered());
  CHECK_TRUE(parser.feed(reinterpret_cast<uint8_t*>(&b[0]), b.size(), sink));
  LONGS_EQUAL(0, parser.buffered());
  CHECK_TRUE(parser.feed(reinterpret_cast<uint8_t*>(&c[0]), c.size(), sink));
  LONGS_EQUAL(0, parser.buffered());
  STRCMP_EQUAL("[text:abcde][binary:whole]", join(sink.events).c_str());
}

TEST(FrameParser, LargeFragmentedMessagesAndBufferReuse) {
  // A 1 MiB message (grows then releases the buffer), then small ones.
  std::string chunk(256 * 1024, 'q');
  std::string wire = binary(chunk, false) + cont(chunk, false) + cont(chunk, false) +
                     cont(chunk) + text("s", false) + cont("mall");
  std::vector<std::string> ev = feed_pieces(wire, std::vector<size_t>(300, 4093));
  LONGS_EQUAL(2, ev.size());
  CHECK_TRUE(ev[0].size() == 7 + 4 * chunk.size());
  STRCMP_EQUAL("text:small", ev[1].c_str());
}

TEST(FrameParser, SinkMayFeedAgainFromACallback) {
  FrameParser parser(limits());
  Recorder sink;
  std::string first = text("one", false) + cont("two");
  std::string nested = text(std::string(5000, 'n'), false);  // reallocates the buffer
  std::string nested_end = cont("!");
  bool fed = false;
  std::string seen_during_callback;
  sink.hook = [&](const std::string& e, std::string_view payload) {
    if (fed || e != "text:onetwo") return;
    fed = true;
    CHECK_TRUE(parser.feed(reinterpret_cast<uint8_t*>(&nested[0]), nested.size(), sink));
    // The view handed out must survive the nested feed (ASan checks this).
    seen_during_callback = std::string(payload);
  };
  CHECK_TRUE(parser.feed(reinterpret_cast<uint8_t*>(&first[0]), first.size(), sink));
  STRCMP_EQUAL("onetwo", seen_during_callback.c_str());
  LONGS_EQUAL(5000, parser.buffered());
  CHECK_TRUE(parser.feed(reinterpret_cast<uint8_t*>(&nested_end[0]), nested_end.size(), sink));
  LONGS_EQUAL(2, sink.events.size());
  CHECK_TRUE(sink.events[1] == "text:" + std::string(5000, 'n') + "!");
}

TEST(FrameParser, SinkFeedingACloseFromACallbackStopsTheOuterFeed) {
  FrameParser parser(limits());
  Recorder sink;
  std::string outer = ping("a") + text("never");
  std::string inner = close_with(1000);
  sink.hook = [&](const std::string& e, std::string_view) {
    if (e == "ping:a")
      CHECK_FALSE(parser.feed(reinterpret_cast<uint8_t*>(&inner[0]), inner.size(), sink));
  };
  CHECK_FALSE(parser.feed(reinterpret_cast<uint8_t*>(&outer[0]), outer.size(), sink));
  STRCMP_EQUAL("[ping:a][close:1000:]", join(sink.events).c_str());
}
