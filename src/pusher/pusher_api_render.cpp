// HTTP API response bodies (declared in pusher_api.h).
#include "pusher/pusher_api.h"
#include "pusher/pusher_channel.h"
#include "pusher/pusher_json.h"

namespace wsb {
namespace {

namespace pj = pusher_json;

// The attributes of one channel as the events/batch responses list them:
// only what was asked for and applies to the channel's kind.
void write_attributes(pj::Writer& w, const ChannelInfo& c, bool user_count,
                      bool subscription_count) {
  w.StartObject();
  if (user_count && is_presence(channel_kind(c.name))) {
    w.Key("user_count");
    w.Uint64(c.user_count);
  }
  if (subscription_count) {
    w.Key("subscription_count");
    w.Uint64(c.subscription_count);
  }
  w.EndObject();
}

}  // namespace

std::string render_api_error(const ApiError& err) {
  rapidjson::StringBuffer buf;
  pj::Writer w(buf);
  w.StartObject();
  pj::write_field(w, "error", err.message);
  w.Key("code");
  w.Int(err.status);
  w.EndObject();
  return pj::take(buf);
}

std::string render_channels(const std::vector<ChannelInfo>& channels, bool with_user_count,
                            bool with_subscription_count) {
  rapidjson::StringBuffer buf;
  pj::Writer w(buf);
  w.StartObject();
  w.Key("channels");
  w.StartObject();
  for (const ChannelInfo& c : channels) {
    pj::write_string(w, c.name);
    write_attributes(w, c, with_user_count, with_subscription_count);
  }
  w.EndObject();
  w.EndObject();
  return pj::take(buf);
}

std::string render_channel(const ChannelInfo& channel, const InfoAttributes& info) {
  rapidjson::StringBuffer buf;
  pj::Writer w(buf);
  w.StartObject();
  w.Key("occupied");
  w.Bool(channel.occupied);
  if (info.user_count) {
    w.Key("user_count");
    w.Uint64(channel.user_count);
  }
  if (info.subscription_count) {
    w.Key("subscription_count");
    w.Uint64(channel.subscription_count);
  }
  if (info.cache) {
    w.Key("cache");
    if (channel.has_cached_event) {
      w.StartObject();
      pj::write_field(w, "data", channel.cached_data);
      w.Key("ttl");
      w.Int64(channel.cache_ttl);
      w.EndObject();
    } else {
      w.Null();
    }
  }
  w.EndObject();
  return pj::take(buf);
}

std::string render_users(const std::vector<std::string>& user_ids) {
  rapidjson::StringBuffer buf;
  pj::Writer w(buf);
  w.StartObject();
  w.Key("users");
  w.StartArray();
  for (const std::string& id : user_ids) {
    w.StartObject();
    pj::write_field(w, "id", id);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return pj::take(buf);
}

std::string render_trigger_result(const std::vector<ChannelInfo>& channels,
                                  const InfoAttributes& info) {
  if (!info.any()) return "{}";
  return render_channels(channels, info.user_count, info.subscription_count);
}

std::string render_batch_result(const std::vector<TriggerEvent>& events,
                                const std::vector<ChannelInfo>& infos) {
  bool asked = false;
  for (const TriggerEvent& e : events) asked = asked || e.info.any();
  if (!asked) return "{}";
  rapidjson::StringBuffer buf;
  pj::Writer w(buf);
  w.StartObject();
  w.Key("batch");
  w.StartArray();
  for (size_t i = 0; i < events.size(); ++i) {
    if (i < infos.size()) {
      write_attributes(w, infos[i], events[i].info.user_count, events[i].info.subscription_count);
    } else {
      w.StartObject();
      w.EndObject();
    }
  }
  w.EndArray();
  w.EndObject();
  return pj::take(buf);
}

}  // namespace wsb
