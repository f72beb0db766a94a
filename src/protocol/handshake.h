// Opening handshake validation (RFC 6455 §4.2), independent of Apache: the
// glue copies the request's method, version and headers into a
// HandshakeRequest and turns the HandshakeResult into the response.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace wsb {

struct HandshakeRequest {
  std::string_view method;          // "GET"
  int http_major = 1, http_minor = 1;
  // Header values, empty when absent (has_* tells absent from empty).
  std::string_view host;
  std::string_view upgrade;
  std::string_view connection;
  std::string_view key;             // Sec-WebSocket-Key
  std::string_view version;         // Sec-WebSocket-Version
  std::string_view origin;          // Origin
  std::string_view protocols;       // Sec-WebSocket-Protocol (comma list)
  std::string_view extensions;      // Sec-WebSocket-Extensions (all of them, joined)
  bool has_host = false, has_origin = false, has_key = false, has_version = false;
  bool is_https = false;            // scheme of this server, for same-origin checks
};

struct HandshakePolicy {
  // Empty: same host only (Origin's host[:port] must equal Host). "*" allows
  // every origin. Otherwise exact, case-insensitive match of scheme://host[:port].
  std::vector<std::string> allowed_origins;
  // Offered subprotocols in server preference order; the first one the client
  // also lists is selected. Empty: none is selected.
  std::vector<std::string> subprotocols;
  // Accept a permessage-deflate offer (WSBridgeDeflate).
  bool permessage_deflate = false;
};

struct HandshakeResult {
  int status = 0;                   // 101 on success, else the HTTP error status
  std::string error;                // short explanation for the error log/body
  std::string accept;               // Sec-WebSocket-Accept (status 101)
  std::string subprotocol;          // chosen, may be empty
  std::string extensions;           // Sec-WebSocket-Extensions to answer, may be empty
  bool deflate = false;             // permessage-deflate agreed
  bool send_version_header = false; // 426: add "Sec-WebSocket-Version: 13"
  bool send_upgrade_header = false; // 426 on a plain GET: add "Upgrade: websocket"
  bool send_allow_get = false;      // 405: add "Allow: GET"
};

HandshakeResult validate_handshake(const HandshakeRequest& req, const HandshakePolicy& policy);

// Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)).
std::string compute_accept_key(std::string_view key);

// True when key is base64 that decodes to exactly 16 bytes.
bool is_valid_websocket_key(std::string_view key);

// True when the comma-separated header list contains token
// (case-insensitive, optional whitespace around elements).
bool header_has_token(std::string_view list, std::string_view token);

// The first element of a comma-separated header list that starts with
// prefix (trimmed like header_has_token; case-sensitive), or "" if none.
std::string_view first_list_element_with_prefix(std::string_view list, std::string_view prefix);

// Checks an Origin value against the policy; host is the request's Host.
bool origin_allowed(std::string_view origin, std::string_view host, bool is_https,
                    const std::vector<std::string>& allowed);

}  // namespace wsb
