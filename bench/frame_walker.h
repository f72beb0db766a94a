// Client-side reader of server->client frames (unmasked, any split across
// reads). Unlike wsb::FrameParser it neither reassembles nor validates
// UTF-8 (the module's own tests check the server's output): the load
// generator only needs each message's first bytes, where the timestamp
// is, and its length. A message whose frame lies whole in the read buffer
// is handed out from that buffer; otherwise its first kPrefix bytes are
// kept and the rest is skipped, so a 64 KiB echo costs no copy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lg {

enum : uint8_t { kOpCont = 0x0, kOpText = 0x1, kOpBinary = 0x2, kOpClose = 0x8, kOpPing = 0x9, kOpPong = 0xA };

class FrameWalker {
 public:
  static constexpr size_t kPrefix = 256;

  // on_message(uint8_t op, const uint8_t* prefix, size_t prefix_len, uint64_t total_len)
  // runs for every complete data message and control frame. Returns false
  // on a framing error (masked server frame, reserved bits or opcode,
  // oversized control frame); the caller drops the connection.
  template <class F>
  bool feed(const uint8_t* p, size_t n, F&& on_message) {
    while (n) {
      if (!in_payload_) {
        size_t take = hdr_need_ - hdr_len_;
        if (take > n) take = n;
        std::memcpy(hdr_ + hdr_len_, p, take);
        hdr_len_ = static_cast<uint8_t>(hdr_len_ + take);
        p += take;
        n -= take;
        if (hdr_len_ < hdr_need_) return true;
        uint64_t len;
        if (hdr_len_ == 2) {
          uint8_t b0 = hdr_[0], b1 = hdr_[1];
          if ((b1 & 0x80) || (b0 & 0x70)) return false;
          op_ = b0 & 0x0F;
          fin_ = (b0 & 0x80) != 0;
          if (!(op_ <= kOpBinary || (op_ >= kOpClose && op_ <= kOpPong))) return false;
          uint8_t len7 = b1 & 0x7F;
          if (len7 == 126 || len7 == 127) {
            hdr_need_ = len7 == 126 ? 4 : 10;
            continue;
          }
          len = len7;
        } else {
          len = 0;
          for (uint8_t i = 2; i < hdr_len_; ++i) len = (len << 8) | hdr_[i];
        }
        hdr_len_ = 0;
        hdr_need_ = 2;
        bool control = op_ >= kOpClose;
        if (control) {
          if (len > 125 || !fin_) return false;
          ctl_len_ = 0;
        } else if (op_ != kOpCont) {
          msg_op_ = op_;
          msg_total_ = 0;
          cap_len_ = 0;
          // Fast path: a whole single-frame message in the caller's buffer.
          if (fin_ && len <= n) {
            on_message(msg_op_, p, static_cast<size_t>(len), len);
            p += len;
            n -= static_cast<size_t>(len);
            continue;
          }
        }
        left_ = len;
        in_payload_ = true;
        if (left_ == 0) {
          finish(on_message);
          continue;
        }
      }
      size_t take = left_ < n ? static_cast<size_t>(left_) : n;
      if (op_ >= kOpClose) {
        std::memcpy(ctl_ + ctl_len_, p, take);
        ctl_len_ += take;
      } else {
        size_t c = kPrefix - cap_len_;
        if (c > take) c = take;
        std::memcpy(cap_ + cap_len_, p, c);
        cap_len_ += c;
        msg_total_ += take;
      }
      p += take;
      n -= take;
      left_ -= take;
      if (left_ == 0) finish(on_message);
    }
    return true;
  }

 private:
  template <class F>
  void finish(F&& on_message) {
    in_payload_ = false;
    if (op_ >= kOpClose) {
      on_message(op_, ctl_, ctl_len_, ctl_len_);
    } else if (fin_) {
      on_message(msg_op_, cap_, cap_len_, msg_total_);
    }
  }

  uint8_t hdr_[10];
  uint8_t hdr_len_ = 0;
  uint8_t hdr_need_ = 2;
  uint8_t op_ = 0;
  bool fin_ = false;
  bool in_payload_ = false;
  uint8_t msg_op_ = kOpText;
  uint64_t left_ = 0;
  uint64_t msg_total_ = 0;
  size_t cap_len_ = 0;
  size_t ctl_len_ = 0;
  uint8_t cap_[kPrefix];
  uint8_t ctl_[125];
};

}  // namespace lg
