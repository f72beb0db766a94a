// Table-driven UTF-8 validation: every byte is mapped to a class, and a small
// state machine over (state, class) remembers exactly which bytes may come
// next. Because the restricted second-byte ranges (E0, ED, F0, F4) get their
// own states, an overlong form, a surrogate or a code point above U+10FFFF is
// refused at the first byte that makes it impossible, not at the end of the
// sequence -- the "fail fast" behaviour WebSocket peers are tested for.
#include "protocol/utf8_validator.h"

#include <array>
#include <cstring>

namespace wsb {
namespace {

// Byte classes.
enum : uint8_t {
  kAscii,     // 00..7F
  kTail8,     // 80..8F
  kTail9,     // 90..9F
  kTailAB,    // A0..BF
  kBad,       // C0, C1 (always overlong), F5..FF (beyond U+10FFFF)
  kLead2,     // C2..DF
  kLeadE0,    // E0: second byte A0..BF, else overlong
  kLead3,     // E1..EC, EE..EF
  kLeadED,    // ED: second byte 80..9F, else a surrogate
  kLeadF0,    // F0: second byte 90..BF, else overlong
  kLead4,     // F1..F3
  kLeadF4,    // F4: second byte 80..8F, else beyond U+10FFFF
  kClasses
};

// States; kAccept and kReject are the values the header relies on.
enum : uint8_t {
  kAccept = 0,
  kRejectState = Utf8Validator::kReject,
  kNeed1,     // one more 80..BF
  kNeed2,     // two more 80..BF
  kAfterE0,   // A0..BF, then one more
  kAfterED,   // 80..9F, then one more
  kNeed3,     // three more 80..BF
  kAfterF0,   // 90..BF, then two more
  kAfterF4,   // 80..8F, then two more
  kStates
};

constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> c{};
  for (int b = 0; b < 256; ++b) {
    if (b <= 0x7F) c[b] = kAscii;
    else if (b <= 0x8F) c[b] = kTail8;
    else if (b <= 0x9F) c[b] = kTail9;
    else if (b <= 0xBF) c[b] = kTailAB;
    else if (b <= 0xC1) c[b] = kBad;
    else if (b <= 0xDF) c[b] = kLead2;
    else if (b == 0xE0) c[b] = kLeadE0;
    else if (b == 0xED) c[b] = kLeadED;
    else if (b <= 0xEF) c[b] = kLead3;
    else if (b == 0xF0) c[b] = kLeadF0;
    else if (b <= 0xF3) c[b] = kLead4;
    else if (b == 0xF4) c[b] = kLeadF4;
    else c[b] = kBad;
  }
  return c;
}

constexpr std::array<uint8_t, kStates * kClasses> make_transitions() {
  std::array<uint8_t, kStates * kClasses> t{};
  for (auto& v : t) v = kRejectState;
  auto set = [&t](uint8_t from, uint8_t cls, uint8_t to) { t[from * kClasses + cls] = to; };
  set(kAccept, kAscii, kAccept);
  set(kAccept, kLead2, kNeed1);
  set(kAccept, kLeadE0, kAfterE0);
  set(kAccept, kLead3, kNeed2);
  set(kAccept, kLeadED, kAfterED);
  set(kAccept, kLeadF0, kAfterF0);
  set(kAccept, kLead4, kNeed3);
  set(kAccept, kLeadF4, kAfterF4);
  for (uint8_t tail : {kTail8, kTail9, kTailAB}) {
    set(kNeed1, tail, kAccept);
    set(kNeed2, tail, kNeed1);
    set(kNeed3, tail, kNeed2);
  }
  set(kAfterE0, kTailAB, kNeed1);
  set(kAfterED, kTail8, kNeed1);
  set(kAfterED, kTail9, kNeed1);
  set(kAfterF0, kTail9, kNeed2);
  set(kAfterF0, kTailAB, kNeed2);
  set(kAfterF4, kTail8, kNeed2);
  return t;
}

constexpr std::array<uint8_t, 256> kClassOf = make_classes();
constexpr std::array<uint8_t, kStates * kClasses> kNext = make_transitions();

constexpr uint64_t kHighBits = 0x8080808080808080ull;

}  // namespace

bool Utf8Validator::feed(const uint8_t* data, size_t len) {
  uint32_t s = state_;
  if (s == kReject) return false;
  size_t i = 0;
  while (i < len) {
    if (s == kAccept) {
      // Chat text is mostly ASCII: between code points, skip plain bytes a
      // word or two at a time instead of walking the table.
      while (len - i >= 16) {
        uint64_t w[2];
        std::memcpy(w, data + i, 16);
        if ((w[0] | w[1]) & kHighBits) break;
        i += 16;
      }
      while (len - i >= 8) {
        uint64_t word;
        std::memcpy(&word, data + i, 8);
        if (word & kHighBits) break;
        i += 8;
      }
      if (i == len) break;
    }
    s = kNext[s * kClasses + kClassOf[data[i]]];
    if (s == kReject) {
      state_ = s;
      return false;
    }
    ++i;
  }
  state_ = s;
  return true;
}

bool Utf8Validator::validate(const uint8_t* data, size_t len) {
  Utf8Validator v;
  return v.feed(data, len) && v.complete();
}

}  // namespace wsb
