// SetHandler wsbridge-status: live figures as JSON (default) or Prometheus
// text (?format=prometheus), and a section in mod_status's server-status.
#include <httpd.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_status.h>
#include <ap_mpm.h>
#include <apr_strings.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>
#include <string>

#include "apache/chat_service.h"
#include "apache/handler.h"
#include "runtime/redis_bus.h"

namespace wsb {

namespace {

const char* const kAppNames[kAppCount] = {"echo", "chat"};
const char* const* const kRefuseNames = kRefuseReasonNames;

// A plain-number snapshot of SessionStats (summing atomics as we go).
struct Figures {
  int64_t open = 0;
  uint64_t accepted = 0, messages_in = 0, messages_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t queue_overflows = 0, pings_sent = 0, hub_writes = 0, hub_handbacks = 0;
  uint64_t closes[18] = {};

  void add(const SessionStats& s) {
    open += s.open.load();
    accepted += s.accepted.load();
    messages_in += s.messages_in.load();
    messages_out += s.messages_out.load();
    bytes_in += s.bytes_in.load();
    bytes_out += s.bytes_out.load();
    queue_overflows += s.queue_overflows.load();
    pings_sent += s.pings_sent.load();
    hub_writes += s.hub_writes.load();
    hub_handbacks += s.hub_handbacks.load();
    for (size_t i = 0; i < 18; ++i) closes[i] += s.closes[i].load();
  }
};

std::string close_label(size_t i) {
  if (i < 16) return std::to_string(1000 + i);
  return i == 16 ? "3000-4999" : "other";
}

// The counters of Figures, named for the JSON and for Prometheus (where the
// JSON's "accepted" is "upgrades_accepted_total").
struct Counter { const char* json; const char* prometheus; uint64_t Figures::*field; };
const Counter kCounters[] = {
    {"accepted", "upgrades_accepted_total", &Figures::accepted},
    {"messages_in", "messages_in_total", &Figures::messages_in},
    {"messages_out", "messages_out_total", &Figures::messages_out},
    {"bytes_in", "bytes_in_total", &Figures::bytes_in},
    {"bytes_out", "bytes_out_total", &Figures::bytes_out},
    {"queue_overflows", "queue_overflows_total", &Figures::queue_overflows},
    {"pings_sent", "pings_sent_total", &Figures::pings_sent},
    {"hub_writes", "hub_writes_total", &Figures::hub_writes},
    {"hub_handbacks", "hub_handbacks_total", &Figures::hub_handbacks},
};

template <typename W>
void write_figures(W& w, const Figures& f) {
  w.StartObject();
  w.Key("open"); w.Int64(f.open);
  for (const Counter& c : kCounters) {
    w.Key(c.json);
    w.Uint64(f.*c.field);
  }
  w.Key("closes");
  w.StartObject();
  for (size_t i = 0; i < 18; ++i) {
    if (!f.closes[i]) continue;
    std::string k = close_label(i);
    w.Key(k.c_str());
    w.Uint64(f.closes[i]);
  }
  w.EndObject();
  w.EndObject();
}

bool live(const ChildSlot& s) { return s.pid.load() != 0; }

// The bus, and this child's hub: which child answers is up to Apache, so
// these describe the answering child (its pid is in "pid").
template <typename W>
void write_bus_and_hub(W& w) {
  ChatService& chat = ChatService::get();
  w.Key("bus");
  w.StartObject();
  const RedisBus* redis = chat.redis_bus();
  w.Key("type"); w.String(chat.uses_redis() ? "redis" : "shm");
  if (redis) {
    RedisBusStatus st = redis->status();
    w.Key("connected"); w.Bool(st.connected);
    w.Key("outages"); w.Uint64(st.outages);
    w.Key("publish_links"); w.Int(st.publish_links_used);
    w.Key("resets"); w.Uint64(st.resets);
    w.Key("last_error"); w.String(st.last_error.c_str());
  } else if (Bus* bus = chat.bus()) {
    w.Key("first_seq"); w.Uint64(bus->first_seq());
    w.Key("last_seq"); w.Uint64(bus->last_seq());
  }
  w.EndObject();
  if (ChatEngine* engine = chat.engine()) {
    ChatEngineStats es = engine->stats();
    w.Key("hub");
    w.StartObject();
    w.Key("last_seq"); w.Uint64(es.last_seq);
    w.Key("events_applied"); w.Uint64(es.events_applied);
    w.Key("frames_delivered"); w.Uint64(es.frames_delivered);
    w.Key("deliveries_refused"); w.Uint64(es.deliveries_refused);
    w.Key("overruns"); w.Uint64(es.overruns);
    w.Key("rooms"); w.Uint64(es.rooms);
    w.Key("local_connections"); w.Uint64(es.local_connections);
    w.Key("pending_publishes"); w.Uint64(chat.pending().size());
    w.Key("pending_dropped"); w.Uint64(chat.pending().dropped());
    w.EndObject();
  }
}

std::string status_json() {
  ProcessState& ps = process_state();
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  Figures apps[kAppCount];
  uint64_t refused[static_cast<int>(RefuseReason::Count)] = {};
  w.StartObject();
  w.Key("mpm"); w.String(ap_show_mpm());
  w.Key("pid"); w.Int(static_cast<int>(getpid()));
  w.Key("children");
  w.StartArray();
  if (ps.shared) {
    for (const ChildSlot& slot : ps.shared->slots) {
      bool is_live = live(slot);
      Figures child[kAppCount];
      bool any = false;
      for (int a = 0; a < kAppCount; ++a) {
        child[a].add(slot.app[a]);
        apps[a].add(slot.app[a]);
        any = any || child[a].accepted;
      }
      for (int i = 0; i < static_cast<int>(RefuseReason::Count); ++i) refused[i] += slot.refused[i].load();
      if (!is_live || !any) continue;
      w.StartObject();
      w.Key("pid"); w.Int(slot.pid.load());
      for (int a = 0; a < kAppCount; ++a) {
        w.Key(kAppNames[a]);
        write_figures(w, child[a]);
      }
      w.EndObject();
    }
  }
  w.EndArray();
  w.Key("apps");
  w.StartObject();
  for (int a = 0; a < kAppCount; ++a) {
    w.Key(kAppNames[a]);
    write_figures(w, apps[a]);
  }
  w.EndObject();
  w.Key("open"); w.Int64(ps.shared ? ps.shared->open_total.load() : 0);
  w.Key("refused");
  w.StartObject();
  for (int i = 0; i < static_cast<int>(RefuseReason::Count); ++i) {
    w.Key(kRefuseNames[i]);
    w.Uint64(refused[i]);
  }
  w.EndObject();
  w.Key("bus_overruns"); w.Uint64(ps.shared ? ps.shared->bus_overruns.load() : 0);
  write_bus_and_hub(w);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void prom(std::string& out, const char* name, const char* labels, uint64_t v) {
  out += "wsbridge_";
  out += name;
  if (labels && *labels) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += std::to_string(v);
  out += '\n';
}

std::string status_prometheus() {
  ProcessState& ps = process_state();
  std::string out;
  Figures apps[kAppCount];
  uint64_t refused[static_cast<int>(RefuseReason::Count)] = {};
  if (ps.shared) {
    for (const ChildSlot& slot : ps.shared->slots) {
      for (int a = 0; a < kAppCount; ++a) apps[a].add(slot.app[a]);
      for (int i = 0; i < static_cast<int>(RefuseReason::Count); ++i) refused[i] += slot.refused[i].load();
    }
  }
  // One family at a time: Prometheus wants each TYPE line before all of
  // that family's samples.
  out += "# TYPE wsbridge_open_connections gauge\n";
  for (int a = 0; a < kAppCount; ++a) {
    std::string l = std::string("app=\"") + kAppNames[a] + "\"";
    prom(out, "open_connections", l.c_str(), static_cast<uint64_t>(apps[a].open < 0 ? 0 : apps[a].open));
  }
  for (const Counter& c : kCounters) {
    out += std::string("# TYPE wsbridge_") + c.prometheus + " counter\n";
    for (int a = 0; a < kAppCount; ++a) {
      std::string l = std::string("app=\"") + kAppNames[a] + "\"";
      prom(out, c.prometheus, l.c_str(), apps[a].*c.field);
    }
  }
  out += "# TYPE wsbridge_closes_total counter\n";
  for (int a = 0; a < kAppCount; ++a) {
    for (size_t i = 0; i < 18; ++i) {
      if (!apps[a].closes[i]) continue;
      std::string cl = std::string("app=\"") + kAppNames[a] + "\",code=\"" + close_label(i) + "\"";
      prom(out, "closes_total", cl.c_str(), apps[a].closes[i]);
    }
  }
  out += "# TYPE wsbridge_upgrades_refused_total counter\n";
  for (int i = 0; i < static_cast<int>(RefuseReason::Count); ++i) {
    std::string l = std::string("reason=\"") + kRefuseNames[i] + "\"";
    prom(out, "upgrades_refused_total", l.c_str(), refused[i]);
  }
  out += "# TYPE wsbridge_bus_overruns_total counter\n";
  prom(out, "bus_overruns_total", "", ps.shared ? ps.shared->bus_overruns.load() : 0);
  return out;
}

int mod_status_section(request_rec* r, int flags) {
  ProcessState& ps = process_state();
  if (!ps.shared) return OK;
  Figures apps[kAppCount];
  for (const ChildSlot& slot : ps.shared->slots)
    for (int a = 0; a < kAppCount; ++a) apps[a].add(slot.app[a]);
  if (flags & AP_STATUS_SHORT) {
    ap_rprintf(r, "WSBridgeOpen: %" APR_INT64_T_FMT "\n", static_cast<apr_int64_t>(ps.shared->open_total.load()));
    return OK;
  }
  ap_rputs("<hr>\n<h2>mod_wsbridge</h2>\n<table border=\"0\"><tr><th>app</th><th>open</th>"
           "<th>accepted</th><th>messages in</th><th>messages out</th><th>overflows</th></tr>\n", r);
  for (int a = 0; a < kAppCount; ++a) {
    ap_rprintf(r, "<tr><td>%s</td><td>%" APR_INT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
               "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td></tr>\n",
               kAppNames[a], static_cast<apr_int64_t>(apps[a].open), static_cast<apr_uint64_t>(apps[a].accepted),
               static_cast<apr_uint64_t>(apps[a].messages_in), static_cast<apr_uint64_t>(apps[a].messages_out),
               static_cast<apr_uint64_t>(apps[a].queue_overflows));
  }
  ap_rputs("</table>\n", r);
  return OK;
}

}  // namespace

int status_handler(request_rec* r) {
  if (!r->handler || strcmp(r->handler, "wsbridge-status") != 0) return DECLINED;
  // Apache's 405 page builds its Allow header from allowed_methods.
  ap_allow_methods(r, 1, "GET", NULL);
  if (r->method_number != M_GET) return HTTP_METHOD_NOT_ALLOWED;
  bool prometheus = r->args && strstr(r->args, "format=prometheus") != nullptr;
  std::string body = prometheus ? status_prometheus() : status_json();
  ap_set_content_type(r, prometheus ? "text/plain; version=0.0.4" : "application/json");
  apr_table_setn(r->headers_out, "Cache-Control", "no-store");
  if (r->header_only) return OK;
  ap_rwrite(body.data(), static_cast<int>(body.size()), r);
  if (!prometheus) ap_rputs("\n", r);
  return OK;
}

void register_status_hooks() {
  APR_OPTIONAL_HOOK(ap, status_hook, mod_status_section, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace wsb
