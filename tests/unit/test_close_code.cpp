// is_valid_close_code: which codes a peer may put in a close frame.
#include <cstdint>

#include "protocol/opcode.h"

#include <CppUTest/TestHarness.h>

using wsb::is_valid_close_code;

TEST_GROUP(CloseCode) {};

TEST(CloseCode, DefinedCodesPeersMaySend) {
  for (uint16_t c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011})
    CHECK_TEXT(is_valid_close_code(c), std::to_string(c).c_str());
}

TEST(CloseCode, ReservedAndLocalOnlyCodesAreRefused) {
  // 1004 reserved, 1005/1006/1015 are for local reporting, never on the wire.
  for (uint16_t c : {1004, 1005, 1006, 1015})
    CHECK_FALSE_TEXT(is_valid_close_code(c), std::to_string(c).c_str());
}

TEST(CloseCode, LibraryAndApplicationRanges) {
  CHECK_TRUE(is_valid_close_code(3000));
  CHECK_TRUE(is_valid_close_code(3999));
  CHECK_TRUE(is_valid_close_code(4000));
  CHECK_TRUE(is_valid_close_code(4999));
  CHECK_FALSE(is_valid_close_code(2999));
  CHECK_FALSE(is_valid_close_code(5000));
}

TEST(CloseCode, WholeRangeMatchesTheRfcTable) {
  int valid = 0;
  for (uint32_t c = 0; c <= 0xFFFF; ++c) {
    bool expected = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) ||
                    (c >= 3000 && c <= 4999);
    CHECK_EQUAL_TEXT(expected, is_valid_close_code(static_cast<uint16_t>(c)),
                     std::to_string(c).c_str());
    valid += expected;
  }
  LONGS_EQUAL(4 + 5 + 2000, valid);
}

TEST(CloseCode, CodesTheServerSendsThatPeersMayEcho) {
  using namespace wsb::close_code;
  for (uint16_t c : {kNormal, kGoingAway, kProtocolError, kUnsupportedData, kInvalidPayload,
                     kPolicyViolation, kMessageTooBig, kInternalError})
    CHECK_TRUE(is_valid_close_code(c));
  CHECK_FALSE(is_valid_close_code(kNoStatus));
  CHECK_FALSE(is_valid_close_code(kAbnormal));
}
