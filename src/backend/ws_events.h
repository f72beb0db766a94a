// The event stream of Pushpin's WebSocket-over-HTTP protocol: a request or
// response body is a sequence of
//
//   NAME "\r\n"                          (no content)
//   NAME " " hexlen "\r\n" content "\r\n"
//
// NAME is OPEN, TEXT, BINARY, PING, PONG, CLOSE or DISCONNECT; a CLOSE's
// content is the 2-byte big-endian close code followed by the reason.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace wsb {

enum class WsEventType { Open, Text, Binary, Ping, Pong, Close, Disconnect };

struct WsEvent {
  WsEventType type;
  std::string content;
};

const char* ws_event_name(WsEventType type);

// Appends one event the way Pushpin writes it: empty content has no length
// ("TEXT\r\n", "PING\r\n", "CLOSE\r\n"), anything else a lowercase hex length.
void append_event(std::string& body, const WsEvent& event);

// Strict parser. Accepts what Pushpin writes and reads: events with or without
// a length (none = empty content), hex digits in either case. Refuses, with a
// message naming the offset: an unknown or lowercase name, an empty, non-hex
// or longer than 8-digit length, a length beyond the body, content not
// followed by CRLF, a line without CRLF. An empty body is no events.
bool parse_events(std::string_view body, std::vector<WsEvent>* out, std::string* error);

}  // namespace wsb
