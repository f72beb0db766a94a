// Bus identity (docs/chat-protocol.md, "Resume after a reconnect"): every
// bus has a random 64-bit id, shown as 16 lowercase hex digits, so a client
// resuming with a `since` can say which bus numbered it. A new bus (a hard restart of a shm
// server, Redis that lost its data) gets a new id, and a `since` carried
// with another bus's id is not taken for a seq of this one.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace wsb {

constexpr size_t kBusIdLength = 16;

// A fresh random id (getrandom; clock and pid mixed in if that fails).
// Never 0, so a zeroed header field reads as "no id".
uint64_t random_bus_id();
// 16 lowercase hex digits.
std::string format_bus_id(uint64_t id);
// Exactly 16 hex digits (either case): what a client may send back.
bool is_valid_bus_id(std::string_view text);
// Compares two ids as numbers (case-insensitive hex); false if either is
// not a valid id.
bool same_bus_id(std::string_view a, std::string_view b);

}  // namespace wsb
