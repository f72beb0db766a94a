#include "pusher/pusher_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <chrono>

namespace wsb {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::string_view kUserSeparator = "::user::";

std::string to_hex(const unsigned char* bytes, size_t len) {
  std::string hex;
  hex.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    hex.push_back(kHex[bytes[i] >> 4]);
    hex.push_back(kHex[bytes[i] & 0x0F]);
  }
  return hex;
}

// The client's hex digits, lowercased; "" if anything but hex shows up, so
// a malformed signature never reaches the comparison as a near miss.
std::string lower_hex(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return {};
    out.push_back(c);
  }
  return out;
}

// auth = "<key>:<hex>" against the expected digest of string_to_sign.
AuthCheck check_key_and_signature(std::string_view key, std::string_view secret,
                                  std::string_view string_to_sign, std::string_view auth) {
  const size_t colon = auth.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == auth.size())
    return AuthCheck::Malformed;
  // The key is public (it is in every client's connection URL), so a plain
  // comparison leaks nothing.
  if (auth.substr(0, colon) != key) return AuthCheck::WrongKey;
  const std::string given = lower_hex(auth.substr(colon + 1));
  if (given.empty()) return AuthCheck::Malformed;
  const std::string expected = hmac_sha256_hex(secret, string_to_sign);
  if (expected.empty() || !constant_time_equal(given, expected)) return AuthCheck::BadSignature;
  return AuthCheck::Ok;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view secret, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
           &len) == nullptr)
    return {};
  return to_hex(mac, len);
}

std::string md5_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1) return {};
  return to_hex(digest, len);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

const char* auth_check_name(AuthCheck check) {
  switch (check) {
    case AuthCheck::Ok: return "ok";
    case AuthCheck::Malformed: return "malformed";
    case AuthCheck::WrongKey: return "wrong key";
    case AuthCheck::BadSignature: return "bad signature";
  }
  return "?";
}

std::string channel_string_to_sign(std::string_view socket_id, std::string_view channel,
                                   std::string_view channel_data) {
  std::string s;
  s.reserve(socket_id.size() + channel.size() + channel_data.size() + 2);
  s.append(socket_id).append(":").append(channel);
  if (!channel_data.empty()) s.append(":").append(channel_data);
  return s;
}

std::string sign_channel(std::string_view key, std::string_view secret,
                         std::string_view socket_id, std::string_view channel,
                         std::string_view channel_data) {
  const std::string mac =
      hmac_sha256_hex(secret, channel_string_to_sign(socket_id, channel, channel_data));
  if (mac.empty()) return {};
  return std::string(key) + ":" + mac;
}

AuthCheck check_channel_auth(std::string_view key, std::string_view secret,
                             std::string_view socket_id, std::string_view channel,
                             std::string_view channel_data, std::string_view auth) {
  return check_key_and_signature(key, secret,
                                 channel_string_to_sign(socket_id, channel, channel_data), auth);
}

bool verify_channel_auth(std::string_view key, std::string_view secret,
                         std::string_view socket_id, std::string_view channel,
                         std::string_view channel_data, std::string_view auth) {
  return check_channel_auth(key, secret, socket_id, channel, channel_data, auth) == AuthCheck::Ok;
}

std::string user_string_to_sign(std::string_view socket_id, std::string_view user_data) {
  std::string s;
  s.reserve(socket_id.size() + kUserSeparator.size() + user_data.size());
  s.append(socket_id).append(kUserSeparator).append(user_data);
  return s;
}

std::string sign_user(std::string_view key, std::string_view secret, std::string_view socket_id,
                      std::string_view user_data) {
  const std::string mac = hmac_sha256_hex(secret, user_string_to_sign(socket_id, user_data));
  if (mac.empty()) return {};
  return std::string(key) + ":" + mac;
}

AuthCheck check_user_auth(std::string_view key, std::string_view secret,
                          std::string_view socket_id, std::string_view user_data,
                          std::string_view auth) {
  return check_key_and_signature(key, secret, user_string_to_sign(socket_id, user_data), auth);
}

bool verify_user_auth(std::string_view key, std::string_view secret, std::string_view socket_id,
                      std::string_view user_data, std::string_view auth) {
  return check_user_auth(key, secret, socket_id, user_data, auth) == AuthCheck::Ok;
}

std::string webhook_signature(std::string_view secret, std::string_view body) {
  return hmac_sha256_hex(secret, body);
}

bool verify_webhook(std::string_view key, std::string_view secret, std::string_view header_key,
                    std::string_view header_signature, std::string_view body) {
  if (header_key != key) return false;
  const std::string given = lower_hex(header_signature);
  const std::string expected = webhook_signature(secret, body);
  return !given.empty() && !expected.empty() && constant_time_equal(given, expected);
}

bool is_valid_socket_id(std::string_view id) {
  if (id.size() > kMaxSocketIdLength) return false;
  const size_t dot = id.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == id.size()) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i != dot && (id[i] < '0' || id[i] > '9')) return false;
  }
  return true;
}

std::string SocketIdGenerator::next() {
  return prefix_ + std::to_string(counter_.fetch_add(1, std::memory_order_relaxed) + 1);
}

uint64_t SocketIdGenerator::process_prefix() {
  constexpr uint64_t kRandomRange = 1000000000ULL;
  uint64_t random = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&random), sizeof random) != 1) {
    // No CSPRNG (should not happen): the clock still separates restarts.
    random = static_cast<uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return static_cast<uint64_t>(getpid()) * kRandomRange + random % kRandomRange;
}

}  // namespace wsb
