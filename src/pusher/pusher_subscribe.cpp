#include "pusher/pusher_subscribe.h"

#include "pusher/pusher_auth.h"
#include "pusher/pusher_json.h"

namespace wsb {
namespace {

namespace pj = pusher_json;

SubscribeDecision refuse(ChannelKind kind, const char* type, std::string message, int status) {
  SubscribeDecision d;
  d.kind = kind;
  d.error = SubscriptionError{type, std::move(message), status};
  return d;
}

std::string auth_failure(AuthCheck check, std::string_view string_to_sign) {
  switch (check) {
    case AuthCheck::Malformed: return "Invalid auth: expected \"<key>:<signature>\"";
    case AuthCheck::WrongKey: return "Invalid auth: the key is not this app's key";
    default:
      // The signed string holds nothing secret (the client sent all of it)
      // and saying what was expected is what makes a wrong signature fixable.
      return "Invalid signature: expected the HMAC-SHA256 hex digest of \"" +
             std::string(string_to_sign) + "\"";
  }
}

// user_info as compact JSON ("null" if absent) within the size limit.
bool user_info_of(const rapidjson::Value& obj, const MemberLimits& limits, std::string* out,
                  std::string* why) {
  const auto it = obj.FindMember("user_info");
  *out = it == obj.MemberEnd() ? "null" : pj::to_json(it->value);
  if (out->size() <= limits.max_user_info_bytes) return true;
  *why = "user_info is over " + std::to_string(limits.max_user_info_bytes) + " bytes";
  return false;
}

// channel_data -> member. user_id may be a string or an integer (the
// docs' own example signs {"user_id":10,...}); integers become their
// decimal text so ids compare as strings everywhere.
enum class MemberResult { Ok, Invalid, TooLarge };
MemberResult member_of(std::string_view channel_data, const MemberLimits& limits,
                       PresenceMember* m, std::string* why) {
  rapidjson::Document doc;
  if (!pj::parse(channel_data, &doc) || !doc.IsObject()) {
    *why = "channel_data must be a JSON object";
    return MemberResult::Invalid;
  }
  const auto id = doc.FindMember("user_id");
  if (id != doc.MemberEnd() && id->value.IsString()) {
    m->user_id.assign(id->value.GetString(), id->value.GetStringLength());
  } else if (id != doc.MemberEnd() && id->value.IsInt64()) {
    m->user_id = std::to_string(id->value.GetInt64());
  } else if (id != doc.MemberEnd() && id->value.IsUint64()) {
    m->user_id = std::to_string(id->value.GetUint64());
  } else {
    *why = "channel_data.user_id must be a string or an integer";
    return MemberResult::Invalid;
  }
  if (!is_valid_user_id(m->user_id)) {
    *why = "channel_data.user_id must be 1 to 128 characters without control characters";
    return MemberResult::Invalid;
  }
  return user_info_of(doc, limits, &m->user_info_json, why) ? MemberResult::Ok
                                                             : MemberResult::TooLarge;
}

SigninDecision reject_signin(std::string_view detail) {
  SigninDecision d;
  d.error = make_error(ErrorKind::SigninRejected, detail);
  return d;
}

}  // namespace

SubscribeDecision check_subscribe(const PusherCommand& cmd, std::string_view key,
                                  std::string_view secret, std::string_view socket_id,
                                  const SignedInUser* user, const MemberLimits& limits) {
  const ChannelKind kind = channel_kind(cmd.channel);
  if (kind == ChannelKind::Invalid) {
    return refuse(kind, "InvalidChannel",
                  "Invalid channel name: at most 164 characters from A-Z a-z 0-9 _ - = @ , . ;",
                  400);
  }
  if (kind == ChannelKind::ServerToUser) {
    if (user == nullptr || user->id != server_to_user_id(cmd.channel))
      return refuse(kind, "AuthError",
                    "A user channel is only for the connection signed in as that user", 403);
    SubscribeDecision d;
    d.ok = true;
    d.kind = kind;
    return d;
  }
  SubscribeDecision d;
  d.kind = kind;
  if (!needs_auth(kind)) {
    d.ok = true;
    return d;
  }
  if (cmd.auth.empty()) return refuse(kind, "AuthError", "Missing auth for this channel", 401);
  const bool member_from_user = is_presence(kind) && cmd.channel_data.empty();
  if (member_from_user && user == nullptr) {
    return refuse(kind, "AuthError",
                  "Presence channels need channel_data or a signed-in connection", 400);
  }
  // The signature first: nothing in channel_data is looked at before the
  // app server is known to have written it.
  const AuthCheck check =
      check_channel_auth(key, secret, socket_id, cmd.channel, cmd.channel_data, cmd.auth);
  if (check != AuthCheck::Ok) {
    return refuse(kind, "AuthError",
                  auth_failure(check, channel_string_to_sign(socket_id, cmd.channel,
                                                             cmd.channel_data)),
                  401);
  }
  if (is_presence(kind)) {
    if (member_from_user) {
      d.member.user_id = user->id;
      d.member.user_info_json = user->user_info_json.empty() ? "null" : user->user_info_json;
    } else {
      std::string why;
      const MemberResult r = member_of(cmd.channel_data, limits, &d.member, &why);
      if (r == MemberResult::Invalid) return refuse(kind, "AuthError", why, 400);
      if (r == MemberResult::TooLarge) return refuse(kind, "LimitReached", why, 413);
    }
  }
  d.ok = true;
  return d;
}

SigninDecision check_signin(const PusherCommand& cmd, std::string_view key,
                            std::string_view secret, std::string_view socket_id,
                            const SignedInUser* current, const MemberLimits& limits) {
  const AuthCheck check = check_user_auth(key, secret, socket_id, cmd.user_data, cmd.auth);
  if (check != AuthCheck::Ok)
    return reject_signin(auth_failure(check, user_string_to_sign(socket_id, cmd.user_data)));
  rapidjson::Document doc;
  if (!pj::parse(cmd.user_data, &doc) || !doc.IsObject())
    return reject_signin("user_data must be a JSON object");
  SigninDecision d;
  if (pj::get_string(doc, "id", &d.user.id) != pj::Field::Ok || !is_valid_user_id(d.user.id))
    return reject_signin("user_data.id must be a string of 1 to 128 characters");
  if (current != nullptr && current->id != d.user.id)
    return reject_signin("the connection is already signed in as another user");
  std::string why;
  if (!user_info_of(doc, limits, &d.user.user_info_json, &why)) return reject_signin(why);
  d.user.user_data = cmd.user_data;
  d.ok = true;
  return d;
}

}  // namespace wsb
