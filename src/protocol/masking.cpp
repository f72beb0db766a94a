// Unmasking is on every inbound byte, so it works a machine word at a time.
// The 4-byte key is repeated into an 8-byte pattern in memory order; memcpy
// loads/stores keep it free of alignment and strict-aliasing assumptions
// (compilers turn them into plain moves) and of any byte-order dependence.
#include "protocol/masking.h"

#include <cstring>

namespace wsb {

void apply_mask(uint8_t* data, size_t len, const uint8_t key[4], uint64_t offset) {
  if (len == 0) return;
  size_t phase = static_cast<size_t>(offset & 3);
  size_t i = 0;

  // Byte-wise until data is 8-aligned, so the word loop below does aligned
  // accesses (cheaper across cache lines, and vectorisable).
  auto misalign = reinterpret_cast<uintptr_t>(data) & 7;
  size_t head = misalign ? 8 - misalign : 0;
  if (head > len) head = len;
  for (; i < head; ++i) data[i] ^= key[(phase + i) & 3];
  if (i == len) return;

  uint8_t pattern[8];
  for (size_t k = 0; k < 8; ++k) pattern[k] = key[(phase + i + k) & 3];
  uint64_t word_key;
  std::memcpy(&word_key, pattern, 8);

  // Four words per iteration keep several independent XORs in flight.
  for (; len - i >= 32; i += 32) {
    uint64_t w[4];
    std::memcpy(w, data + i, 32);
    w[0] ^= word_key;
    w[1] ^= word_key;
    w[2] ^= word_key;
    w[3] ^= word_key;
    std::memcpy(data + i, w, 32);
  }
  for (; len - i >= 8; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    w ^= word_key;
    std::memcpy(data + i, &w, 8);
  }
  // The pattern's first byte lines up with data[head], so the tail continues
  // the same phase: (i - head) is a multiple of 8, hence of 4.
  for (size_t k = 0; i < len; ++i, ++k) data[i] ^= pattern[k];
}

}  // namespace wsb
