// Channel names, as subscribed by a backend's c:subscribe and published to by
// GRIP items: 1 to 256 bytes of UTF-8 (JSON already guarantees that) without
// control characters. Pushpin takes any string, even an empty one; a bound
// keeps subscription tables and bus records small, and no control bytes
// keeps names safe to log.
#pragma once
#include <cstddef>
#include <string_view>

namespace wsb {

constexpr size_t kMaxChannelLength = 256;

inline bool is_valid_channel(std::string_view name) {
  if (name.empty() || name.size() > kMaxChannelLength) return false;
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

}  // namespace wsb
