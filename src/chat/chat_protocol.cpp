#include "chat/chat_protocol.h"

#include "chat/chat_names.h"
#include "chat/json_fields.h"
#include "protocol/frame_encoder.h"
#include "runtime/bus_id.h"

namespace wsb {
namespace {

struct CommandName {
  const char* name;
  CommandType type;
};
constexpr CommandName kCommands[] = {
    {"join", CommandType::Join},
    {"leave", CommandType::Leave},
    {"message", CommandType::Message},
    {"direct", CommandType::Direct},
};

bool fail(ParsedCommand* p, ChatError code, std::string reason) {
  p->error = code;
  p->reason = std::move(reason);
  return false;
}

bool read_room(const rapidjson::Value& obj, ParsedCommand* p) {
  switch (get_string(obj, "room", &p->command.room)) {
    case FieldStatus::Missing: return fail(p, ChatError::MissingField, "room is required");
    case FieldStatus::WrongType: return fail(p, ChatError::BadField, "room must be a string");
    case FieldStatus::Ok: break;
  }
  if (!is_valid_room_name(p->command.room))
    return fail(p, ChatError::BadRoom, "room must be 1-64 characters of A-Z a-z 0-9 . _ -");
  return true;
}

bool read_text(const rapidjson::Value& obj, const ChatConfig& config, ParsedCommand* p) {
  switch (get_string(obj, "text", &p->command.text)) {
    case FieldStatus::Missing: return fail(p, ChatError::MissingField, "text is required");
    case FieldStatus::WrongType: return fail(p, ChatError::BadField, "text must be a string");
    case FieldStatus::Ok: break;
  }
  switch (check_text(p->command.text, config.max_text_length)) {
    case TextCheck::Empty: return fail(p, ChatError::BadField, "text is empty");
    case TextCheck::TooLong:
      return fail(p, ChatError::TooLong,
                  "text is longer than " + std::to_string(config.max_text_length) + " bytes");
    case TextCheck::BadUtf8: return fail(p, ChatError::BadField, "text is not valid UTF-8");
    case TextCheck::Ok: break;
  }
  return true;
}

// Reads a user name field; required says whether absence is an error.
bool read_user(const rapidjson::Value& obj, const char* key, bool required, std::string* out,
               bool* present, ParsedCommand* p) {
  *present = false;
  switch (get_string(obj, key, out)) {
    case FieldStatus::Missing:
      if (!required) return true;
      return fail(p, ChatError::MissingField, std::string(key) + " is required");
    case FieldStatus::WrongType:
      return fail(p, ChatError::BadField, std::string(key) + " must be a string");
    case FieldStatus::Ok: break;
  }
  if (!is_valid_user_name(*out))
    return fail(p, ChatError::BadName,
                "a user name is 1-32 characters without control characters, '#' or '|', "
                "and without leading or trailing spaces");
  *present = true;
  return true;
}

bool read_join(const rapidjson::Value& obj, ParsedCommand* p) {
  ClientCommand& c = p->command;
  if (!read_room(obj, p)) return false;
  if (!read_user(obj, "name", false, &c.name, &c.has_name, p)) return false;
  switch (get_uint64(obj, "since", &c.since)) {
    case FieldStatus::Missing: break;
    case FieldStatus::WrongType:
      return fail(p, ChatError::BadField, "since must be a non-negative integer");
    case FieldStatus::Ok: c.has_since = true; break;
  }
  switch (get_string(obj, "bus", &c.bus)) {
    case FieldStatus::Missing: break;
    case FieldStatus::WrongType: return fail(p, ChatError::BadField, "bus must be a string");
    case FieldStatus::Ok:
      if (!is_valid_bus_id(c.bus)) return fail(p, ChatError::BadField, "bus must be 16 hex digits");
      c.has_bus = true;
      break;
  }
  return true;
}

bool read_cid(const rapidjson::Value& obj, ParsedCommand* p) {
  switch (get_string(obj, "cid", &p->command.cid)) {
    case FieldStatus::Missing: return true;
    case FieldStatus::WrongType: return fail(p, ChatError::BadCid, "cid must be a string");
    case FieldStatus::Ok: break;
  }
  if (!is_valid_cid(p->command.cid))
    return fail(p, ChatError::BadCid, "cid must be 1-64 printable ASCII characters without spaces");
  p->command.has_cid = true;
  return true;
}

bool read_direct(const rapidjson::Value& obj, const ChatConfig& config, ParsedCommand* p) {
  bool present = false;
  if (!read_user(obj, "to", true, &p->command.to, &present, p)) return false;
  return read_text(obj, config, p) && read_cid(obj, p);
}

void write_event_head(JsonWriter& w, const char* type, std::string_view room) {
  w.StartObject();
  write_field(w, "type", type);
  write_field(w, "room", room);
}

}  // namespace

const char* error_code_name(ChatError code) {
  switch (code) {
    case ChatError::None: return "none";
    case ChatError::BadJson: return "bad-json";
    case ChatError::UnknownType: return "unknown-type";
    case ChatError::MissingField: return "missing-field";
    case ChatError::BadField: return "bad-field";
    case ChatError::BadRoom: return "bad-room";
    case ChatError::BadName: return "bad-name";
    case ChatError::TooLong: return "too-long";
    case ChatError::NotJoined: return "not-joined";
    case ChatError::AlreadyJoined: return "already-joined";
    case ChatError::TooManyRooms: return "too-many-rooms";
    case ChatError::RateLimited: return "rate-limited";
    case ChatError::NoSuchUser: return "no-such-user";
    case ChatError::HistoryLost: return "history-lost";
    case ChatError::Unavailable: return "unavailable";
    case ChatError::BadCid: return "bad-cid";
  }
  return "internal";
}

bool is_valid_cid(std::string_view cid) {
  if (cid.empty() || cid.size() > kMaxCidLength) return false;
  for (const char ch : cid) {
    if (ch < 0x21 || ch > 0x7e) return false;
  }
  return true;
}

ParsedCommand parse_client_command(std::string_view json, const ChatConfig& config) {
  ParsedCommand p;
  rapidjson::Document doc;
  bool is_object = false;
  if (!parse_json_object(json, &doc, &is_object) || !is_object) {
    fail(&p, ChatError::BadJson, "a command is one JSON object");
    return p;
  }
  std::string type;
  switch (get_string(doc, "type", &type)) {
    case FieldStatus::Missing: fail(&p, ChatError::MissingField, "type is required"); return p;
    case FieldStatus::WrongType: fail(&p, ChatError::BadField, "type must be a string"); return p;
    case FieldStatus::Ok: break;
  }
  for (const CommandName& c : kCommands) {
    if (type == c.name) p.command.type = c.type;
  }
  switch (p.command.type) {
    case CommandType::Unknown:
      fail(&p, ChatError::UnknownType, "type must be join, leave, message or direct");
      break;
    case CommandType::Join: read_join(doc, &p); break;
    case CommandType::Leave: read_room(doc, &p); break;
    case CommandType::Message:
      if (read_room(doc, &p) && read_text(doc, config, &p)) read_cid(doc, &p);
      break;
    case CommandType::Direct: read_direct(doc, config, &p); break;
  }
  return p;
}

std::string encode_welcome(std::string_view you, std::string_view conn_id, long pid,
                           const std::vector<RoomCount>& rooms, std::string_view bus) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  write_field(w, "type", "welcome");
  write_field(w, "you", you);
  write_field(w, "id", conn_id);
  w.Key("pid");
  w.Int64(pid);
  if (!bus.empty()) write_field(w, "bus", bus);
  w.Key("rooms");
  w.StartArray();
  for (const RoomCount& r : rooms) {
    w.StartObject();
    write_field(w, "room", r.room);
    w.Key("members");
    w.Uint64(r.members);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

namespace {
// The common end of every room event: its place in the order, and its time.
void end_room_event(JsonWriter& w, uint64_t seq, int64_t ts) {
  w.Key("seq");
  w.Uint64(seq);
  w.Key("ts");
  w.Int64(ts);
  w.EndObject();
}
}  // namespace

std::string encode_message_event(std::string_view room, std::string_view from,
                                 std::string_view text, uint64_t seq, int64_t ts,
                                 std::string_view cid) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_event_head(w, "message", room);
  write_field(w, "from", from);
  write_field(w, "text", text);
  if (!cid.empty()) write_field(w, "cid", cid);
  end_room_event(w, seq, ts);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string encode_system_event(std::string_view room, std::string_view event,
                                std::string_view name, uint64_t seq, int64_t ts) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_event_head(w, "system", room);
  write_field(w, "event", event);
  write_field(w, "name", name);
  end_room_event(w, seq, ts);
  return std::string(buf.GetString(), buf.GetSize());
}

namespace {
void write_members(JsonWriter& w, const std::vector<std::string>& members) {
  w.Key("members");
  w.StartArray();
  for (const std::string& m : members) write_string(w, m);
  w.EndArray();
}

void write_count(JsonWriter& w, size_t count, bool truncated) {
  w.Key("count");
  w.Uint64(count);
  w.Key("truncated");
  w.Bool(truncated);
}
}  // namespace

std::string encode_presence(std::string_view room, const std::vector<std::string>& members,
                            std::string_view you, size_t count) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_event_head(w, "presence", room);
  write_members(w, members);
  write_field(w, "you", you);
  if (count > members.size()) write_count(w, count, true);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string encode_presence_update(std::string_view room, size_t count, bool truncated,
                                   const std::vector<std::string>* members) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_event_head(w, "presence", room);
  write_count(w, count, truncated);
  if (members) write_members(w, *members);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string encode_history(std::string_view room, const std::vector<std::string_view>& events,
                           bool complete) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_event_head(w, "history", room);
  w.Key("messages");
  w.StartArray();
  // The events were written by encode_*_event above: splicing them avoids
  // re-parsing up to history_size objects per join.
  for (std::string_view e : events)
    w.RawValue(e.data(), e.size(), rapidjson::kObjectType);
  w.EndArray();
  w.Key("complete");
  w.Bool(complete);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string encode_direct(std::string_view from, std::string_view to, std::string_view text,
                          int64_t ts, std::string_view cid) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  write_field(w, "type", "direct");
  write_field(w, "from", from);
  write_field(w, "to", to);
  write_field(w, "text", text);
  if (!cid.empty()) write_field(w, "cid", cid);
  w.Key("ts");
  w.Int64(ts);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string encode_error(ChatError code, std::string_view reason, std::string_view room) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  write_field(w, "type", "error");
  write_field(w, "code", error_code_name(code));
  write_field(w, "reason", reason);
  if (!room.empty()) write_field(w, "room", room);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

FramePtr make_text_frame(std::string_view json) {
  return make_frame(encode_frame(Opcode::Text, json));
}

}  // namespace wsb
