// WSBridgeSecret tokens: format, HMAC vector shared with PHP/openssl, failures.
#include <string>

#include "chat/token.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using wsb::make_token;
using wsb::TokenStatus;
using wsb::verify_token;

namespace {

// printf 'alice|2000000000' | openssl dgst -sha256 -hmac secret
// (PHP: hash_hmac('sha256', 'alice|2000000000', 'secret'))
const char kAliceMac[] = "31be3667a57d344eb8b0f98ff30da1eba5067944d0449d18bce828520387c005";
const std::string kAliceToken = std::string("alice|2000000000|") + kAliceMac;
constexpr int64_t kBefore = 1900000000;

TokenStatus check(const std::string& token, std::string* uid = nullptr, int64_t now = kBefore,
                  const std::string& secret = "secret") {
  std::string ignored;
  return verify_token(secret, token, now, uid ? uid : &ignored);
}

}  // namespace

TEST_GROUP(Token){};

TEST(Token, MatchesPhpAndOpensslVector) {
  STRCMP_EQUAL(kAliceToken.c_str(), make_token("secret", "alice", 2000000000).c_str());
}

TEST(Token, ValidTokenGivesTheUid) {
  std::string uid;
  CHECK(check(kAliceToken, &uid) == TokenStatus::Ok);
  STRCMP_EQUAL("alice", uid.c_str());
}

TEST(Token, RoundTripWithUnicodeUid) {
  const std::string token = make_token("k", "Zoë Ünïcode 名前", 1000);
  std::string uid;
  CHECK(verify_token("k", token, 999, &uid) == TokenStatus::Ok);
  STRCMP_EQUAL("Zoë Ünïcode 名前", uid.c_str());
}

TEST(Token, ExpiredAtAndAfterExpiry) {
  CHECK(check(kAliceToken, nullptr, 1999999999) == TokenStatus::Ok);
  CHECK(check(kAliceToken, nullptr, 2000000000) == TokenStatus::Expired);
  CHECK(check(kAliceToken, nullptr, 2000000001) == TokenStatus::Expired);
}

TEST(Token, TamperedPartsFailTheSignature) {
  std::string t = kAliceToken;
  t[0] = 'b';  // "blice"
  CHECK(check(t) == TokenStatus::BadSignature);
  CHECK(check("alice|2000000001|" + std::string(kAliceMac)) == TokenStatus::BadSignature);
  t = kAliceToken;
  t.back() = t.back() == '0' ? '1' : '0';
  CHECK(check(t) == TokenStatus::BadSignature);
  CHECK(check(kAliceToken, nullptr, kBefore, "Secret") == TokenStatus::BadSignature);
}

TEST(Token, SignatureCheckedBeforeExpiry) {
  // A forged token must not learn whether its expiry would have passed.
  CHECK(check("alice|1|" + std::string(64, 'a'), nullptr, kBefore) == TokenStatus::BadSignature);
}

TEST(Token, EmptySecretVerifiesNothing) {
  const std::string token = make_token("", "alice", 2000000000);
  CHECK(check(token, nullptr, kBefore, "") == TokenStatus::BadSignature);
}

TEST(Token, MalformedTokens) {
  const std::string mac(kAliceMac);
  const char* const bad[] = {
      "", "alice", "alice|2000000000", "|2000000000|x", "alice||" , "alice|-5|",
  };
  for (const char* b : bad) CHECK(check(b) == TokenStatus::Malformed);
  CHECK(check("|2000000000|" + mac) == TokenStatus::Malformed);             // empty uid
  CHECK(check("al#ce|2000000000|" + mac) == TokenStatus::Malformed);        // bad name
  CHECK(check(" alice|2000000000|" + mac) == TokenStatus::Malformed);       // leading space
  CHECK(check("alice|20x0000000|" + mac) == TokenStatus::Malformed);        // not digits
  CHECK(check("alice|+2000000000|" + mac) == TokenStatus::Malformed);       // sign
  CHECK(check("alice|1234567890123456789|" + mac) == TokenStatus::Malformed);  // overflow
  CHECK(check("alice|2000000000|" + mac.substr(1)) == TokenStatus::Malformed);  // short
  CHECK(check("alice|2000000000|" + mac + "0") == TokenStatus::Malformed);     // long
  std::string upper = mac;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  CHECK(check("alice|2000000000|" + upper) == TokenStatus::Malformed);
  CHECK(check("alice|2000000000|" + mac + "|x") == TokenStatus::Malformed);
  CHECK(check(std::string("ali\0ce|2000000000|", 18) + mac) == TokenStatus::Malformed);
}

TEST(Token, MakeTokenRefusesInvalidUids) {
  STRCMP_EQUAL("", make_token("secret", "a|b", 5).c_str());
  STRCMP_EQUAL("", make_token("secret", "", 5).c_str());
  STRCMP_EQUAL("", make_token("secret", "alice", -1).c_str());
}
