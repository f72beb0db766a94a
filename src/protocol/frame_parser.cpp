// Incremental frame parser. Design notes:
//  - Every check happens at the first byte that can decide it (header bytes
//    1-2, the extended length, each payload chunk), so the outcome is the same
//    whatever the input split, and a peer is refused before it has sent (or
//    we have buffered) the rest of a bad frame.
//  - A data frame that lies whole in the caller's buffer and is a complete
//    message is handed out from that buffer: no copy on the common path.
//    Everything else is appended in bulk to a reused message buffer.
//  - Callbacks are the last thing a step does, and the parser's state is
//    already final when a callback runs, so a sink that feeds the parser
//    again from inside a callback sees a consistent parser.
//  - A frame that spans reads gets its whole size reserved at once instead
//    of growing read by read. The buffer is kept for the next message (up
//    to kMaxKeptCapacity) until the owner calls release_idle_buffers(): the
//    session does when its connection has been quiet for a while, so an
//    idle connection's parser holds no heap memory and a busy one does not
//    allocate per message.
#include "protocol/frame_parser.h"

#include <cstring>
#include <utility>

#include "protocol/masking.h"

namespace wsb {
namespace {

constexpr uint64_t kMaxControlPayload = 125;
// A message buffer grown past this by one big message is released after it,
// so an idle connection does not pin its peak size.
constexpr size_t kMaxKeptCapacity = 64 * 1024;

bool on_heap(const std::string& s) { return s.capacity() > std::string().capacity(); }

bool is_known_opcode(uint8_t op) { return op <= 0x2 || (op >= 0x8 && op <= 0xA); }

// The rules that the first two header bytes alone decide; all are 1002.
const char* check_first_bytes(uint8_t b0, uint8_t b1, bool in_message, const ParserLimits& limits) {
  uint8_t op = b0 & 0x0F;
  bool fin = (b0 & 0x80) != 0;
  const bool require_mask = limits.require_mask;
  if (b0 & 0x30) return "reserved bits set without a negotiated extension";
  if (b0 & 0x40) {
    if (!limits.allow_compressed) return "reserved bits set without a negotiated extension";
    // permessage-deflate: RSV1 only on the first frame of a data message.
    if (op == 0) return "RSV1 on a continuation frame";
    if (op & 0x8) return "RSV1 on a control frame";
  }
  if (!is_known_opcode(op)) return "reserved opcode";
  if (require_mask && !(b1 & 0x80)) return "client frame not masked";
  if (op & 0x8) {
    if (!fin) return "fragmented control frame";
  } else if (op == 0) {
    if (!in_message) return "continuation frame without a message in progress";
  } else if (in_message) {
    return "new data frame inside a fragmented message";
  }
  return nullptr;
}

struct ClosePayload {
  uint16_t error = 0;  // close code to fail with, 0 when valid
  const char* why = nullptr;
  uint16_t code = close_code::kNoStatus;
  std::string_view reason;
};

ClosePayload parse_close(std::string_view p) {
  ClosePayload c;
  if (p.empty()) return c;
  if (p.size() == 1) {
    c.error = close_code::kProtocolError;
    c.why = "close frame with a 1-byte payload";
    return c;
  }
  c.code = static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
  c.reason = p.substr(2);
  if (!is_valid_close_code(c.code)) {
    c.error = close_code::kProtocolError;
    c.why = "invalid close code";
  } else if (!Utf8Validator::validate(reinterpret_cast<const uint8_t*>(c.reason.data()),
                                      c.reason.size())) {
    c.error = close_code::kInvalidPayload;
    c.why = "close reason is not valid utf-8";
  }
  return c;
}

std::string_view view(const uint8_t* p, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(p), n);
}

}  // namespace

size_t FrameParser::heap_bytes() const {
  return (on_heap(message_) ? message_.capacity() : 0) + (on_heap(control_) ? control_.capacity() : 0);
}

// Frees the buffers nothing in progress needs (a partial frame or message
// keeps its bytes).
void FrameParser::release_idle_buffers() {
  const bool between_frames = state_ != State::Payload && hdr_len_ == 0;
  if (between_frames && !in_message_ && on_heap(message_)) std::string().swap(message_);
  if (between_frames && on_heap(control_)) std::string().swap(control_);
}

bool FrameParser::feed(uint8_t* data, size_t len, FrameSink& sink) {
  size_t pos = 0;
  for (;;) {
    switch (state_) {
      case State::Failed:
      case State::Closed:
        return false;

      case State::Header:
      case State::ExtLen:
      case State::MaskKey: {
        if (pos == len) return true;
        size_t want = static_cast<size_t>(hdr_need_ - hdr_len_);
        size_t n = want < len - pos ? want : len - pos;
        std::memcpy(hdr_ + hdr_len_, data + pos, n);
        hdr_len_ = static_cast<uint8_t>(hdr_len_ + n);
        pos += n;
        if (hdr_len_ < hdr_need_) return true;

        if (state_ == State::Header) {
          const char* why = check_first_bytes(hdr_[0], hdr_[1], in_message_, limits_);
          if (why) {
            fail(sink, close_code::kProtocolError, why);
            return false;
          }
          fin_ = (hdr_[0] & 0x80) != 0;
          op_ = static_cast<Opcode>(hdr_[0] & 0x0F);
          masked_ = (hdr_[1] & 0x80) != 0;
          uint8_t len7 = hdr_[1] & 0x7F;
          if (len7 >= 126) {
            hdr_need_ = len7 == 126 ? 4 : 10;
            state_ = State::ExtLen;
            break;
          }
          payload_len_ = len7;
        } else if (state_ == State::ExtLen) {
          payload_len_ = 0;
          for (uint8_t i = 2; i < hdr_len_; ++i) payload_len_ = (payload_len_ << 8) | hdr_[i];
        } else {
          std::memcpy(mask_, hdr_ + hdr_len_ - 4, 4);
          state_ = State::Payload;
          break;
        }
        if (!begin_payload(sink)) return false;
        break;
      }

      case State::Payload: {
        uint64_t left = payload_len_ - payload_read_;
        size_t n = left < len - pos ? static_cast<size_t>(left) : len - pos;
        if (n == 0 && left != 0) return true;
        uint8_t* p = data + pos;
        pos += n;
        if (masked_) apply_mask(p, n, mask_, payload_read_);
        bool whole = payload_read_ == 0 && n == payload_len_;
        payload_read_ += n;

        if (is_control(op_)) {
          control_.append(reinterpret_cast<const char*>(p), n);
        } else {
          // Validated chunk by chunk as it arrives, so a bad sequence is
          // reported before the rest of the frame or message is awaited.
          if (message_op_ == Opcode::Text && !compressed_ && !utf8_.feed(p, n)) {
            fail(sink, close_code::kInvalidPayload, "invalid utf-8 in a text message");
            return false;
          }
          if (whole && fin_ && op_ != Opcode::Continuation) {
            if (message_op_ == Opcode::Text && !compressed_ && !utf8_.complete()) {
              fail(sink, close_code::kInvalidPayload, "text message ends inside a utf-8 sequence");
              return false;
            }
            in_message_ = false;
            state_ = State::Header;
            hdr_len_ = 0;
            hdr_need_ = 2;
            if (compressed_) {
              sink.on_compressed_message(message_op_, view(p, n));
            } else {
              sink.on_message(message_op_, view(p, n));
            }
            break;
          }
          if (n && payload_read_ == n) {  // the first bytes of a frame that spans reads
            const uint64_t need = message_.size() + payload_len_;  // within the limits (begin_payload)
            if (need > message_.capacity()) message_.reserve(static_cast<size_t>(need));
          }
          if (n) message_.append(reinterpret_cast<const char*>(p), n);
        }
        if (payload_read_ == payload_len_) end_frame(sink);
        break;
      }
    }
  }
}

void FrameParser::fail(FrameSink& sink, uint16_t code, const char* why) {
  state_ = State::Failed;
  std::string().swap(message_);
  sink.on_error(code, why);
}

// Runs once the payload length is known: the size limits are enforced from
// the header, before a single payload byte is buffered.
bool FrameParser::begin_payload(FrameSink& sink) {
  if (hdr_len_ == 10 && (payload_len_ >> 63)) {
    fail(sink, close_code::kProtocolError, "64-bit payload length with the high bit set");
    return false;
  }
  // Decoded, not the 7-bit field: a non-minimal length form is legal.
  if (is_control(op_) && payload_len_ > kMaxControlPayload) {
    fail(sink, close_code::kProtocolError, "control frame payload over 125 bytes");
    return false;
  }
  if (payload_len_ > limits_.max_frame_size) {
    fail(sink, close_code::kMessageTooBig, "frame exceeds the frame size limit");
    return false;
  }
  if (is_control(op_)) {
    control_.clear();
    if (control_.capacity() < kMaxControlPayload) control_.reserve(kMaxControlPayload);
  } else {
    uint64_t have = op_ == Opcode::Continuation ? message_.size() : 0;
    uint64_t max = limits_.max_message_size;
    if (have > max || payload_len_ > max - have) {
      fail(sink, close_code::kMessageTooBig, "message exceeds the message size limit");
      return false;
    }
    if (op_ != Opcode::Continuation) {
      in_message_ = true;
      message_op_ = op_;
      compressed_ = (hdr_[0] & 0x40) != 0;
      message_.clear();
      utf8_.reset();
    }
  }
  payload_read_ = 0;
  if (masked_) {
    hdr_need_ = static_cast<uint8_t>(hdr_len_ + 4);
    state_ = State::MaskKey;
  } else {
    state_ = State::Payload;
  }
  return true;
}

void FrameParser::end_frame(FrameSink& sink) {
  state_ = State::Header;
  hdr_len_ = 0;
  hdr_need_ = 2;

  if (op_ == Opcode::Ping) {
    sink.on_ping(control_);
    return;
  }
  if (op_ == Opcode::Pong) {
    sink.on_pong(control_);
    return;
  }
  if (op_ == Opcode::Close) {
    ClosePayload c = parse_close(control_);
    if (c.error) {
      fail(sink, c.error, c.why);
      return;
    }
    state_ = State::Closed;
    std::string().swap(message_);
    sink.on_close(c.code, c.reason);
    return;
  }

  if (!fin_) return;
  if (message_op_ == Opcode::Text && !compressed_ && !utf8_.complete()) {
    fail(sink, close_code::kInvalidPayload, "text message ends inside a utf-8 sequence");
    return;
  }
  in_message_ = false;
  // The message moves out of message_ for the callback (pointer moves, no
  // allocation): a sink that feeds the parser again cannot pull the bytes
  // from under the view it was given.
  std::string message = std::move(message_);
  message_.clear();
  if (compressed_) {
    sink.on_compressed_message(message_op_, message);
  } else {
    sink.on_message(message_op_, message);
  }
  if (!in_message_ && message_.capacity() < message.capacity() &&
      message.capacity() <= kMaxKeptCapacity) {
    message.clear();
    message_.swap(message);
  }
}

}  // namespace wsb
