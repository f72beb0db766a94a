// SetHandler wsbridge-pusher-api: the Pusher Channels HTTP API under /apps/
// (what the `pusher` server libraries, Laravel's broadcaster and
// pusher-php-server call). Requests are signed (pusher_api_auth.h); events
// become bus records, so they reach every child and, with Redis, every
// server; channel queries are answered from this child's engine, which
// holds every process's subscriptions (engine/pusher_channels.h).
#include "apache/pusher_handler.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include "apache/chat_service.h"
#include "apache/config.h"
#include "chat/chat_record.h"
#include "pusher/pusher_api.h"
#include "pusher/pusher_api_auth.h"
#include "runtime/clock.h"

APLOG_USE_MODULE(wsbridge);

namespace wsb {

namespace {

int reply(request_rec* r, int status, const std::string& body) {
  r->status = status;
  ap_set_content_type(r, "application/json");
  apr_table_setn(r->headers_out, "Cache-Control", "no-store");
  ap_rwrite(body.data(), static_cast<int>(body.size()), r);
  return OK;
}

int fail(request_rec* r, const ApiError& e, const char* app_id) {
  ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "wsbridge: pusher API %s %s (app %s) refused with %d: %s", r->method,
                r->uri, app_id ? app_id : "?", e.status, e.message.c_str());
  return reply(r, e.status, render_api_error(e));
}

int read_body(request_rec* r, std::string* body, size_t limit, ApiError* err) {
  if (ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK) != OK) {
    *err = ApiError{400, "the request body cannot be read"};
    return 0;
  }
  if (!ap_should_client_block(r)) return 1;
  char buf[8192];
  long n;
  while ((n = ap_get_client_block(r, buf, sizeof buf)) > 0) {
    if (body->size() + static_cast<size_t>(n) > limit) {
      *err = ApiError{413, "the request body is too large"};
      return 0;
    }
    body->append(buf, static_cast<size_t>(n));
  }
  if (n < 0) {
    *err = ApiError{400, "the request body cannot be read"};
    return 0;
  }
  return 1;
}

// Queries see everything published before the request, whichever child
// answers: this child's hub may be a moment behind the bus (another child's
// subscribe, a Redis round trip), so wait for it, briefly.
void catch_up(ChatEngine& engine, Bus& bus) {
  const uint64_t target = bus.last_seq();
  const int64_t deadline = monotonic_ms() + 250;
  while (engine.last_seq() < target && monotonic_ms() < deadline) apr_sleep(1000);
}

ChannelInfo info_of(ChatEngine& engine, const std::string& ns, const std::string& channel) {
  ChannelInfo ci;
  ci.name = channel;
  if (auto c = engine.pusher_channel(ns, channel)) {
    ci.occupied = c->subscription_count > 0;
    ci.subscription_count = c->subscription_count;
    ci.user_count = c->user_count;
  }
  return ci;
}

// One pub record per channel, in order.
bool publish_event(Bus& bus, const std::string& ns, const TriggerEvent& ev) {
  for (const std::string& ch : ev.channels) {
    ChatRecord rec;
    rec.type = RecordType::Publish;
    rec.kind = PublishKind::Event;
    rec.ns = ns;
    rec.channel = ch;
    rec.name = ev.name;
    rec.data = ev.data;
    rec.conn = ev.socket_id;
    rec.ts = wall_clock_ms();
    if (bus.publish(encode_record(rec)) == 0) return false;
  }
  return true;
}

}  // namespace

int pusher_api_handler(request_rec* r) {
  if (!r->handler || strcmp(r->handler, "wsbridge-pusher-api") != 0) return DECLINED;
  ApiTarget target;
  std::string allow;
  const char* path = r->parsed_uri.path ? r->parsed_uri.path : r->uri;
  ApiError e = route_api_request(r->method, path, &target, &allow);
  if (!e.ok()) {
    if (!allow.empty()) apr_table_set(r->headers_out, "Allow", allow.c_str());
    return fail(r, e, nullptr);
  }
  const PusherAppDef* app = find_pusher_app(server_config(r->server), nullptr, target.app_id.c_str());
  if (!app) return fail(r, ApiError{404, "unknown app id"}, target.app_id.c_str());

  ApiLimits limits;
  std::string body;
  if (!read_body(r, &body, limits.max_body_bytes, &e)) return fail(r, e, app->id);
  std::vector<QueryParam> params;
  if (!parse_query_string(r->args ? r->args : "", &params))
    return fail(r, ApiError{400, "the query string cannot be decoded"}, app->id);
  ApiAuthResult auth = verify_api_request(app->key, app->secret, r->method, path, params, body,
                                          apr_time_sec(apr_time_now()));
  if (!auth.ok()) return fail(r, ApiError{auth.status, auth.error}, app->id);

  ChatService& svc = ChatService::get();
  if (!svc.ensure_started(r->server) || !svc.engine()) return fail(r, ApiError{503, "the bus is unavailable"}, app->id);
  enable_pusher_engine();
  ChatEngine& engine = *svc.engine();
  Bus& bus = *svc.bus();
  const std::string ns = std::string("pusher/") + app->id;
  if (target.route != ApiRoute::Events && target.route != ApiRoute::BatchEvents &&
      target.route != ApiRoute::TerminateUserConnections)
    catch_up(engine, bus);

  switch (target.route) {
    case ApiRoute::Events: {
      TriggerEvent ev;
      if (!(e = parse_trigger(body, limits, &ev)).ok()) return fail(r, e, app->id);
      if (!publish_event(bus, ns, ev)) return fail(r, ApiError{503, "the bus did not take the event"}, app->id);
      std::vector<ChannelInfo> infos;
      if (ev.info.any()) catch_up(engine, bus);
      if (ev.info.any())
        for (const std::string& ch : ev.channels) infos.push_back(info_of(engine, ns, ch));
      return reply(r, 200, render_trigger_result(infos, ev.info));
    }
    case ApiRoute::BatchEvents: {
      std::vector<TriggerEvent> events;
      if (!(e = parse_batch(body, limits, &events)).ok()) return fail(r, e, app->id);
      std::vector<ChannelInfo> infos;
      for (const TriggerEvent& ev : events) {
        if (!publish_event(bus, ns, ev)) return fail(r, ApiError{503, "the bus did not take the event"}, app->id);
        infos.push_back(info_of(engine, ns, ev.channels.empty() ? std::string() : ev.channels.front()));
      }
      return reply(r, 200, render_batch_result(events, infos));
    }
    case ApiRoute::Channels: {
      ChannelsQuery q;
      if (!(e = parse_channels_query(params, &q)).ok()) return fail(r, e, app->id);
      std::vector<ChannelInfo> out;
      for (const PusherChannelInfo& c : engine.pusher_channels(ns, q.prefix)) {
        ChannelInfo ci;
        ci.name = c.name;
        ci.occupied = c.subscription_count > 0;
        ci.subscription_count = c.subscription_count;
        ci.user_count = c.user_count;
        out.push_back(std::move(ci));
      }
      return reply(r, 200, render_channels(out, q.info.user_count, q.info.subscription_count));
    }
    case ApiRoute::Channel: {
      InfoAttributes info;
      if (!(e = parse_channel_query(target.channel, params, &info)).ok()) return fail(r, e, app->id);
      return reply(r, 200, render_channel(info_of(engine, ns, target.channel), info));
    }
    case ApiRoute::ChannelUsers: {
      if (!(e = check_users_request(target.channel)).ok()) return fail(r, e, app->id);
      return reply(r, 200, render_users(engine.pusher_users(ns, target.channel)));
    }
    case ApiRoute::TerminateUserConnections: {
      if (!(e = check_terminate_request(target.user_id)).ok()) return fail(r, e, app->id);
      ChatRecord rec;
      rec.type = RecordType::PusherTerminate;
      rec.ns = ns;
      rec.user = target.user_id;
      rec.ts = wall_clock_ms();
      if (bus.publish(encode_record(rec)) == 0) return fail(r, ApiError{503, "the bus is unavailable"}, app->id);
      return reply(r, 200, "{}");
    }
  }
  return fail(r, ApiError{404, "no such endpoint"}, app->id);
}

}  // namespace wsb
