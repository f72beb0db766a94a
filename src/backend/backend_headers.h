// Header rules of the backend bridge: what of the client's handshake reaches
// the backend, what of the backend's answer reaches the client, and the
// GRIP extension in Sec-WebSocket-Extensions.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsb {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kWebSocketEventsType = "application/websocket-events";

bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);

// The first header of that name (any case), or nullptr.
const std::string* find_header(const HeaderList& headers, std::string_view name);

// The client's handshake headers minus what must not reach the backend:
// hop-by-hop headers (Connection and the names it lists, Keep-Alive,
// Upgrade, TE, Trailer, Transfer-Encoding, Proxy-*), Expect, Content-Length,
// Content-Type, Content-Encoding, Accept-Encoding, Accept,
// Sec-WebSocket-Extensions (the bridge sends "grip" instead) and every
// header the backend must be able to trust: Connection-Id, Meta-*, Grip-*.
// Order and case of the rest are kept; Host, Origin, Cookie,
// Authorization, Sec-WebSocket-Key/Version/Protocol, User-Agent pass.
HeaderList filter_client_headers(const HeaderList& client);

// Content-Type application/websocket-events: the media type in any case,
// parameters ignored (Pushpin wants the exact string).
bool is_websocket_events_type(std::string_view content_type);

// The backend's answer headers that go to the client: everything except
// framing and hop-by-hop headers (Content-Length, Transfer-Encoding,
// Connection, Keep-Alive, Upgrade), Date and Server (Apache writes its own),
// and the bridge's private ones (Set-Meta-*, Keep-Alive-Interval). For the
// 101 also Content-Type, Sec-WebSocket-Extensions and Sec-WebSocket-Accept.
HeaderList headers_for_client(const HeaderList& backend, bool for_101);

struct GripExtension {
  bool enabled = false;
  bool has_prefix = false;  // message-prefix given (may be "")
  std::string message_prefix;
};

// Looks for the "grip" extension (case-sensitive, as Pushpin) in every
// Sec-WebSocket-Extensions header: `grip`, `grip; message-prefix="p:"` or
// `grip; message-prefix=p:`, possibly in a list with other extensions.
GripExtension find_grip_extension(const HeaderList& headers);

// A random UUID (version 4), the form of Pushpin's Connection-Id.
std::string make_connection_id();

}  // namespace wsb
