// Pusher Channels channel names: which names are valid and what kind of
// channel a name is. The kind decides everything else the protocol does with
// a channel (whether a subscription must be signed, whether it has members,
// whether it keeps the last event, whether clients may publish on it), so the
// prefix rules live here once and the rest of src/pusher/ asks these helpers.
//
// Rules (https://pusher.com/docs/channels/using_channels/channels, cache
// channels and server-to-user pages):
// - up to 164 characters, ASCII letters, digits and _ - = @ , . ;
// - prefixes: private-, private-encrypted-, presence-, and the cache variants
//   cache-, private-cache-, private-encrypted-cache-, presence-cache-;
// - "#server-to-user-<user id>" is the channel of one signed-in user. Its '#'
//   is outside the character set on purpose: the HTTP API may publish to it,
//   and only a connection signed in as that user may subscribe (pusher-js
//   does so by itself after pusher:signin_success).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wsb {

enum class ChannelKind : uint8_t {
  Invalid,
  Public,
  Private,
  PrivateEncrypted,
  Presence,
  CachePublic,
  CachePrivate,
  CachePrivateEncrypted,
  CachePresence,
  ServerToUser,
};

constexpr size_t kMaxChannelNameLength = 164;
// Presence user ids (and so signed-in user ids): "maximum 128 characters".
constexpr size_t kMaxUserIdLength = 128;
constexpr std::string_view kServerToUserPrefix = "#server-to-user-";

// Invalid when the name breaks the character set or length rules.
ChannelKind channel_kind(std::string_view name);
bool is_valid_channel_name(std::string_view name);

// A subscription needs a "key:signature" auth (private, encrypted, presence
// and their cache variants). ServerToUser needs none: it is checked against
// the connection's signed-in user instead (see server_to_user_id).
bool needs_auth(ChannelKind kind);
bool is_presence(ChannelKind kind);
bool is_cache(ChannelKind kind);
bool is_encrypted(ChannelKind kind);
// client-* events are accepted on authorized channels only (private,
// encrypted, presence and their cache variants), never on public or user
// channels. The protocol does not forbid them on encrypted channels.
bool allows_client_events(ChannelKind kind);
const char* channel_kind_name(ChannelKind kind);

// The user id of a "#server-to-user-<id>" name; empty for any other name.
std::string_view server_to_user_id(std::string_view name);

// Length in Unicode code points of valid UTF-8 (the limits on event names
// and user ids are in characters, not bytes).
size_t utf8_length(std::string_view s);

// A user id as the protocol accepts it: 1..128 characters, no control
// characters (they would end up in channel names and log lines).
bool is_valid_user_id(std::string_view id);

}  // namespace wsb
