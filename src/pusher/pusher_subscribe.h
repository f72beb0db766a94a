// The decisions on pusher:subscribe and pusher:signin that need no engine
// state: is the name valid, is the signature right, who is the presence
// member, may this connection have this user channel. The engine then adds
// what only it knows (already subscribed, member limits, client events
// enabled) and sends the frames from pusher_protocol.h.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "pusher/pusher_channel.h"
#include "pusher/pusher_protocol.h"

namespace wsb {

// The identity a connection signed in with (pusher:signin).
struct SignedInUser {
  std::string id;
  std::string user_data;       // the JSON string as signed, for signin_success
  std::string user_info_json;  // compact JSON of user_data's "user_info", "null" if none
};

struct MemberLimits {
  // "1KB limit for user object" (presence channels page): applied to the
  // compact JSON of user_info.
  size_t max_user_info_bytes = 1024;
};

// A refused subscription: send render_subscription_error(channel, type,
// message, status). type is "AuthError" (status 401: missing or wrong
// signature; 400: unusable channel_data or presence without a user; 403: a
// user channel that is not this connection's), "InvalidChannel" (400) or
// "LimitReached" (413: user_info too large).
struct SubscriptionError {
  std::string type;
  std::string message;
  int status = 0;
};

struct SubscribeDecision {
  bool ok = false;
  ChannelKind kind = ChannelKind::Invalid;
  PresenceMember member;    // presence channels: the member joining
  SubscriptionError error;  // when !ok
};

// cmd is a parsed pusher:subscribe; user the connection's signed-in user or
// nullptr. Presence: channel_data (signed with the subscription) gives the
// member; without channel_data a signed-in connection joins as its user
// (pusher-js then sends no channel_data and the auth covers socket_id and
// channel only).
SubscribeDecision check_subscribe(const PusherCommand& cmd, std::string_view key,
                                  std::string_view secret, std::string_view socket_id,
                                  const SignedInUser* user, const MemberLimits& limits = {});

struct SigninDecision {
  bool ok = false;
  SignedInUser user;
  PusherError error;  // when !ok: SigninRejected (send it, then close 4009)
};

// cmd is a parsed pusher:signin; current the identity the connection already
// has (nullptr if none): signing in again as the same user refreshes the
// user data, as another user is refused. user_data must be a JSON object
// with a non-empty string "id"; "watchlist" is accepted and ignored.
SigninDecision check_signin(const PusherCommand& cmd, std::string_view key,
                            std::string_view secret, std::string_view socket_id,
                            const SignedInUser* current, const MemberLimits& limits = {});

}  // namespace wsb
