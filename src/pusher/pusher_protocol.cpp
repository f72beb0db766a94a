// Client frame parsing and the error table; the renderers are in
// pusher_frames.cpp.
#include "pusher/pusher_protocol.h"

#include "pusher/pusher_channel.h"
#include "pusher/pusher_json.h"

namespace wsb {
namespace {

namespace pj = pusher_json;

struct ErrorSpec {
  int code;
  int close_code;
  const char* message;
};

ErrorSpec spec(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidMessage: return {0, 0, "Invalid message"};
    case ErrorKind::InvalidData: return {0, 0, "Invalid data"};
    case ErrorKind::UnsupportedEvent: return {0, 0, "Unsupported event"};
    case ErrorKind::InvalidChannel: return {0, 0, "Invalid channel name"};
    case ErrorKind::ClientEventRejected:
      return {0, 0, "Client events are only accepted on private, encrypted and presence channels"};
    case ErrorKind::ClientEventTooLarge: return {0, 0, "Client event too large"};
    case ErrorKind::ClientEventsDisabled:
      return {0, 0, "Client events are not enabled for this app"};
    case ErrorKind::NotSubscribed: return {0, 0, "Not subscribed to this channel"};
    case ErrorKind::RateLimited: return {4301, 0, "Client event rejected due to rate limit"};
    case ErrorKind::SigninRejected: return {4009, 4009, "Sign-in rejected"};
    case ErrorKind::SigninTimeout: return {4009, 4009, "Connection not signed in in time"};
    case ErrorKind::AppNotFound: return {4001, 4001, "Application does not exist"};
    case ErrorKind::AppDisabled: return {4003, 4003, "Application disabled"};
    case ErrorKind::OverQuota: return {4004, 4004, "Application is over connection quota"};
    case ErrorKind::UnsupportedProtocol: return {4007, 4007, "Unsupported protocol version"};
    case ErrorKind::NoProtocol: return {4008, 4008, "No protocol version supplied"};
    case ErrorKind::Unauthorized: return {4009, 4009, "Connection is unauthorized"};
    case ErrorKind::OverCapacity: return {4100, 4100, "Over capacity"};
    case ErrorKind::GoingAway: return {4200, 4200, "Server going away, reconnect"};
    case ErrorKind::PongTimeout: return {4201, 4201, "Pong reply not received"};
  }
  return {0, 0, "Error"};
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool fail(PusherError* err, ErrorKind kind, std::string_view detail = {},
          std::string_view channel = {}) {
  *err = make_error(kind, detail, channel);
  return false;
}

// "data" of a pusher:* event: an object, or a string holding a JSON object.
// holder keeps the parsed string alive; *obj points into doc or holder.
bool data_object(const rapidjson::Document& doc, rapidjson::Document* holder,
                 const rapidjson::Value** obj) {
  const auto it = doc.FindMember("data");
  if (it == doc.MemberEnd()) return false;
  if (it->value.IsObject()) {
    *obj = &it->value;
    return true;
  }
  if (!it->value.IsString() || !pj::parse(pj::view(it->value), holder) || !holder->IsObject())
    return false;
  *obj = holder;
  return true;
}

bool required_string(const rapidjson::Value& obj, const char* key, std::string* out,
                     PusherError* err) {
  if (pj::get_string(obj, key, out) == pj::Field::Ok) return true;
  return fail(err, ErrorKind::InvalidData, std::string("data.") + key + " must be a string");
}

bool optional_string(const rapidjson::Value& obj, const char* key, std::string* out,
                     PusherError* err) {
  if (pj::get_string(obj, key, out) != pj::Field::WrongType) return true;
  return fail(err, ErrorKind::InvalidData, std::string("data.") + key + " must be a string");
}

bool parse_client_event(const rapidjson::Document& doc, const ParseLimits& limits,
                        PusherCommand* cmd, PusherError* err) {
  cmd->type = PusherCommandType::ClientEvent;
  if (pj::get_string(doc, "channel", &cmd->channel) != pj::Field::Ok)
    return fail(err, ErrorKind::InvalidData, "client events need a string \"channel\"");
  if (utf8_length(cmd->event) > limits.max_event_name)
    return fail(err, ErrorKind::ClientEventTooLarge,
                "event name over " + std::to_string(limits.max_event_name) + " characters",
                cmd->channel);
  const ChannelKind kind = channel_kind(cmd->channel);
  if (kind == ChannelKind::Invalid) return fail(err, ErrorKind::InvalidChannel, {}, cmd->channel);
  if (!allows_client_events(kind))
    return fail(err, ErrorKind::ClientEventRejected, {}, cmd->channel);
  const auto data = doc.FindMember("data");
  if (data != doc.MemberEnd()) {
    cmd->data_json = pj::to_json(data->value);
    if (data->value.IsString()) {
      cmd->data.assign(data->value.GetString(), data->value.GetStringLength());
    } else {
      cmd->data = cmd->data_json;
    }
  }
  if (cmd->data.size() > limits.max_client_data)
    return fail(err, ErrorKind::ClientEventTooLarge,
                "data over " + std::to_string(limits.max_client_data) + " bytes", cmd->channel);
  return true;
}

}  // namespace

PusherError make_error(ErrorKind kind, std::string_view detail, std::string_view channel) {
  const ErrorSpec s = spec(kind);
  PusherError err;
  err.code = s.code;
  err.close_code = s.close_code;
  err.message = s.message;
  if (!detail.empty()) err.message.append(": ").append(detail);
  err.channel.assign(channel);
  return err;
}

bool check_protocol_version(bool present, std::string_view value, PusherError* err) {
  if (!present) return fail(err, ErrorKind::NoProtocol);
  if (value == "5" || value == "6" || value == "7") return true;
  return fail(err, ErrorKind::UnsupportedProtocol, "this server speaks versions 5 to 7");
}

bool parse_client_frame(std::string_view text, const ParseLimits& limits, PusherCommand* cmd,
                        PusherError* err) {
  *cmd = PusherCommand();
  rapidjson::Document doc;
  if (!pj::parse(text, &doc) || !doc.IsObject())
    return fail(err, ErrorKind::InvalidMessage, "expected a JSON object");
  if (pj::get_string(doc, "event", &cmd->event) != pj::Field::Ok)
    return fail(err, ErrorKind::InvalidMessage, "\"event\" must be a string");
  const std::string& event = cmd->event;

  if (event == "pusher:ping") {
    cmd->type = PusherCommandType::Ping;
    return true;
  }
  if (event == "pusher:pong") {
    cmd->type = PusherCommandType::Pong;
    return true;
  }
  if (starts_with(event, "client-")) return parse_client_event(doc, limits, cmd, err);

  const bool subscribe = event == "pusher:subscribe";
  const bool unsubscribe = event == "pusher:unsubscribe";
  const bool signin = event == "pusher:signin";
  if (!subscribe && !unsubscribe && !signin) {
    // Echo the name only when it is short: the message is for debugging.
    return fail(err, ErrorKind::UnsupportedEvent,
                utf8_length(event) <= limits.max_event_name ? std::string_view(event)
                                                            : std::string_view("(long name)"));
  }
  rapidjson::Document holder;
  const rapidjson::Value* data = nullptr;
  if (!data_object(doc, &holder, &data))
    return fail(err, ErrorKind::InvalidData, "\"data\" must be an object");

  if (signin) {
    cmd->type = PusherCommandType::Signin;
    return required_string(*data, "auth", &cmd->auth, err) &&
           required_string(*data, "user_data", &cmd->user_data, err);
  }
  cmd->type = subscribe ? PusherCommandType::Subscribe : PusherCommandType::Unsubscribe;
  if (!required_string(*data, "channel", &cmd->channel, err)) return false;
  if (unsubscribe) return true;
  return optional_string(*data, "auth", &cmd->auth, err) &&
         optional_string(*data, "channel_data", &cmd->channel_data, err);
}

}  // namespace wsb
