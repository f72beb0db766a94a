// mod_wsbridge: WebSocket endpoints and a chat hub inside Apache httpd 2.4.
// Apache glue only: the module record, hooks and process lifecycle. The
// protocol, runtime and chat live in src/ (see README.md "Design").
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <apr_strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "apache/backend_handler.h"
#include "apache/chat_service.h"
#include "apache/pusher_handler.h"
#include "apache/config.h"
#include "apache/deferred_session.h"
#include "apache/filter_transport.h"
#include "apache/handler.h"
#include "apache/http2_workers.h"
#include "apache/per_ip_limit.h"

extern "C" {
__attribute__((visibility("default"))) extern module AP_MODULE_DECLARE_DATA wsbridge_module;
}

APLOG_USE_MODULE(wsbridge);

namespace wsb {
namespace {

constexpr const char* kSharedKey = "wsbridge.shared_stats";

// The worker reserve from the MPM's real figures (read after its
// check_config hook has settled them) and the main server's directives.
void setup_capacity(server_rec* s, bool log) {
  ProcessState& ps = process_state();
  MpmFigures mpm;
  int threaded = AP_MPMQ_NOT_SUPPORTED;
  ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded);
  mpm.threaded = threaded != AP_MPMQ_NOT_SUPPORTED;
  int v = 0;
  if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &v) == APR_SUCCESS && v > 0) mpm.threads_per_child = mpm.threaded ? v : 1;
  if (ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &v) == APR_SUCCESS && v > 0) mpm.max_daemons = v;
  const ServerConfig* sc = server_config(s);
  Capacity cap = compute_capacity(mpm, sc->reserve_workers, sc->max_connections);
  ps.gate.set_capacity(cap);
  ps.gate.set_server_counter(ps.shared ? &ps.shared->open_total : nullptr);
  if (!log) return;
  ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
               "wsbridge: %d workers (%d per child): WebSockets up to %d per child, %d in all; "
               "%d %s kept for plain HTTP (WSBridgeReserveWorkers)",
               mpm.max_workers(), mpm.threads_per_child, cap.per_child ? cap.child_limit : 1, cap.server_limit,
               cap.reserve, cap.per_child ? "threads per child" : "workers");
  if (mpm.threaded) check_h2_workers(s, mpm.threads_per_child, cap.child_limit, cap.reserve);
  if (cap.server_limit == 0)
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                 "wsbridge: WSBridgeReserveWorkers %d leaves no worker for WebSockets: every upgrade gets 503",
                 cap.reserve);
  for (server_rec* vs = s; vs; vs = vs->next) {
    const ServerConfig* vc = server_config(vs);
    if (vc->max_connections <= cap.mpm_limit) continue;
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, vs,
                 "wsbridge: WSBridgeMaxConnections %d is more than this MPM can carry with the worker "
                 "reserve (%d of MaxRequestWorkers %d); %d applies. Raise MaxRequestWorkers/ThreadsPerChild "
                 "(and ServerLimit) for more",
                 vc->max_connections, cap.mpm_limit, mpm.max_workers(), cap.mpm_limit);
  }
}

// Runs in the parent on every (re)start. The shared block is created once
// and kept in the process pool's userdata, because Apache unloads and
// reloads this DSO on a restart but the process pool survives it.
int post_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec* s) {
  ProcessState& ps = process_state();
  void* data = nullptr;
  apr_pool_userdata_get(&data, kSharedKey, s->process->pool);
  // A block from an older module version (other layout) is left alone.
  if (data) ps.shared = SharedStats::attach(data);
  if (!ps.shared) {
    ps.shared = SharedStats::create();
    if (!ps.shared) {
      ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, "wsbridge: cannot map the shared status block");
      return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_userdata_set(ps.shared, kSharedKey, apr_pool_cleanup_null, s->process->pool);
  }
  // A random tag per server, kept across restarts like the bus: it keeps
  // chat members of different servers apart on a shared Redis bus.
  void* tag = nullptr;
  apr_pool_userdata_get(&tag, "wsbridge.server_tag", s->process->pool);
  if (!tag) {
    auto* t = static_cast<uint32_t*>(apr_palloc(s->process->pool, sizeof(uint32_t)));
    if (getrandom(t, sizeof *t, 0) != static_cast<ssize_t>(sizeof *t)) *t = static_cast<uint32_t>(getpid()) * 2654435761u;
    apr_pool_userdata_set(t, "wsbridge.server_tag", apr_pool_cleanup_null, s->process->pool);
    tag = t;
  }
  ChatService::get().set_server_tag(*static_cast<uint32_t*>(tag));
  setup_default_sig_key(s->process->pool);
  if (!ChatService::get().setup_bus(s, s->process->pool, s->process->pconf)) return HTTP_INTERNAL_SERVER_ERROR;
  int threaded = 0;
  ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded);
  // Apache reads its config twice at start; warn on the real pass only.
  bool dry_run = ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG;
  setup_capacity(s, !dry_run);
  if (!setup_per_ip(s, ps.gate.capacity(), !dry_run)) return HTTP_INTERNAL_SERVER_ERROR;
  if (!dry_run)
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "wsbridge: mod_wsbridge/%s ready (%s MPM)", WSB_VERSION,
                 ap_show_mpm());
  if (threaded == AP_MPMQ_NOT_SUPPORTED && !dry_run) {
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                 "wsbridge: running under a non-threaded MPM (%s): every WebSocket occupies a "
                 "whole child process; use mpm_event or mpm_worker for many connections",
                 ap_show_mpm());
  }
  (void)pconf;
  return OK;
}

apr_status_t child_exit(void*) {
  ChatService::get().stop();
  ProcessState& ps = process_state();
  if (ps.shared) ps.shared->release(ps.slot);
  ps.slot = nullptr;
  return APR_SUCCESS;
}

void child_init(apr_pool_t* pchild, server_rec* s) {
  ProcessState& ps = process_state();
  ps.stop.stopping.store(false);
  install_stop_check();
  if (ps.shared) {
    ps.slot = ps.shared->claim(static_cast<int>(getpid()));
    if (!ps.slot)
      ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "wsbridge: no free status slot for child %d", (int)getpid());
  }
  per_ip_child_init();
  apr_pool_cleanup_register(pchild, nullptr, child_exit, apr_pool_cleanup_null);
}

// A graceful restart/stop or MaxConnectionsPerChild: a handler asleep in
// poll() is not interrupted by the MPM, so wake every session; each sends
// close 1001 and returns, and the child can exit.
void child_stopping(apr_pool_t*, int graceful) {
  ProcessState& ps = process_state();
  // mpm_event's hard stop closes the worker sockets just before this hook.
  if (!graceful) ps.sessions.revoke_hub_writes();
  ps.sessions.stop_all(ps.stop);
}

void register_hooks(apr_pool_t*) {
  ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_child_init(child_init, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_child_stopping(child_stopping, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_handler(upgrade_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_pre_close_connection(run_deferred_session, nullptr, nullptr, APR_HOOK_FIRST);
  ap_hook_handler(status_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_handler(publish_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_handler(pusher_api_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
  register_status_hooks();
  register_backend_filters();
  wsb::FilterTransport::register_filters();
}

}  // namespace
}  // namespace wsb

module AP_MODULE_DECLARE_DATA wsbridge_module = {
    STANDARD20_MODULE_STUFF,
    wsb::create_dir_config,
    wsb::merge_dir_config,
    wsb::create_server_config,
    wsb::merge_server_config,
    wsb::directives,
    wsb::register_hooks,
    AP_MODULE_FLAG_NONE,
};
