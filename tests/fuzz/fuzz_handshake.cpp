// libFuzzer target for the opening handshake.
// Input layout: [flags] then '\n'-separated fields: method, host, upgrade,
// connection, key, version, origin, protocols, allowed origins (' '-split),
// server subprotocols (' '-split). flags set the has_* bits, https and the
// HTTP version. Checked: every 101 really satisfies RFC 6455 §4.2.1, errors
// carry a message, and the helpers keep their documented properties.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/deflate.h"
#include "protocol/handshake.h"

#include "fuzz_support.h"

using namespace wsb;

namespace {

std::vector<std::string_view> split(std::string_view s, char sep, size_t max_parts) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_parts) {
    size_t at = s.find(sep);
    if (at == std::string_view::npos) break;
    out.push_back(s.substr(0, at));
    s.remove_prefix(at + 1);
  }
  out.push_back(s);
  return out;
}

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return u;
}

bool case_sensitive_member(std::string_view list, std::string_view token) {
  for (std::string_view t : split(list, ',', SIZE_MAX)) {
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (t == token) return true;
  }
  return false;
}

void check_key(std::string_view key) {
  if (!is_valid_websocket_key(key)) return;
  REQUIRE(key.size() == 24 && key.substr(22) == "==");
  for (char c : key.substr(0, 22))
    REQUIRE((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '+' || c == '/');
}

void check_tokens(std::string_view list, std::string_view token) {
  bool has = header_has_token(list, token);
  REQUIRE(header_has_token(upper(list), upper(token)) == has);
  if (has) REQUIRE(header_has_token(std::string(list) + ", other", token));
  bool plain = !token.empty() && token.find(',') == std::string_view::npos &&
               token.front() != ' ' && token.front() != '\t' && token.back() != ' ' &&
               token.back() != '\t';
  if (plain) REQUIRE(header_has_token(std::string(list) + "," + std::string(token), token));
  if (token.empty()) REQUIRE(!has);
}

void check_origin(std::string_view origin, std::string_view host, bool https,
                  const std::vector<std::string>& allowed) {
  bool ok = origin_allowed(origin, host, https, allowed);
  REQUIRE(origin_allowed(origin, host, https, {"x", "*"}));
  bool same = origin_allowed(origin, host, https, {});
  REQUIRE(origin_allowed(upper(origin), upper(host), https, {}) == same);
  if (same) {
    REQUIRE(origin != "null");
    REQUIRE(origin_allowed(origin, "unrelated", https, {std::string(origin)}));
  }
  bool star = false;
  for (const auto& a : allowed) star = star || a == "*";
  if (star) REQUIRE(ok);
  if (!allowed.empty() && !star) {
    std::vector<std::string> up;
    for (const auto& a : allowed) up.push_back(upper(a));
    REQUIRE(origin_allowed(upper(origin), host, https, up) == ok);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string_view> f = split(rest, '\n', 10);
  f.resize(10);

  HandshakeRequest req;
  req.method = f[0];
  req.host = f[1];
  req.upgrade = f[2];
  req.connection = f[3];
  req.key = f[4];
  req.version = f[5];
  req.origin = f[6];
  req.protocols = f[7];
  req.has_host = flags & 0x01;
  req.has_key = flags & 0x02;
  req.has_version = flags & 0x04;
  req.has_origin = flags & 0x08;
  req.is_https = flags & 0x10;
  req.http_major = (flags >> 5) & 1 ? 1 : (flags >> 6) & 1 ? 2 : 0;
  req.http_minor = (flags >> 7) & 1;
  HandshakePolicy policy;
  if (!f[8].empty())
    for (std::string_view a : split(f[8], ' ', 16)) policy.allowed_origins.emplace_back(a);
  if (!f[9].empty())
    for (std::string_view p : split(f[9], ' ', 16)) policy.subprotocols.emplace_back(p);

  HandshakeResult res = validate_handshake(req, policy);
  switch (res.status) {
    case 101:
      REQUIRE(req.method == "GET");
      REQUIRE(req.http_major > 1 || (req.http_major == 1 && req.http_minor >= 1));
      REQUIRE(header_has_token(req.upgrade, "websocket"));
      REQUIRE(header_has_token(req.connection, "upgrade"));
      REQUIRE(req.has_host && !req.host.empty());
      REQUIRE(req.has_version && req.version == "13");
      REQUIRE(req.has_key && is_valid_websocket_key(req.key));
      REQUIRE(!req.has_origin ||
              origin_allowed(req.origin, req.host, req.is_https, policy.allowed_origins));
      REQUIRE(res.accept == compute_accept_key(req.key) && res.accept.size() == 28);
      REQUIRE(res.error.empty());
      if (!res.subprotocol.empty()) {
        bool offered = false;
        for (const auto& s : policy.subprotocols) offered = offered || s == res.subprotocol;
        REQUIRE(offered && case_sensitive_member(req.protocols, res.subprotocol));
      }
      break;
    case 400:
    case 403:
    case 405:
    case 426:
      REQUIRE(!res.error.empty() && res.accept.empty() && res.subprotocol.empty());
      break;
    default:
      abort();
  }
  REQUIRE(res.send_allow_get == (res.status == 405));
  REQUIRE((req.method != "GET") == (res.status == 405));
  if (res.send_upgrade_header) REQUIRE(res.status == 426 && res.send_version_header);
  if (res.send_version_header) REQUIRE(res.status == 426);

  check_key(req.key);
  check_tokens(req.connection, req.upgrade);
  check_tokens(req.protocols, req.method);
  check_origin(req.origin, req.host, req.is_https, policy.allowed_origins);

  // The Sec-WebSocket-Protocol field doubles as an extensions offer: the
  // answer is always one well-formed permessage-deflate value, never a copy
  // of client bytes (it goes into a response header).
  const DeflateAgreement d = negotiate_deflate(req.protocols);
  if (d.accepted) {
    REQUIRE(d.response.rfind("permessage-deflate; server_no_context_takeover; client_no_context_takeover", 0) == 0);
    for (char c : d.response) REQUIRE(c >= 0x20 && c < 0x7f);
  } else {
    REQUIRE(d.response.empty());
  }
  return 0;
}
