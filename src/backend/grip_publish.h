// GRIP publish bodies, as a publisher POSTs them to Pushpin's /publish/:
//
//   {"items": [{"channel": "news", "id": "7", "prev-id": "6",
//               "formats": {"ws-message": {"content": "hello"}}}]}
//
// ws-message: "content" (text unless "type" says otherwise), "content-bin"
// (base64, binary unless "type" says otherwise), "type" text|binary|ping|
// pong, or {"action": "close", "code"?: n, "reason"?: s}. As in Pushpin the
// formats may also sit on the item itself (no "formats" key), an item must
// have at least one format, items without ws-message are ignored (they are
// for HTTP streaming), and one bad item makes the whole body a 400.
// Stricter than Pushpin: channel names (grip_channel.h), content-bin must be
// base64, a text message must be UTF-8, ping/pong at most 125 bytes, a close
// code must be one a server may send and its reason at most 123 bytes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wsb {

enum class GripItemKind { Text, Binary, Ping, Pong, Close };

struct GripItem {
  std::string channel;
  std::string id;       // "" if absent
  std::string prev_id;  // "" if absent
  GripItemKind kind = GripItemKind::Text;
  std::string content;         // message bytes (not for Close)
  uint16_t close_code = 1000;  // Pushpin sends 1000 when "code" is absent
  std::string close_reason;
};

// False with *error (a sentence for the 400 body) on an invalid body.
bool parse_grip_publish(std::string_view body, std::vector<GripItem>* out, std::string* error);

}  // namespace wsb
