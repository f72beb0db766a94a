// The chat's naming rules: room names, user names and message texts. Every
// check the session, the engine, the token verifier and the publish API make
// on a name comes from here so they cannot disagree.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsb {

constexpr size_t kMaxRoomNameLength = 64;   // bytes (the alphabet is ASCII)
constexpr size_t kMaxUserNameLength = 32;   // Unicode code points

// 1-64 characters of [A-Za-z0-9._-]: safe in URLs, file names and logs
// without escaping.
bool is_valid_room_name(std::string_view name);

// 1-32 code points of valid UTF-8; no control characters (C0, DEL, C1), no
// '#' (reserved for the server's "name#2" suffixes) or '|' (the token field
// separator), no leading or trailing whitespace (names that look alike).
bool is_valid_user_name(std::string_view name);

// Strict UTF-8 (RFC 3629: no overlongs, surrogates or code points above
// U+10FFFF). JSON escapes can produce a lone surrogate that RapidJSON
// encodes as invalid UTF-8, so decoded strings are checked again.
bool is_valid_utf8(std::string_view s);

enum class TextCheck { Ok, Empty, TooLong, BadUtf8 };
TextCheck check_text(std::string_view text, size_t max_bytes);

// The user name of a connection that has no token and chose none: unique
// across processes because connection ids are.
std::string guest_name(std::string_view conn_id);

}  // namespace wsb
