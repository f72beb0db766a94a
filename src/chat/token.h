// Access tokens for WSBridgeSecret: a backend (typically PHP) that shares
// the secret vouches for a user name until an expiry time.
//
//   token = uid "|" expiry "|" hex(HMAC-SHA256(secret, uid "|" expiry))
//
// uid follows the user name rules (so it has no '|'), expiry is unix
// seconds in decimal, the signature is 64 lowercase hex digits. PHP:
//   $t = "$uid|" . (time() + 3600);
//   $token = $t . '|' . hash_hmac('sha256', $t, $secret);
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace wsb {

enum class TokenStatus { Ok, Malformed, BadSignature, Expired };

const char* token_status_name(TokenStatus status);

// For tests and tools; returns "" if uid is not a valid user name.
std::string make_token(std::string_view secret, std::string_view uid, int64_t expiry);

// Ok and *uid set when the token is well-formed, signed with secret and
// now_sec < expiry. The signature is checked before the expiry so an
// attacker cannot probe expiry handling with forged tokens. An empty secret
// verifies nothing (BadSignature): tokens are then disabled.
TokenStatus verify_token(std::string_view secret, std::string_view token, int64_t now_sec,
                         std::string* uid);

}  // namespace wsb
