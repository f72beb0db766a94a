// GRIP WebSocket control messages: what a backend sends as a TEXT message
// "c:" + JSON object, e.g. c:{"type":"subscribe","channel":"news"}. The
// types and fields are Pushpin 1.36's (src/handler/wscontrolmessage.cpp);
// Pushpin ignores a control message it cannot use (bad JSON, unknown type,
// missing field) with a debug log line, and so do we: parse_grip_control
// returns false with the reason and the caller logs and moves on.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wsb {

enum class GripControlType {
  Subscribe,
  Unsubscribe,
  Detach,
  KeepAlive,
  SetMeta,
  Session,
  SendDelayed,
  FlushDelayed,
};

// The WebSocket message types a keep-alive, a delayed send or a published
// ws-message may have.
enum class WsMessageType { Text, Binary, Ping, Pong };

enum class KeepAliveMode { Idle, Interval };

struct GripControl {
  GripControlType type = GripControlType::Detach;
  // subscribe / unsubscribe (filters are kept, we do not apply them)
  std::string channel;
  std::vector<std::string> filters;
  // keep-alive / send-delayed: has_content false turns keep-alives off
  bool has_content = false;
  WsMessageType message_type = WsMessageType::Text;
  std::string content;
  int64_t timeout_s = 0;  // 0 = not given (keep-alive: 55 s, send-delayed: 1 s)
  KeepAliveMode mode = KeepAliveMode::Idle;
  // set-meta (has_value false: delete) / session (empty id: clear)
  std::string name;
  std::string value;
  bool has_value = false;
  std::string session_id;
};

// Defaults Pushpin uses when a control message has no timeout.
constexpr int64_t kDefaultKeepAliveTimeoutS = 55;
constexpr int64_t kDefaultSendDelayedTimeoutS = 1;
// A keep-alive or delayed message beyond this is refused (it goes to the
// client as one frame; a control frame carries at most 125 bytes anyway).
constexpr size_t kMaxControlContent = 64 * 1024;
// Larger timeouts are refused: a day is far beyond any keep-alive need and
// keeps deadline arithmetic far from overflow.
constexpr int64_t kMaxControlTimeoutS = 86400;

// json is the text after "c:". False (and *error) when Pushpin would ignore
// the message, or when content-bin is not base64, a text content is not
// UTF-8, a ping/pong content is over 125 bytes, or the channel fails
// is_valid_channel (stricter than Pushpin; each would break the connection
// or the engine later).
bool parse_grip_control(std::string_view json, GripControl* out, std::string* error);

}  // namespace wsb
