// Pusher signatures, made and checked exactly as the official server
// libraries make them (pusher-http-node lib/auth.js and lib/token.js,
// pusher-http-php Pusher::authorizeChannel/authenticateUser, the docs'
// "Authentication and authorization signatures" page):
//
//   channel auth  = key ":" hex(HMAC-SHA256(secret, socket_id ":" channel [":" channel_data]))
//   user auth     = key ":" hex(HMAC-SHA256(secret, socket_id "::user::" user_data))
//   webhook       = X-Pusher-Key: key, X-Pusher-Signature: hex(HMAC-SHA256(secret, body))
//
// channel_data and user_data are signed as the exact strings the client
// sends (the app server's JSON encoding), never re-encoded here. The HTTP
// API's request signature is in pusher_api_auth.h.
//
// Every comparison of a signature is constant-time (CRYPTO_memcmp); hex
// digits are accepted in either case (the libraries send lowercase).
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsb {

// Lowercase hex of HMAC-SHA256 / MD5; "" only if OpenSSL fails.
std::string hmac_sha256_hex(std::string_view secret, std::string_view data);
std::string md5_hex(std::string_view data);

// Constant-time for equal lengths (lengths are not secret: every digest is
// 64 hex digits).
bool constant_time_equal(std::string_view a, std::string_view b);

enum class AuthCheck { Ok, Malformed, WrongKey, BadSignature };
const char* auth_check_name(AuthCheck check);

// The string the channel signature covers; channel_data "" = none (the
// libraries leave it out when there is no data, also for private channels).
std::string channel_string_to_sign(std::string_view socket_id, std::string_view channel,
                                   std::string_view channel_data);
std::string sign_channel(std::string_view key, std::string_view secret,
                         std::string_view socket_id, std::string_view channel,
                         std::string_view channel_data);
AuthCheck check_channel_auth(std::string_view key, std::string_view secret,
                             std::string_view socket_id, std::string_view channel,
                             std::string_view channel_data, std::string_view auth);
bool verify_channel_auth(std::string_view key, std::string_view secret,
                         std::string_view socket_id, std::string_view channel,
                         std::string_view channel_data, std::string_view auth);

// pusher:signin.
std::string user_string_to_sign(std::string_view socket_id, std::string_view user_data);
std::string sign_user(std::string_view key, std::string_view secret, std::string_view socket_id,
                      std::string_view user_data);
AuthCheck check_user_auth(std::string_view key, std::string_view secret,
                          std::string_view socket_id, std::string_view user_data,
                          std::string_view auth);
bool verify_user_auth(std::string_view key, std::string_view secret, std::string_view socket_id,
                      std::string_view user_data, std::string_view auth);

// Webhooks we send: the X-Pusher-Signature value. verify_webhook is the
// receiving side (for tests and for apps that forward webhooks back).
std::string webhook_signature(std::string_view secret, std::string_view body);
bool verify_webhook(std::string_view key, std::string_view secret, std::string_view header_key,
                    std::string_view header_signature, std::string_view body);

// Socket ids: "<digits>.<digits>", the format every library checks
// (/^\d+\.\d+$/), at most 64 bytes here so a forged one cannot be huge.
constexpr size_t kMaxSocketIdLength = 64;
bool is_valid_socket_id(std::string_view id);

// Makes the socket ids of one process: "<prefix>.<counter>". The prefix must
// be unique among the live processes of the server and should not repeat
// over time, because a channel auth is bound to a socket id forever: an id
// handed out twice would let an auth captured for the first connection be
// replayed on the second. process_prefix() gives pid * 10^9 + a random
// number below 10^9 (pids are unique among live processes; the random part
// makes a repeat after a restart a 1-in-10^9 event), at most 16 digits.
// Create the generator in each child after fork, never in the parent.
// Thread-safe.
class SocketIdGenerator {
 public:
  explicit SocketIdGenerator(uint64_t prefix) : prefix_(std::to_string(prefix) + ".") {}
  std::string next();
  static uint64_t process_prefix();

 private:
  std::string prefix_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace wsb
