// The Pusher Channels HTTP API ("HTTP API reference"), without I/O: which
// endpoint a request is for, its parameters parsed and checked against the
// documented limits, and the response bodies rendered from plain structs
// the engine fills. Authentication is pusher_api_auth.h (check it first).
//
//   POST /apps/{app_id}/events                              -> {} or {"channels":{...}}
//   POST /apps/{app_id}/batch_events                        -> {} or {"batch":[...]}
//   GET  /apps/{app_id}/channels                            -> {"channels":{...}}
//   GET  /apps/{app_id}/channels/{channel}                  -> {"occupied":...}
//   GET  /apps/{app_id}/channels/{channel}/users            -> {"users":[{"id":...}]}
//   POST /apps/{app_id}/users/{user_id}/terminate_connections -> {}
//
// Errors are a status (400 bad request, 404 no such endpoint, 405 wrong
// method, 413 too large) and the JSON body {"error": message, "code": status}.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pusher/pusher_api_auth.h"

namespace wsb {

struct ApiError {
  int status = 200;
  std::string message;
  bool ok() const { return status == 200; }
};

enum class ApiRoute {
  Events,
  BatchEvents,
  Channels,
  Channel,
  ChannelUsers,
  TerminateUserConnections,
};

struct ApiTarget {
  ApiRoute route = ApiRoute::Events;
  std::string app_id;
  std::string channel;  // Channel, ChannelUsers: percent-decoded
  std::string user_id;  // TerminateUserConnections: percent-decoded
};

// path starts at "/apps/" (an adapter mounted under a prefix strips it
// here, but signs over the full path). On 405, *allow is the method to
// put in the Allow header.
ApiError route_api_request(std::string_view method, std::string_view path, ApiTarget* target,
                           std::string* allow);

// The documented limits ("event data ... limited to 10KB", "channels ...
// limited to 100", "up to 10 per call", event names of up to 200 characters).
struct ApiLimits {
  size_t max_event_name = 200;      // characters
  size_t max_data_bytes = 10240;    // bytes of the data string; over it: 413
  size_t max_channels = 100;        // per event; over it: 400
  size_t max_batch = 10;            // events per batch_events; over it: 400
  size_t max_body_bytes = 1 << 20;  // whole request body; over it: 413
};

struct InfoAttributes {
  bool user_count = false;
  bool subscription_count = false;
  bool cache = false;  // GET one channel only
  bool any() const { return user_count || subscription_count || cache; }
};

// One event to publish. data is what channel events carry: the request's
// string as is; a non-string JSON value (accepted for leniency; the
// official libraries always send a string) is re-serialized.
struct TriggerEvent {
  std::string name;
  std::string data;
  std::vector<std::string> channels;  // distinct, in request order
  std::string socket_id;              // the connection not to send to; "" = none
  InfoAttributes info;
};

ApiError parse_trigger(std::string_view body, const ApiLimits& limits, TriggerEvent* event);
// All or nothing: one bad event refuses the whole batch.
ApiError parse_batch(std::string_view body, const ApiLimits& limits,
                     std::vector<TriggerEvent>* events);

struct ChannelsQuery {
  std::string prefix;  // filter_by_prefix, "" = all
  InfoAttributes info;  // user_count needs a prefix starting with presence-
};
ApiError parse_channels_query(const std::vector<QueryParam>& params, ChannelsQuery* query);
// info for one channel: user_count on presence channels only, cache on cache
// channels only, subscription_count on any.
ApiError parse_channel_query(std::string_view channel, const std::vector<QueryParam>& params,
                             InfoAttributes* info);
ApiError check_users_request(std::string_view channel);      // presence channels only
ApiError check_terminate_request(std::string_view user_id);  // a valid user id

// What the engine reports about a channel.
struct ChannelInfo {
  std::string name;
  bool occupied = false;
  uint64_t subscription_count = 0;  // connections
  uint64_t user_count = 0;          // distinct users (presence)
  bool has_cached_event = false;    // cache channels: the last event is kept
  std::string cached_data;
  int64_t cache_ttl = 0;            // seconds left
};

std::string render_api_error(const ApiError& err);
// {"channels":{name:{attributes}}}; user_count is written for presence
// channels only.
std::string render_channels(const std::vector<ChannelInfo>& channels, bool with_user_count,
                            bool with_subscription_count);
// {"occupied":bool, requested attributes...}; cache is null when nothing is
// cached.
std::string render_channel(const ChannelInfo& channel, const InfoAttributes& info);
std::string render_users(const std::vector<std::string>& user_ids);
// POST events: "{}" unless info was asked for, then the channels published
// to with the applicable attributes.
std::string render_trigger_result(const std::vector<ChannelInfo>& channels,
                                  const InfoAttributes& info);
// POST batch_events: "{}" unless some event asked for info; then entry i is
// the attributes event i asked for, for its channel (infos[i]).
std::string render_batch_result(const std::vector<TriggerEvent>& events,
                                const std::vector<ChannelInfo>& infos);

}  // namespace wsb
