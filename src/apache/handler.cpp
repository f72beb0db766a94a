#include "apache/handler.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_script.h>
#include <scoreboard.h>
#include <ap_mpm.h>
#include <apr_strings.h>
#include <apr_portable.h>

#include <string>
#include <vector>

#include "apache/backend_handler.h"
#include "apache/pusher_handler.h"
#include "apache/config.h"
#include "apache/chat_service.h"
#include "apache/deferred_session.h"
#include "apache/filter_transport.h"
#include "apache/per_ip_limit.h"
#include "chat/chat_app.h"
#include "chat/chat_names.h"
#include "chat/token.h"
#include "protocol/handshake.h"
#include "runtime/echo_app.h"

APLOG_USE_MODULE(wsbridge);

namespace wsb {

ProcessState& process_state() {
  static ProcessState state;
  return state;
}

namespace {

std::vector<std::string> to_vector(const apr_array_header_t* a) {
  std::vector<std::string> v;
  if (!a) return v;
  const char* const* items = reinterpret_cast<const char* const*>(a->elts);
  for (int i = 0; i < a->nelts; ++i) v.emplace_back(items[i]);
  return v;
}

std::string_view header(request_rec* r, const char* name, bool* present = nullptr) {
  const char* v = apr_table_get(r->headers_in, name);
  if (present) *present = v != nullptr;
  return v ? std::string_view(v) : std::string_view();
}

RefuseReason reason_for(int status) {
  switch (status) {
    case HTTP_UNAUTHORIZED: return RefuseReason::Unauthorized;
    case HTTP_FORBIDDEN: return RefuseReason::Forbidden;
    case HTTP_METHOD_NOT_ALLOWED: return RefuseReason::BadMethod;
    case HTTP_UPGRADE_REQUIRED: return RefuseReason::UpgradeRequired;
    case HTTP_SERVICE_UNAVAILABLE: return RefuseReason::Overloaded;
    case HTTP_TOO_MANY_REQUESTS: return RefuseReason::PerIp;
    default: return RefuseReason::BadRequest;
  }
}

// Answers a refused upgrade: the status, a one-line text body saying why,
// and a log line (unless the caller wrote a rate-limited one). Returns OK so
// Apache sends our body, not its error page.
int refuse(request_rec* r, int status, const std::string& why, RefuseReason reason, bool log = true) {
  ProcessState& ps = process_state();
  if (ps.slot) ps.slot->refused[static_cast<int>(reason)].fetch_add(1);
  if (log)
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "wsbridge: refused upgrade of %s with %d: %s",
                  r->uri, status, why.c_str());
  r->status = status;
  apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
  ap_set_content_type(r, "text/plain; charset=utf-8");
  ap_rvputs(r, why.c_str(), "\n", NULL);
  return OK;
}

int refuse(request_rec* r, int status, const std::string& why) { return refuse(r, status, why, reason_for(status)); }

// 503 with Retry-After: the client may come back.
int refuse_busy(request_rec* r, const char* retry_after, const std::string& why, RefuseReason reason) {
  apr_table_setn(r->err_headers_out, "Retry-After", retry_after);
  return refuse(r, HTTP_SERVICE_UNAVAILABLE, why, reason);
}

// The descriptor that shows the connection's input. On an HTTP/2 stream
// (c->master) mod_http2 2.0.15+ answers with the read end of the pipe it
// signals the stream's input on; its conn_rec's socket is a process-wide
// dummy (never polled: it would never show input, or always), so anything
// but that pipe means this mod_http2 cannot carry a WebSocket; except
// APR_NO_DESC (*no_input): the client ended the stream with its CONNECT.
int poll_fd_of(conn_rec* c, bool* no_input) {
  apr_pollfd_t pfd;
  if (ap_get_pollfd_from_conn(c, &pfd, nullptr) != APR_SUCCESS) return -1;
  *no_input = pfd.desc_type == APR_NO_DESC;
  if (c->master && pfd.desc_type != APR_POLL_FILE) return -1;
  if (pfd.desc_type == APR_POLL_SOCKET) {
    apr_os_sock_t fd;
    return apr_os_sock_get(&fd, pfd.desc.s) == APR_SUCCESS ? fd : -1;
  }
  if (pfd.desc_type == APR_POLL_FILE) {
    apr_os_file_t fd;
    return apr_os_file_get(&fd, pfd.desc.f) == APR_SUCCESS ? fd : -1;
  }
  return -1;
}

// Prefork: children that are waiting for a connection right now. Another
// process is spawned at most once a second, so a burst of upgrades could
// take every idle child and plain requests would wait for the next spawn.
int idle_prefork_children() {
  int limit = 0;
  if (!ap_scoreboard_image || ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS) return -1;
  int idle = 0;
  for (int i = 0; i < limit; ++i) {
    worker_score* ws = ap_get_scoreboard_worker_from_indexes(i, 0);
    process_score* ps = ap_get_scoreboard_process(i);
    if (ws && ps && ps->pid && ws->status == SERVER_READY) ++idle;
  }
  return idle;
}

bool mpm_stopping() {
  int state = AP_MPMQ_RUNNING;
  return ap_mpm_query(AP_MPMQ_MPM_STATE, &state) == APR_SUCCESS && state == AP_MPMQ_STOPPING;
}

// From here on the connection carries WebSocket frames, not HTTP: only
// connection-level filters, no request timeouts, no keep-alive, and what
// Apache writes after the handler (EOS) goes to the connection filters,
// which write nothing for it.
void take_over_connection(request_rec* r) {
  conn_rec* c = r->connection;
  ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
  // Its output half only watches for the end of a request to re-arm the
  // input half for the next one; there is no next request here.
  ap_remove_output_filter_byhandle(c->output_filters, "reqtimeout");
  ap_remove_output_filter_byhandle(c->output_filters, "SSL/TLS Coalescing Filter");
  r->input_filters = r->proto_input_filters = c->input_filters;
  r->output_filters = r->proto_output_filters = c->output_filters;
  c->keepalive = AP_CONN_CLOSE;
}

SessionOptions session_options(const DirConfig* d) {
  SessionOptions o;
  o.limits.max_message_size = static_cast<uint64_t>(max_message(d));
  o.limits.max_frame_size = static_cast<uint64_t>(max_frame(d));
  o.ping_interval_ms = static_cast<int>(apr_time_as_msec(ping_interval(d)));
  o.idle_timeout_ms = static_cast<int>(apr_time_as_msec(idle_timeout(d)));
  o.max_queued_bytes = static_cast<size_t>(max_queued(d));
  o.direct_writes = hub_writes(d);
  return o;
}

// A query parameter, URL-decoded by Apache ("" when absent).
std::string query_param(request_rec* r, const char* name) {
  apr_table_t* args = nullptr;
  ap_args_to_table(r, &args);
  const char* v = args ? apr_table_get(args, name) : nullptr;
  return v ? v : "";
}

ChatConfig chat_config(const DirConfig* d) {
  ChatConfig c;
  if (d->max_text_length > 0) c.max_text_length = static_cast<size_t>(d->max_text_length);
  if (d->rate_per_sec >= 0) {
    c.rate_per_sec = d->rate_per_sec;
    c.rate_burst = d->rate_burst;
  }
  if (d->secret) c.secret = d->secret;
  return c;
}

}  // namespace

void install_stop_check() { process_state().stop.check = mpm_stopping; }

int upgrade_handler(request_rec* r) {
  if (!r->handler || strcmp(r->handler, "wsbridge") != 0) return DECLINED;
  DirConfig* d = dir_config(r);
  ProcessState& ps = process_state();
  AppKind app = d->app == AppKind::Unset ? AppKind::Echo : d->app;

  HandshakeRequest req;
  req.method = r->method;
  req.http_major = r->proto_num / 1000;
  req.http_minor = r->proto_num % 1000;
  req.host = header(r, "Host", &req.has_host);
  req.upgrade = header(r, "Upgrade");
  req.connection = header(r, "Connection");
  req.key = header(r, "Sec-WebSocket-Key", &req.has_key);
  req.version = header(r, "Sec-WebSocket-Version", &req.has_version);
  req.origin = header(r, "Origin", &req.has_origin);
  req.protocols = header(r, "Sec-WebSocket-Protocol");
  req.extensions = header(r, "Sec-WebSocket-Extensions");
  req.is_https = ap_http_scheme(r) && strcmp(ap_http_scheme(r), "https") == 0;
  HandshakePolicy policy;
  policy.allowed_origins = to_vector(d->origins);
  policy.subprotocols = to_vector(d->subprotocols);
  policy.permessage_deflate = deflate(d);

  HandshakeResult hs = validate_handshake(req, policy);
  if (hs.status != HTTP_SWITCHING_PROTOCOLS) {
    if (hs.send_version_header) apr_table_setn(r->err_headers_out, "Sec-WebSocket-Version", "13");
    if (hs.send_upgrade_header) {
      apr_table_setn(r->err_headers_out, "Upgrade", "websocket");
      apr_table_setn(r->err_headers_out, "Connection", "Upgrade");
    }
    if (hs.send_allow_get) apr_table_setn(r->err_headers_out, "Allow", "GET");
    return refuse(r, hs.status, hs.error);
  }

  // WSBridgeMaxConnectionsPerIP, before the worker reserve: one client's
  // excess is its own problem (429), not the server's (503).
  PerIpTable::Ticket ip_ticket;
  std::string per_ip_why;
  if (!admit_per_ip(r, &ip_ticket, &per_ip_why)) {
    apr_table_setn(r->err_headers_out, "Retry-After", "10");
    return refuse(r, HTTP_TOO_MANY_REQUESTS, per_ip_why, RefuseReason::PerIp, false);
  }

  // The worker reserve: this WebSocket will hold this thread for its life.
  ConnectionGate::Ticket ticket;
  const ServerConfig* vhost = server_config(r->server);
  switch (ps.gate.admit(&ticket, vhost->max_connections >= 0 ? vhost->max_connections : INT64_MAX)) {
    case Admission::Ok:
      if (!ps.gate.capacity().per_child && ps.gate.capacity().reserve > 0 && idle_prefork_children() == 0) {
        ticket.release();
        return refuse_busy(r, "1", "no idle server process left for plain requests (WSBridgeReserveWorkers)",
                           RefuseReason::WorkerReserve);
      }
      break;
    case Admission::ChildFull:
      return refuse_busy(r, "1", "no worker to spare in this server process (WSBridgeReserveWorkers)",
                         RefuseReason::WorkerReserve);
    case Admission::ServerFull:
      return refuse_busy(r, "5", "too many WebSocket connections (WSBridgeMaxConnections)", RefuseReason::Overloaded);
  }
  ps.stop.refresh_from_mpm();  // once per upgrade: prefork has no stop hook
  if (ps.stop.is_stopping()) return refuse_busy(r, "1", "server is restarting", RefuseReason::Restarting);

  // Chat: the hub must run, and with WSBridgeSecret the token decides who
  // this is — all before the 101, so a refusal is a plain HTTP answer.
  ChatConfig chat_cfg = chat_config(d);
  std::string user;
  bool user_fixed = false;
  if (app == AppKind::Chat) {
    if (!ChatService::get().ensure_started(r->server))
      return refuse_busy(r, "5", "chat bus unavailable", RefuseReason::Unavailable);
    if (!chat_cfg.secret.empty()) {
      // Browsers cannot set headers on a WebSocket, but they can offer a
      // subprotocol "token.<t>".
      std::string proto_token(first_list_element_with_prefix(req.protocols, "token."));
      std::string token = query_param(r, "token");
      if (token.empty() && !proto_token.empty()) token = proto_token.substr(6);
      TokenStatus ts = token.empty() ? TokenStatus::Malformed
                                     : verify_token(chat_cfg.secret, token, apr_time_sec(apr_time_now()), &user);
      if (ts != TokenStatus::Ok) {
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", "Bearer");
        return refuse(r, HTTP_UNAUTHORIZED,
                      token.empty() ? "a token is required (?token= or subprotocol token.<t>)"
                                    : std::string("token ") + token_status_name(ts));
      }
      user_fixed = true;
      if (hs.subprotocol.empty() && !proto_token.empty()) hs.subprotocol = proto_token;
    } else {
      user = query_param(r, "name");
      if (!user.empty() && !is_valid_user_name(user)) user.clear();
    }
  }

  conn_rec* c = r->connection;
  bool no_input = false;
  int fd = poll_fd_of(c, &no_input);
  if (fd < 0 && c->master && no_input)
    return refuse(r, HTTP_BAD_REQUEST, "the WebSocket stream was ended by its CONNECT (END_STREAM): no input can follow");
  if (fd < 0 && c->master)
    return refuse(r, HTTP_NOT_IMPLEMENTED,
                  "this mod_http2 gives no pollable input for its streams: WebSockets over HTTP/2 need "
                  "mod_http2 2.0.15+ (Apache 2.4.58+) built with pipes; use HTTP/1.1 (Protocols http/1.1)",
                  RefuseReason::Unavailable);
  if (fd < 0) {
    // A hard stop that began after the check above: the MPM closes the
    // sockets its workers hold (event, worker), so this one has none left.
    // Not a fault of the module's; the client reconnects elsewhere.
    ps.stop.refresh_from_mpm();
    if (ps.stop.is_stopping())
      return refuse_busy(r, "1", "server is stopping (its socket was closed during the upgrade)", RefuseReason::Restarting);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "wsbridge: no pollable descriptor for this connection");
    return HTTP_INTERNAL_SERVER_ERROR;
  }

  // Backend: the connection exists once the backend accepted its OPEN.
  BackendBridge bridge;
  if (app == AppKind::Backend) {
    if (!d->backend_path) {
      ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "wsbridge: WSBridgeApp backend needs WSBridgeBackend <path> for %s",
                    r->uri);
      return HTTP_INTERNAL_SERVER_ERROR;
    }
    // Subscriptions and publishes need the hub; without a bus the backend
    // still gets its events.
    if (!ChatService::get().ensure_started(r->server))
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "wsbridge: bus unavailable: no channel subscriptions for %s",
                    r->uri);
    if (!backend_open(r, d, make_connection_id(), &bridge)) return OK;
    hs.subprotocol.clear();  // the backend chooses (its OPEN answer's headers)
  }

  // Pusher: an unknown key or protocol version is answered after the open
  // with pusher:error and a close (4001, 4007), as pusher-js expects.
  std::unique_ptr<PusherAppConfig> pusher_cfg;
  std::string socket_id;
  if (app == AppKind::Pusher) {
    if (!ChatService::get().ensure_started(r->server))
      return refuse_busy(r, "5", "bus unavailable", RefuseReason::Unavailable);
    enable_pusher_engine();
    std::string key = pusher_key_of(r);
    if (const PusherAppDef* def = find_pusher_app(server_config(r->server), key.c_str(), nullptr))
      pusher_cfg = std::make_unique<PusherAppConfig>(pusher_app_config(*def, d));
    else
      ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "wsbridge: no WSBridgePusherApp with key '%s' (4001)", key.c_str());
    socket_id = next_pusher_socket_id();
  }

  apr_table_clear(r->headers_out);
  apr_table_setn(r->headers_out, "Upgrade", "websocket");
  apr_table_setn(r->headers_out, "Connection", "Upgrade");
  apr_table_setn(r->headers_out, "Sec-WebSocket-Accept", apr_pstrdup(r->pool, hs.accept.c_str()));
  if (!hs.subprotocol.empty())
    apr_table_setn(r->headers_out, "Sec-WebSocket-Protocol", apr_pstrdup(r->pool, hs.subprotocol.c_str()));
  if (hs.deflate)
    apr_table_setn(r->headers_out, "Sec-WebSocket-Extensions", apr_pstrdup(r->pool, hs.extensions.c_str()));
  for (const auto& h : bridge.headers_for_101)
    apr_table_set(r->headers_out, h.first.c_str(), h.second.c_str());
  take_over_connection(r);
  // Echo and chat run their session after the request (deferred_session.h).
  const bool deferred = session_can_outlive_request(c, app);
  if (deferred) release_request_memory(c);
  r->status = HTTP_SWITCHING_PROTOCOLS;
  r->status_line = ap_get_status_line(HTTP_SWITCHING_PROTOCOLS);
  if (deferred) send_switching_protocols(r);
  else ap_send_interim_response(r, 1);

  int app_index = static_cast<int>(app);
  SessionStats& stats = ps.stats(app_index);
  stats.accepted.fetch_add(1, std::memory_order_relaxed);
  if (c->master) stats.accepted_h2.fetch_add(1, std::memory_order_relaxed);
  if (deferred) {
    auto plan = std::make_unique<SessionPlan>(std::move(ticket));
    plan->per_ip = std::move(ip_ticket);
    plan->app = app;
    plan->fd = fd;
    plan->options = session_options(d);
    plan->options.limits.allow_compressed = hs.deflate;
    plan->chat = std::move(chat_cfg);
    plan->user = std::move(user);
    plan->user_fixed = user_fixed;
    plan->hub_writes = hub_writes(d);
    plan->timeout = r->server->timeout;
    plan->uri = r->uri;
    defer_session(c, std::move(plan));
    return OK;  // r->status stays 101: the access log shows the upgrade now
  }

  uint16_t code = 0;
  {
    FilterTransport transport(c, fd);
    // The backend bridge runs sub-requests on this connection (its
    // allocator), so the hub may not encode TLS for it meanwhile.
    if (app != AppKind::Backend) transport.allow_tls_hub_writes();
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "wsbridge: upgraded %s (app %s, hub writes %s)", r->uri,
                  app == AppKind::Chat ? "chat" : app == AppKind::Backend ? "backend" : app == AppKind::Pusher ? "pusher" : "echo",
                  !hub_writes(d) ? "off" : transport.hub_writes_possible() ? "on" : "not possible here");
    EchoApp echo;
    ChatService& chat = ChatService::get();
    std::unique_ptr<ChatApp> chat_app;
    if (app == AppKind::Chat)
      chat_app = std::make_unique<ChatApp>(chat_cfg, *chat.bus(), *chat.engine(), chat.next_conn_id(), user,
                                           user_fixed, chat.owner_key(static_cast<int>(getpid())),
                                           &chat.pending());
    std::unique_ptr<BackendApp> backend_app;
    if (app == AppKind::Backend)
      backend_app = std::make_unique<BackendApp>(*bridge.conn, std::move(bridge.open_actions), *bridge.client,
                                                 bridge.channels.get(), bridge.counters.get(),
                                                 backend_log(r, d->backend_path));
    std::unique_ptr<PusherApp> pusher_app;
    if (app == AppKind::Pusher)
      pusher_app = std::make_unique<PusherApp>(
          pusher_cfg.get(), socket_id, *chat.bus(), *chat.engine(), chat.owner_key(static_cast<int>(getpid())),
          &chat.pending(), [r](bool error, const std::string& line) {
            ap_log_rerror(APLOG_MARK, error ? APLOG_ERR : APLOG_INFO, 0, r, "wsbridge: pusher: %s", line.c_str());
          });
    App& the_app = chat_app       ? static_cast<App&>(*chat_app)
                   : backend_app ? static_cast<App&>(*backend_app)
                   : pusher_app  ? static_cast<App&>(*pusher_app)
                                 : static_cast<App&>(echo);
    SessionOptions options = session_options(d);
    options.limits.allow_compressed = hs.deflate;
    Session session(transport, the_app, options, ps.stop, stats);
    ps.sessions.add(session.queue_ptr());
    code = session.run();
    ps.sessions.remove(session.queue_ptr());
  }
  ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "wsbridge: closed %s with %u", r->uri, code);
  // The 101 stays in the access log; nothing else is sent for this request.
  r->status = HTTP_SWITCHING_PROTOCOLS;
  return OK;
}

}  // namespace wsb
