// Server -> client frames of the Pusher protocol (declared in
// pusher_protocol.h). Where the protocol says "data" is a JSON-encoded
// string, the inner object is rendered first and written as a string.
#include "pusher/pusher_json.h"
#include "pusher/pusher_protocol.h"

namespace wsb {
namespace {

namespace pj = pusher_json;

// {"event":..., ["channel":...,] then whatever the caller adds}.
class Frame {
 public:
  explicit Frame(std::string_view event, std::string_view channel = {}) : w_(buf_) {
    w_.StartObject();
    pj::write_field(w_, "event", event);
    if (!channel.empty()) pj::write_field(w_, "channel", channel);
  }
  pj::Writer& writer() { return w_; }
  void data_string(std::string_view s) { pj::write_field(w_, "data", s); }
  void data_raw(std::string_view json) {
    w_.Key("data");
    pj::write_raw(w_, json);
  }
  std::string finish() {
    w_.EndObject();
    return pj::take(buf_);
  }

 private:
  rapidjson::StringBuffer buf_;
  pj::Writer w_;
};

// A small JSON object built with a writer, for "data" strings.
class Inner {
 public:
  Inner() : w_(buf_) { w_.StartObject(); }
  pj::Writer& writer() { return w_; }
  std::string finish() {
    w_.EndObject();
    return pj::take(buf_);
  }

 private:
  rapidjson::StringBuffer buf_;
  pj::Writer w_;
};

}  // namespace

std::string render_connection_established(std::string_view socket_id, int activity_timeout_s) {
  Inner inner;
  pj::write_field(inner.writer(), "socket_id", socket_id);
  inner.writer().Key("activity_timeout");
  inner.writer().Int(activity_timeout_s);
  Frame f("pusher:connection_established");
  f.data_string(inner.finish());
  return f.finish();
}

std::string render_ping() {
  Frame f("pusher:ping");
  f.data_raw("{}");
  return f.finish();
}

std::string render_pong() {
  Frame f("pusher:pong");
  f.data_raw("{}");
  return f.finish();
}

std::string render_error(const PusherError& err) {
  Frame f("pusher:error", err.channel);
  pj::Writer& w = f.writer();
  w.Key("data");
  w.StartObject();
  w.Key("code");
  if (err.code == 0) {
    w.Null();
  } else {
    w.Int(err.code);
  }
  pj::write_field(w, "message", err.message);
  w.EndObject();
  return f.finish();
}

std::string render_subscription_succeeded(std::string_view channel) {
  Frame f("pusher_internal:subscription_succeeded", channel);
  f.data_string("{}");
  return f.finish();
}

std::string render_presence_subscription_succeeded(std::string_view channel,
                                                   const std::vector<PresenceMember>& members) {
  Inner inner;
  pj::Writer& w = inner.writer();
  w.Key("presence");
  w.StartObject();
  w.Key("ids");
  w.StartArray();
  for (const PresenceMember& m : members) pj::write_string(w, m.user_id);
  w.EndArray();
  w.Key("hash");
  w.StartObject();
  for (const PresenceMember& m : members) {
    pj::write_string(w, m.user_id);
    pj::write_raw(w, m.user_info_json.empty() ? "null" : m.user_info_json);
  }
  w.EndObject();
  w.Key("count");
  w.Uint64(members.size());
  w.EndObject();
  Frame f("pusher_internal:subscription_succeeded", channel);
  f.data_string(inner.finish());
  return f.finish();
}

std::string render_subscription_error(std::string_view channel, std::string_view type,
                                      std::string_view error, int status) {
  Frame f("pusher:subscription_error", channel);
  pj::Writer& w = f.writer();
  w.Key("data");
  w.StartObject();
  pj::write_field(w, "type", type);
  pj::write_field(w, "error", error);
  w.Key("status");
  w.Int(status);
  w.EndObject();
  return f.finish();
}

std::string render_member_added(std::string_view channel, const PresenceMember& member) {
  Inner inner;
  pj::write_field(inner.writer(), "user_id", member.user_id);
  inner.writer().Key("user_info");
  pj::write_raw(inner.writer(), member.user_info_json.empty() ? "null" : member.user_info_json);
  Frame f("pusher_internal:member_added", channel);
  f.data_string(inner.finish());
  return f.finish();
}

std::string render_member_removed(std::string_view channel, std::string_view user_id) {
  Inner inner;
  pj::write_field(inner.writer(), "user_id", user_id);
  Frame f("pusher_internal:member_removed", channel);
  f.data_string(inner.finish());
  return f.finish();
}

std::string render_cache_miss(std::string_view channel) {
  Frame f("pusher:cache_miss", channel);
  return f.finish();
}

std::string render_signin_success(std::string_view user_data) {
  Frame f("pusher:signin_success");
  pj::Writer& w = f.writer();
  w.Key("data");
  w.StartObject();
  pj::write_field(w, "user_data", user_data);
  w.EndObject();
  return f.finish();
}

std::string render_channel_event(std::string_view event, std::string_view channel,
                                 std::string_view data, std::string_view user_id) {
  Frame f(event, channel);
  f.data_string(data);
  if (!user_id.empty()) pj::write_field(f.writer(), "user_id", user_id);
  return f.finish();
}

}  // namespace wsb
