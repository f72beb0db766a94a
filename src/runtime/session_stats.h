// Process-wide counters, updated lock-free by every session; read by the
// status handler.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>

namespace wsb {

struct SessionStats {
  std::atomic<int64_t> open{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> accepted_h2{0};  // of those, on an HTTP/2 stream (RFC 8441)
  std::atomic<uint64_t> messages_in{0}, messages_out{0};
  std::atomic<uint64_t> bytes_in{0}, bytes_out{0};
  std::atomic<uint64_t> queue_overflows{0};
  std::atomic<uint64_t> pings_sent{0};
  // Messages the hub wrote to sockets itself (WSBridgeHubWrites), and hub
  // writes the socket did not take whole, left to the connection's thread.
  std::atomic<uint64_t> hub_writes{0}, hub_handbacks{0};
  // Client commands refused by the app's rate limit (chat: WSBridgeRateLimit;
  // Pusher: client events).
  std::atomic<uint64_t> rate_limited{0};
  // closes by code: index = code - 1000 for 1000..1015, [16] = 3000-4999, [17] = other
  std::array<std::atomic<uint64_t>, 18> closes{};

  void count_close(uint16_t code) {
    size_t i = (code >= 1000 && code <= 1015) ? code - 1000u : (code >= 3000 && code <= 4999) ? 16u : 17u;
    closes[i].fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace wsb
