#include "backend/grip_publish.h"

#include <rapidjson/document.h>

#include "backend/base64.h"
#include "backend/grip_channel.h"
#include "protocol/opcode.h"
#include "protocol/utf8_validator.h"

namespace wsb {
namespace {

constexpr size_t kMaxControlFrame = 125;     // RFC 6455 §5.5
constexpr size_t kMaxCloseReason = 125 - 2;  // the code takes 2 of the 125

using Value = rapidjson::Value;

bool fail(std::string* error, std::string what) {
  *error = std::move(what);
  return false;
}

std::string_view view(const Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

// Optional string member: true if absent (out untouched) or a string.
bool optional_string(const Value& obj, const char* key, std::string* out) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return true;
  if (!it->value.IsString()) return false;
  out->assign(view(it->value));
  return true;
}

bool is_utf8(const std::string& s) {
  return Utf8Validator::validate(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

bool parse_close(const Value& ws, GripItem* item, std::string* error) {
  item->kind = GripItemKind::Close;
  const auto code = ws.FindMember("code");
  if (code != ws.MemberEnd()) {
    if (!code->value.IsUint() || code->value.GetUint() > 0xFFFF ||
        !is_valid_close_code(static_cast<uint16_t>(code->value.GetUint())))
      return fail(error, "'ws-message' contains 'code' that is not a valid close code");
    item->close_code = static_cast<uint16_t>(code->value.GetUint());
  }
  if (!optional_string(ws, "reason", &item->close_reason))
    return fail(error, "'ws-message' contains 'reason' with wrong type");
  if (item->close_reason.size() > kMaxCloseReason)
    return fail(error, "'ws-message' contains 'reason' longer than 123 bytes");
  return true;
}

bool parse_send(const Value& ws, GripItem* item, std::string* error) {
  std::string type;
  bool typed = false;
  const auto t = ws.FindMember("type");
  if (t != ws.MemberEnd()) {
    if (!t->value.IsString()) return fail(error, "'ws-message' contains 'type' with wrong type");
    type.assign(view(t->value));
    typed = true;
    if (type == "text")
      item->kind = GripItemKind::Text;
    else if (type == "binary")
      item->kind = GripItemKind::Binary;
    else if (type == "ping")
      item->kind = GripItemKind::Ping;
    else if (type == "pong")
      item->kind = GripItemKind::Pong;
    else
      return fail(error, "'ws-message' contains 'type' with unknown value");
  }
  const auto bin = ws.FindMember("content-bin");
  const auto text = ws.FindMember("content");
  if (bin != ws.MemberEnd()) {
    if (!bin->value.IsString() || !base64_decode(view(bin->value), &item->content))
      return fail(error, "'ws-message' contains 'content-bin' that is not a base64 string");
    if (!typed) item->kind = GripItemKind::Binary;
  } else if (text != ws.MemberEnd()) {
    if (!text->value.IsString())
      return fail(error, "'ws-message' contains 'content' with wrong type");
    item->content.assign(view(text->value));
    if (!typed) item->kind = GripItemKind::Text;
  } else if (!typed || item->kind == GripItemKind::Text || item->kind == GripItemKind::Binary) {
    return fail(error, "'ws-message' does not contain 'content' or 'content-bin'");
  }
  if ((item->kind == GripItemKind::Ping || item->kind == GripItemKind::Pong) &&
      item->content.size() > kMaxControlFrame)
    return fail(error, "'ws-message' ping/pong content is over 125 bytes");
  if (item->kind == GripItemKind::Text && !is_utf8(item->content))
    return fail(error, "'ws-message' text content is not UTF-8");
  return true;
}

// Fills *item and sets *has_ws; false on an invalid item.
bool parse_item(const Value& v, GripItem* item, bool* has_ws, std::string* error) {
  if (!v.IsObject()) return fail(error, "publish item object is not an object");
  const auto channel = v.FindMember("channel");
  if (channel == v.MemberEnd() || !channel->value.IsString())
    return fail(error, "publish item object does not contain a string 'channel'");
  item->channel.assign(view(channel->value));
  if (!is_valid_channel(item->channel))
    return fail(error,
                "publish item object contains an invalid 'channel' (1-256 bytes, "
                "no control characters)");
  if (!optional_string(v, "id", &item->id) || !optional_string(v, "prev-id", &item->prev_id))
    return fail(error, "publish item object contains 'id' or 'prev-id' with wrong type");
  // As in Pushpin: without "formats", the format keys may sit on the item.
  const Value* formats = &v;
  const auto f = v.FindMember("formats");
  if (f != v.MemberEnd()) {
    if (!f->value.IsObject())
      return fail(error, "publish item object contains 'formats' with wrong type");
    formats = &f->value;
  }
  const bool any = formats->HasMember("ws-message") || formats->HasMember("http-stream") ||
                   formats->HasMember("http-response");
  if (!any) return fail(error, "no formats specified");
  const auto ws = formats->FindMember("ws-message");
  *has_ws = ws != formats->MemberEnd();
  if (!*has_ws) return true;
  if (!ws->value.IsObject()) return fail(error, "'ws-message' is not an object");
  std::string action;
  if (!optional_string(ws->value, "action", &action))
    return fail(error, "'ws-message' contains 'action' with wrong type");
  if (action == "close") return parse_close(ws->value, item, error);
  if (action == "hint") {
    *has_ws = false;  // Pushpin has no hint for WebSockets either: ignored
    return true;
  }
  if (!action.empty() && action != "send")
    return fail(error, "'ws-message' contains 'action' with unknown value");
  return parse_send(ws->value, item, error);
}

}  // namespace

bool parse_grip_publish(std::string_view body, std::vector<GripItem>* out, std::string* error) {
  out->clear();
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(body.data(),
                                                                                    body.size());
  if (doc.HasParseError()) return fail(error, "Body is not valid JSON.");
  if (!doc.IsObject()) return fail(error, "Invalid format.");
  const auto items = doc.FindMember("items");
  if (items == doc.MemberEnd())
    return fail(error, "Invalid format: object does not contain 'items'");
  if (!items->value.IsArray())
    return fail(error, "Invalid format: object contains 'items' with wrong type");
  for (const Value& v : items->value.GetArray()) {
    GripItem item;
    bool has_ws = false;
    std::string why;
    if (!parse_item(v, &item, &has_ws, &why)) {
      out->clear();
      return fail(error, "Invalid format: " + why);
    }
    if (has_ws) out->push_back(std::move(item));
  }
  return true;
}

}  // namespace wsb
