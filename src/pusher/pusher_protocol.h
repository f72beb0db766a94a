// The Pusher Channels protocol, version 7, as frames: client frames parsed
// into commands, and the server frames rendered from plain values. No I/O
// and no engine state: the connection adapter feeds text in and sends the
// strings out; a frame meant for many receivers is rendered once and shared
// (wrap it with make_frame()).
//
// Envelope (both directions): {"event": name, "channel"?: name, "data"?: ...}.
// The server sends "data" as a JSON-encoded *string* where the protocol says
// so (connection_established, subscription_succeeded, member_added/removed,
// channel events) and as an object where it says so (pusher:error,
// pusher:signin_success); pusher-js accepts both but other clients do not.
// See docs/pusher.md for the full list and the error policy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wsb {

// ---- Errors ---------------------------------------------------------------

// Every error the adapter can answer with. Per-message problems leave the
// connection open and carry no code (Pusher itself sends "code": null for
// them); connection-level ones close with the protocol's 4000-4299 codes
// (4000-4099: do not reconnect unchanged, 4100-4199: reconnect after a
// back-off, 4200-4299: reconnect at once).
enum class ErrorKind {
  InvalidMessage,        // not JSON, not an object, no string "event"
  InvalidData,           // "data" or one of its fields has the wrong type or is missing
  UnsupportedEvent,      // an event name the server does not handle
  InvalidChannel,        // a channel name outside the naming rules
  ClientEventRejected,   // client-* on a channel that does not allow it
  ClientEventTooLarge,   // event name or data over the limits
  ClientEventsDisabled,  // the app does not accept client events
  NotSubscribed,         // client-* on a channel this connection is not in
  RateLimited,           // 4301, connection kept
  SigninRejected,        // 4009, closes: a forged or malformed user identity
  SigninTimeout,         // 4009, closes: the app requires signin and none came
  AppNotFound,           // 4001, closes
  AppDisabled,           // 4003, closes
  OverQuota,             // 4004, closes
  UnsupportedProtocol,   // 4007, closes
  NoProtocol,            // 4008, closes
  Unauthorized,          // 4009, closes (e.g. terminate_connections)
  OverCapacity,          // 4100, closes
  GoingAway,             // 4200, closes: server stopping or restarting
  PongTimeout,           // 4201, closes
};

struct PusherError {
  int code = 0;        // "code" in pusher:error; 0 renders as null
  std::string message;
  int close_code = 0;  // WebSocket close code after the frame; 0 = keep open
  std::string channel;  // set when the error concerns one channel
};

// The error for kind; detail (if any) is appended to the message.
PusherError make_error(ErrorKind kind, std::string_view detail = {},
                       std::string_view channel = {});

// The "protocol" query parameter of the connection URL. Versions 5-7 speak
// what this file implements (6 and 7 only renamed things server-side).
// Ok when supported; else the error to send and close with.
bool check_protocol_version(bool present, std::string_view value, PusherError* err);

// ---- Client frames --------------------------------------------------------

enum class PusherCommandType { Subscribe, Unsubscribe, Ping, Pong, Signin, ClientEvent };

// (Named PusherCommand, not ClientCommand: the chat protocol owns that name
// in this namespace.)
struct PusherCommand {
  PusherCommandType type = PusherCommandType::Ping;
  std::string channel;       // Subscribe, Unsubscribe, ClientEvent
  std::string auth;          // Subscribe ("" for public channels), Signin
  std::string channel_data;  // Subscribe: the JSON-encoded string as sent, "" if none
  std::string user_data;     // Signin: the JSON-encoded string as sent
  std::string event;         // the event name as sent (client-... for ClientEvent)
  std::string data;          // ClientEvent: what is relayed as "data" (see below)
  std::string data_json;     // ClientEvent: the data as compact JSON, "" if absent
};

struct ParseLimits {
  size_t max_event_name = 200;       // characters
  size_t max_client_data = 10240;    // bytes of the relayed data string
};

// Parses one text message. pusher:* events take "data" as an object or as a
// JSON-encoded string holding one (pusher-js sends objects, some clients
// strings); inside it, fields must have their documented types (a JSON null
// counts as absent for optional fields). client-* events need a "channel"
// whose kind allows client events; their data may be any JSON value and is
// relayed as a string: a JSON string as is, anything else re-serialized
// (the protocol's channel events carry data as a string; pusher-js parses it
// back, so listeners see the same value). On false, *err is the pusher:error
// to send (these never close the connection).
bool parse_client_frame(std::string_view text, const ParseLimits& limits, PusherCommand* cmd,
                        PusherError* err);

// ---- Server frames --------------------------------------------------------

struct PresenceMember {
  std::string user_id;
  std::string user_info_json = "null";  // compact JSON of user_info
};

std::string render_connection_established(std::string_view socket_id, int activity_timeout_s);
std::string render_ping();
std::string render_pong();
std::string render_error(const PusherError& err);
// Non-presence channels: data is the string "{}".
std::string render_subscription_succeeded(std::string_view channel);
// data = {"presence":{"ids":[...],"hash":{id: user_info},"count":n}} as a
// string; members must be distinct users (one entry per user id).
std::string render_presence_subscription_succeeded(std::string_view channel,
                                                   const std::vector<PresenceMember>& members);
// What pusher-js emits for failed client-side authorization, so the app's
// pusher:subscription_error handlers see the same shape: data {type, error,
// status} with status an HTTP status.
std::string render_subscription_error(std::string_view channel, std::string_view type,
                                      std::string_view error, int status);
std::string render_member_added(std::string_view channel, const PresenceMember& member);
std::string render_member_removed(std::string_view channel, std::string_view user_id);
std::string render_cache_miss(std::string_view channel);
// data {"user_data": the string the client signed in with}.
std::string render_signin_success(std::string_view user_data);
// A channel event: data is always sent as a string. user_id only for client
// events on presence channels (the sender's user id), else leave it empty.
std::string render_channel_event(std::string_view event, std::string_view channel,
                                 std::string_view data, std::string_view user_id = {});

}  // namespace wsb
