// The HTTP API without I/O: routing, request bodies and queries against the
// documented limits, and response bodies. The request bodies are the ones
// pusher-http-node 5.3.4 sent (see test_pusher_api_auth.cpp).
#include <string>
#include <vector>

#include "pusher/pusher_api.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

ApiTarget target;
std::string allow;

ApiError route(const std::string& method, const std::string& path) {
  allow.clear();
  return route_api_request(method, path, &target, &allow);
}

std::vector<QueryParam> query(const std::string& raw) {
  std::vector<QueryParam> params;
  CHECK_TRUE(parse_query_string(raw, &params));
  return params;
}

void check_refused(const ApiError& e, int status, const char* start) {
  LONGS_EQUAL_TEXT(status, e.status, e.message.c_str());
  CHECK_TEXT(e.message.find(start) == 0, (std::string(start) + " vs " + e.message).c_str());
}

}  // namespace

TEST_GROUP(PusherApi){};

TEST(PusherApi, Routes) {
  CHECK_TRUE(route("POST", "/apps/3/events").ok());
  CHECK(target.route == ApiRoute::Events);
  STRCMP_EQUAL("3", target.app_id.c_str());
  CHECK_TRUE(route("POST", "/apps/3/batch_events").ok());
  CHECK(target.route == ApiRoute::BatchEvents);
  CHECK_TRUE(route("GET", "/apps/3/channels").ok());
  CHECK(target.route == ApiRoute::Channels);
  CHECK_TRUE(route("GET", "/apps/3/channels/presence-a%40b").ok());
  CHECK(target.route == ApiRoute::Channel);
  STRCMP_EQUAL("presence-a@b", target.channel.c_str());
  CHECK_TRUE(route("GET", "/apps/3/channels/presence-foobar/users").ok());
  CHECK(target.route == ApiRoute::ChannelUsers);
  STRCMP_EQUAL("presence-foobar", target.channel.c_str());
  CHECK_TRUE(route("POST", "/apps/my-app/users/alice%20b/terminate_connections").ok());
  CHECK(target.route == ApiRoute::TerminateUserConnections);
  STRCMP_EQUAL("my-app", target.app_id.c_str());
  STRCMP_EQUAL("alice b", target.user_id.c_str());
}

TEST(PusherApi, RoutingErrors) {
  const char* missing[] = {"/", "/apps", "/apps/", "/apps/3", "/apps/3/", "/apps/3/events/",
                           "/apps//events", "/apps/3/nope", "/apps/3/channels/a/users/x",
                           "/apps/3/users/a/terminate", "/x/apps/3/events",
                           // The deprecated per-channel resource is not offered.
                           "/apps/3/channels/a/events"};
  for (const char* path : missing) LONGS_EQUAL_TEXT(404, route("GET", path).status, path);
  ApiError e = route("GET", "/apps/3/events");
  LONGS_EQUAL(405, e.status);
  STRCMP_EQUAL("POST", allow.c_str());
  e = route("POST", "/apps/3/channels");
  LONGS_EQUAL(405, e.status);
  STRCMP_EQUAL("GET", allow.c_str());
  LONGS_EQUAL(400, route("GET", "/apps/3/channels/a%zz").status);
}

TEST(PusherApi, TriggerAsTheNodeLibrarySendsIt) {
  TriggerEvent ev;
  CHECK_TRUE(parse_trigger(
                 R"({"name":"my-event","data":"{\"message\":\"hello world\"}","channels":["my-channel"]})",
                 ApiLimits(), &ev)
                 .ok());
  STRCMP_EQUAL("my-event", ev.name.c_str());
  STRCMP_EQUAL(R"({"message":"hello world"})", ev.data.c_str());
  LONGS_EQUAL(1, ev.channels.size());
  STRCMP_EQUAL("my-channel", ev.channels[0].c_str());
  STRCMP_EQUAL("", ev.socket_id.c_str());
  CHECK_FALSE(ev.info.any());

  CHECK_TRUE(parse_trigger(R"({"name":"ev","data":"plain string","channels":["a","presence-b"],)"
                           R"("socket_id":"123.456","info":"user_count,subscription_count"})",
                           ApiLimits(), &ev)
                 .ok());
  LONGS_EQUAL(2, ev.channels.size());
  STRCMP_EQUAL("123.456", ev.socket_id.c_str());
  CHECK_TRUE(ev.info.user_count);
  CHECK_TRUE(ev.info.subscription_count);

  // PHP's library sends "channel" for a single channel; sendToUser targets
  // the user's channel.
  CHECK_TRUE(parse_trigger(R"({"name":"n","data":"{}","channel":"#server-to-user-alice"})",
                           ApiLimits(), &ev)
                 .ok());
  STRCMP_EQUAL("#server-to-user-alice", ev.channels[0].c_str());
}

TEST(PusherApi, TriggerLeniencyAndDeduplication) {
  TriggerEvent ev;
  // Non-string data (soketi accepts it; the libraries never send it).
  CHECK_TRUE(parse_trigger(R"({"name":"n","data":{"a":[1,2]},"channel":"c"})", ApiLimits(), &ev).ok());
  STRCMP_EQUAL(R"({"a":[1,2]})", ev.data.c_str());
  CHECK_TRUE(parse_trigger(R"({"name":"n","data":"x","channels":["a","b","a"],"socket_id":null})",
                           ApiLimits(), &ev)
                 .ok());
  LONGS_EQUAL(2, ev.channels.size());
  STRCMP_EQUAL("b", ev.channels[1].c_str());
}

TEST(PusherApi, TriggerRefusals) {
  TriggerEvent ev;
  const ApiLimits L;
  check_refused(parse_trigger("not json", L, &ev), 400, "The body must be a JSON object");
  check_refused(parse_trigger("[]", L, &ev), 400, "The body must be a JSON object");
  check_refused(parse_trigger(R"({"data":"x","channel":"c"})", L, &ev), 400, "\"name\"");
  check_refused(parse_trigger(R"({"name":"","data":"x","channel":"c"})", L, &ev), 400, "\"name\"");
  check_refused(parse_trigger(R"({"name":"n","channel":"c"})", L, &ev), 400, "\"data\" is required");
  check_refused(parse_trigger(R"({"name":"n","data":"x"})", L, &ev), 400, "\"channels\" or");
  check_refused(parse_trigger(R"({"name":"n","data":"x","channels":[]})", L, &ev), 400, "\"channels\" must");
  check_refused(parse_trigger(R"({"name":"n","data":"x","channels":"c"})", L, &ev), 400, "\"channels\" must");
  check_refused(parse_trigger(R"({"name":"n","data":"x","channels":[1]})", L, &ev), 400, "\"channels\" must");
  check_refused(parse_trigger(R"({"name":"n","data":"x","channel":["c"]})", L, &ev), 400, "\"channel\" must");
  check_refused(parse_trigger(R"({"name":"n","data":"x","channel":"c","channels":["d"]})", L, &ev),
                400, "Give either");
  check_refused(parse_trigger(R"({"name":"n","data":"x","channel":"a b"})", L, &ev), 400,
                "Invalid channel name: a b");
  check_refused(parse_trigger(R"({"name":"n","data":"x","channel":"c","socket_id":"12"})", L, &ev),
                400, "\"socket_id\"");
  check_refused(parse_trigger(R"({"name":"n","data":"x","channel":"c","socket_id":1.2})", L, &ev),
                400, "\"socket_id\"");
  check_refused(parse_trigger(R"({"name":"n","data":"x","channel":"c","info":"occupied"})", L, &ev),
                400, "Unknown info attribute: occupied");
  check_refused(parse_trigger(R"({"name":"pusher_internal:member_added","data":"x","channel":"c"})",
                              L, &ev),
                400, "Event names starting with pusher_internal:");
}

TEST(PusherApi, TriggerLimits) {
  TriggerEvent ev;
  ApiLimits L;
  const std::string name200(200, 'e');
  CHECK_TRUE(parse_trigger(R"({"name":")" + name200 + R"(","data":"x","channel":"c"})", L, &ev).ok());
  check_refused(parse_trigger(R"({"name":")" + name200 + R"(e","data":"x","channel":"c"})", L, &ev),
                400, "Event name over 200 characters");
  // 10 KB of data passes, one byte more is 413.
  const std::string data(10240, 'd');
  CHECK_TRUE(parse_trigger(R"({"name":"n","data":")" + data + R"(","channel":"c"})", L, &ev).ok());
  check_refused(parse_trigger(R"({"name":"n","data":")" + data + R"(d","channel":"c"})", L, &ev),
                413, "Event data over 10240 bytes");
  std::string channels = "[";
  for (int i = 0; i < 100; ++i) channels += (i ? ",\"c" : "\"c") + std::to_string(i) + "\"";
  CHECK_TRUE(parse_trigger(R"({"name":"n","data":"x","channels":)" + channels + "]}", L, &ev).ok());
  LONGS_EQUAL(100, ev.channels.size());
  check_refused(parse_trigger(R"({"name":"n","data":"x","channels":)" + channels + ",\"c100\"]}", L, &ev),
                400, "Over 100 channels");
  L.max_body_bytes = 64;
  check_refused(parse_trigger(R"({"name":"n","data":")" + std::string(64, 'x') + R"(","channel":"c"})",
                              L, &ev),
                413, "Request body over 64 bytes");
}

TEST(PusherApi, Batch) {
  std::vector<TriggerEvent> events;
  CHECK_TRUE(parse_batch(R"({"batch":[{"channel":"c1","name":"e1","data":"{\"x\":1}"},)"
                         R"({"channel":"presence-c2","name":"e2","data":"y","info":"user_count"}]})",
                         ApiLimits(), &events)
                 .ok());
  LONGS_EQUAL(2, events.size());
  STRCMP_EQUAL("c1", events[0].channels[0].c_str());
  STRCMP_EQUAL(R"({"x":1})", events[0].data.c_str());
  CHECK_TRUE(events[1].info.user_count);

  std::string ten = "{\"batch\":[";
  for (int i = 0; i < 10; ++i) ten += std::string(i ? "," : "") + R"({"channel":"c","name":"n","data":"d"})";
  CHECK_TRUE(parse_batch(ten + "]}", ApiLimits(), &events).ok());
  LONGS_EQUAL(10, events.size());
  check_refused(parse_batch(ten + R"(,{"channel":"c","name":"n","data":"d"}]})", ApiLimits(), &events),
                400, "Over 10 events in one batch");
  CHECK_TRUE(parse_batch(R"({"batch":[]})", ApiLimits(), &events).ok());
  LONGS_EQUAL(0, events.size());
  check_refused(parse_batch(R"({"events":[]})", ApiLimits(), &events), 400, "\"batch\" must");
  // All or nothing, and the message says which event.
  check_refused(parse_batch(R"({"batch":[{"channel":"c","name":"n","data":"d"},)"
                            R"({"channels":["c"],"name":"n","data":"d"}]})",
                            ApiLimits(), &events),
                400, "batch[1]: Each batch event needs a string \"channel\"");
  LONGS_EQUAL(0, events.size());
  check_refused(parse_batch(R"({"batch":[{"channel":"c","name":"n","data":")" + std::string(10241, 'd') +
                                R"("}]})",
                            ApiLimits(), &events),
                413, "batch[0]: Event data over");
  check_refused(parse_batch(R"({"batch":[1]})", ApiLimits(), &events), 400, "batch[0]: An event");
}

TEST(PusherApi, ChannelsQuery) {
  ChannelsQuery q;
  CHECK_TRUE(parse_channels_query(query("filter_by_prefix=presence-&info=user_count"), &q).ok());
  STRCMP_EQUAL("presence-", q.prefix.c_str());
  CHECK_TRUE(q.info.user_count);
  CHECK_TRUE(parse_channels_query(query("info=subscription_count"), &q).ok());
  CHECK_TRUE(q.info.subscription_count);
  CHECK_TRUE(parse_channels_query(query(""), &q).ok());
  CHECK_FALSE(q.info.any());
  check_refused(parse_channels_query(query("info=user_count"), &q), 400, "user_count needs");
  check_refused(parse_channels_query(query("filter_by_prefix=private-&info=user_count"), &q), 400,
                "user_count needs");
  check_refused(parse_channels_query(query("info=cache"), &q), 400, "Unknown info attribute");
}

TEST(PusherApi, ChannelQuery) {
  InfoAttributes info;
  CHECK_TRUE(parse_channel_query("presence-foobar", query("info=user_count,subscription_count"), &info).ok());
  CHECK_TRUE(info.user_count && info.subscription_count);
  CHECK_TRUE(parse_channel_query("my-channel", query("info=subscription_count"), &info).ok());
  CHECK_TRUE(parse_channel_query("presence-cache-x", query("info=cache,user_count"), &info).ok());
  CHECK_TRUE(info.cache);
  check_refused(parse_channel_query("my-channel", query("info=user_count"), &info), 400,
                "user_count is only available for presence");
  check_refused(parse_channel_query("my-channel", query("info=cache"), &info), 400,
                "cache is only available");
  check_refused(parse_channel_query("bad name", query(""), &info), 400, "Invalid channel name");
  CHECK_TRUE(check_users_request("presence-foobar").ok());
  CHECK_TRUE(check_users_request("presence-cache-x").ok());
  check_refused(check_users_request("private-x"), 400, "Only presence channels have users");
  check_refused(check_users_request("bad name"), 400, "Invalid channel name");
  CHECK_TRUE(check_terminate_request("alice").ok());
  check_refused(check_terminate_request(""), 400, "Invalid user id");
}

TEST(PusherApi, Responses) {
  STRCMP_EQUAL(R"({"error":"Over 100 channels","code":400})",
               render_api_error(ApiError{400, "Over 100 channels"}).c_str());
  const std::vector<ChannelInfo> channels = {
      {"presence-foobar", true, 51, 42, false, "", 0},
      {"another", true, 13, 0, false, "", 0},
  };
  STRCMP_EQUAL(R"({"channels":{"presence-foobar":{},"another":{}}})",
               render_channels(channels, false, false).c_str());
  STRCMP_EQUAL(
      R"({"channels":{"presence-foobar":{"user_count":42,"subscription_count":51},"another":{"subscription_count":13}}})",
      render_channels(channels, true, true).c_str());

  InfoAttributes info;
  STRCMP_EQUAL(R"({"occupied":true})", render_channel(channels[0], info).c_str());
  info.user_count = info.subscription_count = true;
  STRCMP_EQUAL(R"({"occupied":true,"user_count":42,"subscription_count":51})",
               render_channel(channels[0], info).c_str());
  InfoAttributes cache;
  cache.cache = true;
  ChannelInfo cached{"cache-a", false, 0, 0, true, "event data", 60};
  STRCMP_EQUAL(R"({"occupied":false,"cache":{"data":"event data","ttl":60}})",
               render_channel(cached, cache).c_str());
  cached.has_cached_event = false;
  STRCMP_EQUAL(R"({"occupied":false,"cache":null})", render_channel(cached, cache).c_str());

  STRCMP_EQUAL(R"({"users":[{"id":"1"},{"id":"2"}]})", render_users({"1", "2"}).c_str());
  STRCMP_EQUAL(R"({"users":[]})", render_users({}).c_str());

  STRCMP_EQUAL("{}", render_trigger_result(channels, InfoAttributes()).c_str());
  STRCMP_EQUAL(R"({"channels":{"presence-foobar":{"user_count":42},"another":{}}})",
               render_trigger_result(channels, [] {
                 InfoAttributes i;
                 i.user_count = true;
                 return i;
               }()).c_str());
}

TEST(PusherApi, BatchResponses) {
  std::vector<TriggerEvent> events(3);
  const std::vector<ChannelInfo> infos = {
      {"presence-a", true, 51, 42, false, "", 0},
      {"b", true, 1, 0, false, "", 0},
      {"c", true, 13, 0, false, "", 0},
  };
  STRCMP_EQUAL("{}", render_batch_result(events, infos).c_str());
  events[0].info.user_count = events[0].info.subscription_count = true;
  events[2].info.subscription_count = true;
  STRCMP_EQUAL(
      R"({"batch":[{"user_count":42,"subscription_count":51},{},{"subscription_count":13}]})",
      render_batch_result(events, infos).c_str());
}
