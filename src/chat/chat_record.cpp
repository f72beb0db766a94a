#include "chat/chat_record.h"

#include "chat/chat_names.h"
#include "chat/chat_protocol.h"
#include "chat/json_fields.h"
#include "backend/base64.h"
#include "backend/grip_channel.h"

namespace wsb {
namespace {

struct TypeName {
  const char* name;
  RecordType type;
};
constexpr TypeName kTypes[] = {
    {"join", RecordType::Join}, {"leave", RecordType::Leave}, {"msg", RecordType::Msg},
    {"direct", RecordType::Direct}, {"gone", RecordType::Gone},
    {"sync", RecordType::Sync}, {"present", RecordType::Present}, {"pub", RecordType::Publish},
    {"psub", RecordType::PusherSubscribe}, {"pleave", RecordType::PusherLeave},
    {"pterm", RecordType::PusherTerminate},
};

bool is_pusher(RecordType t) {
  return t == RecordType::PusherSubscribe || t == RecordType::PusherLeave || t == RecordType::PusherTerminate;
}

const char* type_name(RecordType t) {
  for (const TypeName& n : kTypes) {
    if (n.type == t) return n.name;
  }
  return "?";
}

void write_opt(JsonWriter& w, const char* key, const std::string& value) {
  if (!value.empty()) write_field(w, key, value);
}

bool need_string(const rapidjson::Value& obj, const char* key, std::string* out) {
  return get_string(obj, key, out) == FieldStatus::Ok && !out->empty();
}

bool opt_string(const rapidjson::Value& obj, const char* key, std::string* out) {
  return get_string(obj, key, out) != FieldStatus::WrongType;
}

// Optional; when present it must be a valid cid (it goes into frames).
bool read_cid(const rapidjson::Value& obj, ChatRecord* r) {
  switch (get_string(obj, "cid", &r->cid)) {
    case FieldStatus::Missing: return true;
    case FieldStatus::WrongType: return false;
    case FieldStatus::Ok: return is_valid_cid(r->cid);
  }
  return false;
}

bool read_pid(const rapidjson::Value& obj, ChatRecord* r) {
  int64_t pid = 0;
  if (get_int64(obj, "pid", &pid) != FieldStatus::Ok) return false;
  r->pid = static_cast<long>(pid);
  return true;
}

bool read_members(const rapidjson::Value& obj, ChatRecord* r) {
  if (get_uint64(obj, "base", &r->base) != FieldStatus::Ok) return false;
  const auto it = obj.FindMember("members");
  if (it == obj.MemberEnd() || !it->value.IsArray()) return false;
  for (const rapidjson::Value& m : it->value.GetArray()) {
    if (!m.IsObject()) return false;
    PresentMember p;
    int64_t pid = 0;
    if (!need_string(m, "room", &p.room) || !need_string(m, "conn", &p.conn) ||
        !need_string(m, "user", &p.user) || !need_string(m, "name", &p.name) ||
        get_int64(m, "pid", &pid) != FieldStatus::Ok || !is_valid_room_name(p.room))
      return false;
    p.pid = static_cast<long>(pid);
    r->members.push_back(std::move(p));
  }
  return true;
}

constexpr const char* kKindNames[] = {"text", "binary", "ping", "pong", "close", "event"};
constexpr size_t kKinds = sizeof(kKindNames) / sizeof(kKindNames[0]);

bool raw_data(PublishKind k) { return k == PublishKind::Text || k == PublishKind::Close || k == PublishKind::Event; }

bool read_pusher(const rapidjson::Value& obj, ChatRecord* r) {
  if (!need_string(obj, "ns", &r->ns) || !opt_string(obj, "ch", &r->channel) || !opt_string(obj, "conn", &r->conn) ||
      !opt_string(obj, "user", &r->user) || !opt_string(obj, "d", &r->data))
    return false;
  if (!r->channel.empty() && !is_valid_channel(r->channel)) return false;
  switch (r->type) {
    case RecordType::PusherSubscribe: return !r->channel.empty() && !r->conn.empty() && read_pid(obj, r);
    case RecordType::PusherLeave: return !r->conn.empty();
    case RecordType::PusherTerminate: return !r->user.empty();
    default: return false;
  }
}

bool read_publish(const rapidjson::Value& obj, ChatRecord* r) {
  std::string kind, data;
  if (!need_string(obj, "ns", &r->ns) || !need_string(obj, "ch", &r->channel) ||
      !need_string(obj, "k", &kind) || !opt_string(obj, "d", &data) || !is_valid_channel(r->channel))
    return false;
  size_t k = 0;
  while (k < kKinds && kind != kKindNames[k]) ++k;
  if (k == kKinds) return false;
  r->kind = static_cast<PublishKind>(k);
  if (r->kind == PublishKind::Event &&
      (!need_string(obj, "name", &r->name) || !opt_string(obj, "conn", &r->conn) || !opt_string(obj, "user", &r->user) ||
       !opt_string(obj, "from", &r->from)))
    return false;
  if (raw_data(r->kind)) {
    r->data = std::move(data);  // the text, the close reason or the event's JSON data
  } else if (!base64_decode(data, &r->data)) {
    return false;
  }
  if (r->kind == PublishKind::Close) {
    uint64_t code = 1000;
    if (get_uint64(obj, "code", &code) == FieldStatus::WrongType || code < 1000 || code > 4999) return false;
    r->code = static_cast<uint16_t>(code);
  }
  return true;
}

bool read_fields(const rapidjson::Value& obj, ChatRecord* r) {
  switch (r->type) {
    case RecordType::Join:
      if (!need_string(obj, "room", &r->room) || !need_string(obj, "conn", &r->conn) ||
          !need_string(obj, "user", &r->user) || !need_string(obj, "name", &r->name) ||
          !read_pid(obj, r))
        return false;
      switch (get_uint64(obj, "since", &r->since)) {
        case FieldStatus::Ok: r->has_since = true; break;
        case FieldStatus::Missing: break;
        case FieldStatus::WrongType: return false;
      }
      if (const auto f = obj.FindMember("foreign"); f != obj.MemberEnd()) {
        if (!f->value.IsBool()) return false;
        r->foreign_since = f->value.GetBool();
      }
      return true;
    case RecordType::Leave:
      return need_string(obj, "room", &r->room) && need_string(obj, "conn", &r->conn);
    case RecordType::Msg:
      if (!need_string(obj, "room", &r->room) || !need_string(obj, "text", &r->text) ||
          !opt_string(obj, "conn", &r->conn) || !opt_string(obj, "from", &r->from) || !read_cid(obj, r))
        return false;
      // A member's message names its connection; an API message its sender.
      if (r->conn.empty()) return !r->from.empty();
      return need_string(obj, "user", &r->user) && read_pid(obj, r);
    case RecordType::Direct:
      return need_string(obj, "conn", &r->conn) && need_string(obj, "from", &r->from) &&
             need_string(obj, "to", &r->to) && need_string(obj, "text", &r->text) && read_cid(obj, r);
    case RecordType::Gone: {
      int64_t by = 0;
      if (get_int64(obj, "by", &by) == FieldStatus::Ok) r->by = static_cast<long>(by);
      return read_pid(obj, r);
    }
    case RecordType::Sync:
      return read_pid(obj, r);
    case RecordType::Present:
      return read_members(obj, r);
    case RecordType::Publish:
      return read_publish(obj, r);
    case RecordType::PusherSubscribe:
    case RecordType::PusherLeave:
    case RecordType::PusherTerminate:
      return read_pusher(obj, r);
  }
  return false;
}

}  // namespace

std::string encode_record(const ChatRecord& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  write_field(w, "t", type_name(r.type));
  write_opt(w, "room", r.room);
  write_opt(w, "conn", r.conn);
  write_opt(w, "user", r.user);
  write_opt(w, "name", r.name);
  write_opt(w, "from", r.from);
  write_opt(w, "to", r.to);
  write_opt(w, "text", r.text);
  if (r.type == RecordType::Msg || r.type == RecordType::Direct) write_opt(w, "cid", r.cid);
  if (is_pusher(r.type)) {
    write_field(w, "ns", r.ns);
    write_opt(w, "ch", r.channel);
    write_opt(w, "d", r.data);
  }
  if (r.type == RecordType::Publish) {
    write_field(w, "ns", r.ns);
    write_field(w, "ch", r.channel);
    write_field(w, "k", kKindNames[static_cast<int>(r.kind)]);
    write_field(w, "d", raw_data(r.kind) ? r.data : base64_encode(r.data));
    if (r.kind == PublishKind::Close) {
      w.Key("code");
      w.Uint(r.code);
    }
  }
  if (r.type != RecordType::Leave && r.type != RecordType::Direct && r.type != RecordType::Present &&
      r.type != RecordType::Publish &&
      (r.type != RecordType::Msg || !r.conn.empty())) {
    w.Key("pid");
    w.Int64(r.pid);
  }
  if (r.type == RecordType::Gone && r.by != 0) {
    w.Key("by");
    w.Int64(r.by);
  }
  w.Key("ts");
  w.Int64(r.ts);
  if (r.has_since) {
    w.Key("since");
    w.Uint64(r.since);
  }
  if (r.type == RecordType::Join && r.foreign_since) {
    w.Key("foreign");
    w.Bool(true);
  }
  if (r.type == RecordType::Present) {
    w.Key("base");
    w.Uint64(r.base);
    w.Key("members");
    w.StartArray();
    for (const PresentMember& m : r.members) {
      w.StartObject();
      write_field(w, "room", m.room);
      write_field(w, "conn", m.conn);
      write_field(w, "user", m.user);
      write_field(w, "name", m.name);
      w.Key("pid");
      w.Int64(m.pid);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

bool parse_record(std::string_view payload, ChatRecord* r) {
  *r = ChatRecord();
  rapidjson::Document doc;
  bool is_object = false;
  if (!parse_json_object(payload, &doc, &is_object) || !is_object) return false;
  std::string t;
  if (get_string(doc, "t", &t) != FieldStatus::Ok) return false;
  bool known = false;
  for (const TypeName& n : kTypes) {
    if (t == n.name) {
      r->type = n.type;
      known = true;
    }
  }
  if (!known || get_int64(doc, "ts", &r->ts) != FieldStatus::Ok) return false;
  if (!read_fields(doc, r)) return false;
  // Rooms are map keys and go into every frame: never trust a record's
  // room name more than a client's.
  return r->room.empty() || is_valid_room_name(r->room);
}

}  // namespace wsb
