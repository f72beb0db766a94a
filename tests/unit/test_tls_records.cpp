// The check the TLS hub writes make before sending what mod_ssl handed down
// (protocol/tls_records.h): whole records only, never a WebSocket frame.
#include <string>

#include "protocol/tls_records.h"

#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

std::string record(unsigned char type, size_t len, unsigned char minor = 3) {
  std::string r;
  r += static_cast<char>(type);
  r += static_cast<char>(3);
  r += static_cast<char>(minor);
  r += static_cast<char>(len >> 8);
  r += static_cast<char>(len & 0xff);
  r += std::string(len, 'x');
  return r;
}

}  // namespace

TEST_GROUP(TlsRecords) {};

TEST(TlsRecords, WholeRecordsPass) {
  CHECK_TRUE(whole_tls_records(record(23, 100)));
  CHECK_TRUE(whole_tls_records(record(23, 16384 + 256) + record(23, 17) + record(21, 2)));
  CHECK_TRUE(whole_tls_records(record(23, 40, 1)));  // TLS 1.0's version bytes
  CHECK_TRUE(whole_tls_records(""));
}

TEST(TlsRecords, PlaintextFramesAndTornRecordsFail) {
  // A text frame "hello" as the server sends it: 0x81 0x05 hello.
  CHECK_FALSE(whole_tls_records(std::string("\x81\x05hello", 7)));
  CHECK_FALSE(whole_tls_records(record(23, 100).substr(0, 60)));           // cut short
  CHECK_FALSE(whole_tls_records(record(23, 100) + std::string("\x17\x03", 2)));  // a header's start
  CHECK_FALSE(whole_tls_records(record(25, 10)));                          // no such type
  CHECK_FALSE(whole_tls_records(record(23, 0)));                           // empty record
  std::string wrong_major = record(23, 10);
  wrong_major[1] = 2;
  CHECK_FALSE(whole_tls_records(wrong_major));
}
