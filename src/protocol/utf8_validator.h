// Incremental UTF-8 validator (RFC 3629): fed arbitrary splits of a byte
// stream, it fails at the first byte that cannot start or continue a valid
// sequence (overlongs, surrogates, > U+10FFFF are invalid).
#pragma once
#include <cstddef>
#include <cstdint>

namespace wsb {

class Utf8Validator {
 public:
  // Returns false as soon as the bytes seen so far cannot be a prefix of valid
  // UTF-8. After a false return the validator stays failed until reset().
  bool feed(const uint8_t* data, size_t len);
  // True when everything fed so far is valid and ends on a code point boundary.
  bool complete() const { return state_ == 0; }
  bool failed() const { return state_ == kReject; }
  void reset() { state_ = 0; }

  static bool validate(const uint8_t* data, size_t len);  // one-shot

  static constexpr uint32_t kReject = 1;  // internal state value of a failure
 private:
  uint32_t state_ = 0;
};

}  // namespace wsb
