// HTTP API routing and request parsing; the response bodies are in
// pusher_api_render.cpp.
#include "pusher/pusher_api.h"

#include <algorithm>

#include "pusher/pusher_auth.h"
#include "pusher/pusher_channel.h"
#include "pusher/pusher_json.h"

namespace wsb {
namespace {

namespace pj = pusher_json;

constexpr std::string_view kAppsPrefix = "/apps/";

ApiError error(int status, std::string message) { return ApiError{status, std::move(message)}; }

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path = path.substr(slash + 1);
    if (path.empty()) parts.emplace_back();  // a trailing slash is an empty segment
  }
  return parts;
}

ApiError parse_info(std::string_view list, bool allow_cache, InfoAttributes* info) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (name.empty()) continue;
    if (name == "user_count") {
      info->user_count = true;
    } else if (name == "subscription_count") {
      info->subscription_count = true;
    } else if (name == "cache" && allow_cache) {
      info->cache = true;
    } else {
      return error(400, "Unknown info attribute: " + std::string(name));
    }
  }
  return {};
}

ApiError parse_event(const rapidjson::Value& obj, bool batch_item, const ApiLimits& limits,
                     TriggerEvent* ev) {
  if (!obj.IsObject()) return error(400, "An event must be a JSON object");
  if (pj::get_string(obj, "name", &ev->name) != pj::Field::Ok || ev->name.empty())
    return error(400, "\"name\" must be a non-empty string");
  if (utf8_length(ev->name) > limits.max_event_name)
    return error(400, "Event name over " + std::to_string(limits.max_event_name) + " characters");
  // pusher_internal:* drives the client's own state machine (members,
  // subscription state): not something to publish.
  if (ev->name.rfind("pusher_internal:", 0) == 0)
    return error(400, "Event names starting with pusher_internal: are reserved");

  const auto data = obj.FindMember("data");
  if (data == obj.MemberEnd()) return error(400, "\"data\" is required");
  ev->data = data->value.IsString() ? std::string(pj::view(data->value)) : pj::to_json(data->value);
  if (ev->data.size() > limits.max_data_bytes)
    return error(413, "Event data over " + std::to_string(limits.max_data_bytes) + " bytes");

  const auto channels = obj.FindMember("channels");
  const bool has_channels = channels != obj.MemberEnd() && !channels->value.IsNull();
  std::string single;
  const pj::Field channel = pj::get_string(obj, "channel", &single);
  if (channel == pj::Field::WrongType) return error(400, "\"channel\" must be a string");
  if (batch_item && channel != pj::Field::Ok)
    return error(400, "Each batch event needs a string \"channel\"");
  if (has_channels && (batch_item || channel == pj::Field::Ok))
    return error(400, "Give either \"channel\" or \"channels\", not both");
  if (has_channels) {
    if (!channels->value.IsArray() || channels->value.Empty())
      return error(400, "\"channels\" must be a non-empty array of strings");
    if (channels->value.Size() > limits.max_channels)
      return error(400, "Over " + std::to_string(limits.max_channels) + " channels");
    for (const auto& c : channels->value.GetArray()) {
      if (!c.IsString()) return error(400, "\"channels\" must be a non-empty array of strings");
      ev->channels.emplace_back(pj::view(c));
    }
  } else if (channel == pj::Field::Ok) {
    ev->channels.push_back(std::move(single));
  } else {
    return error(400, "\"channels\" or \"channel\" is required");
  }
  for (const std::string& c : ev->channels) {
    if (!is_valid_channel_name(c)) return error(400, "Invalid channel name: " + c);
  }
  // Listing a channel twice must not deliver the event twice.
  std::vector<std::string> unique;
  for (std::string& c : ev->channels) {
    if (std::find(unique.begin(), unique.end(), c) == unique.end()) unique.push_back(std::move(c));
  }
  ev->channels = std::move(unique);

  const pj::Field socket = pj::get_string(obj, "socket_id", &ev->socket_id);
  if (socket == pj::Field::WrongType ||
      (socket == pj::Field::Ok && !is_valid_socket_id(ev->socket_id)))
    return error(400, "\"socket_id\" must look like 1234.5678");
  std::string info;
  const pj::Field has_info = pj::get_string(obj, "info", &info);
  if (has_info == pj::Field::WrongType) return error(400, "\"info\" must be a string");
  return parse_info(info, false, &ev->info);
}

ApiError parse_body(std::string_view body, const ApiLimits& limits, rapidjson::Document* doc) {
  if (body.size() > limits.max_body_bytes)
    return error(413, "Request body over " + std::to_string(limits.max_body_bytes) + " bytes");
  if (!pj::parse(body, doc) || !doc->IsObject())
    return error(400, "The body must be a JSON object");
  return {};
}

}  // namespace

ApiError route_api_request(std::string_view method, std::string_view path, ApiTarget* target,
                           std::string* allow) {
  *target = ApiTarget();
  if (path.substr(0, kAppsPrefix.size()) != kAppsPrefix) return error(404, "Not found");
  const std::vector<std::string_view> p = split_path(path.substr(kAppsPrefix.size()));
  for (std::string_view seg : p) {
    if (seg.empty()) return error(404, "Not found");
  }
  if (p.size() < 2) return error(404, "Not found");
  target->app_id.assign(p[0]);
  const char* want = nullptr;
  bool decoded = true;
  if (p.size() == 2 && p[1] == "events") {
    target->route = ApiRoute::Events;
    want = "POST";
  } else if (p.size() == 2 && p[1] == "batch_events") {
    target->route = ApiRoute::BatchEvents;
    want = "POST";
  } else if (p.size() == 2 && p[1] == "channels") {
    target->route = ApiRoute::Channels;
    want = "GET";
  } else if ((p.size() == 3 || (p.size() == 4 && p[3] == "users")) && p[1] == "channels") {
    target->route = p.size() == 3 ? ApiRoute::Channel : ApiRoute::ChannelUsers;
    decoded = percent_decode(p[2], false, &target->channel);
    want = "GET";
  } else if (p.size() == 4 && p[1] == "users" && p[3] == "terminate_connections") {
    target->route = ApiRoute::TerminateUserConnections;
    decoded = percent_decode(p[2], false, &target->user_id);
    want = "POST";
  } else {
    return error(404, "Not found");
  }
  if (!decoded) return error(400, "Bad %-escape in the path");
  if (method != want) {
    allow->assign(want);
    return error(405, "Method not allowed, use " + std::string(want));
  }
  return {};
}

ApiError parse_trigger(std::string_view body, const ApiLimits& limits, TriggerEvent* event) {
  *event = TriggerEvent();
  rapidjson::Document doc;
  ApiError e = parse_body(body, limits, &doc);
  if (!e.ok()) return e;
  return parse_event(doc, false, limits, event);
}

ApiError parse_batch(std::string_view body, const ApiLimits& limits,
                     std::vector<TriggerEvent>* events) {
  events->clear();
  rapidjson::Document doc;
  ApiError e = parse_body(body, limits, &doc);
  if (!e.ok()) return e;
  const auto batch = doc.FindMember("batch");
  if (batch == doc.MemberEnd() || !batch->value.IsArray())
    return error(400, "\"batch\" must be an array of events");
  if (batch->value.Size() > limits.max_batch)
    return error(400, "Over " + std::to_string(limits.max_batch) + " events in one batch");
  std::vector<TriggerEvent> parsed(batch->value.Size());
  for (rapidjson::SizeType i = 0; i < batch->value.Size(); ++i) {
    e = parse_event(batch->value[i], true, limits, &parsed[i]);
    if (!e.ok()) {
      e.message = "batch[" + std::to_string(i) + "]: " + e.message;
      return e;
    }
  }
  *events = std::move(parsed);
  return {};
}

ApiError parse_channels_query(const std::vector<QueryParam>& params, ChannelsQuery* query) {
  *query = ChannelsQuery();
  if (const std::string* prefix = find_param(params, "filter_by_prefix")) query->prefix = *prefix;
  if (const std::string* info = find_param(params, "info")) {
    ApiError e = parse_info(*info, false, &query->info);
    if (!e.ok()) return e;
  }
  if (query->info.user_count && query->prefix.rfind("presence-", 0) != 0)
    return error(400, "user_count needs filter_by_prefix starting with presence-");
  return {};
}

ApiError parse_channel_query(std::string_view channel, const std::vector<QueryParam>& params,
                             InfoAttributes* info) {
  *info = InfoAttributes();
  const ChannelKind kind = channel_kind(channel);
  if (kind == ChannelKind::Invalid) return error(400, "Invalid channel name");
  if (const std::string* list = find_param(params, "info")) {
    ApiError e = parse_info(*list, true, info);
    if (!e.ok()) return e;
  }
  if (info->user_count && !is_presence(kind))
    return error(400, "user_count is only available for presence channels");
  if (info->cache && !is_cache(kind))
    return error(400, "cache is only available for cache channels");
  return {};
}

ApiError check_users_request(std::string_view channel) {
  const ChannelKind kind = channel_kind(channel);
  if (kind == ChannelKind::Invalid) return error(400, "Invalid channel name");
  if (!is_presence(kind)) return error(400, "Only presence channels have users");
  return {};
}

ApiError check_terminate_request(std::string_view user_id) {
  if (!is_valid_user_id(user_id)) return error(400, "Invalid user id");
  return {};
}

}  // namespace wsb
