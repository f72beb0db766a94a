// An independent UTF-8 reference, written apart from Utf8Validator's state
// machine so that the two cannot share a mistake: the unit tests
// (test_utf8.cpp) check the validator against it byte by byte, the frame
// parser's fuzz target (tests/fuzz/fuzz_frame_parser.cpp) checks every text
// message and close reason the parser lets through with it. No CppUTest here:
// the fuzz target includes it too.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wsb_test {

// Whether some code point in [lo, hi] is legal: in [min, max] and not all
// surrogates.
inline bool reachable(uint32_t lo, uint32_t hi, uint32_t min, uint32_t max) {
  uint32_t a = lo > min ? lo : min;
  uint32_t b = hi < max ? hi : max;
  if (a > b) return false;
  return !(a >= 0xD800 && b <= 0xDFFF);
}

// Decodes with plain bit arithmetic and, after each byte of a sequence, asks
// whether the code points still reachable intersect the legal range for
// that length minus the surrogates. Returns the index of the first byte with
// no legal completion, or -1; *complete: whether the input ends on a code
// point boundary (meaningful when -1 is returned).
inline long reference_first_invalid(std::string_view s, bool* complete) {
  *complete = true;
  size_t i = 0;
  while (i < s.size()) {
    uint8_t b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t bits;
    if ((b & 0xE0) == 0xC0) len = 2, bits = b & 0x1F;
    else if ((b & 0xF0) == 0xE0) len = 3, bits = b & 0x0F;
    else if ((b & 0xF8) == 0xF0) len = 4, bits = b & 0x07;
    else return static_cast<long>(i);
    const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    const uint32_t max = len == 2 ? 0x7FF : len == 3 ? 0xFFFF : 0x10FFFF;
    for (int k = 1; k <= len; ++k) {
      if (k > 1) {
        if (i + k - 1 >= s.size()) {
          *complete = false;
          return -1;
        }
        uint8_t c = static_cast<uint8_t>(s[i + k - 1]);
        if ((c & 0xC0) != 0x80) return static_cast<long>(i + k - 1);
        bits = (bits << 6) | (c & 0x3F);
      }
      int rem = 6 * (len - k);
      uint32_t lo = bits << rem, hi = lo | ((1u << rem) - 1);
      if (!reachable(lo, hi, min, max)) return static_cast<long>(i + k - 1);
    }
    i += len;
  }
  return -1;
}

// Whether s is complete, valid UTF-8 by the reference.
inline bool reference_valid_utf8(std::string_view s) {
  bool complete;
  return reference_first_invalid(s, &complete) < 0 && complete;
}

}  // namespace wsb_test
