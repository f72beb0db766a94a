#include "chat/publish_api.h"

#include "chat/chat_names.h"
#include "chat/chat_protocol.h"
#include "chat/chat_record.h"
#include "chat/json_fields.h"

namespace wsb {
namespace {

PublishResult failure(int status, ChatError code, std::string reason) {
  PublishResult r;
  r.http_status = status;
  r.error = error_code_name(code);
  r.reason = std::move(reason);
  return r;
}

// Missing/wrong-type field as a 400; Ok returns nothing.
bool field_error(FieldStatus st, const char* key, PublishResult* out) {
  if (st == FieldStatus::Ok) return false;
  if (st == FieldStatus::Missing) {
    *out = failure(400, ChatError::MissingField, std::string(key) + " is required");
  } else {
    *out = failure(400, ChatError::BadField, std::string(key) + " must be a string");
  }
  return true;
}

}  // namespace

PublishResult publish_from_http(std::string_view body, Bus& bus, const ChatConfig& config,
                                int64_t now_ms, const Idempotency* idempotency) {
  const bool keyed = idempotency != nullptr && !idempotency->key.empty();
  if (keyed && !is_valid_cid(idempotency->key))
    return failure(400, ChatError::BadCid, "Idempotency-Key must be 1-64 printable ASCII characters without spaces");
  rapidjson::Document doc;
  bool is_object = false;
  if (!parse_json_object(body, &doc, &is_object) || !is_object)
    return failure(400, ChatError::BadJson, "the body must be one JSON object");

  ChatRecord r;
  r.type = RecordType::Msg;
  r.ts = now_ms;
  PublishResult err;
  if (field_error(get_string(doc, "room", &r.room), "room", &err)) return err;
  if (!is_valid_room_name(r.room))
    return failure(400, ChatError::BadRoom, "room must be 1-64 characters of A-Z a-z 0-9 . _ -");
  if (field_error(get_string(doc, "text", &r.text), "text", &err)) return err;
  switch (check_text(r.text, config.max_text_length)) {
    case TextCheck::Empty: return failure(400, ChatError::BadField, "text is empty");
    case TextCheck::TooLong:
      return failure(413, ChatError::TooLong,
                     "text is longer than " + std::to_string(config.max_text_length) + " bytes");
    case TextCheck::BadUtf8: return failure(400, ChatError::BadField, "text is not valid UTF-8");
    case TextCheck::Ok: break;
  }
  const FieldStatus from = get_string(doc, "from", &r.from);
  if (from == FieldStatus::Missing) {
    r.from = "server";
  } else if (field_error(from, "from", &err)) {
    return err;
  } else if (!is_valid_user_name(r.from)) {
    return failure(400, ChatError::BadName, "from must follow the user name rules");
  }

  PublishResult ok;
  ok.http_status = 202;
  if (keyed && idempotency->original) {
    // Seen before (as far as everything published until now tells): answer
    // the original without publishing again.
    const uint64_t before = idempotency->original(r.room, idempotency->key, bus.last_seq());
    if (before != 0) {
      ok.seq = before;
      ok.replay = true;
      return ok;
    }
  }
  if (keyed) r.cid = idempotency->key;
  ok.seq = bus.publish(encode_record(r));
  if (ok.seq == 0) return failure(503, ChatError::Unavailable, "the message bus refused the message");
  if (keyed && idempotency->original) {
    // A concurrent publish with the same key may have reached the bus
    // first: then every engine dropped ours, and the first is the answer.
    const uint64_t first = idempotency->original(r.room, idempotency->key, ok.seq);
    if (first != 0 && first != ok.seq) {
      ok.seq = first;
      ok.replay = true;
    }
  }
  return ok;
}

std::string publish_response_body(const PublishResult& result) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  if (result.http_status == 202) {
    w.Key("seq");
    w.Uint64(result.seq);
    if (result.replay) {
      w.Key("replay");
      w.Bool(true);
    }
  } else {
    write_field(w, "error", result.error);
    write_field(w, "reason", result.reason);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace wsb
