// Per-directory and per-server configuration of mod_wsbridge (the
// directives are documented in README.md, "Directives").
#pragma once
#include <httpd.h>
#include <http_config.h>
#include <apr_tables.h>

#include <memory>

extern "C" {
extern module AP_MODULE_DECLARE_DATA wsbridge_module;
}

namespace wsb {

enum class AppKind : int { Unset = -1, Echo = 0, Chat = 1, Backend = 2, Pusher = 3 };

// WSBridgePusherApp id key secret (one per Pusher app; several per server).
struct PusherAppDef {
  const char* id;
  const char* key;
  const char* secret;
};

// WSBridgePusherWebhook app-id target [events...] (several allowed).
struct PusherWebhookDef {
  const char* app_id;
  const char* target;   // http://... or a local path
  unsigned events;      // WebhookEventBit (pusher_webhook.h)
  server_rec* server;   // where it was configured (a local path's Host)
};

struct DirConfig {
  AppKind app;
  apr_array_header_t* origins;        // const char*; NULL = unset (same host only)
  apr_array_header_t* subprotocols;   // const char*; NULL = unset (none)
  apr_off_t max_message;              // -1 = unset
  apr_off_t max_frame;
  apr_off_t max_queued;
  apr_interval_time_t ping_interval;  // -1 = unset; 0 = off
  apr_interval_time_t idle_timeout;
  int hub_writes;                     // -1 = unset (on); 0 = off
  int deflate;                        // -1 = unset (on); 0 = off
  // chat
  int max_text_length;
  double rate_per_sec;                // < 0 = unset
  double rate_burst;
  const char* secret;                 // NULL = unset; "" = explicitly none
  // backend
  const char* backend_path;           // WSBridgeBackend: local URL path; NULL = unset
  const char* backend_sig_key;        // WSBridgeBackendSigKey (raw key); NULL = unset
  apr_interval_time_t backend_timeout;  // -1 = unset
  // pusher
  int pusher_client_events;           // -1 = unset (on)
};

struct ServerConfig {
  int max_connections;                // -1 = unset (what the MPM can carry)
  int reserve_workers;                // -1 = unset (see default_reserve)
  int max_per_ip;                     // -1 = unset (per_ip_default), 0 = off
  apr_array_header_t* pusher_apps;    // PusherAppDef; NULL = none
  apr_array_header_t* pusher_webhooks;  // PusherWebhookDef; NULL = none
  const char* webhook_ca;             // WSBridgePusherWebhookCA; NULL = the system's CAs
  apr_off_t bus_size;                 // -1 = unset
  const char* bus_url;                // NULL = shared memory
  const char* bus_file;               // WSBridgeBusFile; NULL = an anonymous mapping
  int history_size;                   // -1 = unset
  int presence_limit;                 // -1 = unset, -2 = off (no limit)
  apr_interval_time_t batch_window;   // -1 = unset
  int batch_busy;                     // WSBridgeBatchWindow's records; 0 = unset
};

// Effective values (defaults applied).
struct Limits {
  static constexpr apr_off_t kMaxMessage = 1 << 20;
  static constexpr apr_off_t kMaxQueued = 4 << 20;
  static constexpr apr_interval_time_t kPing = apr_time_from_sec(30);
  static constexpr apr_interval_time_t kIdle = apr_time_from_sec(75);
  static constexpr apr_off_t kBusSize = 16 << 20;
  static constexpr int kHistory = 100;
  static constexpr int kPresenceLimit = 100;
  static constexpr int kTextLength = 4096;
  static constexpr apr_interval_time_t kBatchWindow = 1000;  // 1 ms, only under load
  static constexpr int kBatchBusyRecords = 8;  // HubThread::kDefaultBusyRecords
  static constexpr apr_interval_time_t kBackendTimeout = apr_time_from_sec(10);
  static constexpr int kPerIpFloor = 64;
};

// WSBridgeMaxConnectionsPerIP unset: a quarter of what the server can carry,
// but never under 64 (README, "Per-client limits").
inline int per_ip_default(int server_limit) {
  return server_limit / 4 > Limits::kPerIpFloor ? server_limit / 4 : Limits::kPerIpFloor;
}

apr_off_t max_message(const DirConfig* d);
apr_off_t max_frame(const DirConfig* d);
apr_off_t max_queued(const DirConfig* d);
apr_interval_time_t ping_interval(const DirConfig* d);
apr_interval_time_t idle_timeout(const DirConfig* d);
bool hub_writes(const DirConfig* d);
bool deflate(const DirConfig* d);
apr_interval_time_t backend_timeout(const DirConfig* d);
// The Pusher app with this key (or id), or nullptr.
const PusherAppDef* find_pusher_app(const ServerConfig* s, const char* key, const char* id);

// The client context a WSBridgePusherWebhookCA file was loaded into when the
// configuration was read (as root; children inherit it); nullptr if none.
class TlsClientContext;
std::shared_ptr<const TlsClientContext> loaded_webhook_ca(const char* path);
int history_size(const ServerConfig* s);
size_t presence_limit(const ServerConfig* s);  // SIZE_MAX = off
apr_off_t bus_size(const ServerConfig* s);
apr_interval_time_t batch_window(const ServerConfig* s);
int batch_busy_records(const ServerConfig* s);

void* create_dir_config(apr_pool_t* p, char* dir);
void* merge_dir_config(apr_pool_t* p, void* base, void* add);
void* create_server_config(apr_pool_t* p, server_rec* s);
void* merge_server_config(apr_pool_t* p, void* base, void* add);

extern const command_rec directives[];

inline DirConfig* dir_config(request_rec* r) {
  return static_cast<DirConfig*>(ap_get_module_config(r->per_dir_config, &wsbridge_module));
}
inline ServerConfig* server_config(server_rec* s) {
  return static_cast<ServerConfig*>(ap_get_module_config(s->module_config, &wsbridge_module));
}

}  // namespace wsb
