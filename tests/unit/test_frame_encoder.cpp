// Frame encoding: exact bytes for the RFC's examples and every length form,
// and round trips through the parser.
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/frame_encoder.h"
#include "protocol/frame_parser.h"

#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

std::string hex(const std::string& s) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string header(Opcode op, bool fin, uint64_t len, const uint8_t* mask = nullptr,
                   uint8_t rsv = 0) {
  uint8_t out[kMaxFrameHeader];
  size_t n = encode_frame_header(out, op, fin, len, mask, rsv);
  return std::string(reinterpret_cast<const char*>(out), n);
}

struct Collector : FrameSink {
  std::vector<std::string> events;
  void on_message(Opcode op, std::string_view p) override {
    events.push_back((op == Opcode::Text ? "text:" : "binary:") + std::string(p));
  }
  void on_ping(std::string_view p) override { events.push_back("ping:" + std::string(p)); }
  void on_pong(std::string_view p) override { events.push_back("pong:" + std::string(p)); }
  void on_close(uint16_t code, std::string_view r) override {
    events.push_back("close:" + std::to_string(code) + ":" + std::string(r));
  }
  void on_error(uint16_t code, const char*) override {
    events.push_back("error:" + std::to_string(code));
  }
};

std::vector<std::string> parse(std::string wire, bool require_mask) {
  ParserLimits limits;
  limits.require_mask = require_mask;
  limits.max_message_size = limits.max_frame_size = 1 << 22;
  FrameParser parser(limits);
  Collector sink;
  parser.feed(reinterpret_cast<uint8_t*>(&wire[0]), wire.size(), sink);
  return sink.events;
}

const uint8_t kKey[4] = {0x37, 0xFA, 0x21, 0x3D};

}  // namespace

TEST_GROUP(FrameEncoder) {};

TEST(FrameEncoder, RfcExamples) {
  // RFC 6455 §5.7.
  STRCMP_EQUAL("810548656c6c6f", hex(encode_frame(Opcode::Text, "Hello")).c_str());
  STRCMP_EQUAL("818537fa213d7f9f4d5158",
               hex(encode_client_frame(Opcode::Text, "Hello", kKey)).c_str());
  STRCMP_EQUAL("010348656c", hex(encode_frame(Opcode::Text, "Hel", false)).c_str());
  STRCMP_EQUAL("80026c6f", hex(encode_frame(Opcode::Continuation, "lo")).c_str());
  STRCMP_EQUAL("890548656c6c6f", hex(encode_frame(Opcode::Ping, "Hello")).c_str());
  const uint8_t k8a[4] = {0x8a, 0x8a, 0x8a, 0x8a};
  STRCMP_EQUAL("8a858a8a8a8ac2efe6e6e5", hex(encode_client_frame(Opcode::Pong, "Hello", k8a)).c_str());
  STRCMP_EQUAL("827e0100", hex(header(Opcode::Binary, true, 256)).c_str());
  STRCMP_EQUAL("827f0000000000010000", hex(header(Opcode::Binary, true, 65536)).c_str());
}

TEST(FrameEncoder, LengthFormBoundaries) {
  LONGS_EQUAL(2, header(Opcode::Binary, true, 0).size());
  STRCMP_EQUAL("827d", hex(header(Opcode::Binary, true, 125)).c_str());
  STRCMP_EQUAL("827e007e", hex(header(Opcode::Binary, true, 126)).c_str());
  STRCMP_EQUAL("827effff", hex(header(Opcode::Binary, true, 65535)).c_str());
  STRCMP_EQUAL("827f0000000000010000", hex(header(Opcode::Binary, true, 65536)).c_str());
  STRCMP_EQUAL("827f7fffffffffffffff",
               hex(header(Opcode::Binary, true, 0x7FFFFFFFFFFFFFFFull)).c_str());
  STRCMP_EQUAL("827f0102030405060708",
               hex(header(Opcode::Binary, true, 0x0102030405060708ull)).c_str());
}

TEST(FrameEncoder, MaskBitKeyFinAndRsv) {
  STRCMP_EQUAL("82fe012c37fa213d", hex(header(Opcode::Binary, true, 300, kKey)).c_str());
  STRCMP_EQUAL("82ff000000000001000037fa213d",
               hex(header(Opcode::Binary, true, 65536, kKey)).c_str());
  LONGS_EQUAL(kMaxFrameHeader, header(Opcode::Binary, true, 65536, kKey).size());
  STRCMP_EQUAL("0100", hex(header(Opcode::Text, false, 0)).c_str());
  STRCMP_EQUAL("0000", hex(header(Opcode::Continuation, false, 0)).c_str());
  // rsv is given in wire position: 0x40 is RSV1 (permessage-deflate).
  STRCMP_EQUAL("c100", hex(header(Opcode::Text, true, 0, nullptr, 0x40)).c_str());
  STRCMP_EQUAL("f100", hex(header(Opcode::Text, true, 0, nullptr, 0x70)).c_str());
  // Bits outside the RSV field cannot corrupt FIN or the opcode.
  STRCMP_EQUAL("8100", hex(header(Opcode::Text, true, 0, nullptr, 0x8F)).c_str());
}

TEST(FrameEncoder, EncodeFrameCarriesPayload) {
  std::string big(70000, 'x');
  std::string f = encode_frame(Opcode::Binary, big);
  LONGS_EQUAL(10 + big.size(), f.size());
  CHECK_TRUE(f.compare(10, std::string::npos, big) == 0);
  std::string bin("\0\x01\xFF", 3);
  STRCMP_EQUAL("82030001ff", hex(encode_frame(Opcode::Binary, bin)).c_str());
}

TEST(FrameEncoder, CloseFrames) {
  STRCMP_EQUAL("8800", hex(encode_close(0)).c_str());
  STRCMP_EQUAL("880503e8627965", hex(encode_close(1000, "bye")).c_str());
  STRCMP_EQUAL("880203e9", hex(encode_close(close_code::kGoingAway)).c_str());
}

TEST(FrameEncoder, CloseReasonTruncatedOnUtf8Boundary) {
  // ASCII: cut at exactly 123 bytes, so the payload is the 125 maximum.
  std::string f = encode_close(1000, std::string(200, 'r'));
  LONGS_EQUAL(2 + 125, f.size());
  BYTES_EQUAL(125, static_cast<uint8_t>(f[1]));
  // A 2-byte character straddling byte 123 is dropped whole.
  std::string reason = std::string(122, 'a') + "\xC3\xA9" + "zz";
  f = encode_close(1000, reason);
  LONGS_EQUAL(2 + 2 + 122, f.size());
  CHECK_TRUE(f.compare(4, std::string::npos, std::string(122, 'a')) == 0);
  // A 4-byte character ending exactly at 123 is kept.
  reason = std::string(119, 'a') + "\xF0\x9F\x98\x80" + "tail";
  f = encode_close(1000, reason);
  LONGS_EQUAL(2 + 2 + 123, f.size());
  // Exactly 123 bytes: unchanged.
  reason = std::string(120, 'b') + "\xE2\x82\xAC";
  f = encode_close(1000, reason);
  LONGS_EQUAL(2 + 2 + 123, f.size());
  // Every truncated close parses back as a valid close.
  for (size_t len = 100; len < 140; ++len) {
    std::string r;
    while (r.size() < len) r += "\xE2\x82\xAC";
    std::vector<std::string> ev = parse(encode_close(4000, r), false);
    LONGS_EQUAL(1, ev.size());
    CHECK_TRUE(ev[0].rfind("close:4000:", 0) == 0);
  }
}

TEST(FrameEncoder, ClientFramesRoundTripThroughParser) {
  std::string wire;
  wire += encode_client_frame(Opcode::Text, "caf\xC3\xA9", kKey);
  wire += encode_client_frame(Opcode::Binary, std::string(300, '\x01'), kKey);
  wire += encode_client_frame(Opcode::Text, "frag", kKey, false);
  wire += encode_client_frame(Opcode::Ping, "p", kKey);
  wire += encode_client_frame(Opcode::Continuation, "mented", kKey);
  wire += encode_client_frame(Opcode::Binary, std::string(70000, 'z'), kKey);
  wire += encode_client_frame(Opcode::Pong, "", kKey);
  wire += encode_client_frame(Opcode::Text, "", kKey);
  std::string close = encode_close(1001, "gone");
  wire += encode_client_frame(Opcode::Close, close.substr(2), kKey);

  std::vector<std::string> ev = parse(wire, true);
  LONGS_EQUAL(8, ev.size());
  STRCMP_EQUAL("text:caf\xC3\xA9", ev[0].c_str());
  CHECK_TRUE(ev[1] == "binary:" + std::string(300, '\x01'));
  STRCMP_EQUAL("ping:p", ev[2].c_str());
  STRCMP_EQUAL("text:fragmented", ev[3].c_str());
  CHECK_TRUE(ev[4] == "binary:" + std::string(70000, 'z'));
  STRCMP_EQUAL("pong:", ev[5].c_str());
  STRCMP_EQUAL("text:", ev[6].c_str());
  STRCMP_EQUAL("close:1001:gone", ev[7].c_str());
}

TEST(FrameEncoder, ServerFramesAreUnmaskedAndParseWithoutMaskRequirement) {
  std::string wire = encode_frame(Opcode::Text, "hi") + encode_frame(Opcode::Ping, "") +
                     encode_close(1000, "done");
  std::vector<std::string> ev = parse(wire, false);
  LONGS_EQUAL(3, ev.size());
  STRCMP_EQUAL("text:hi", ev[0].c_str());
  STRCMP_EQUAL("ping:", ev[1].c_str());
  STRCMP_EQUAL("close:1000:done", ev[2].c_str());
  // The server's own frames would be refused from a client: they are unmasked.
  ev = parse(encode_frame(Opcode::Text, "hi"), true);
  LONGS_EQUAL(1, ev.size());
  STRCMP_EQUAL("error:1002", ev[0].c_str());
}
