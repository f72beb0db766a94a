// Utf8Validator: each case is checked one-shot, at every split point and one
// byte at a time, and the failure must land exactly on the first byte that
// makes the input impossible to complete as UTF-8.
#include <cstdint>
#include <string>

#include "protocol/utf8_validator.h"
#include "utf8_reference.h"

#include <CppUTest/TestHarness.h>

using wsb::Utf8Validator;
using wsb_test::reference_first_invalid;

namespace {

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// fail: index of the first impossible byte, -1 when none; complete: whether
// a fully valid input ends on a code point boundary.
void check_case(const char* name, const std::string& s, long fail, bool complete) {
  const uint8_t* d = bytes(s);
  const size_t n = s.size();
  const bool valid = fail < 0 && complete;

  bool ref_complete;
  LONGS_EQUAL_TEXT(fail, reference_first_invalid(s, &ref_complete), name);
  if (fail < 0) CHECK_EQUAL_TEXT(complete, ref_complete, name);

  CHECK_EQUAL_TEXT(valid, Utf8Validator::validate(d, n), name);

  for (size_t k = 0; k <= n; ++k) {
    Utf8Validator v;
    bool head_ok = v.feed(d, k);
    CHECK_EQUAL_TEXT(fail < 0 || static_cast<long>(k) <= fail, head_ok, name);
    bool tail_ok = v.feed(d + k, n - k);
    CHECK_EQUAL_TEXT(fail < 0, tail_ok, name);
    CHECK_EQUAL_TEXT(fail >= 0, v.failed(), name);
    CHECK_EQUAL_TEXT(valid, v.complete(), name);
  }

  Utf8Validator v;
  long first_false = -1;
  for (size_t i = 0; i < n; ++i)
    if (!v.feed(d + i, 1) && first_false < 0) first_false = static_cast<long>(i);
  LONGS_EQUAL_TEXT(fail, first_false, name);
  CHECK_EQUAL_TEXT(valid, v.complete(), name);
}

struct Case {
  const char* name;
  std::string bytes;
  long fail;
  bool complete;
};

const Case kCases[] = {
    {"empty", "", -1, true},
    {"ascii", "hello, world", -1, true},
    {"nul and del", std::string("\0\x7F", 2), -1, true},
    {"U+0080", "\xC2\x80", -1, true},
    {"U+07FF", "\xDF\xBF", -1, true},
    {"U+0800", "\xE0\xA0\x80", -1, true},
    {"U+D7FF", "\xED\x9F\xBF", -1, true},
    {"U+E000", "\xEE\x80\x80", -1, true},
    {"U+FFFD", "\xEF\xBF\xBD", -1, true},
    {"U+FFFF noncharacter", "\xEF\xBF\xBF", -1, true},
    {"U+10000", "\xF0\x90\x80\x80", -1, true},
    {"U+10FFFF", "\xF4\x8F\xBF\xBF", -1, true},
    {"kosme", "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5", -1, true},
    {"emoji in ascii", "hi \xF0\x9F\x98\x80 there", -1, true},
    {"long ascii then euro", std::string(17, 'a') + "\xE2\x82\xAC" + std::string(9, 'b'), -1,
     true},
    // Truncated sequences are a valid prefix: they only fail when a later
    // byte proves them wrong, and only make the input incomplete.
    {"truncated 2-byte", "\xC2", -1, false},
    {"truncated 3-byte", "a\xE2\x82", -1, false},
    {"truncated 4-byte", "\xF0\x9F\x98", -1, false},
    {"truncated then new lead", "\xE2\x82\xE2\x82\xAC", 2, false},
    {"truncated then ascii", "\xC2" "A", 1, false},
    // Overlong encodings.
    {"overlong 2-byte C0", "\xC0\xAF", 0, false},
    {"overlong 2-byte C1", "\xC1\xBF", 0, false},
    {"overlong 3-byte slash", "\xE0\x80\xAF", 1, false},
    {"overlong 3-byte max", "\xE0\x9F\xBF", 1, false},
    {"overlong 4-byte slash", "\xF0\x80\x80\xAF", 1, false},
    {"overlong 4-byte max", "\xF0\x8F\xBF\xBF", 1, false},
    {"overlong nul", "ab\xC0\x80", 2, false},
    // Surrogates, alone and paired (CESU-8).
    {"surrogate D800", "\xED\xA0\x80", 1, false},
    {"surrogate DBFF", "\xED\xAF\xBF", 1, false},
    {"surrogate DC00", "\xED\xB0\x80", 1, false},
    {"surrogate DFFF", "\xED\xBF\xBF", 1, false},
    {"surrogate pair", "\xED\xA0\x80\xED\xB0\x80", 1, false},
    // Beyond U+10FFFF and bytes that never occur.
    {"U+110000", "\xF4\x90\x80\x80", 1, false},
    {"U+1FFFFF", "\xF7\xBF\xBF\xBF", 0, false},
    {"F5 lead", "\xF5\x80\x80\x80", 0, false},
    {"F8 5-byte", "\xF8\x88\x80\x80\x80", 0, false},
    {"FC 6-byte", "\xFC\x84\x80\x80\x80\x80", 0, false},
    {"FE", "x\xFE", 1, false},
    {"FF", "\xFF", 0, false},
    // Continuation bytes out of place.
    {"lone continuation 80", "\x80", 0, false},
    {"lone continuation BF", "a\xBF", 1, false},
    {"extra continuation", "\xC2\x80\x80", 2, false},
    {"lead then lead", "\xDF\xDF", 1, false},
    {"4-byte cut by ascii", "\xF0\x9F\x98" "a", 3, false},
    // Autobahn 6.4.x: the code point beyond U+10FFFF is refused at its
    // second byte, before the rest of the message is seen.
    {"autobahn 6.4", "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xF4\x90\x80\x80\x65\x64", 12,
     false},
    {"bad after ascii word", std::string(20, 'a') + "\xC0", 20, false},
    {"bad after 2 words", std::string(16, 'a') + "\xED\xA0\x80" + std::string(16, 'a'), 17,
     false},
};

}  // namespace

TEST_GROUP(Utf8) {};

TEST(Utf8, TableAtEverySplitAndByteByByte) {
  for (const Case& c : kCases) check_case(c.name, c.bytes, c.fail, c.complete);
}

TEST(Utf8, EveryLeadByte) {
  for (int b = 0; b < 256; ++b) {
    std::string s(1, static_cast<char>(b));
    bool valid_lead = b < 0x80 || (b >= 0xC2 && b <= 0xF4);
    bool complete_alone = b < 0x80;
    check_case("single byte", s, valid_lead ? -1 : 0, complete_alone);
  }
}

TEST(Utf8, AllTwoByteStringsMatchReference) {
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      std::string s{static_cast<char>(a), static_cast<char>(b)};
      bool complete;
      long fail = reference_first_invalid(s, &complete);
      Utf8Validator v;
      long first_false = -1;
      for (size_t i = 0; i < 2 && first_false < 0; ++i)
        if (!v.feed(bytes(s) + i, 1)) first_false = static_cast<long>(i);
      LONGS_EQUAL(fail, first_false);
      CHECK_EQUAL(fail < 0 && complete, Utf8Validator::validate(bytes(s), 2));
    }
  }
}

// Three- and four-byte strings over the bytes where the rules change.
TEST(Utf8, BoundaryBytesMatchReferenceAtEverySplit) {
  const uint8_t edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
                          0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3,
                          0xF4, 0xF5, 0xF7, 0xF8, 0xFF};
  for (uint8_t a : edge)
    for (uint8_t b : edge)
      for (uint8_t c : edge)
        for (uint8_t d : edge) {
          std::string s{static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                        static_cast<char>(d)};
          bool complete;
          long fail = reference_first_invalid(s, &complete);
          for (size_t k = 0; k <= 4; ++k) {
            Utf8Validator v;
            bool head = v.feed(bytes(s), k);
            bool tail = v.feed(bytes(s) + k, 4 - k);
            CHECK_EQUAL(fail < 0 || static_cast<long>(k) <= fail, head);
            CHECK_EQUAL(fail < 0, tail);
            CHECK_EQUAL(fail < 0 && complete, v.complete());
          }
        }
}

TEST(Utf8, EveryCodePointRoundTrips) {
  std::string s;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  CHECK_TRUE(Utf8Validator::validate(bytes(s), s.size()));
  // Fed in odd-sized pieces, so pieces end inside sequences everywhere.
  Utf8Validator v;
  for (size_t i = 0; i < s.size(); i += 7) {
    size_t n = s.size() - i < 7 ? s.size() - i : 7;
    CHECK_TRUE(v.feed(bytes(s) + i, n));
  }
  CHECK_TRUE(v.complete());
}

TEST(Utf8, StaysFailedUntilReset) {
  Utf8Validator v;
  const uint8_t bad[] = {0xC0};
  const uint8_t good[] = {'o', 'k'};
  CHECK_FALSE(v.feed(bad, 1));
  CHECK_TRUE(v.failed());
  CHECK_FALSE(v.complete());
  CHECK_FALSE(v.feed(good, 2));
  CHECK_FALSE(v.feed(good, 0));
  v.reset();
  CHECK_FALSE(v.failed());
  CHECK_TRUE(v.feed(good, 2));
  CHECK_TRUE(v.complete());
}

TEST(Utf8, ResetDropsAPendingSequence) {
  Utf8Validator v;
  const uint8_t lead[] = {0xE2, 0x82};
  CHECK_TRUE(v.feed(lead, 2));
  CHECK_FALSE(v.complete());
  v.reset();
  CHECK_TRUE(v.complete());
  const uint8_t tail[] = {0xAC};
  CHECK_FALSE(v.feed(tail, 1));
}

TEST(Utf8, EmptyFeedKeepsState) {
  Utf8Validator v;
  CHECK_TRUE(v.feed(nullptr, 0));
  CHECK_TRUE(v.complete());
  const uint8_t lead[] = {0xF0};
  CHECK_TRUE(v.feed(lead, 1));
  CHECK_TRUE(v.feed(lead, 0));
  CHECK_FALSE(v.complete());
  CHECK_FALSE(v.failed());
}
