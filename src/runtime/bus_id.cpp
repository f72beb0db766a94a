// Bus identity helpers (see bus_id.h).
#include "runtime/bus_id.h"

#include <sys/random.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace wsb {

namespace {

// splitmix64's finaliser: spreads clock and pid bits over the whole word.
uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool parse(std::string_view text, uint64_t* out) {
  if (text.size() != kBusIdLength) return false;
  uint64_t v = 0;
  for (char c : text) {
    const int d = hex_value(c);
    if (d < 0) return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

}  // namespace

uint64_t random_bus_id() {
  uint64_t id = 0;
  if (::getrandom(&id, sizeof id, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof id)) {
    const auto now = std::chrono::system_clock::now().time_since_epoch().count();
    const auto mono = std::chrono::steady_clock::now().time_since_epoch().count();
    id = mix(static_cast<uint64_t>(now) ^ mix(static_cast<uint64_t>(mono)) ^
             (static_cast<uint64_t>(::getpid()) << 40));
  }
  return id != 0 ? id : 1;
}

std::string format_bus_id(uint64_t id) {
  char buf[kBusIdLength + 1];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return std::string(buf, kBusIdLength);
}

bool is_valid_bus_id(std::string_view text) {
  uint64_t v = 0;
  return parse(text, &v);
}

bool same_bus_id(std::string_view a, std::string_view b) {
  uint64_t x = 0, y = 0;
  return parse(a, &x) && parse(b, &y) && x == y;
}

}  // namespace wsb
