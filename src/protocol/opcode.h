// WebSocket opcodes and close codes (RFC 6455 §5.2, §7.4).
#pragma once
#include <cstdint>

namespace wsb {

enum class Opcode : uint8_t {
  Continuation = 0x0,
  Text = 0x1,
  Binary = 0x2,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xA,
};

inline bool is_control(Opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }

// Close codes the server sends.
namespace close_code {
constexpr uint16_t kNormal = 1000;
constexpr uint16_t kGoingAway = 1001;
constexpr uint16_t kProtocolError = 1002;
constexpr uint16_t kUnsupportedData = 1003;
constexpr uint16_t kNoStatus = 1005;      // never on the wire
constexpr uint16_t kAbnormal = 1006;      // never on the wire
constexpr uint16_t kInvalidPayload = 1007;
constexpr uint16_t kPolicyViolation = 1008;
constexpr uint16_t kMessageTooBig = 1009;
constexpr uint16_t kInternalError = 1011;
constexpr uint16_t kTryAgainLater = 1013;
}  // namespace close_code

// True for codes a peer may put on the wire in a close frame:
// 1000-1003, 1007-1011 and 3000-4999 (RFC 6455 §7.4.1/§7.4.2, IANA registry).
bool is_valid_close_code(uint16_t code);

}  // namespace wsb
