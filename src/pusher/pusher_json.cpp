#include "pusher/pusher_json.h"

namespace wsb::pusher_json {

bool depth_within(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

bool parse(std::string_view text, rapidjson::Document* doc) {
  if (!depth_within(text)) return false;
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  doc->Parse<kFlags>(text.data(), text.size());
  return !doc->HasParseError();
}

std::string to_json(const rapidjson::Value& value) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  value.Accept(w);
  return take(buf);
}

Field get_string(const rapidjson::Value& obj, const char* key, std::string* out) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return Field::Missing;
  if (!it->value.IsString()) return Field::WrongType;
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return Field::Ok;
}

}  // namespace wsb::pusher_json
