// Grip-Sig JWTs (the token Pushpin 1.36 sent in the reference run, with its
// key, must come out byte for byte) and the strict base64 behind them.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "backend/base64.h"
#include "backend/grip_sig.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

// Recorded from Pushpin 1.36 with sig_key=reference-key, sig_iss=pushpin.
const char kPushpinToken[] =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3OTU3MDg0OTgsImlzcyI6InB1c2hwaW4ifQ."
    "FYx1E6x2rF-uBLWOU-jjGgAPEDoIRaplR3cduMia-9o";
constexpr int64_t kPushpinExp = 1795708498;

std::string decoded(const std::string& text, bool url = false) {
  std::string out;
  CHECK_TRUE(url ? base64url_decode(text, &out) : base64_decode(text, &out));
  return out;
}

// A token with any header and claims, correctly signed with key.
std::string sign(const std::string& header, const std::string& claims, const std::string& key) {
  const std::string input = base64url_encode(header) + "." + base64url_encode(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

bool refused(const std::string& text, bool url = false) {
  std::string out;
  return !(url ? base64url_decode(text, &out) : base64_decode(text, &out));
}

}  // namespace

TEST_GROUP(BackendGripSig){};

TEST(BackendGripSig, SameBytesAsPushpin) {
  STRCMP_EQUAL(kPushpinToken, make_grip_sig("reference-key", "pushpin", kPushpinExp).c_str());
}

TEST(BackendGripSig, VerifiesAndGivesTheIssuer) {
  std::string iss;
  CHECK_TRUE(verify_grip_sig("reference-key", kPushpinToken, kPushpinExp - 1, &iss));
  STRCMP_EQUAL("pushpin", iss.c_str());
  const std::string ours = make_grip_sig("k", "wsbridge \"q\"", 100);
  CHECK_TRUE(verify_grip_sig("k", ours, 99, &iss));
  STRCMP_EQUAL("wsbridge \"q\"", iss.c_str());
}

TEST(BackendGripSig, ExpiresAtExp) {
  std::string iss;
  CHECK_FALSE(verify_grip_sig("reference-key", kPushpinToken, kPushpinExp, &iss));
  CHECK_FALSE(verify_grip_sig("reference-key", kPushpinToken, kPushpinExp + 1, &iss));
}

TEST(BackendGripSig, RefusesWrongKeyTamperingAndShapes) {
  std::string iss;
  CHECK_FALSE(verify_grip_sig("other-key", kPushpinToken, 0, &iss));
  CHECK_FALSE(verify_grip_sig("", kPushpinToken, 0, &iss));
  std::string t = kPushpinToken;
  t[40] = t[40] == 'A' ? 'B' : 'A';  // a claims byte
  CHECK_FALSE(verify_grip_sig("reference-key", t, 0, &iss));
  t = kPushpinToken;
  t.back() = t.back() == 'o' ? 'p' : 'o';
  CHECK_FALSE(verify_grip_sig("reference-key", t, 0, &iss));
  CHECK_FALSE(verify_grip_sig("reference-key", std::string(kPushpinToken) + ".x", 0, &iss));
  CHECK_FALSE(verify_grip_sig("reference-key", "a.b", 0, &iss));
  CHECK_FALSE(verify_grip_sig("reference-key", "", 0, &iss));
}

TEST(BackendGripSig, RefusesOtherAlgorithmsAndMissingExp) {
  std::string iss;
  // {"alg":"none"} with the claims and an empty signature.
  const std::string none =
      base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(R"({"exp":9999999999})") + ".";
  CHECK_FALSE(verify_grip_sig("k", none, 0, &iss));
  const std::string hs256 = R"({"typ":"JWT","alg":"HS256"})";
  CHECK_TRUE(verify_grip_sig("k", sign(hs256, R"({"exp":10})", "k"), 0, &iss));
  STRCMP_EQUAL("", iss.c_str());  // no iss: empty
  CHECK_FALSE(verify_grip_sig("k", sign(R"({"alg":"HS384"})", R"({"exp":10})", "k"), 0, &iss));
  CHECK_FALSE(verify_grip_sig("k", sign(R"({"typ":"JWT"})", R"({"exp":10})", "k"), 0, &iss));
  CHECK_FALSE(verify_grip_sig("k", sign(hs256, R"({"iss":"x"})", "k"), 0, &iss));
  CHECK_FALSE(verify_grip_sig("k", sign(hs256, R"({"exp":"10"})", "k"), 0, &iss));
  CHECK_FALSE(verify_grip_sig("k", sign(hs256, R"({"exp":10.5})", "k"), 0, &iss));
  CHECK_FALSE(verify_grip_sig("k", sign(hs256, R"({"exp":10,"iss":7})", "k"), 0, &iss));
  CHECK_FALSE(verify_grip_sig("k", sign(hs256, "[1]", "k"), 0, &iss));
  CHECK_FALSE(verify_grip_sig("k", sign("not json", R"({"exp":10})", "k"), 0, &iss));
}

TEST(BackendGripSig, NoKeyNoToken) { CHECK_TRUE(make_grip_sig("", "wsbridge", 10).empty()); }

TEST(BackendGripSig, ConfiguredKeyForms) {
  std::string key;
  CHECK_TRUE(parse_sig_key("changeme", &key));
  STRCMP_EQUAL("changeme", key.c_str());
  CHECK_TRUE(parse_sig_key("base64:AAEC/w==", &key));
  CHECK(key == std::string("\0\1\2\xff", 4));
  CHECK_FALSE(parse_sig_key("base64:!!", &key));
}

TEST_GROUP(BackendBase64){};

TEST(BackendBase64, EncodesBothAlphabets) {
  STRCMP_EQUAL("", base64_encode("").c_str());
  STRCMP_EQUAL("Zm9vYg==", base64_encode("foob").c_str());
  STRCMP_EQUAL("+/8=", base64_encode("\xfb\xff").c_str());
  STRCMP_EQUAL("-_8", base64url_encode("\xfb\xff").c_str());
  STRCMP_EQUAL("Zm9vYmFy", base64url_encode("foobar").c_str());
}

TEST(BackendBase64, DecodesWithOrWithoutPadding) {
  STRCMP_EQUAL("foob", decoded("Zm9vYg==").c_str());
  STRCMP_EQUAL("foob", decoded("Zm9vYg").c_str());
  STRCMP_EQUAL("fooba", decoded("Zm9vYmE=").c_str());
  STRCMP_EQUAL("fooba", decoded("Zm9vYmE").c_str());
  STRCMP_EQUAL("", decoded("").c_str());
  CHECK(decoded("AAEC") == std::string("\0\1\2", 3));
  CHECK(decoded("-_8", true) == "\xfb\xff");
}

TEST(BackendBase64, RefusesEverythingElse) {
  CHECK_TRUE(refused("!!"));
  CHECK_TRUE(refused("Zm9v YQ=="));  // whitespace
  CHECK_TRUE(refused("Zm9vYg=\n"));
  CHECK_TRUE(refused("Z"));  // a lone 6 bits
  CHECK_TRUE(refused("Zm9vY"));
  CHECK_TRUE(refused("Zm9vYh=="));  // unused bits set: not the canonical form
  CHECK_TRUE(refused("Zm9vYmF="));
  CHECK_TRUE(refused("Zm=vYg=="));  // padding inside
  CHECK_TRUE(refused("===="));
  CHECK_TRUE(refused("-_8"));         // url alphabet in standard base64
  CHECK_TRUE(refused("+/8", true));   // and the other way round
  CHECK_TRUE(refused("-_8=", true));  // no padding in JWT parts
}
