#include "chat/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "chat/chat_names.h"

namespace wsb {
namespace {

constexpr size_t kSignatureHexLength = 64;  // SHA-256 = 32 bytes
// Up to 18 digits cannot overflow int64 and reach far beyond any real date.
constexpr size_t kMaxExpiryDigits = 18;

// Lowercase hex HMAC-SHA256 of data; "" if OpenSSL fails.
std::string hmac_hex(std::string_view secret, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
           &mac_len) == nullptr)
    return {};
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(mac_len * 2);
  for (unsigned int i = 0; i < mac_len; ++i) {
    hex.push_back(kHex[mac[i] >> 4]);
    hex.push_back(kHex[mac[i] & 0x0F]);
  }
  return hex;
}

bool parse_expiry(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > kMaxExpiryDigits) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

const char* token_status_name(TokenStatus status) {
  switch (status) {
    case TokenStatus::Ok: return "ok";
    case TokenStatus::Malformed: return "malformed";
    case TokenStatus::BadSignature: return "bad signature";
    case TokenStatus::Expired: return "expired";
  }
  return "?";
}

std::string make_token(std::string_view secret, std::string_view uid, int64_t expiry) {
  if (!is_valid_user_name(uid) || expiry < 0) return {};
  std::string signed_part(uid);
  signed_part += '|';
  signed_part += std::to_string(expiry);
  const std::string mac = hmac_hex(secret, signed_part);
  if (mac.empty()) return {};
  return signed_part + '|' + mac;
}

TokenStatus verify_token(std::string_view secret, std::string_view token, int64_t now_sec,
                         std::string* uid) {
  const size_t bar1 = token.find('|');
  if (bar1 == std::string_view::npos) return TokenStatus::Malformed;
  const size_t bar2 = token.find('|', bar1 + 1);
  if (bar2 == std::string_view::npos) return TokenStatus::Malformed;
  const std::string_view name = token.substr(0, bar1);
  const std::string_view expiry_text = token.substr(bar1 + 1, bar2 - bar1 - 1);
  const std::string_view signature = token.substr(bar2 + 1);
  int64_t expiry = 0;
  // A third '|' lands in the signature and fails the hex check.
  if (!is_valid_user_name(name) || !parse_expiry(expiry_text, &expiry) ||
      signature.size() != kSignatureHexLength || !is_lower_hex(signature))
    return TokenStatus::Malformed;
  if (secret.empty()) return TokenStatus::BadSignature;
  const std::string expected = hmac_hex(secret, token.substr(0, bar2));
  // Constant time: the comparison must not tell how many leading
  // characters of a forged signature were right.
  if (expected.size() != kSignatureHexLength ||
      CRYPTO_memcmp(expected.data(), signature.data(), kSignatureHexLength) != 0)
    return TokenStatus::BadSignature;
  if (now_sec >= expiry) return TokenStatus::Expired;
  uid->assign(name);
  return TokenStatus::Ok;
}

}  // namespace wsb
