// Server->client frame encoding (unmasked) and client frames (masked, for
// tests and the load generator).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/opcode.h"

namespace wsb {

constexpr size_t kMaxFrameHeader = 14;

// Writes a frame header into out (at least kMaxFrameHeader bytes) and returns
// its length. With mask != nullptr the MASK bit and key are written (the
// caller masks the payload itself).
size_t encode_frame_header(uint8_t* out, Opcode op, bool fin, uint64_t payload_len,
                           const uint8_t* mask = nullptr, uint8_t rsv = 0);

// A complete unmasked single frame (header + payload).
std::string encode_frame(Opcode op, std::string_view payload, bool fin = true);

// A close frame: empty payload when code == 0, else 2-byte code + reason
// (reason truncated to 123 bytes on a UTF-8 boundary).
std::string encode_close(uint16_t code, std::string_view reason = {});

// A masked client frame (for tests/bench).
std::string encode_client_frame(Opcode op, std::string_view payload, const uint8_t key[4],
                                bool fin = true);

}  // namespace wsb
