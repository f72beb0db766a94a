#include "pusher/pusher_api_auth.h"

#include <algorithm>
#include <utility>

#include "pusher/pusher_auth.h"

namespace wsb {
namespace {

// Up to 18 digits cannot overflow int64 and reach far beyond any real date.
constexpr size_t kMaxTimestampDigits = 18;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string ascii_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

bool parse_timestamp(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > kMaxTimestampDigits) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

ApiAuthResult fail(int status, std::string error) {
  return ApiAuthResult{status, std::move(error)};
}

}  // namespace

bool percent_decode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

bool parse_query_string(std::string_view raw, std::vector<QueryParam>* out) {
  out->clear();
  while (!raw.empty()) {
    const size_t amp = raw.find('&');
    const std::string_view piece = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (piece.empty()) continue;
    const size_t eq = piece.find('=');
    QueryParam p;
    if (!percent_decode(piece.substr(0, eq), true, &p.key)) return false;
    if (eq != std::string_view::npos && !percent_decode(piece.substr(eq + 1), true, &p.value))
      return false;
    out->push_back(std::move(p));
  }
  return true;
}

const std::string* find_param(const std::vector<QueryParam>& params, std::string_view key) {
  for (const QueryParam& p : params) {
    if (ascii_lower(p.key) == key) return &p.value;
  }
  return nullptr;
}

std::string api_string_to_sign(std::string_view method, std::string_view path,
                               const std::vector<QueryParam>& params) {
  std::vector<std::pair<std::string, std::string_view>> pairs;
  pairs.reserve(params.size());
  for (const QueryParam& p : params) {
    std::string key = ascii_lower(p.key);
    if (key == "auth_signature") continue;
    pairs.emplace_back(std::move(key), p.value);
  }
  std::sort(pairs.begin(), pairs.end());
  std::string s = ascii_upper(method);
  s.append("\n").append(path).append("\n");
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i > 0) s.push_back('&');
    s.append(pairs[i].first).append("=").append(pairs[i].second);
  }
  return s;
}

std::string sign_api_request(std::string_view secret, std::string_view method,
                             std::string_view path, const std::vector<QueryParam>& params) {
  return hmac_sha256_hex(secret, api_string_to_sign(method, path, params));
}

ApiAuthResult verify_api_request(std::string_view key, std::string_view secret,
                                 std::string_view method, std::string_view path,
                                 const std::vector<QueryParam>& params, std::string_view body,
                                 int64_t now_unix, int64_t window_seconds) {
  // A key sent twice would make the signed string ambiguous: which value
  // did the client sign? Refuse rather than guess.
  std::vector<std::string> keys;
  keys.reserve(params.size());
  for (const QueryParam& p : params) keys.push_back(ascii_lower(p.key));
  std::sort(keys.begin(), keys.end());
  const auto dup = std::adjacent_find(keys.begin(), keys.end());
  if (dup != keys.end()) return fail(400, "Duplicate query parameter: " + *dup);

  const std::string* auth_key = find_param(params, "auth_key");
  if (auth_key == nullptr) return fail(401, "Missing auth_key");
  if (*auth_key != key) return fail(401, "Unknown auth_key");
  const std::string* signature = find_param(params, "auth_signature");
  if (signature == nullptr) return fail(401, "Missing auth_signature");
  const std::string* version = find_param(params, "auth_version");
  if (version == nullptr || *version != "1.0")
    return fail(401, "Missing or unsupported auth_version (expected 1.0)");
  const std::string* timestamp = find_param(params, "auth_timestamp");
  int64_t ts = 0;
  if (timestamp == nullptr || !parse_timestamp(*timestamp, &ts))
    return fail(401, "Missing or invalid auth_timestamp");
  if (ts > now_unix + window_seconds || ts < now_unix - window_seconds) {
    return fail(401, "Timestamp expired: " + *timestamp + " is not within " +
                         std::to_string(window_seconds) + " s of the server time " +
                         std::to_string(now_unix));
  }
  const std::string* body_md5 = find_param(params, "body_md5");
  if (!body.empty() && body_md5 == nullptr) return fail(401, "Missing body_md5");
  if (body_md5 != nullptr && ascii_lower(*body_md5) != md5_hex(body))
    return fail(401, "body_md5 does not match the request body");

  const std::string expected = sign_api_request(secret, method, path, params);
  if (expected.empty() || !constant_time_equal(ascii_lower(*signature), expected))
    return fail(401, "Invalid signature");
  return ApiAuthResult{};
}

}  // namespace wsb
