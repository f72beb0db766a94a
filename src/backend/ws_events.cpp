#include "backend/ws_events.h"

#include <cstdint>

namespace wsb {
namespace {

// 8 hex digits are 4 GiB, beyond any body a request may carry; a longer
// length field is garbage, not a big event.
constexpr size_t kMaxHexDigits = 8;

struct NameEntry {
  const char* name;
  WsEventType type;
};
constexpr NameEntry kNames[] = {
    {"OPEN", WsEventType::Open},
    {"TEXT", WsEventType::Text},
    {"BINARY", WsEventType::Binary},
    {"PING", WsEventType::Ping},
    {"PONG", WsEventType::Pong},
    {"CLOSE", WsEventType::Close},
    {"DISCONNECT", WsEventType::Disconnect},
};

bool lookup_name(std::string_view name, WsEventType* type) {
  for (const NameEntry& e : kNames) {
    if (name == e.name) {
      *type = e.type;
      return true;
    }
  }
  return false;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool parse_hex(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > kMaxHexDigits) return false;
  uint64_t v = 0;
  for (char c : s) {
    const int d = hex_value(c);
    if (d < 0) return false;
    v = v * 16 + static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

// Names in errors are cut and made printable: they come from a backend and
// end up in a log line.
std::string printable(std::string_view s) {
  constexpr size_t kMax = 16;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (s.size() > kMax) out += "...";
  return out;
}

bool fail(std::string* error, size_t offset, const std::string& what) {
  *error = what + " at offset " + std::to_string(offset);
  return false;
}

}  // namespace

const char* ws_event_name(WsEventType type) {
  for (const NameEntry& e : kNames) {
    if (e.type == type) return e.name;
  }
  return "?";
}

void append_event(std::string& body, const WsEvent& event) {
  body += ws_event_name(event.type);
  if (!event.content.empty()) {
    static const char kHex[] = "0123456789abcdef";
    char digits[16];
    size_t n = 0;
    size_t len = event.content.size();
    do {
      digits[n++] = kHex[len & 0xF];
      len >>= 4;
    } while (len != 0);
    body += ' ';
    while (n > 0) body += digits[--n];
    body += "\r\n";
    body += event.content;
  }
  body += "\r\n";
}

bool parse_events(std::string_view body, std::vector<WsEvent>* out, std::string* error) {
  out->clear();
  size_t at = 0;
  while (at < body.size()) {
    const size_t eol = body.find("\r\n", at);
    if (eol == std::string_view::npos) return fail(error, at, "event line without CRLF");
    const std::string_view line = body.substr(at, eol - at);
    const size_t space = line.find(' ');
    const std::string_view name = line.substr(0, space);
    WsEvent event{WsEventType::Open, {}};
    if (!lookup_name(name, &event.type))
      return fail(error, at, "unknown event name '" + printable(name) + "'");
    const size_t content_at = eol + 2;
    if (space == std::string_view::npos) {
      out->push_back(std::move(event));
      at = content_at;
      continue;
    }
    uint64_t length = 0;
    if (!parse_hex(line.substr(space + 1), &length))
      return fail(error, at, "bad hex length '" + printable(line.substr(space + 1)) + "'");
    if (length > body.size() - content_at)
      return fail(error, at, "length " + std::to_string(length) + " beyond the body");
    const size_t end = content_at + static_cast<size_t>(length);
    if (body.substr(end, 2) != "\r\n")
      return fail(error, end, "event content not followed by CRLF");
    event.content.assign(body.substr(content_at, static_cast<size_t>(length)));
    out->push_back(std::move(event));
    at = end + 2;
  }
  return true;
}

}  // namespace wsb
