// Frame headers use the shortest length form (RFC 6455 §5.2 requires the
// minimal encoding from senders even though receivers accept any).
#include "protocol/frame_encoder.h"

#include <cstring>

#include "protocol/masking.h"

namespace wsb {
namespace {

constexpr size_t kMaxCloseReason = 123;  // 125-byte control payload minus the code

// Cuts a valid UTF-8 string to at most max bytes without splitting a code
// point: back up over continuation bytes (10xxxxxx) at the cut.
std::string_view truncate_utf8(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

}  // namespace

size_t encode_frame_header(uint8_t* out, Opcode op, bool fin, uint64_t payload_len,
                           const uint8_t* mask, uint8_t rsv) {
  // rsv holds the RSV bits in their wire position (0x40 = RSV1, 0x20, 0x10).
  out[0] = static_cast<uint8_t>((fin ? 0x80 : 0x00) | (rsv & 0x70) |
                                (static_cast<uint8_t>(op) & 0x0F));
  uint8_t mask_bit = mask ? 0x80 : 0x00;
  size_t n;
  if (payload_len <= 125) {
    out[1] = static_cast<uint8_t>(mask_bit | payload_len);
    n = 2;
  } else if (payload_len <= 0xFFFF) {
    out[1] = static_cast<uint8_t>(mask_bit | 126);
    out[2] = static_cast<uint8_t>(payload_len >> 8);
    out[3] = static_cast<uint8_t>(payload_len);
    n = 4;
  } else {
    out[1] = static_cast<uint8_t>(mask_bit | 127);
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payload_len >> (56 - 8 * i));
    n = 10;
  }
  if (mask) {
    std::memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

std::string encode_frame(Opcode op, std::string_view payload, bool fin) {
  uint8_t header[kMaxFrameHeader];
  size_t n = encode_frame_header(header, op, fin, payload.size());
  std::string frame;
  frame.reserve(n + payload.size());
  frame.append(reinterpret_cast<const char*>(header), n);
  frame.append(payload);
  return frame;
}

std::string encode_close(uint16_t code, std::string_view reason) {
  if (code == 0) return encode_frame(Opcode::Close, {});
  std::string_view cut = truncate_utf8(reason, kMaxCloseReason);
  char payload[2 + kMaxCloseReason];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code & 0xFF);
  if (!cut.empty()) std::memcpy(payload + 2, cut.data(), cut.size());
  return encode_frame(Opcode::Close, std::string_view(payload, 2 + cut.size()));
}

std::string encode_client_frame(Opcode op, std::string_view payload, const uint8_t key[4],
                                bool fin) {
  uint8_t header[kMaxFrameHeader];
  size_t n = encode_frame_header(header, op, fin, payload.size(), key);
  std::string frame;
  frame.reserve(n + payload.size());
  frame.append(reinterpret_cast<const char*>(header), n);
  frame.append(payload);
  apply_mask(reinterpret_cast<uint8_t*>(&frame[n]), payload.size(), key, 0);
  return frame;
}

}  // namespace wsb
