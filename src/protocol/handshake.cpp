// Opening handshake checks (RFC 6455 §4.2.1/§4.2.2). The order of the checks
// decides which error a malformed request gets, so it follows the RFC's list
// and answers a browser's plain page load (no Upgrade at all) with a helpful
// 426 rather than a bare 400.
#include "protocol/handshake.h"

#include "protocol/deflate.h"
#include "protocol/http_tokens.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstdint>

namespace wsb {
namespace {

constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kKeyChars = 24;     // base64 of 16 bytes
constexpr size_t kKeyBytes = 16;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// Calls fn on each trimmed element of a comma list until fn returns true.
template <typename Fn>
bool any_list_element(std::string_view list, Fn fn) {
  while (true) {
    size_t comma = list.find(',');
    if (fn(trim_ows(list.substr(0, comma)))) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/';
}

// An origin or Host value reduced to a comparable form: lower-case host, and
// the port only when it is not the scheme's default, so "a.com", "a.com:80"
// (for http) and "A.COM" compare equal.
struct Authority {
  bool ok = false;
  std::string text;  // host[:port], normalised
};

Authority normalise_authority(std::string_view a, std::string_view scheme) {
  Authority out;
  std::string_view host = a, port;
  if (!a.empty() && a.front() == '[') {  // IPv6 literal
    size_t close = a.find(']');
    if (close == std::string_view::npos) return out;
    host = a.substr(0, close + 1);
    std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return out;
      port = rest.substr(1);
      if (port.empty()) return out;
    }
  } else {
    size_t colon = a.rfind(':');
    if (colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
      if (port.empty()) return out;
    }
  }
  if (host.empty()) return out;
  for (char c : host)
    if (c == '@' || c == '/' || c == ' ' || c == '\t' || c == ',' ||
        (c == ':' && host.front() != '['))
      return out;
  unsigned long port_num = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return out;
    port_num = port_num * 10 + static_cast<unsigned long>(c - '0');
    if (port_num > 65535) return out;
  }
  for (char c : host) out.text.push_back(lower(c));
  unsigned long default_port = iequals(scheme, "https") ? 443 : iequals(scheme, "http") ? 80 : 0;
  if (!port.empty() && port_num != default_port) {
    out.text.push_back(':');
    out.text += std::to_string(port_num);
  }
  out.ok = true;
  return out;
}

struct Origin {
  bool ok = false;
  std::string scheme;     // lower-case
  Authority authority;
};

// Parses scheme://host[:port] with an optional trailing slash (some configs
// write origins as URLs).
Origin parse_origin(std::string_view s) {
  Origin o;
  size_t sep = s.find("://");
  if (sep == std::string_view::npos || sep == 0) return o;
  std::string_view scheme = s.substr(0, sep);
  for (char c : scheme) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    bool other = (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    if (!alpha && !other) return o;
  }
  std::string_view rest = s.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  o.authority = normalise_authority(rest, scheme);
  if (!o.authority.ok) return o;
  for (char c : scheme) o.scheme.push_back(lower(c));
  o.ok = true;
  return o;
}

std::string select_subprotocol(std::string_view offered_by_client,
                               const std::vector<std::string>& server_order) {
  for (const std::string& candidate : server_order) {
    if (candidate.empty()) continue;
    // Subprotocol names are tokens compared case-sensitively (RFC 6455 §4.1).
    bool listed = any_list_element(offered_by_client,
                                   [&](std::string_view t) { return t == candidate; });
    if (listed) return candidate;
  }
  return {};
}

HandshakeResult reject(int status, const char* why) {
  HandshakeResult r;
  r.status = status;
  r.error = why;
  return r;
}

}  // namespace

std::string_view first_list_element_with_prefix(std::string_view list, std::string_view prefix) {
  std::string_view found;
  any_list_element(list, [&](std::string_view item) {
    if (item.size() <= prefix.size() || item.substr(0, prefix.size()) != prefix) return false;
    found = item;
    return true;
  });
  return found;
}

bool header_has_token(std::string_view list, std::string_view token) {
  if (token.empty()) return false;
  return any_list_element(list, [&](std::string_view t) { return iequals(t, token); });
}

bool is_valid_websocket_key(std::string_view key) {
  if (key.size() != kKeyChars) return false;
  // EVP_DecodeBlock reads '=' as zero bits anywhere and returns whole 3-byte
  // groups, so padding is counted here and only allowed at the end.
  size_t padding = 0;
  while (padding < 2 && key[kKeyChars - 1 - padding] == '=') ++padding;
  for (size_t i = 0; i < kKeyChars - padding; ++i)
    if (!is_base64_char(key[i])) return false;
  unsigned char decoded[kKeyChars / 4 * 3];
  int n = EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(key.data()),
                          static_cast<int>(key.size()));
  return n >= 0 && static_cast<size_t>(n) - padding == kKeyBytes;
}

std::string compute_accept_key(std::string_view key) {
  std::string input;
  input.reserve(key.size() + kAcceptGuid.size());
  input.append(key);
  input.append(kAcceptGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(b64), n > 0 ? static_cast<size_t>(n) : 0);
}

bool origin_allowed(std::string_view origin, std::string_view host, bool is_https,
                    const std::vector<std::string>& allowed) {
  for (const std::string& a : allowed)
    if (a == "*") return true;
  // Sandboxed frames, file:// pages and redirects across origins send
  // "null"; it names no site, so only "*" admits it.
  if (iequals(origin, "null")) return false;
  Origin o = parse_origin(origin);
  if (!o.ok) return false;
  if (allowed.empty()) {
    Authority h = normalise_authority(host, is_https ? "https" : "http");
    return h.ok && h.text == o.authority.text;
  }
  for (const std::string& a : allowed) {
    Origin listed = parse_origin(a);
    if (listed.ok && listed.scheme == o.scheme && listed.authority.text == o.authority.text)
      return true;
  }
  return false;
}

HandshakeResult validate_handshake(const HandshakeRequest& req, const HandshakePolicy& policy) {
  if (req.method != "GET") {
    HandshakeResult r = reject(405, "method not allowed: WebSocket upgrade needs GET");
    r.send_allow_get = true;
    return r;
  }
  if (req.http_major < 1 || (req.http_major == 1 && req.http_minor < 1))
    return reject(400, "HTTP/1.1 or later required");
  if (trim_ows(req.upgrade).empty() && !header_has_token(req.connection, "upgrade")) {
    HandshakeResult r = reject(
        426, "this is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)");
    r.send_upgrade_header = true;
    r.send_version_header = true;
    return r;
  }
  if (!header_has_token(req.upgrade, "websocket"))
    return reject(400, "upgrade header does not name websocket");
  if (!header_has_token(req.connection, "upgrade"))
    return reject(400, "connection header lacks the upgrade token");
  if (!req.has_host || trim_ows(req.host).empty()) return reject(400, "missing host header");
  if (!req.has_version || req.version != "13") {
    HandshakeResult r = reject(426, "unsupported sec-websocket-version (need 13)");
    // RFC 9110 §15.5.22: a 426 must say what to upgrade to.
    r.send_upgrade_header = true;
    r.send_version_header = true;
    return r;
  }
  if (!req.has_key) return reject(400, "missing sec-websocket-key");
  if (!is_valid_websocket_key(req.key)) return reject(400, "invalid sec-websocket-key");
  if (req.has_origin && !origin_allowed(req.origin, req.host, req.is_https, policy.allowed_origins))
    return reject(403, "origin not allowed");

  HandshakeResult r;
  r.status = 101;
  r.accept = compute_accept_key(req.key);
  r.subprotocol = select_subprotocol(req.protocols, policy.subprotocols);
  if (policy.permessage_deflate) {
    DeflateAgreement d = negotiate_deflate(req.extensions);
    r.deflate = d.accepted;
    r.extensions = std::move(d.response);
  }
  return r;
}

}  // namespace wsb
