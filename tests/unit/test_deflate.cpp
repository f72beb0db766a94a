// permessage-deflate (RFC 7692): negotiating offers, inflating client
// messages (context kept between them, BFINAL allowed, size limit, corrupt
// data), and the parser's RSV1 rules once the extension is agreed.
#include <string>
#include <vector>

#include "protocol/deflate.h"
#include "protocol/frame_encoder.h"
#include "protocol/frame_parser.h"
#include "protocol/opcode.h"
#include "test_deflater.h"

#include <CppUTest/TestHarness.h>

using namespace wsb;
using wsb_test::Deflater;

namespace {

struct Recorder : FrameSink {
  std::vector<std::string> plain, compressed;
  uint16_t error = 0;
  void on_message(Opcode, std::string_view p) override { plain.emplace_back(p); }
  void on_compressed_message(Opcode, std::string_view p) override { compressed.emplace_back(p); }
  void on_ping(std::string_view) override {}
  void on_pong(std::string_view) override {}
  void on_close(uint16_t, std::string_view) override {}
  void on_error(uint16_t code, const char*) override { error = code; }
};

const uint8_t kKey[4] = {1, 2, 3, 4};

std::string with_rsv1(std::string frame) {
  frame[0] = static_cast<char>(frame[0] | 0x40);
  return frame;
}

void feed(FrameParser& p, std::string bytes, Recorder& r) {
  p.feed(reinterpret_cast<uint8_t*>(&bytes[0]), bytes.size(), r);
}

ParserLimits compressed_allowed() {
  ParserLimits l;
  l.allow_compressed = true;
  return l;
}

}  // namespace

TEST_GROUP(Deflate) {};

TEST(Deflate, AcceptsTheFirstValidOffer) {
  DeflateAgreement a = negotiate_deflate("permessage-deflate");
  CHECK_TRUE(a.accepted);
  STRCMP_EQUAL("permessage-deflate; server_no_context_takeover; client_no_context_takeover", a.response.c_str());

  a = negotiate_deflate("permessage-deflate; client_max_window_bits");  // what browsers send
  CHECK_TRUE(a.accepted);
  STRCMP_EQUAL("permessage-deflate; server_no_context_takeover; client_no_context_takeover", a.response.c_str());

  a = negotiate_deflate("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=\"10\"; "
                        "client_no_context_takeover");
  CHECK_TRUE(a.accepted);
  STRCMP_EQUAL("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
               "server_max_window_bits=10", a.response.c_str());
}

TEST(Deflate, DeclinesBadOffersAndFallsBackToTheNext) {
  const char* bad[] = {
      "permessage-deflate; server_max_window_bits=7",
      "permessage-deflate; server_max_window_bits=16",
      "permessage-deflate; server_max_window_bits",
      "permessage-deflate; server_max_window_bits=010",
      "permessage-deflate; client_max_window_bits=abc",
      "permessage-deflate; server_no_context_takeover=1",
      "permessage-deflate; unknown_param",
      "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
      "deflate-frame",
      "",
  };
  for (const char* offer : bad) CHECK_FALSE_TEXT(negotiate_deflate(offer).accepted, offer);
  DeflateAgreement a = negotiate_deflate("permessage-deflate; unknown_param, permessage-deflate");
  CHECK_TRUE(a.accepted);
  STRCMP_EQUAL("permessage-deflate; server_no_context_takeover; client_no_context_takeover", a.response.c_str());
}

TEST(Deflate, InflatesMessagesKeepingTheWindowBetweenThem) {
  Deflater client;
  Inflater server;
  const std::string one = "the same words again and again, the same words again";
  std::string out;
  CHECK(server.inflate(client.compress(one), 1 << 20, &out) == Inflater::Result::Ok);
  CHECK(out == one);
  // The second message refers back into the first (context takeover).
  const std::string c2 = client.compress(one);
  CHECK(c2.size() < one.size() / 2);
  CHECK(server.inflate(c2, 1 << 20, &out) == Inflater::Result::Ok);
  CHECK(out == one);
  // An empty message.
  CHECK(server.inflate(client.compress(""), 1 << 20, &out) == Inflater::Result::Ok);
  CHECK(out.empty());
}

TEST(Deflate, AFinalBlockEndsAMessageAndTheNextStartsAfresh) {
  Inflater server;
  std::string out;
  {
    Deflater once;
    CHECK(server.inflate(once.compress("finished", Z_FINISH), 100, &out) == Inflater::Result::Ok);
    CHECK(out == "finished");
  }
  Deflater next;
  CHECK(server.inflate(next.compress("next one"), 100, &out) == Inflater::Result::Ok);
  CHECK(out == "next one");
}

TEST(Deflate, BombsAndGarbageAreRefused) {
  Deflater client;
  Inflater server;
  std::string out;
  const std::string big(1 << 20, 'z');  // compresses to about 1 KB
  const std::string bomb = client.compress(big);
  CHECK(bomb.size() < 4096);
  CHECK(server.inflate(bomb, 64 * 1024, &out) == Inflater::Result::TooBig);
  CHECK(out.size() <= 64 * 1024);
  Inflater fresh;
  CHECK(fresh.inflate(std::string("\xff\xff\xff\xff garbage", 12), 1 << 20, &out) == Inflater::Result::Corrupt);
}

TEST(Deflate, ParserHandsOverCompressedMessagesOnlyWithTheExtension) {
  Recorder r;
  FrameParser p(compressed_allowed());
  // Compressed bytes are not UTF-8: the parser must not check them.
  feed(p, with_rsv1(encode_client_frame(Opcode::Text, "\xff\xfe compressed", kKey)), r);
  CHECK_EQUAL(0, r.error);
  CHECK_EQUAL(1u, r.compressed.size());
  // Fragmented: RSV1 on the first frame only.
  feed(p, with_rsv1(encode_client_frame(Opcode::Text, "ab", kKey, false)), r);
  feed(p, encode_client_frame(Opcode::Continuation, "cd", kKey), r);
  CHECK_EQUAL(2u, r.compressed.size());
  STRCMP_EQUAL("abcd", r.compressed[1].c_str());
  // Uncompressed messages still go through the UTF-8 check.
  feed(p, encode_client_frame(Opcode::Text, "plain", kKey), r);
  CHECK_EQUAL(1u, r.plain.size());

  Recorder cont;
  FrameParser p2(compressed_allowed());
  feed(p2, encode_client_frame(Opcode::Text, "ab", kKey, false), cont);
  feed(p2, with_rsv1(encode_client_frame(Opcode::Continuation, "cd", kKey)), cont);
  CHECK_EQUAL(1002, cont.error);

  Recorder ping;
  FrameParser p3(compressed_allowed());
  feed(p3, with_rsv1(encode_client_frame(Opcode::Ping, "x", kKey)), ping);
  CHECK_EQUAL(1002, ping.error);

  Recorder rsv2;
  FrameParser p4(compressed_allowed());
  std::string f = encode_client_frame(Opcode::Text, "x", kKey);
  f[0] = static_cast<char>(f[0] | 0x20);
  feed(p4, f, rsv2);
  CHECK_EQUAL(1002, rsv2.error);

  Recorder off;
  FrameParser p5{ParserLimits()};
  feed(p5, with_rsv1(encode_client_frame(Opcode::Text, "x", kKey)), off);
  CHECK_EQUAL(1002, off.error);
}
