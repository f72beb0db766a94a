#include "apache/config.h"

#include <string>

#include "backend/grip_sig.h"
#include "pusher/pusher_webhook.h"
#include "pusher/tls_client.h"
#include "runtime/redis_bus.h"

#include <http_log.h>
#include <apr_file_info.h>
#include <apr_strings.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

namespace wsb {

apr_off_t max_message(const DirConfig* d) { return d->max_message >= 0 ? d->max_message : Limits::kMaxMessage; }
apr_off_t max_frame(const DirConfig* d) { return d->max_frame >= 0 ? d->max_frame : max_message(d); }
apr_off_t max_queued(const DirConfig* d) { return d->max_queued >= 0 ? d->max_queued : Limits::kMaxQueued; }
apr_interval_time_t ping_interval(const DirConfig* d) { return d->ping_interval >= 0 ? d->ping_interval : Limits::kPing; }
apr_interval_time_t idle_timeout(const DirConfig* d) { return d->idle_timeout >= 0 ? d->idle_timeout : Limits::kIdle; }
bool hub_writes(const DirConfig* d) { return d->hub_writes != 0; }
bool deflate(const DirConfig* d) { return d->deflate != 0; }
const PusherAppDef* find_pusher_app(const ServerConfig* s, const char* key, const char* id) {
  if (!s->pusher_apps) return nullptr;
  const auto* apps = reinterpret_cast<const PusherAppDef*>(s->pusher_apps->elts);
  for (int i = 0; i < s->pusher_apps->nelts; ++i) {
    if ((key && strcmp(apps[i].key, key) == 0) || (id && strcmp(apps[i].id, id) == 0)) return &apps[i];
  }
  return nullptr;
}
apr_interval_time_t backend_timeout(const DirConfig* d) { return d->backend_timeout >= 0 ? d->backend_timeout : Limits::kBackendTimeout; }
int history_size(const ServerConfig* s) { return s->history_size >= 0 ? s->history_size : Limits::kHistory; }
size_t presence_limit(const ServerConfig* s) {
  if (s->presence_limit == -2) return SIZE_MAX;
  return static_cast<size_t>(s->presence_limit >= 0 ? s->presence_limit : Limits::kPresenceLimit);
}
apr_off_t bus_size(const ServerConfig* s) { return s->bus_size >= 0 ? s->bus_size : Limits::kBusSize; }
apr_interval_time_t batch_window(const ServerConfig* s) { return s->batch_window >= 0 ? s->batch_window : Limits::kBatchWindow; }
int batch_busy_records(const ServerConfig* s) { return s->batch_busy > 0 ? s->batch_busy : Limits::kBatchBusyRecords; }

void* create_dir_config(apr_pool_t* p, char*) {
  auto* d = static_cast<DirConfig*>(apr_pcalloc(p, sizeof(DirConfig)));
  d->app = AppKind::Unset;
  d->max_message = d->max_frame = d->max_queued = -1;
  d->ping_interval = d->idle_timeout = -1;
  d->hub_writes = -1;
  d->deflate = -1;
  d->max_text_length = -1;
  d->rate_per_sec = d->rate_burst = -1;
  d->backend_timeout = -1;
  d->pusher_client_events = -1;
  return d;
}

void* merge_dir_config(apr_pool_t* p, void* basev, void* addv) {
  auto* base = static_cast<DirConfig*>(basev);
  auto* add = static_cast<DirConfig*>(addv);
  auto* m = static_cast<DirConfig*>(apr_pcalloc(p, sizeof(DirConfig)));
  m->app = add->app != AppKind::Unset ? add->app : base->app;
  m->origins = add->origins ? add->origins : base->origins;
  m->subprotocols = add->subprotocols ? add->subprotocols : base->subprotocols;
  m->max_message = add->max_message >= 0 ? add->max_message : base->max_message;
  m->max_frame = add->max_frame >= 0 ? add->max_frame : base->max_frame;
  m->max_queued = add->max_queued >= 0 ? add->max_queued : base->max_queued;
  m->ping_interval = add->ping_interval >= 0 ? add->ping_interval : base->ping_interval;
  m->idle_timeout = add->idle_timeout >= 0 ? add->idle_timeout : base->idle_timeout;
  m->hub_writes = add->hub_writes >= 0 ? add->hub_writes : base->hub_writes;
  m->deflate = add->deflate >= 0 ? add->deflate : base->deflate;
  m->max_text_length = add->max_text_length >= 0 ? add->max_text_length : base->max_text_length;
  m->rate_per_sec = add->rate_per_sec >= 0 ? add->rate_per_sec : base->rate_per_sec;
  m->rate_burst = add->rate_burst >= 0 ? add->rate_burst : base->rate_burst;
  m->secret = add->secret ? add->secret : base->secret;
  m->backend_path = add->backend_path ? add->backend_path : base->backend_path;
  m->backend_sig_key = add->backend_sig_key ? add->backend_sig_key : base->backend_sig_key;
  m->backend_timeout = add->backend_timeout >= 0 ? add->backend_timeout : base->backend_timeout;
  m->pusher_client_events = add->pusher_client_events >= 0 ? add->pusher_client_events : base->pusher_client_events;
  return m;
}

void* create_server_config(apr_pool_t* p, server_rec*) {
  auto* s = static_cast<ServerConfig*>(apr_pcalloc(p, sizeof(ServerConfig)));
  s->max_connections = -1;
  s->reserve_workers = -1;
  s->max_per_ip = -1;
  s->bus_size = -1;
  s->history_size = -1;
  s->presence_limit = -1;
  s->batch_window = -1;
  s->batch_busy = 0;
  return s;
}

void* merge_server_config(apr_pool_t* p, void* basev, void* addv) {
  auto* base = static_cast<ServerConfig*>(basev);
  auto* add = static_cast<ServerConfig*>(addv);
  auto* m = static_cast<ServerConfig*>(apr_pcalloc(p, sizeof(ServerConfig)));
  m->max_connections = add->max_connections >= 0 ? add->max_connections : base->max_connections;
  m->reserve_workers = add->reserve_workers >= 0 ? add->reserve_workers : base->reserve_workers;
  m->max_per_ip = add->max_per_ip >= 0 ? add->max_per_ip : base->max_per_ip;
  m->pusher_apps = add->pusher_apps ? add->pusher_apps : base->pusher_apps;
  // A vhost with its own apps has its own webhooks (they name its apps).
  m->pusher_webhooks = add->pusher_apps ? add->pusher_webhooks : base->pusher_webhooks;
  m->bus_size = add->bus_size >= 0 ? add->bus_size : base->bus_size;
  m->bus_url = add->bus_url ? add->bus_url : base->bus_url;
  m->bus_file = add->bus_file ? add->bus_file : base->bus_file;
  m->webhook_ca = add->webhook_ca ? add->webhook_ca : base->webhook_ca;
  m->history_size = add->history_size >= 0 ? add->history_size : base->history_size;
  m->presence_limit = add->presence_limit != -1 ? add->presence_limit : base->presence_limit;
  m->batch_window = add->batch_window >= 0 ? add->batch_window : base->batch_window;
  m->batch_busy = add->batch_busy > 0 ? add->batch_busy : base->batch_busy;
  return m;
}

namespace {

// "1048576", "512K", "16M", "1G" (binary multiples). Returns an error text or NULL.
const char* parse_size(cmd_parms* cmd, const char* arg, apr_off_t lo, apr_off_t hi, apr_off_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(arg, &end, 10);
  if (end == arg || errno != 0 || *arg == '-') {
    return apr_psprintf(cmd->pool, "%s: '%s' is not a size (use bytes or a K/M/G suffix)",
                        cmd->directive->directive, arg);
  }
  unsigned long long mult = 1;
  if (*end) {
    switch (std::toupper(static_cast<unsigned char>(*end))) {
      case 'K': mult = 1ull << 10; break;
      case 'M': mult = 1ull << 20; break;
      case 'G': mult = 1ull << 30; break;
      default: mult = 0;
    }
    if (mult == 0 || end[1] != '\0')
      return apr_psprintf(cmd->pool, "%s: '%s' is not a size (use bytes or a K/M/G suffix)",
                          cmd->directive->directive, arg);
  }
  if (v > static_cast<unsigned long long>(hi) / mult || static_cast<apr_off_t>(v * mult) < lo) {
    return apr_psprintf(cmd->pool, "%s: %s is out of range (%" APR_OFF_T_FMT " to %" APR_OFF_T_FMT " bytes)",
                        cmd->directive->directive, arg, lo, hi);
  }
  *out = static_cast<apr_off_t>(v * mult);
  return nullptr;
}

// Seconds by default; "500ms", "2m" per ap_timeout_parameter_parse. 0 = off.
// unit: what a bare number means, "s" or "ms".
const char* parse_duration(cmd_parms* cmd, const char* arg, apr_interval_time_t hi,
                           apr_interval_time_t* out, const char* unit = "s") {
  apr_interval_time_t t;
  if (ap_timeout_parameter_parse(arg, &t, unit) != APR_SUCCESS || t < 0) {
    return apr_psprintf(cmd->pool, "%s: '%s' is not a duration (%s, or with ms/s/mi/h)",
                        cmd->directive->directive, arg, strcmp(unit, "ms") ? "seconds" : "milliseconds");
  }
  if (t > hi) {
    const bool in_ms = hi < apr_time_from_sec(1);
    return apr_psprintf(cmd->pool, "%s: %s is too long (at most %" APR_TIME_T_FMT " %s)",
                        cmd->directive->directive, arg, in_ms ? apr_time_as_msec(hi) : apr_time_sec(hi),
                        in_ms ? "ms" : "s");
  }
  *out = t;
  return nullptr;
}

const char* parse_int(cmd_parms* cmd, const char* arg, long lo, long hi, int* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(arg, &end, 10);
  if (end == arg || *end || errno != 0 || v < lo || v > hi) {
    return apr_psprintf(cmd->pool, "%s: '%s' must be a whole number from %ld to %ld",
                        cmd->directive->directive, arg, lo, hi);
  }
  *out = static_cast<int>(v);
  return nullptr;
}

DirConfig* dconf(void* v) { return static_cast<DirConfig*>(v); }
ServerConfig* sconf(cmd_parms* cmd) { return server_config(cmd->server); }

const char* set_app(cmd_parms* cmd, void* d, const char* arg) {
  if (!strcasecmp(arg, "echo")) dconf(d)->app = AppKind::Echo;
  else if (!strcasecmp(arg, "chat")) dconf(d)->app = AppKind::Chat;
  else if (!strcasecmp(arg, "backend")) dconf(d)->app = AppKind::Backend;
  else if (!strcasecmp(arg, "pusher")) dconf(d)->app = AppKind::Pusher;
  else return apr_psprintf(cmd->pool, "WSBridgeApp: unknown app '%s' (use echo, chat, backend or pusher)", arg);
  return nullptr;
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c);
}

const char* add_origin(cmd_parms* cmd, void* d, const char* arg) {
  DirConfig* c = dconf(d);
  if (!c->origins) c->origins = apr_array_make(cmd->pool, 4, sizeof(const char*));
  if (std::strcmp(arg, "*") != 0) {
    const char* rest = nullptr;
    if (!strncasecmp(arg, "http://", 7)) rest = arg + 7;
    else if (!strncasecmp(arg, "https://", 8)) rest = arg + 8;
    if (!rest || !*rest || std::strpbrk(rest, "/?#@ ") != nullptr) {
      return apr_psprintf(cmd->pool,
                          "WSBridgeAllowOrigin: '%s' is not an origin (use * or scheme://host[:port], "
                          "e.g. https://example.com)", arg);
    }
  }
  *static_cast<const char**>(apr_array_push(c->origins)) = apr_pstrdup(cmd->pool, arg);
  return nullptr;
}

const char* add_subprotocol(cmd_parms* cmd, void* d, const char* arg) {
  DirConfig* c = dconf(d);
  for (const char* p = arg; *p; ++p) {
    if (!is_tchar(*p))
      return apr_psprintf(cmd->pool, "WSBridgeSubprotocols: '%s' is not a valid token", arg);
  }
  if (!c->subprotocols) c->subprotocols = apr_array_make(cmd->pool, 4, sizeof(const char*));
  *static_cast<const char**>(apr_array_push(c->subprotocols)) = apr_pstrdup(cmd->pool, arg);
  return nullptr;
}

const char* set_max_message(cmd_parms* cmd, void* d, const char* arg) {
  return parse_size(cmd, arg, 125, apr_off_t(1) << 30, &dconf(d)->max_message);
}
const char* set_max_frame(cmd_parms* cmd, void* d, const char* arg) {
  return parse_size(cmd, arg, 125, apr_off_t(1) << 30, &dconf(d)->max_frame);
}
const char* set_max_queued(cmd_parms* cmd, void* d, const char* arg) {
  return parse_size(cmd, arg, 64 << 10, apr_off_t(1) << 30, &dconf(d)->max_queued);
}
const char* set_ping(cmd_parms* cmd, void* d, const char* arg) {
  return parse_duration(cmd, arg, apr_time_from_sec(86400), &dconf(d)->ping_interval);
}
const char* set_idle(cmd_parms* cmd, void* d, const char* arg) {
  return parse_duration(cmd, arg, apr_time_from_sec(86400), &dconf(d)->idle_timeout);
}
const char* set_history(cmd_parms* cmd, void*, const char* arg) {
  // Rooms are shared by every chat endpoint and every child, so their
  // history length is one server-wide setting.
  const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
  if (err) return err;
  return parse_int(cmd, arg, 0, 100000, &sconf(cmd)->history_size);
}
const char* set_presence_limit(cmd_parms* cmd, void*, const char* arg) {
  // Rooms are shared by every chat endpoint and child: one server-wide limit.
  const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
  if (err) return err;
  if (!strcasecmp(arg, "off")) {
    sconf(cmd)->presence_limit = -2;
    return nullptr;
  }
  return parse_int(cmd, arg, 0, 1000000, &sconf(cmd)->presence_limit);
}
const char* set_text_length(cmd_parms* cmd, void* d, const char* arg) {
  return parse_int(cmd, arg, 1, 1 << 20, &dconf(d)->max_text_length);
}

const char* set_rate(cmd_parms* cmd, void* d, const char* rate, const char* burst) {
  if (!strcasecmp(rate, "off") && !burst) {
    dconf(d)->rate_per_sec = 0;
    dconf(d)->rate_burst = 0;
    return nullptr;
  }
  char* end = nullptr;
  double r = std::strtod(rate, &end);
  if (end == rate || *end || !(r > 0) || r > 1e6)
    return apr_psprintf(cmd->pool, "WSBridgeRateLimit: rate '%s' must be a number of messages per second > 0, or off", rate);
  double b = r * 2;
  if (burst) {
    b = std::strtod(burst, &end);
    if (end == burst || *end || !(b >= 1) || b > 1e6)
      return apr_psprintf(cmd->pool, "WSBridgeRateLimit: burst '%s' must be a number >= 1", burst);
  }
  dconf(d)->rate_per_sec = r;
  dconf(d)->rate_burst = b;
  return nullptr;
}

const char* set_secret(cmd_parms* cmd, void* d, const char* arg) {
  if (!strcasecmp(arg, "none")) {
    dconf(d)->secret = "";
    return nullptr;
  }
  if (std::strlen(arg) < 16)
    return "WSBridgeSecret: the secret must be at least 16 characters (or 'none')";
  dconf(d)->secret = apr_pstrdup(cmd->pool, arg);
  return nullptr;
}

const char* set_max_connections(cmd_parms* cmd, void*, const char* arg) {
  const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
  if (err) return err;
  return parse_int(cmd, arg, 1, 1000000, &sconf(cmd)->max_connections);
}

const char* set_backend(cmd_parms* cmd, void* d, const char* arg) {
  // A local path of this vhost, run as a sub-request: never a URL (a remote
  // backend is a ProxyPass of a local path) and never a query string (the
  // client's goes there).
  if (arg[0] != '/' || std::strpbrk(arg, "?# \t\r\n") != nullptr || std::strstr(arg, "//") == arg)
    return apr_psprintf(cmd->pool,
                        "WSBridgeBackend: '%s' must be a local URL path such as /ws-backend.php "
                        "(use ProxyPass on that path for a remote backend)", arg);
  dconf(d)->backend_path = apr_pstrdup(cmd->pool, arg);
  return nullptr;
}

const char* set_backend_sig_key(cmd_parms* cmd, void* d, const char* arg) {
  std::string key;
  if (!parse_sig_key(arg, &key))
    return "WSBridgeBackendSigKey: 'base64:' must be followed by standard base64";
  if (key.size() < 16)
    return "WSBridgeBackendSigKey: the key must be at least 16 bytes";
  if (key.find('\0') != std::string::npos)
    return "WSBridgeBackendSigKey: a binary key must not contain NUL bytes";
  dconf(d)->backend_sig_key = static_cast<const char*>(apr_pmemdup(cmd->pool, key.c_str(), key.size() + 1));
  return nullptr;
}

const char* set_backend_timeout(cmd_parms* cmd, void* d, const char* arg) {
  const char* err = parse_duration(cmd, arg, apr_time_from_sec(3600), &dconf(d)->backend_timeout);
  if (!err && dconf(d)->backend_timeout == 0) return "WSBridgeBackendTimeout: must be more than 0";
  return err;
}

bool is_app_token(const char* s) {
  if (!*s || std::strlen(s) > 100) return false;
  for (const char* p = s; *p; ++p)
    if (!std::isalnum(static_cast<unsigned char>(*p)) && !std::strchr("-_.", *p)) return false;
  return true;
}

const char* add_pusher_app(cmd_parms* cmd, void*, const char* id, const char* key, const char* secret) {
  const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
  if (err) return err;
  if (!is_app_token(id) || !is_app_token(key))
    return apr_psprintf(cmd->pool, "WSBridgePusherApp: id '%s' and key '%s' must be 1-100 letters, digits, '-', '_' or '.'",
                        id, key);
  if (std::strlen(secret) < 16)
    return "WSBridgePusherApp: the secret must be at least 16 characters";
  ServerConfig* s = sconf(cmd);
  if (find_pusher_app(s, key, id))
    return apr_psprintf(cmd->pool, "WSBridgePusherApp: app id '%s' or key '%s' is used twice", id, key);
  if (!s->pusher_apps) s->pusher_apps = apr_array_make(cmd->pool, 2, sizeof(PusherAppDef));
  auto* app = static_cast<PusherAppDef*>(apr_array_push(s->pusher_apps));
  app->id = apr_pstrdup(cmd->pool, id);
  app->key = apr_pstrdup(cmd->pool, key);
  app->secret = apr_pstrdup(cmd->pool, secret);
  return nullptr;
}

// WSBridgePusherWebhook <app-id> <http(s)://host[:port]/path | /local/path> [event...]
const char* add_pusher_webhook(cmd_parms* cmd, void*, int argc, char* const argv[]) {
  const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
  if (err) return err;
  if (argc < 2)
    return "WSBridgePusherWebhook: use WSBridgePusherWebhook <app-id> <http(s)://host[:port]/path or /local/path> [event ...]";
  ServerConfig* s = sconf(cmd);
  if (!find_pusher_app(s, nullptr, argv[0]))
    return apr_psprintf(cmd->pool, "WSBridgePusherWebhook: no WSBridgePusherApp with id '%s' before this line "
                        "(in the same server or virtual host)", argv[0]);
  WebhookUrl url;
  std::string why;
  if (!parse_webhook_url(argv[1], &url, &why))
    return apr_psprintf(cmd->pool, "WSBridgePusherWebhook: '%s' is not a webhook target: %s", argv[1], why.c_str());
  unsigned events = 0;
  for (int i = 2; i < argc; ++i) {
    unsigned bit = webhook_event_bit(std::string_view(argv[i]));
    if (!bit)
      return apr_psprintf(cmd->pool, "WSBridgePusherWebhook: unknown event '%s' (use channel_occupied, channel_vacated, "
                          "member_added, member_removed, client_event, cache_miss)", argv[i]);
    events |= bit;
  }
  if (argc == 2) events = kHookAll;
  if (!s->pusher_webhooks) s->pusher_webhooks = apr_array_make(cmd->pool, 2, sizeof(PusherWebhookDef));
  auto* w = static_cast<PusherWebhookDef*>(apr_array_push(s->pusher_webhooks));
  w->app_id = apr_pstrdup(cmd->pool, argv[0]);
  w->target = apr_pstrdup(cmd->pool, argv[1]);
  w->events = events;
  w->server = cmd->server;
  return nullptr;
}

// The files of WSBridgePusherWebhookCA, loaded while the configuration is
// read: by the parent, as root, like mod_ssl's certificates, so the file
// may be readable by root only; the children inherit the loaded contexts.
// Every reading of the configuration loads them again.
std::map<std::string, std::shared_ptr<const TlsClientContext>>& loaded_webhook_cas() {
  static auto* m = new std::map<std::string, std::shared_ptr<const TlsClientContext>>();
  return *m;
}

// WSBridgePusherWebhookCA <file>: what https webhook targets are verified
// against. A file that does not load stops the start with the reason.
const char* set_pusher_webhook_ca(cmd_parms* cmd, void*, const char* arg) {
  const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
  if (err) return err;
  const char* path = ap_server_root_relative(cmd->pool, arg);
  if (!path) return apr_psprintf(cmd->pool, "WSBridgePusherWebhookCA: '%s' is not a valid path", arg);
  std::string why;
  std::shared_ptr<const TlsClientContext> ctx = TlsClientContext::create(path, &why);
  if (!ctx)
    return apr_psprintf(cmd->pool, "WSBridgePusherWebhookCA: %s (a PEM file of CA certificates, or the "
                        "receiver's own certificate if it is self-signed)", why.c_str());
  loaded_webhook_cas()[path] = std::move(ctx);
  sconf(cmd)->webhook_ca = path;
  return nullptr;
}

const char* set_pusher_client_events(cmd_parms*, void* d, int on) {
  dconf(d)->pusher_client_events = on ? 1 : 0;
  return nullptr;
}

const char* set_reserve_workers(cmd_parms* cmd, void*, const char* arg) {
  // The reserve is a property of the child processes, shared by every vhost.
  const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
  if (err) return err;
  return parse_int(cmd, arg, 0, 100000, &sconf(cmd)->reserve_workers);
}

const char* set_max_per_ip(cmd_parms* cmd, void*, const char* arg) {
  // One count per address over every vhost and app: a server-wide setting.
  const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
  if (err) return err;
  if (!strcasecmp(arg, "off")) {
    sconf(cmd)->max_per_ip = 0;
    return nullptr;
  }
  if (parse_int(cmd, arg, 0, 1000000, &sconf(cmd)->max_per_ip))
    return apr_psprintf(cmd->pool, "WSBridgeMaxConnectionsPerIP: '%s' must be a whole number from 0 to 1000000 "
                        "(0 or off: no limit)", arg);
  return nullptr;
}

// WSBridgeBusFile <path>|off: the shared-memory bus in a file, so a full
// stop and start keeps it (shm_bus.h). Checked here: the directory must
// exist; the file itself is opened (and locked) when the server starts, not
// by a configuration test.
const char* set_bus_file(cmd_parms* cmd, void*, const char* arg) {
  const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
  if (err) return err;
  if (!strcasecmp(arg, "off")) {
    sconf(cmd)->bus_file = nullptr;
    return nullptr;
  }
  const char* path = ap_server_root_relative(cmd->pool, arg);
  if (!path) return apr_psprintf(cmd->pool, "WSBridgeBusFile: '%s' is not a valid path", arg);
  const char* slash = strrchr(path, '/');
  const char* dir = slash == path ? "/" : apr_pstrndup(cmd->pool, path, slash - path);
  apr_finfo_t fi;
  if (!slash[1] || apr_stat(&fi, dir, APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS || fi.filetype != APR_DIR)
    return apr_psprintf(cmd->pool, "WSBridgeBusFile: '%s' must name a file in an existing directory", path);
  if (apr_stat(&fi, path, APR_FINFO_TYPE, cmd->pool) == APR_SUCCESS && fi.filetype != APR_REG)
    return apr_psprintf(cmd->pool, "WSBridgeBusFile: '%s' exists and is not a regular file", path);
  sconf(cmd)->bus_file = path;
  return nullptr;
}

const char* set_bus_size(cmd_parms* cmd, void*, const char* arg) {
  const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
  if (err) return err;
  return parse_size(cmd, arg, 64 << 10, apr_off_t(1) << 30, &sconf(cmd)->bus_size);
}

const char* set_batch_window(cmd_parms* cmd, void*, const char* arg, const char* busy) {
  // One hub per child serves every chat endpoint: a server-wide setting.
  const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
  if (err) return err;
  if (busy) {
    int n = 0;
    if ((err = parse_int(cmd, busy, 1, 256, &n))) return err;
    sconf(cmd)->batch_busy = n;
  }
  // Microseconds too ("250us"): the useful settings are below a millisecond.
  const size_t len = strlen(arg);
  if (len > 2 && strcmp(arg + len - 2, "us") == 0) {
    char* end = nullptr;
    errno = 0;
    const long long us = std::strtoll(arg, &end, 10);
    if (end != arg + len - 2 || errno != 0 || us < 0 || !std::isdigit(static_cast<unsigned char>(*arg)))
      return apr_psprintf(cmd->pool, "%s: '%s' is not a duration (milliseconds, or with us/ms/s)",
                          cmd->directive->directive, arg);
    if (us > apr_time_from_msec(100))
      return apr_psprintf(cmd->pool, "%s: %s is too long (at most 100 ms)", cmd->directive->directive, arg);
    sconf(cmd)->batch_window = static_cast<apr_interval_time_t>(us);
    return nullptr;
  }
  return parse_duration(cmd, arg, apr_time_from_msec(100), &sconf(cmd)->batch_window, "ms");
}

const char* set_deflate(cmd_parms*, void* d, int on) {
  dconf(d)->deflate = on ? 1 : 0;
  return nullptr;
}

const char* set_hub_writes(cmd_parms*, void* d, int on) {
  dconf(d)->hub_writes = on ? 1 : 0;
  return nullptr;
}

const char* set_bus(cmd_parms* cmd, void*, const char* arg) {
  const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
  if (err) return err;
  if (!strcasecmp(arg, "shm")) {
    sconf(cmd)->bus_url = nullptr;
    return nullptr;
  }
  RedisAddress addr;
  std::string why;
  if (!parse_redis_url(arg, &addr, &why))
    return apr_psprintf(cmd->pool, "WSBridgeBus: '%s' must be shm or redis://host:port[/db] (%s)", arg, why.c_str());
  sconf(cmd)->bus_url = apr_pstrdup(cmd->pool, arg);
  return nullptr;
}

using CmdFunc = cmd_func;
template <typename F>
CmdFunc fn(F f) {
  // Apache's C++ view of a directive handler is an unprototyped pointer;
  // going through void(*)() is the sanctioned way to convert.
  return reinterpret_cast<CmdFunc>(reinterpret_cast<void (*)()>(f));
}

}  // namespace

std::shared_ptr<const TlsClientContext> loaded_webhook_ca(const char* path) {
  auto it = loaded_webhook_cas().find(path ? path : "");
  return it == loaded_webhook_cas().end() ? nullptr : it->second;
}

#define WSB_DIR (RSRC_CONF | ACCESS_CONF | OR_FILEINFO)

const command_rec directives[] = {
    {"WSBridgeApp", fn(set_app), nullptr, WSB_DIR, TAKE1, "echo, chat or backend: the application behind the endpoint"},
    {"WSBridgeBackend", fn(set_backend), nullptr, WSB_DIR, TAKE1, "WSBridgeApp backend: the local URL path that handles connection events (WebSocket-over-HTTP)"},
    {"WSBridgeBackendSigKey", fn(set_backend_sig_key), nullptr, WSB_DIR, TAKE1, "key of the Grip-Sig JWT on backend requests (default: a random key per start)"},
    {"WSBridgePusherApp", fn(add_pusher_app), nullptr, RSRC_CONF, TAKE3, "a Pusher app: id key secret (several allowed; clients connect to /app/<key>)"},
    {"WSBridgePusherWebhook", fn(add_pusher_webhook), nullptr, RSRC_CONF, TAKE_ARGV, "Pusher webhooks of an app: app-id http(s)://host[:port]/path or /local/path, then the events (default: all)"},
    {"WSBridgePusherWebhookCA", fn(set_pusher_webhook_ca), nullptr, RSRC_CONF, TAKE1, "PEM file of the CAs that https webhook targets are verified against (default: the system's)"},
    {"WSBridgePusherClientEvents", fn(set_pusher_client_events), nullptr, WSB_DIR, FLAG, "relay client-* events on private and presence channels (default On)"},
    {"WSBridgeBackendTimeout", fn(set_backend_timeout), nullptr, WSB_DIR, TAKE1, "how long a backend request may take (default 10s)"},
    {"WSBridgeAllowOrigin", fn(add_origin), nullptr, WSB_DIR, ITERATE, "allowed Origins: * or scheme://host[:port] (default: same host)"},
    {"WSBridgeSubprotocols", fn(add_subprotocol), nullptr, WSB_DIR, ITERATE, "offered subprotocols, in preference order"},
    {"WSBridgeMaxMessageSize", fn(set_max_message), nullptr, WSB_DIR, TAKE1, "largest message accepted (default 1M)"},
    {"WSBridgeMaxFrameSize", fn(set_max_frame), nullptr, WSB_DIR, TAKE1, "largest frame accepted (default: the message size)"},
    {"WSBridgeMaxQueuedBytes", fn(set_max_queued), nullptr, WSB_DIR, TAKE1, "outbound bytes queued per connection before it is cut off (default 4M)"},
    {"WSBridgePingInterval", fn(set_ping), nullptr, WSB_DIR, TAKE1, "ping a quiet peer after this long (default 30s; 0 = off)"},
    {"WSBridgeIdleTimeout", fn(set_idle), nullptr, WSB_DIR, TAKE1, "close a peer silent this long (default 75s; 0 = off)"},
    {"WSBridgeDeflate", fn(set_deflate), nullptr, WSB_DIR, FLAG, "accept permessage-deflate: clients may send compressed messages (default On)"},
    {"WSBridgeHubWrites", fn(set_hub_writes), nullptr, WSB_DIR, FLAG, "let the hub write to plain (non-TLS) sockets itself instead of waking the connection's thread (default On)"},
    {"WSBridgeBatchWindow", fn(set_batch_window), nullptr, RSRC_CONF, TAKE12, "time [records]: after a hand-over of at least records chat events (default 8), the hub holds the next one until this long after it (default 1ms; 0 = never; records 1 = a fixed window)"},
    {"WSBridgeHistorySize", fn(set_history), nullptr, RSRC_CONF, TAKE1, "events kept per chat room (default 100)"},
    {"WSBridgePresenceLimit", fn(set_presence_limit), nullptr, RSRC_CONF, TAKE1, "chat rooms above this many members list this many names and fold joins/leaves into presence counts (default 100; off = no limit)"},
    {"WSBridgeMaxTextLength", fn(set_text_length), nullptr, WSB_DIR, TAKE1, "longest chat text in bytes (default 4096)"},
    {"WSBridgeRateLimit", fn(set_rate), nullptr, WSB_DIR, TAKE12, "chat commands per second and burst (default 20 40), or off"},
    {"WSBridgeSecret", fn(set_secret), nullptr, WSB_DIR, TAKE1, "HMAC secret for access tokens (default none)"},
    {"WSBridgeMaxConnections", fn(set_max_connections), nullptr, RSRC_CONF, TAKE1, "open WebSockets per server (default: what the MPM can carry with the worker reserve)"},
    {"WSBridgeReserveWorkers", fn(set_reserve_workers), nullptr, RSRC_CONF, TAKE1, "worker threads per child (prefork: workers per server) never given to WebSockets (default: 1/8, at least 4, at most half)"},
    {"WSBridgeMaxConnectionsPerIP", fn(set_max_per_ip), nullptr, RSRC_CONF, TAKE1, "open WebSockets per client address, over every child (default: a quarter of the server's capacity, at least 64; 0 or off = no limit)"},
    {"WSBridgeBusSize", fn(set_bus_size), nullptr, RSRC_CONF, TAKE1, "shared-memory bus size (default 16M)"},
    {"WSBridgeBusFile", fn(set_bus_file), nullptr, RSRC_CONF, TAKE1, "keep the shared-memory bus in this file, so a full stop and start keeps history and message ids (default off)"},
    {"WSBridgeBus", fn(set_bus), nullptr, RSRC_CONF, TAKE1, "shm (default) or redis://host:port[/db]"},
    {nullptr, nullptr, nullptr, 0, NO_ARGS, nullptr},
};

}  // namespace wsb
