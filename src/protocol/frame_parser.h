// Sans-I/O incremental parser for client->server frames (RFC 6455 §5).
// Bytes go in as they arrive (any split, one byte at a time included);
// complete messages and control frames come out through a FrameSink.
// Every protocol violation ends in exactly one on_error() with the close
// code to send; the parser then ignores further input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/opcode.h"
#include "protocol/utf8_validator.h"

namespace wsb {

struct ParserLimits {
  uint64_t max_message_size = 1 << 20;  // reassembled message; over it -> 1009
  uint64_t max_frame_size = 1 << 20;    // one frame's payload; over it -> 1009
  bool require_mask = true;             // client frames must be masked -> else 1002
  // permessage-deflate was negotiated: RSV1 on a message's first frame marks
  // it compressed (RFC 7692 §6). The size limit then applies to the
  // compressed bytes here; the sink checks the inflated size and UTF-8.
  bool allow_compressed = false;
};

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // A complete text (UTF-8 validated) or binary message.
  virtual void on_message(Opcode op, std::string_view payload) = 0;
  // A complete compressed message (only with allow_compressed): still
  // deflated, UTF-8 not checked.
  virtual void on_compressed_message(Opcode, std::string_view) {
    on_error(1002, "compressed message without the extension");
  }
  virtual void on_ping(std::string_view payload) = 0;
  virtual void on_pong(std::string_view payload) = 0;
  // A valid close frame. code == close_code::kNoStatus (1005) when the frame
  // had no payload. reason is valid UTF-8.
  virtual void on_close(uint16_t code, std::string_view reason) = 0;
  // A protocol violation: send a close with `code`, then stop reading.
  virtual void on_error(uint16_t code, const char* why) = 0;
};

class FrameParser {
 public:
  explicit FrameParser(const ParserLimits& limits) : limits_(limits) {}

  // Consumes all of data (the payload is unmasked in place, hence non-const).
  // Returns false once the parser has failed or a close frame was seen; the
  // caller stops feeding then.
  bool feed(uint8_t* data, size_t len, FrameSink& sink);

  bool failed() const { return state_ == State::Failed; }
  bool closed() const { return state_ == State::Closed; }
  // Bytes buffered for the message being reassembled (for status/limits).
  size_t buffered() const { return message_.size(); }
  // Heap bytes the parser holds; after release_idle_buffers() between
  // frames, 0: an idle connection's parser costs only its own size.
  size_t heap_bytes() const;
  // Gives back the message and control buffers kept for reuse, unless a
  // frame or message is in progress.
  void release_idle_buffers();

 private:
  enum class State : uint8_t { Header, ExtLen, MaskKey, Payload, Failed, Closed };
  void fail(FrameSink& sink, uint16_t code, const char* why);
  bool begin_payload(FrameSink& sink);
  void end_frame(FrameSink& sink);

  ParserLimits limits_;
  State state_ = State::Header;
  // current frame
  uint8_t hdr_[14];
  uint8_t hdr_len_ = 0;
  uint8_t hdr_need_ = 2;
  bool fin_ = false;
  Opcode op_ = Opcode::Continuation;
  uint8_t mask_[4] = {0, 0, 0, 0};
  bool masked_ = false;
  uint64_t payload_len_ = 0;
  uint64_t payload_read_ = 0;
  // message reassembly
  bool in_message_ = false;
  Opcode message_op_ = Opcode::Text;
  bool compressed_ = false;  // the message in progress had RSV1 on its first frame
  std::string message_;
  Utf8Validator utf8_;
  std::string control_;  // payload of the current control frame (<=125 bytes)
};

}  // namespace wsb
