#include "backend/grip_control.h"

#include <rapidjson/document.h>

#include "backend/base64.h"
#include "backend/grip_channel.h"
#include "protocol/utf8_validator.h"

namespace wsb {
namespace {

constexpr size_t kMaxControlFrame = 125;  // RFC 6455 §5.5
constexpr size_t kMaxFilters = 16;

struct TypeName {
  const char* name;
  GripControlType type;
};
constexpr TypeName kTypes[] = {
    {"subscribe", GripControlType::Subscribe},
    {"unsubscribe", GripControlType::Unsubscribe},
    {"detach", GripControlType::Detach},
    {"keep-alive", GripControlType::KeepAlive},
    {"set-meta", GripControlType::SetMeta},
    {"session", GripControlType::Session},
    {"send-delayed", GripControlType::SendDelayed},
    {"flush-delayed", GripControlType::FlushDelayed},
};

enum class Field { Ok, Missing, Bad };

std::string_view view(const rapidjson::Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

// An optional string field: Missing if absent, Bad if not a string.
Field string_field(const rapidjson::Value& obj, const char* key, std::string* out) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return Field::Missing;
  if (!it->value.IsString()) return Field::Bad;
  out->assign(view(it->value));
  return Field::Ok;
}

bool fail(std::string* error, std::string what) {
  *error = std::move(what);
  return false;
}

bool parse_channel(const rapidjson::Value& obj, GripControl* out, std::string* error) {
  if (string_field(obj, "channel", &out->channel) != Field::Ok)
    return fail(error, "no string 'channel'");
  if (!is_valid_channel(out->channel)) return fail(error, "invalid channel name");
  if (out->type != GripControlType::Subscribe) return true;
  const auto filters = obj.FindMember("filters");
  if (filters == obj.MemberEnd()) return true;
  if (!filters->value.IsArray() || filters->value.Size() > kMaxFilters)
    return fail(error, "'filters' is not a short list");
  for (const auto& f : filters->value.GetArray()) {
    if (!f.IsString()) return fail(error, "'filters' holds a non-string");
    out->filters.emplace_back(view(f));
  }
  return true;
}

bool parse_message_type(std::string_view s, WsMessageType* type) {
  if (s == "text")
    *type = WsMessageType::Text;
  else if (s == "binary")
    *type = WsMessageType::Binary;
  else if (s == "ping")
    *type = WsMessageType::Ping;
  else if (s == "pong")
    *type = WsMessageType::Pong;
  else
    return false;
  return true;
}

// keep-alive and send-delayed: a message to send later.
bool parse_message(const rapidjson::Value& obj, GripControl* out, std::string* error) {
  std::string type_name;
  const Field type_field = string_field(obj, "message-type", &type_name);
  if (type_field == Field::Bad ||
      (type_field == Field::Ok && !parse_message_type(type_name, &out->message_type)))
    return fail(error, "bad 'message-type'");
  std::string text;
  const Field bin = string_field(obj, "content-bin", &text);
  if (bin == Field::Bad) return fail(error, "'content-bin' is not a string");
  if (bin == Field::Ok) {
    if (!base64_decode(text, &out->content)) return fail(error, "'content-bin' is not base64");
    // Pushpin keeps the text type here and sends the bytes as a text frame;
    // binary content is meant as binary, and a text frame must be UTF-8.
    if (type_field == Field::Missing) out->message_type = WsMessageType::Binary;
    out->has_content = true;
  } else {
    const Field content = string_field(obj, "content", &out->content);
    if (content == Field::Bad) return fail(error, "'content' is not a string");
    out->has_content = content == Field::Ok;
  }
  if (out->content.size() > kMaxControlContent) return fail(error, "content too long");
  if ((out->message_type == WsMessageType::Ping || out->message_type == WsMessageType::Pong) &&
      out->content.size() > kMaxControlFrame)
    return fail(error, "ping/pong content over 125 bytes");
  if (out->message_type == WsMessageType::Text &&
      !Utf8Validator::validate(reinterpret_cast<const uint8_t*>(out->content.data()),
                               out->content.size()))
    return fail(error, "text content is not UTF-8");
  const auto timeout = obj.FindMember("timeout");
  if (out->has_content && timeout != obj.MemberEnd()) {
    if (!timeout->value.IsNumber() || timeout->value.GetDouble() < 0 ||
        timeout->value.GetDouble() > static_cast<double>(kMaxControlTimeoutS))
      return fail(error, "bad 'timeout'");
    out->timeout_s = static_cast<int64_t>(timeout->value.GetDouble());
  }
  if (out->type == GripControlType::KeepAlive) {
    std::string mode;
    const Field m = string_field(obj, "mode", &mode);
    if (m == Field::Bad) return fail(error, "'mode' is not a string");
    out->mode = mode == "interval" ? KeepAliveMode::Interval : KeepAliveMode::Idle;
  }
  return true;
}

}  // namespace

bool parse_grip_control(std::string_view json, GripControl* out, std::string* error) {
  *out = GripControl{};
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(json.data(),
                                                                                    json.size());
  if (doc.HasParseError()) return fail(error, "not valid JSON");
  if (!doc.IsObject()) return fail(error, "not a JSON object");
  std::string type;
  if (string_field(doc, "type", &type) != Field::Ok) return fail(error, "no string 'type'");
  bool known = false;
  for (const TypeName& t : kTypes) {
    if (type == t.name) {
      out->type = t.type;
      known = true;
    }
  }
  if (!known) return fail(error, "unknown type");
  switch (out->type) {
    case GripControlType::Subscribe:
    case GripControlType::Unsubscribe: return parse_channel(doc, out, error);
    case GripControlType::KeepAlive:
    case GripControlType::SendDelayed: return parse_message(doc, out, error);
    case GripControlType::SetMeta: {
      if (string_field(doc, "name", &out->name) != Field::Ok || out->name.empty())
        return fail(error, "no 'name'");
      const Field value = string_field(doc, "value", &out->value);
      if (value == Field::Bad) return fail(error, "'value' is not a string");
      out->has_value = value == Field::Ok;
      return true;
    }
    case GripControlType::Session:
      if (string_field(doc, "id", &out->session_id) == Field::Bad)
        return fail(error, "'id' is not a string");
      return true;
    case GripControlType::Detach:
    case GripControlType::FlushDelayed: return true;
  }
  return true;
}

}  // namespace wsb
