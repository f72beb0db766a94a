// Grip-Sig: the HS256 JWT Pushpin puts on every request to a backend, so the
// backend can tell the request came through the proxy (a client's own
// Grip-Sig is stripped). Claims: {"exp": unix seconds, "iss": issuer}.
// make_grip_sig writes the same bytes Pushpin 1.36 writes for the same key,
// issuer and expiry (header {"typ":"JWT","alg":"HS256"}, claims in that
// order), so a backend's validation library sees nothing new.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace wsb {

// "" when key is empty (no signing configured) or OpenSSL fails.
std::string make_grip_sig(std::string_view key, std::string_view iss, int64_t exp_unix);

// True when token is a three-part JWS with alg HS256, signed with key, and
// an integer "exp" claim later than now_unix; *iss gets the "iss" claim (""
// if absent). An empty key verifies nothing.
bool verify_grip_sig(std::string_view key, std::string_view token, int64_t now_unix,
                     std::string* iss);

// The key as configured, Pushpin style: "base64:<standard base64>" is a
// binary key, anything else is used as is. False on bad base64.
bool parse_sig_key(std::string_view configured, std::string* key);

}  // namespace wsb
