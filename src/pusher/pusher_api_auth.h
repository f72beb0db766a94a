// The HTTP API's request signature ("HTTP API reference", Authentication):
//
//   auth_signature = hex(HMAC-SHA256(secret, METHOD "\n" path "\n" query))
//
// where query is every query parameter except auth_signature, keys
// lowercased, sorted by key, joined as key=value with '&', not URL-escaped
// (the decoded values). Required parameters: auth_key (the app key),
// auth_timestamp (Unix seconds, accepted within 600 s of now either way),
// auth_version ("1.0"), and body_md5 (hex MD5 of the body) whenever the body
// is not empty. This matches pusher-http-node createSignedQueryString and
// pusher-http-php build_auth_query_params byte for byte.
//
// Every failure is 401 with a one-line reason, as the reference says
// ("401: Authentication error: response body will contain an explanation");
// a query string that cannot be decoded is 400.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wsb {

struct QueryParam {
  std::string key;    // as sent, percent-decoded
  std::string value;  // percent-decoded, '+' = space
};

// Splits a raw query string ("a=1&b=x%20y", no leading '?'). Empty pieces
// ("a=1&&b=2") are skipped; a piece without '=' is a key with an empty
// value. False on a bad %-escape.
bool parse_query_string(std::string_view raw, std::vector<QueryParam>* out);
// Percent-decoding of one path segment or query piece ('+' kept as is
// unless plus_is_space). False on a bad escape.
bool percent_decode(std::string_view in, bool plus_is_space, std::string* out);

// The value of the parameter whose lowercased key is key, or nullptr.
const std::string* find_param(const std::vector<QueryParam>& params, std::string_view key);

// The signed string (without the signature) for these parameters:
// auth_signature is left out, keys are lowercased and sorted. Exposed for
// tests and for signing our own requests.
std::string api_string_to_sign(std::string_view method, std::string_view path,
                               const std::vector<QueryParam>& params);
std::string sign_api_request(std::string_view secret, std::string_view method,
                             std::string_view path, const std::vector<QueryParam>& params);

struct ApiAuthResult {
  int status = 200;   // 200 = authenticated; else 400 or 401
  std::string error;  // why not, for the JSON error body and the log
  bool ok() const { return status == 200; }
};

constexpr int64_t kApiTimestampWindowSeconds = 600;

// method as received (compared upper-cased), path exactly as received (not
// percent-decoded: the libraries sign the path they send), params from
// parse_query_string, body the raw request body ("" for none).
ApiAuthResult verify_api_request(std::string_view key, std::string_view secret,
                                 std::string_view method, std::string_view path,
                                 const std::vector<QueryParam>& params, std::string_view body,
                                 int64_t now_unix,
                                 int64_t window_seconds = kApiTimestampWindowSeconds);

}  // namespace wsb
