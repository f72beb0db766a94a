#include "backend/backend_headers.h"

#include <openssl/rand.h>

#include "protocol/http_tokens.h"

namespace wsb {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Splits on sep outside double quotes (parameter values may be quoted).
std::vector<std::string_view> split_unquoted(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && quoted) {
      ++i;
    } else if (s[i] == '"') {
      quoted = !quoted;
    } else if (s[i] == sep && !quoted) {
      parts.push_back(trim_ows(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  parts.push_back(trim_ows(s.substr(start)));
  return parts;
}

std::string unquote(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  std::string out;
  for (size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] == '\\' && i + 2 < v.size()) ++i;
    out.push_back(v[i]);
  }
  return out;
}

bool named_in_connection(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (!iequals(k, "Connection")) continue;
    for (std::string_view token : split_unquoted(v, ',')) {
      if (iequals(token, name)) return true;
    }
  }
  return false;
}

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"Connection",
                                                "Keep-Alive",
                                                "Upgrade",
                                                "TE",
                                                "Trailer",
                                                "Transfer-Encoding",
                                                "Proxy-Connection",
                                                "Proxy-Authenticate",
                                                "Proxy-Authorization"};
  for (std::string_view n : kNames) {
    if (iequals(name, n)) return true;
  }
  return false;
}

bool is_in(std::string_view name, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    if (iequals(name, n)) return true;
  }
  return false;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

const std::string* find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

HeaderList filter_client_headers(const HeaderList& client) {
  HeaderList out;
  for (const auto& [k, v] : client) {
    if (is_hop_by_hop(k) || named_in_connection(client, k) || istarts_with(k, "Meta-") ||
        istarts_with(k, "Grip-") ||
        is_in(k, {"Expect", "Content-Length", "Content-Type", "Content-Encoding", "Accept-Encoding",
                  "Accept", "Sec-WebSocket-Extensions", "Connection-Id"}))
      continue;
    out.emplace_back(k, v);
  }
  return out;
}

bool is_websocket_events_type(std::string_view content_type) {
  const size_t semi = content_type.find(';');
  return iequals(trim_ows(content_type.substr(0, semi)), kWebSocketEventsType);
}

HeaderList headers_for_client(const HeaderList& backend, bool for_101) {
  HeaderList out;
  for (const auto& [k, v] : backend) {
    if (is_hop_by_hop(k) || istarts_with(k, "Set-Meta-") ||
        is_in(k, {"Content-Length", "Date", "Server", "Keep-Alive-Interval"}))
      continue;
    if (for_101 && is_in(k, {"Content-Type", "Sec-WebSocket-Extensions", "Sec-WebSocket-Accept"}))
      continue;
    out.emplace_back(k, v);
  }
  return out;
}

GripExtension find_grip_extension(const HeaderList& headers) {
  GripExtension grip;
  for (const auto& [k, v] : headers) {
    if (!iequals(k, "Sec-WebSocket-Extensions")) continue;
    for (std::string_view ext : split_unquoted(v, ',')) {
      const std::vector<std::string_view> params = split_unquoted(ext, ';');
      if (params[0] != "grip") continue;
      grip.enabled = true;
      for (size_t i = 1; i < params.size(); ++i) {
        const size_t eq = params[i].find('=');
        if (eq == std::string_view::npos || trim_ows(params[i].substr(0, eq)) != "message-prefix")
          continue;
        grip.has_prefix = true;
        grip.message_prefix = unquote(trim_ows(params[i].substr(eq + 1)));
      }
      return grip;
    }
  }
  return grip;
}

std::string make_connection_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) return {};
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id.push_back('-');
    id.push_back(kHex[b[i] >> 4]);
    id.push_back(kHex[b[i] & 0x0F]);
  }
  return id;
}

}  // namespace wsb
