#include "backend/grip_sig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "backend/base64.h"

namespace wsb {
namespace {

constexpr std::string_view kHeader = R"({"typ":"JWT","alg":"HS256"})";
constexpr std::string_view kKeyBase64Prefix = "base64:";

bool hmac_sha256(std::string_view key, std::string_view data, std::string* mac) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len) == nullptr)
    return false;
  mac->assign(reinterpret_cast<const char*>(out), len);
  return true;
}

bool parse_json(std::string_view text, rapidjson::Document* doc) {
  doc->Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(text.data(), text.size());
  return !doc->HasParseError() && doc->IsObject();
}

}  // namespace

std::string make_grip_sig(std::string_view key, std::string_view iss, int64_t exp_unix) {
  if (key.empty()) return {};
  rapidjson::StringBuffer claims;
  rapidjson::Writer<rapidjson::StringBuffer> w(claims);
  w.StartObject();
  w.Key("exp");
  w.Int64(exp_unix);
  w.Key("iss");
  w.String(iss.data(), static_cast<rapidjson::SizeType>(iss.size()));
  w.EndObject();
  std::string token = base64url_encode(kHeader);
  token += '.';
  token += base64url_encode(std::string_view(claims.GetString(), claims.GetSize()));
  std::string mac;
  if (!hmac_sha256(key, token, &mac)) return {};
  token += '.';
  token += base64url_encode(mac);
  return token;
}

bool verify_grip_sig(std::string_view key, std::string_view token, int64_t now_unix,
                     std::string* iss) {
  if (key.empty()) return false;
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return false;
  std::string header, claims, signature, expected;
  if (!base64url_decode(token.substr(0, dot1), &header) ||
      !base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1), &claims) ||
      !base64url_decode(token.substr(dot2 + 1), &signature))
    return false;
  // The header is checked before the signature: a token claiming another
  // algorithm ("none", RS256) is refused, never verified some other way.
  rapidjson::Document h;
  if (!parse_json(header, &h)) return false;
  const auto alg = h.FindMember("alg");
  if (alg == h.MemberEnd() || !alg->value.IsString() ||
      std::string_view(alg->value.GetString(), alg->value.GetStringLength()) != "HS256")
    return false;
  if (!hmac_sha256(key, token.substr(0, dot2), &expected) || expected.size() != signature.size() ||
      CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) != 0)
    return false;
  rapidjson::Document c;
  if (!parse_json(claims, &c)) return false;
  const auto exp = c.FindMember("exp");
  if (exp == c.MemberEnd() || !exp->value.IsInt64() || exp->value.GetInt64() <= now_unix)
    return false;
  const auto i = c.FindMember("iss");
  if (i != c.MemberEnd() && !i->value.IsString()) return false;
  iss->assign(i == c.MemberEnd() ? ""
                                 : std::string(i->value.GetString(), i->value.GetStringLength()));
  return true;
}

bool parse_sig_key(std::string_view configured, std::string* key) {
  if (configured.substr(0, kKeyBase64Prefix.size()) == kKeyBase64Prefix)
    return base64_decode(configured.substr(kKeyBase64Prefix.size()), key);
  key->assign(configured);
  return true;
}

}  // namespace wsb
