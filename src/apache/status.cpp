// SetHandler wsbridge-status: live figures as JSON (default), Prometheus
// text (?format=prometheus) or an HTML page for admins (?format=html, or an
// Accept header that prefers text/html, as a browser's navigation does; its
// script, style sheet and icon come from the same URL, ?asset=NAME, see
// status_page.h), and a section in mod_status's server-status.
#include <httpd.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_status.h>
#include <ap_mpm.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "apache/chat_service.h"
#include "apache/handler.h"
#include "apache/status_page.h"
#include "protocol/http_tokens.h"
#include "runtime/redis_bus.h"

#ifndef WSB_VERSION
#define WSB_VERSION "dev"  // the Makefile defines it from the VERSION file
#endif

namespace wsb {

namespace {

const char* const kAppNames[kAppCount] = {"echo", "chat", "backend", "pusher"};
const char* const* const kRefuseNames = kRefuseReasonNames;

// A plain-number snapshot of SessionStats (summing atomics as we go).
struct Figures {
  int64_t open = 0;
  uint64_t accepted = 0, accepted_h2 = 0, messages_in = 0, messages_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t queue_overflows = 0, pings_sent = 0, hub_writes = 0, hub_handbacks = 0, rate_limited = 0;
  uint64_t closes[18] = {};

  void add(const Figures& f) {
    open += f.open;
    accepted += f.accepted;
    accepted_h2 += f.accepted_h2;
    messages_in += f.messages_in;
    messages_out += f.messages_out;
    bytes_in += f.bytes_in;
    bytes_out += f.bytes_out;
    queue_overflows += f.queue_overflows;
    pings_sent += f.pings_sent;
    hub_writes += f.hub_writes;
    hub_handbacks += f.hub_handbacks;
    rate_limited += f.rate_limited;
    for (size_t i = 0; i < 18; ++i) closes[i] += f.closes[i];
  }

  void add(const SessionStats& s) {
    open += s.open.load();
    accepted += s.accepted.load();
    accepted_h2 += s.accepted_h2.load();
    messages_in += s.messages_in.load();
    messages_out += s.messages_out.load();
    bytes_in += s.bytes_in.load();
    bytes_out += s.bytes_out.load();
    queue_overflows += s.queue_overflows.load();
    pings_sent += s.pings_sent.load();
    hub_writes += s.hub_writes.load();
    hub_handbacks += s.hub_handbacks.load();
    rate_limited += s.rate_limited.load();
    for (size_t i = 0; i < 18; ++i) closes[i] += s.closes[i].load();
  }
};

std::string close_label(size_t i) {
  if (i < 16) return std::to_string(1000 + i);
  return i == 16 ? "3000-4999" : "other";
}

// The counters of Figures, named for the JSON and for Prometheus (where the
// JSON's "accepted" is "upgrades_accepted_total"), with Prometheus' HELP text.
struct Counter { const char* json; const char* prometheus; uint64_t Figures::*field; const char* help; };
const Counter kCounters[] = {
    {"accepted", "upgrades_accepted_total", &Figures::accepted,
     "WebSocket upgrades accepted (101 Switching Protocols), by application."},
    {"accepted_h2", "upgrades_accepted_h2_total", &Figures::accepted_h2,
     "WebSocket upgrades accepted on HTTP/2 streams (RFC 8441 extended CONNECT), by application."},
    {"messages_in", "messages_in_total", &Figures::messages_in,
     "WebSocket messages received from clients, by application."},
    {"messages_out", "messages_out_total", &Figures::messages_out,
     "WebSocket messages sent to clients, by application."},
    {"bytes_in", "bytes_in_total", &Figures::bytes_in,
     "Bytes read from WebSocket connections (frames as received), by application."},
    {"bytes_out", "bytes_out_total", &Figures::bytes_out,
     "Bytes of WebSocket frames written to clients, by application."},
    {"queue_overflows", "queue_overflows_total", &Figures::queue_overflows,
     "Connections closed because their outbound queue overflowed (slow consumers), by application."},
    {"pings_sent", "pings_sent_total", &Figures::pings_sent,
     "Pings sent to peers that were quiet for WSBridgePingInterval, by application."},
    {"hub_writes", "hub_writes_total", &Figures::hub_writes,
     "Messages the chat hub wrote to sockets itself (WSBridgeHubWrites), by application."},
    {"hub_handbacks", "hub_handbacks_total", &Figures::hub_handbacks,
     "Hub writes the socket did not take whole, left to the connection's thread, by application."},
    {"rate_limited", "rate_limited_total", &Figures::rate_limited,
     "Client commands refused by the rate limit (chat: WSBridgeRateLimit; Pusher: client events), by application."},
};

// "# HELP" then "# TYPE" for one metric family, as exporters write them.
void prom_family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP wsbridge_";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE wsbridge_";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

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
  // The bus id the welcome reports ("" while Redis was never reachable).
  if (Bus* bus = chat.bus()) {
    w.Key("id"); w.String(bus->id().c_str());
  }
  if (redis) {
    RedisBusStatus st = redis->status();
    w.Key("connected"); w.Bool(st.connected);
    w.Key("outages"); w.Uint64(st.outages);
    w.Key("publish_links"); w.Int(st.publish_links_used);
    w.Key("resets"); w.Uint64(st.resets);
    w.Key("last_error"); w.String(st.last_error.c_str());
  } else if (Bus* bus = chat.bus()) {
    if (!chat.bus_file().empty()) {
      w.Key("file"); w.String(chat.bus_file().c_str());
    }
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
    w.Key("cid_duplicates"); w.Uint64(es.cid_duplicates);
    w.Key("direct_cids"); w.Uint64(es.direct_cids);
    w.EndObject();
  }
  // WSBridgePusherWebhook: each child POSTs the webhooks of its own hub from
  // its own thread, so these are the answering child's figures only.
  if (const WebhookDispatcher* hooks = chat.webhooks()) {
    WebhookStats st = hooks->stats();
    w.Key("webhooks");
    w.StartObject();
    w.Key("scope"); w.String("child");
    w.Key("targets"); w.Uint64(hooks->targets());
    w.Key("sent_batches"); w.Uint64(st.sent_batches);
    w.Key("sent_events"); w.Uint64(st.sent_events);
    w.Key("failed_attempts"); w.Uint64(st.failed_attempts);
    w.Key("dropped_events"); w.Uint64(st.dropped_events);
    w.EndObject();
  }
}

// The backend bridge's figures summed over every child.
struct BackendFigures {
  uint64_t requests = 0, latency_sum_us = 0, opens_refused = 0;
  uint64_t latency[BackendStats::kBuckets + 1] = {};
  uint64_t failures[BackendStats::kFailureCount] = {};
  void add(const BackendStats& s) {
    requests += s.requests.load();
    latency_sum_us += s.latency_sum_us.load();
    opens_refused += s.opens_refused.load();
    for (int i = 0; i <= BackendStats::kBuckets; ++i) latency[i] += s.latency[i].load();
    for (int i = 0; i < BackendStats::kFailureCount; ++i) failures[i] += s.failures[i].load();
  }
};

BackendFigures backend_figures() {
  BackendFigures f;
  ProcessState& ps = process_state();
  if (ps.shared)
    for (const ChildSlot& slot : ps.shared->slots) f.add(slot.backend);
  return f;
}

template <typename W>
void write_backend(W& w) {
  BackendFigures f = backend_figures();
  w.Key("backend");
  w.StartObject();
  w.Key("requests"); w.Uint64(f.requests);
  w.Key("opens_refused"); w.Uint64(f.opens_refused);
  w.Key("latency_sum_us"); w.Uint64(f.latency_sum_us);
  // Cumulative, like Prometheus buckets: requests that took at most le_us.
  w.Key("latency_buckets");
  w.StartArray();
  uint64_t cum = 0;
  for (int i = 0; i <= BackendStats::kBuckets; ++i) {
    cum += f.latency[i];
    w.StartObject();
    w.Key("le_us");
    if (i < BackendStats::kBuckets) w.Int64(BackendStats::kBucketUpperUs[i]);
    else w.String("+Inf");
    w.Key("count"); w.Uint64(cum);
    w.EndObject();
  }
  w.EndArray();
  w.Key("failures");
  w.StartObject();
  for (int i = 0; i < BackendStats::kFailureCount; ++i) {
    w.Key(BackendStats::kFailureNames[i]);
    w.Uint64(f.failures[i]);
  }
  w.EndObject();
  ChatEngine* engine = ChatService::get().engine();
  ChatEngineStats es = engine ? engine->stats() : ChatEngineStats();
  w.Key("channels_here"); w.Uint64(es.channels);          // this child's engine
  w.Key("subscriptions_here"); w.Uint64(es.subscriptions);
  w.EndObject();
}

// The worker reserve (WSBridgeReserveWorkers) as this child computed it.
template <typename W>
void write_capacity(W& w) {
  const Capacity& c = process_state().gate.capacity();
  w.Key("capacity");
  w.StartObject();
  w.Key("reserve"); w.Int(c.reserve);
  w.Key("per_child_limit"); w.Int(c.per_child ? c.child_limit : 1);
  w.Key("max_connections"); w.Int(c.server_limit);
  w.Key("mpm_limit"); w.Int(c.mpm_limit);
  w.Key("open_here"); w.Int64(process_state().gate.child_open());
  w.EndObject();
}

// WSBridgeMaxConnectionsPerIP: the limit and the shared table's figures.
template <typename W>
void write_per_ip(W& w) {
  ProcessState& ps = process_state();
  PerIpTable::Stats st = ps.per_ip.stats();
  w.Key("per_ip");
  w.StartObject();
  w.Key("limit"); w.Uint(ps.per_ip_limit);
  w.Key("addresses"); w.Uint(st.addresses);
  w.Key("connections"); w.Uint64(st.connections);
  w.Key("busiest"); w.Uint(st.busiest);
  w.Key("table_entries"); w.Uint(st.entries);
  w.Key("table_used"); w.Uint(st.used);
  w.Key("untracked"); w.Uint64(st.untracked);
  w.Key("reclaimed"); w.Uint64(st.reclaimed);
  w.EndObject();
}

std::string status_json() {
  ProcessState& ps = process_state();
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  Figures apps[kAppCount];
  uint64_t refused[static_cast<int>(RefuseReason::Count)] = {};
  w.StartObject();
  w.Key("version"); w.String(WSB_VERSION);
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
        apps[a].add(child[a]);  // the same reads: the children add up to the apps
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
  write_backend(w);
  write_capacity(w);
  write_per_ip(w);
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
  prom_family(out, "open_connections", "gauge", "Open WebSocket connections, by application.");
  for (int a = 0; a < kAppCount; ++a) {
    std::string l = std::string("app=\"") + kAppNames[a] + "\"";
    prom(out, "open_connections", l.c_str(), static_cast<uint64_t>(apps[a].open < 0 ? 0 : apps[a].open));
  }
  for (const Counter& c : kCounters) {
    prom_family(out, c.prometheus, "counter", c.help);
    for (int a = 0; a < kAppCount; ++a) {
      std::string l = std::string("app=\"") + kAppNames[a] + "\"";
      prom(out, c.prometheus, l.c_str(), apps[a].*c.field);
    }
  }
  prom_family(out, "closes_total", "counter",
              "WebSocket connections closed, by application and close code (1006: dropped without a close frame).");
  for (int a = 0; a < kAppCount; ++a) {
    for (size_t i = 0; i < 18; ++i) {
      if (!apps[a].closes[i]) continue;
      std::string cl = std::string("app=\"") + kAppNames[a] + "\",code=\"" + close_label(i) + "\"";
      prom(out, "closes_total", cl.c_str(), apps[a].closes[i]);
    }
  }
  prom_family(out, "upgrades_refused_total", "counter", "WebSocket upgrade requests refused, by reason.");
  for (int i = 0; i < static_cast<int>(RefuseReason::Count); ++i) {
    std::string l = std::string("reason=\"") + kRefuseNames[i] + "\"";
    prom(out, "upgrades_refused_total", l.c_str(), refused[i]);
  }
  PerIpTable::Stats ip = ps.per_ip.stats();
  prom_family(out, "per_ip_limit", "gauge", "WSBridgeMaxConnectionsPerIP in effect (0: no limit).");
  prom(out, "per_ip_limit", "", ps.per_ip_limit);
  prom_family(out, "per_ip_addresses", "gauge", "Client addresses (IPv6: /64s) with open WebSockets, over every child.");
  prom(out, "per_ip_addresses", "", ip.addresses);
  prom_family(out, "per_ip_busiest", "gauge", "Open WebSockets of the client address that has the most.");
  prom(out, "per_ip_busiest", "", ip.busiest);
  prom_family(out, "per_ip_untracked_total", "counter",
              "WebSockets let in without a per-address count because the table had no free entry near the address.");
  prom(out, "per_ip_untracked_total", "", ip.untracked);
  prom_family(out, "per_ip_reclaimed_total", "counter",
              "Per-address counts given back for connections of children that died without closing them.");
  prom(out, "per_ip_reclaimed_total", "", ip.reclaimed);
  prom_family(out, "bus_overruns_total", "counter",
              "Times a child's hub fell so far behind the shared-memory bus that events were lost to it.");
  prom(out, "bus_overruns_total", "", ps.shared ? ps.shared->bus_overruns.load() : 0);
  BackendFigures bf = backend_figures();
  prom_family(out, "backend_request_duration_seconds", "histogram",
              "Backend bridge requests (sub-requests to WSBridgeBackend) by how long they took.");
  uint64_t cum = 0;
  for (int i = 0; i <= BackendStats::kBuckets; ++i) {
    cum += bf.latency[i];
    std::string le = i < BackendStats::kBuckets ? std::to_string(BackendStats::kBucketUpperUs[i] / 1e6) : "+Inf";
    if (i < BackendStats::kBuckets) le.erase(le.find_last_not_of('0') + 1);
    if (!le.empty() && le.back() == '.') le.pop_back();
    prom(out, "backend_request_duration_seconds_bucket", ("le=\"" + le + "\"").c_str(), cum);
  }
  out += "wsbridge_backend_request_duration_seconds_sum " + std::to_string(bf.latency_sum_us / 1e6) + "\n";
  prom(out, "backend_request_duration_seconds_count", "", bf.requests);
  prom_family(out, "backend_failures_total", "counter",
              "Backend bridge failures that closed a connection (1011) or refused an upgrade (502/504), by kind.");
  for (int i = 0; i < BackendStats::kFailureCount; ++i)
    prom(out, "backend_failures_total", (std::string("kind=\"") + BackendStats::kFailureNames[i] + "\"").c_str(),
         bf.failures[i]);
  prom_family(out, "backend_opens_refused_total", "counter", "Connections the backend refused in its OPEN answer.");
  prom(out, "backend_opens_refused_total", "", bf.opens_refused);
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

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (apr_tolower(a[i]) != apr_tolower(b[i])) return false;
  return true;
}

// The quality (0..1) an Accept header gives to type/subtype: the q of the
// most specific media range that matches it (RFC 9110, 12.5.1), 0 if none.
double accept_quality(std::string_view accept, std::string_view type, std::string_view subtype) {
  double best_q = 0;
  int best_rank = -1;
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view item = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    size_t semi = item.find(';');
    std::string_view range = trim_ows(item.substr(0, semi));
    std::string_view params = semi == std::string_view::npos ? std::string_view() : item.substr(semi + 1);
    size_t slash = range.find('/');
    if (slash == std::string_view::npos) continue;
    std::string_view rt = range.substr(0, slash), rs = range.substr(slash + 1);
    int rank;
    if (rt == "*" && rs == "*") rank = 0;
    else if (iequals(rt, type) && rs == "*") rank = 1;
    else if (iequals(rt, type) && iequals(rs, subtype)) rank = 2;
    else continue;
    double q = 1;
    while (!params.empty()) {
      size_t next = params.find(';');
      std::string_view p = trim_ows(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
      if (p.size() < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=') continue;
      std::string num(p.substr(2));
      char* end = nullptr;
      double v = strtod(num.c_str(), &end);
      if (end != num.c_str()) q = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    if (rank > best_rank || (rank == best_rank && q > best_q)) {
      best_rank = rank;
      best_q = q;
    }
  }
  return best_q;
}

// A browser navigating to the page prefers text/html; curl (no Accept),
// scripts (*/*) and anything else that does not rank HTML above JSON get JSON.
bool prefers_html(const request_rec* r) {
  const char* accept = apr_table_get(r->headers_in, "Accept");
  if (!accept) return false;
  double html = accept_quality(accept, "text", "html");
  return html > 0 && html > accept_quality(accept, "application", "json");
}

// The value of key in a query string ("" if absent; not URL-decoded: the
// values this page knows are plain tokens).
std::string_view query_param(const char* args, std::string_view key, bool* present = nullptr) {
  if (present) *present = false;
  std::string_view rest = args ? args : "";
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t eq = kv.find('=');
    if (kv.substr(0, eq) != key) continue;
    if (present) *present = true;
    return eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
  }
  return {};
}

// A strong validator for a compiled-in asset: the module's version and a
// hash of the content (FNV-1a, 64 bits).
std::string asset_etag(std::string_view body) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : body) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char hex[17];
  apr_snprintf(hex, sizeof hex, "%016" APR_UINT64_T_HEX_FMT, static_cast<apr_uint64_t>(h));
  return std::string("\"wsb-") + WSB_VERSION + "-" + hex + "\"";
}

int send_body(request_rec* r, const std::string_view body) {
  ap_set_content_length(r, static_cast<apr_off_t>(body.size()));
  if (!r->header_only) ap_rwrite(body.data(), static_cast<int>(body.size()), r);
  return OK;
}

// ?asset=NAME: the page's script, style sheet and icon. Revalidated on every
// load (no-cache + ETag), so an upgraded module is never shown stale assets.
int serve_asset(request_rec* r, std::string_view name) {
  const StatusAsset* asset = status_page_asset(name);
  if (!asset) return HTTP_NOT_FOUND;
  ap_set_content_type(r, asset->content_type);
  apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
  apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
  apr_table_set(r->headers_out, "ETag", asset_etag(asset->body).c_str());
  int cond = ap_meets_conditions(r);
  if (cond != OK) return cond;  // 304 Not Modified
  return send_body(r, asset->body);
}

// The HTML view: everything comes from this URL, nothing inline, so the
// page can carry a strict Content-Security-Policy.
int serve_html(request_rec* r) {
  ap_set_content_type(r, "text/html; charset=utf-8");
  apr_table_setn(r->headers_out, "Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                 "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
  apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
  return send_body(r, status_page_html().body);
}

}  // namespace

int status_handler(request_rec* r) {
  if (!r->handler || strcmp(r->handler, "wsbridge-status") != 0) return DECLINED;
  // Apache's 405 page builds its Allow header from allowed_methods.
  ap_allow_methods(r, 1, "GET", NULL);
  if (r->method_number != M_GET) return HTTP_METHOD_NOT_ALLOWED;
  bool is_asset = false;
  std::string_view asset = query_param(r->args, "asset", &is_asset);
  if (is_asset) return serve_asset(r, asset);
  // ?format= decides; without it the Accept header does (JSON unless it
  // prefers HTML), so caches must key on Accept.
  std::string_view format = query_param(r->args, "format");
  bool html = format == "html" || (format != "json" && format != "prometheus" && prefers_html(r));
  bool prometheus = !html && format == "prometheus";
  apr_table_mergen(r->headers_out, "Vary", "Accept");
  apr_table_setn(r->headers_out, "Cache-Control", "no-store");
  if (html) return serve_html(r);
  ap_set_content_type(r, prometheus ? "text/plain; version=0.0.4" : "application/json");
  std::string body = prometheus ? status_prometheus() : status_json() + "\n";
  return send_body(r, body);
}

void register_status_hooks() {
  APR_OPTIONAL_HOOK(ap, status_hook, mod_status_section, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace wsb
