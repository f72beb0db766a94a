#include "backend/base64.h"

#include <openssl/evp.h>

namespace wsb {
namespace {

bool is_std_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// The value of the last character of a group decides whether the unused
// low bits are zero; RFC 4648 §3.5 lets a decoder refuse when they are not,
// which keeps one byte string per text.
int std_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  return c == '+' ? 62 : 63;
}

// Decodes unpadded standard-alphabet text with OpenSSL (which wants padding).
bool decode_unpadded(std::string_view text, std::string* out) {
  for (char c : text) {
    if (!is_std_char(c)) return false;
  }
  const size_t tail = text.size() % 4;
  if (tail == 1) return false;
  if (tail != 0) {
    const int last = std_value(text.back());
    if ((tail == 2 && (last & 0x0F) != 0) || (tail == 3 && (last & 0x03) != 0)) return false;
  }
  const size_t pad = tail == 0 ? 0 : 4 - tail;
  std::string padded(text);
  padded.append(pad, '=');
  std::string bytes(padded.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                                reinterpret_cast<const unsigned char*>(padded.data()),
                                static_cast<int>(padded.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts each '=' as a zero byte.
  bytes.resize(static_cast<size_t>(n) - pad);
  *out = std::move(bytes);
  return true;
}

}  // namespace

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

bool base64_decode(std::string_view text, std::string* out) {
  if (text.size() % 4 == 0 && !text.empty()) {
    size_t pad = 0;
    while (pad < 2 && text[text.size() - 1 - pad] == '=') ++pad;
    text.remove_suffix(pad);
  }
  return decode_unpadded(text, out);
}

std::string base64url_encode(std::string_view data) {
  std::string out = base64_encode(data);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
  }
  return out;
}

bool base64url_decode(std::string_view text, std::string* out) {
  std::string std_text(text);
  for (char& c : std_text) {
    if (c == '-')
      c = '+';
    else if (c == '_')
      c = '/';
    else if (c == '+' || c == '/')
      return false;
  }
  return decode_unpadded(std_text, out);
}

}  // namespace wsb
