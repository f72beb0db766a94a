#include "pusher/pusher_channel.h"

namespace wsb {
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '=' || c == '@' || c == ',' || c == '.' || c == ';';
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (char c : s) {
    // Continuation bytes (10xxxxxx) do not start a character.
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

bool is_valid_user_id(std::string_view id) {
  if (id.empty() || utf8_length(id) > kMaxUserIdLength) return false;
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return false;
  }
  return true;
}

std::string_view server_to_user_id(std::string_view name) {
  if (!starts_with(name, kServerToUserPrefix)) return {};
  return name.substr(kServerToUserPrefix.size());
}

ChannelKind channel_kind(std::string_view name) {
  if (starts_with(name, kServerToUserPrefix)) {
    return is_valid_user_id(server_to_user_id(name)) ? ChannelKind::ServerToUser
                                                     : ChannelKind::Invalid;
  }
  if (name.empty() || name.size() > kMaxChannelNameLength) return ChannelKind::Invalid;
  for (char c : name) {
    if (!is_name_char(c)) return ChannelKind::Invalid;
  }
  // Longest prefix first: "private-encrypted-cache-x" is also "private-...".
  if (starts_with(name, "private-encrypted-cache-")) return ChannelKind::CachePrivateEncrypted;
  if (starts_with(name, "private-encrypted-")) return ChannelKind::PrivateEncrypted;
  if (starts_with(name, "private-cache-")) return ChannelKind::CachePrivate;
  if (starts_with(name, "private-")) return ChannelKind::Private;
  if (starts_with(name, "presence-cache-")) return ChannelKind::CachePresence;
  if (starts_with(name, "presence-")) return ChannelKind::Presence;
  if (starts_with(name, "cache-")) return ChannelKind::CachePublic;
  return ChannelKind::Public;
}

bool is_valid_channel_name(std::string_view name) {
  return channel_kind(name) != ChannelKind::Invalid;
}

bool needs_auth(ChannelKind kind) {
  switch (kind) {
    case ChannelKind::Private:
    case ChannelKind::PrivateEncrypted:
    case ChannelKind::Presence:
    case ChannelKind::CachePrivate:
    case ChannelKind::CachePrivateEncrypted:
    case ChannelKind::CachePresence:
      return true;
    default:
      return false;
  }
}

bool is_presence(ChannelKind kind) {
  return kind == ChannelKind::Presence || kind == ChannelKind::CachePresence;
}

bool is_cache(ChannelKind kind) {
  switch (kind) {
    case ChannelKind::CachePublic:
    case ChannelKind::CachePrivate:
    case ChannelKind::CachePrivateEncrypted:
    case ChannelKind::CachePresence:
      return true;
    default:
      return false;
  }
}

bool is_encrypted(ChannelKind kind) {
  return kind == ChannelKind::PrivateEncrypted || kind == ChannelKind::CachePrivateEncrypted;
}

bool allows_client_events(ChannelKind kind) { return needs_auth(kind); }

const char* channel_kind_name(ChannelKind kind) {
  switch (kind) {
    case ChannelKind::Invalid: return "invalid";
    case ChannelKind::Public: return "public";
    case ChannelKind::Private: return "private";
    case ChannelKind::PrivateEncrypted: return "private-encrypted";
    case ChannelKind::Presence: return "presence";
    case ChannelKind::CachePublic: return "cache";
    case ChannelKind::CachePrivate: return "private-cache";
    case ChannelKind::CachePrivateEncrypted: return "private-encrypted-cache";
    case ChannelKind::CachePresence: return "presence-cache";
    case ChannelKind::ServerToUser: return "server-to-user";
  }
  return "?";
}

}  // namespace wsb
