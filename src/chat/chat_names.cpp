#include "chat/chat_names.h"

namespace wsb {
namespace {

// Decodes one code point at s[*i], advancing *i; false on any invalid
// sequence.
bool next_code_point(std::string_view s, size_t* i, uint32_t* cp) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(*i);
  if (b0 < 0x80) {
    *cp = b0;
    *i += 1;
    return true;
  }
  size_t len;
  uint32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, min = 0x80, *cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, min = 0x800, *cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, *cp = b0 & 0x07;
  } else {
    return false;
  }
  if (s.size() - *i < len) return false;
  for (size_t k = 1; k < len; ++k) {
    const uint8_t b = byte(*i + k);
    if ((b & 0xC0) != 0x80) return false;
    *cp = (*cp << 6) | (b & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return false;
  *i += len;
  return true;
}

bool is_control(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// Unicode White_Space code points outside the control ranges.
bool is_space(uint32_t cp) {
  return cp == 0x20 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

}  // namespace

bool is_valid_room_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxRoomNameLength) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_valid_user_name(std::string_view name) {
  size_t i = 0, count = 0;
  uint32_t cp = 0;
  bool last_space = false;
  while (i < name.size()) {
    if (!next_code_point(name, &i, &cp)) return false;
    if (is_control(cp) || cp == '#' || cp == '|') return false;
    last_space = is_space(cp);
    if (count == 0 && last_space) return false;
    if (++count > kMaxUserNameLength) return false;
  }
  return count > 0 && !last_space;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  uint32_t cp = 0;
  while (i < s.size()) {
    if (!next_code_point(s, &i, &cp)) return false;
  }
  return true;
}

TextCheck check_text(std::string_view text, size_t max_bytes) {
  if (text.empty()) return TextCheck::Empty;
  if (text.size() > max_bytes) return TextCheck::TooLong;
  if (!is_valid_utf8(text)) return TextCheck::BadUtf8;
  return TextCheck::Ok;
}

std::string guest_name(std::string_view conn_id) {
  std::string name = "guest-";
  name.append(conn_id);
  // Connection ids are "<pid>-<n>", far below the limit; a longer id from a
  // future format still has to give a valid name.
  if (!is_valid_user_name(name)) return "guest";
  return name;
}

}  // namespace wsb
