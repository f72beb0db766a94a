// Base64 (RFC 4648 §4) for GRIP's content-bin fields and base64url without
// padding (§5) for JWTs. Decoders are strict: only the alphabet, padding
// only at the end and only as much as the length needs, so a value either
// means exactly one byte string or is refused.
#pragma once
#include <string>
#include <string_view>

namespace wsb {

std::string base64_encode(std::string_view data);
// Standard alphabet; the '=' padding may be present or left out (PHP's
// base64_encode writes it, hand-made values often do not).
bool base64_decode(std::string_view text, std::string* out);

std::string base64url_encode(std::string_view data);             // no padding
bool base64url_decode(std::string_view text, std::string* out);  // no padding allowed

}  // namespace wsb
