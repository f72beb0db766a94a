// libFuzzer target for FrameParser.
// Input layout: [flags][n][n chunk-size bytes][stream...]. flags pick the
// limits and the mask requirement, bit 0x10 of n allows compressed messages
// (permessage-deflate; they are then inflated as the session would); the
// chunk sizes (cycled) split the stream.
// Checked: the same events whatever the split (one-shot, chunked, and byte
// by byte for short inputs), text messages and close reasons are valid UTF-8
// by an independent decoder (tests/unit/utf8_reference.h), limits hold, and
// nothing follows a close/error.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/deflate.h"
#include "protocol/frame_parser.h"

#include "../unit/utf8_reference.h"
#include "fuzz_support.h"

using namespace wsb;

namespace {

struct Checker : FrameSink {
  ParserLimits limits;
  FrameParser* parser = nullptr;
  bool reenter = false;  // feed an empty buffer from inside callbacks
  bool done = false;     // a close or error was reported
  std::vector<std::string> events;

  void event(std::string e, bool terminal = false) {
    REQUIRE(!done);
    done = terminal;
    events.push_back(std::move(e));
    if (reenter && parser) REQUIRE(parser->feed(nullptr, 0, *this) == !done);
  }
  void on_message(Opcode op, std::string_view p) override {
    REQUIRE(op == Opcode::Text || op == Opcode::Binary);
    REQUIRE(p.size() <= limits.max_message_size);
    if (op == Opcode::Text) REQUIRE(wsb_test::reference_valid_utf8(p));
    event((op == Opcode::Text ? "T" : "B") + std::string(p));
  }
  void on_compressed_message(Opcode op, std::string_view p) override {
    REQUIRE(limits.allow_compressed);
    REQUIRE(op == Opcode::Text || op == Opcode::Binary);
    REQUIRE(p.size() <= limits.max_message_size);
    Inflater inflater;
    std::string out;
    const Inflater::Result r = inflater.inflate(p, limits.max_message_size, &out);
    REQUIRE(out.size() <= limits.max_message_size);
    event("Z" + std::to_string(static_cast<int>(r)) + out);
  }
  void on_ping(std::string_view p) override {
    REQUIRE(p.size() <= 125);
    event("i" + std::string(p));
  }
  void on_pong(std::string_view p) override {
    REQUIRE(p.size() <= 125);
    event("o" + std::string(p));
  }
  void on_close(uint16_t code, std::string_view reason) override {
    REQUIRE(code == close_code::kNoStatus || is_valid_close_code(code));
    REQUIRE(code != close_code::kNoStatus || reason.empty());
    REQUIRE(reason.size() <= 123 && wsb_test::reference_valid_utf8(reason));
    event("c" + std::to_string(code) + ":" + std::string(reason), true);
  }
  void on_error(uint16_t code, const char* why) override {
    REQUIRE(code == close_code::kProtocolError || code == close_code::kInvalidPayload ||
            code == close_code::kMessageTooBig);
    REQUIRE(why != nullptr && *why != '\0');
    event("e" + std::to_string(code), true);
  }
};

// Feeds stream in pieces whose sizes cycle through `sizes` (empty: at once).
std::vector<std::string> run(std::string stream, const std::vector<size_t>& sizes,
                             const ParserLimits& limits, bool reenter) {
  FrameParser parser(limits);
  Checker sink;
  sink.limits = limits;
  sink.parser = &parser;
  sink.reenter = reenter;
  uint8_t* data = reinterpret_cast<uint8_t*>(&stream[0]);
  size_t pos = 0, i = 0;
  bool stopped = false;
  do {
    size_t n = sizes.empty() ? stream.size() : sizes[i++ % sizes.size()];
    if (n > stream.size() - pos) n = stream.size() - pos;
    bool more = parser.feed(data + pos, n, sink);
    REQUIRE(more == !(parser.failed() || parser.closed()));
    REQUIRE(more == !sink.done);
    REQUIRE(!stopped || !more);
    REQUIRE(parser.buffered() <= limits.max_message_size);
    stopped = !more;
    pos += n;
  } while (pos < stream.size());
  return sink.events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const uint64_t kLimits[] = {0, 1, 16, 125, 126, 300, 65536, 1 << 20};
  uint8_t flags = data[0];
  ParserLimits limits;
  limits.require_mask = (flags & 0x01) != 0;
  limits.max_frame_size = kLimits[(flags >> 1) & 7];
  limits.max_message_size = kLimits[(flags >> 4) & 7];
  bool reenter = (flags & 0x80) != 0;
  limits.allow_compressed = (data[1] & 0x10) != 0;

  size_t nsizes = data[1] % 16;
  if (size < 2 + nsizes) return 0;
  std::vector<size_t> sizes;
  for (size_t i = 0; i < nsizes; ++i) sizes.push_back(data[2 + i]);  // 0: an empty feed
  bool progress = false;
  for (size_t s : sizes) progress = progress || s != 0;
  if (!progress) sizes.assign(1, 7);
  std::string stream(reinterpret_cast<const char*>(data) + 2 + nsizes, size - 2 - nsizes);

  std::vector<std::string> once = run(stream, {}, limits, reenter);
  REQUIRE(run(stream, sizes, limits, reenter) == once);
  if (stream.size() <= 512) REQUIRE(run(stream, {1}, limits, reenter) == once);
  return 0;
}
