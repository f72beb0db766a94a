#include "chat/json_fields.h"

namespace wsb {

bool parse_json_object(std::string_view text, rapidjson::Document* doc, bool* is_object) {
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  doc->Parse<kFlags>(text.data(), text.size());
  *is_object = !doc->HasParseError() && doc->IsObject();
  return !doc->HasParseError();
}

FieldStatus get_string(const rapidjson::Value& obj, const char* key, std::string* out) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return FieldStatus::Missing;
  if (!it->value.IsString()) return FieldStatus::WrongType;
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return FieldStatus::Ok;
}

FieldStatus get_uint64(const rapidjson::Value& obj, const char* key, uint64_t* out) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return FieldStatus::Missing;
  // IsUint64 is false for 5.0, -1 and 1e30: only a plain non-negative integer.
  if (!it->value.IsUint64()) return FieldStatus::WrongType;
  *out = it->value.GetUint64();
  return FieldStatus::Ok;
}

FieldStatus get_int64(const rapidjson::Value& obj, const char* key, int64_t* out) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return FieldStatus::Missing;
  if (!it->value.IsInt64()) return FieldStatus::WrongType;
  *out = it->value.GetInt64();
  return FieldStatus::Ok;
}

}  // namespace wsb
