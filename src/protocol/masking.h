// XOR masking (RFC 6455 §5.3), word at a time.
#pragma once
#include <cstddef>
#include <cstdint>

namespace wsb {

// XORs data[0..len) in place with the 4-byte key, starting at key position
// (offset % 4) so a payload can be unmasked in pieces as it arrives.
void apply_mask(uint8_t* data, size_t len, const uint8_t key[4], uint64_t offset);

}  // namespace wsb
