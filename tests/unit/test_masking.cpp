// apply_mask against a byte-at-a-time reference, over every key phase,
// length and pointer alignment where the word loop changes behaviour.
#include <cstdint>
#include <cstring>
#include <vector>

#include "protocol/masking.h"

#include <CppUTest/TestHarness.h>

using wsb::apply_mask;

namespace {

void reference_mask(uint8_t* data, size_t len, const uint8_t key[4], uint64_t offset) {
  for (size_t i = 0; i < len; ++i) data[i] ^= key[(offset + i) % 4];
}

// Deterministic bytes so failures reproduce.
struct Lcg {
  uint64_t s;
  uint8_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint8_t>(s >> 56);
  }
};

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  Lcg rng{seed};
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = rng.next();
  return v;
}

const uint8_t kKey[4] = {0x37, 0xFA, 0x21, 0x3D};

}  // namespace

TEST_GROUP(Masking) {};

TEST(Masking, Rfc6455Example) {
  // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
  uint8_t data[] = {'H', 'e', 'l', 'l', 'o'};
  const uint8_t expected[] = {0x7F, 0x9F, 0x4D, 0x51, 0x58};
  apply_mask(data, sizeof data, kKey, 0);
  MEMCMP_EQUAL(expected, data, sizeof data);
  apply_mask(data, sizeof data, kKey, 0);
  MEMCMP_EQUAL("Hello", data, sizeof data);
}

TEST(Masking, EveryOffsetLengthAndAlignment) {
  // 64 + 8 bytes of slack so every start alignment 0..7 fits.
  std::vector<uint8_t> src = random_bytes(64 + 8, 1);
  alignas(8) uint8_t got[64 + 8];
  uint8_t want[64 + 8];
  const uint64_t offsets[] = {0, 1, 2, 3, 4, 5, 6, 7, 1001, (1ull << 33) + 3, ~0ull};
  for (size_t align = 0; align < 8; ++align) {
    for (uint64_t offset : offsets) {
      for (size_t len = 0; len <= 64; ++len) {
        std::memcpy(got, src.data(), src.size());
        std::memcpy(want, src.data(), src.size());
        apply_mask(got + align, len, kKey, offset);
        reference_mask(want + align, len, kKey, offset);
        // Bytes around the range must be untouched too.
        MEMCMP_EQUAL(want, got, sizeof got);
      }
    }
  }
}

TEST(Masking, ZeroLengthTouchesNothing) {
  uint8_t b = 0x55;
  apply_mask(&b, 0, kKey, 3);
  BYTES_EQUAL(0x55, b);
  apply_mask(nullptr, 0, kKey, 0);
}

TEST(Masking, LargeUnalignedBuffers) {
  const size_t sizes[] = {4096, 65536 + 7, (1u << 20) + 13};
  for (size_t n : sizes) {
    for (size_t align = 0; align < 8; align += 3) {
      std::vector<uint8_t> src = random_bytes(n + 8, n + align);
      std::vector<uint8_t> got = src, want = src;
      apply_mask(got.data() + align, n, kKey, align);
      reference_mask(want.data() + align, n, kKey, align);
      CHECK_TRUE(got == want);
    }
  }
}

// The parser unmasks a payload piecewise as it arrives, carrying the offset.
TEST(Masking, PiecewiseEqualsOneShot) {
  const size_t n = 10000;
  std::vector<uint8_t> src = random_bytes(n, 7);
  std::vector<uint8_t> whole = src, pieces = src;
  apply_mask(whole.data(), n, kKey, 0);
  Lcg rng{99};
  size_t done = 0;
  while (done < n) {
    size_t step = 1 + rng.next() % 37;
    if (step > n - done) step = n - done;
    apply_mask(pieces.data() + done, step, kKey, done);
    done += step;
  }
  CHECK_TRUE(whole == pieces);
}

TEST(Masking, AllKeysAtAllPhases) {
  // Keys whose bytes differ in every position, plus degenerate ones.
  const uint8_t keys[][4] = {{0, 0, 0, 0}, {0xFF, 0xFF, 0xFF, 0xFF}, {1, 2, 3, 4}, {0x80, 0, 0x7F, 1}};
  std::vector<uint8_t> src = random_bytes(100, 3);
  for (const auto& key : keys) {
    for (uint64_t offset = 0; offset < 4; ++offset) {
      std::vector<uint8_t> got = src, want = src;
      apply_mask(got.data() + 1, 99, key, offset);
      reference_mask(want.data() + 1, 99, key, offset);
      CHECK_TRUE(got == want);
    }
  }
}

TEST(Masking, MaskingTwiceRestores) {
  std::vector<uint8_t> src = random_bytes(333, 5);
  std::vector<uint8_t> v = src;
  apply_mask(v.data() + 3, 330, kKey, 2);
  CHECK_FALSE(v == src);
  apply_mask(v.data() + 3, 330, kKey, 2);
  CHECK_TRUE(v == src);
}
