// Settings of the chat application (the WSBridgeChat* directives map onto
// these). A plain struct with documented defaults, like uWebSockets' options:
// the Apache glue fills it once in post_config and every component gets a
// const reference.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace wsb {

struct ChatConfig {
  // Events (messages, joins, leaves) each room keeps for history/resume.
  size_t history_size = 100;
  // Longest message text, in bytes of UTF-8 (bytes, not code points, because
  // bytes are what memory and bandwidth cost).
  size_t max_text_length = 4096;
  // Token bucket per connection: sustained commands per second and burst
  // (burst 0: no limit, WSBridgeRateLimit off).
  double rate_per_sec = 20;
  double rate_burst = 40;
  // Rate-limited commands in a row before the connection is closed with 1008
  // (0 = never close, only refuse).
  unsigned rate_strikes = 10;
  // Rooms one connection may be in at once.
  size_t max_rooms_per_connection = 32;
  // WSBridgePresenceLimit: a room with up to this many members announces
  // every join and leave to every member and lists everybody in presence
  // frames. Above it, presence lists the first this-many names (join order)
  // with a count, and joins/leaves are folded into one presence update per
  // room at most every presence_interval_ms (docs/large-rooms.md).
  // SIZE_MAX: no limit.
  size_t presence_limit = 100;
  int64_t presence_interval_ms = 1000;
  // Rooms the server keeps (with members or history). When full, the room
  // idle the longest without members is forgotten; if every room has
  // members, new rooms are refused.
  size_t max_rooms = 10000;
  // WSBridgeSecret: HMAC key of the access tokens (empty = tokens disabled).
  std::string secret;
};

}  // namespace wsb
