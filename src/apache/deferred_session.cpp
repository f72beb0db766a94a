#include "apache/deferred_session.h"

#include <http_core.h>
#include <http_log.h>
#include <mpm_common.h>
#include <apr_allocator.h>
#include <unistd.h>

#include "apache/chat_service.h"
#include "apache/filter_transport.h"
#include "apache/handler.h"
#include "chat/chat_app.h"
#include "runtime/echo_app.h"

APLOG_USE_MODULE(wsbridge);

namespace wsb {
namespace {

// A max_free of one byte rounds up to one page: a freed 8 KiB block never
// fits, so every block freed goes back to the system at once.
constexpr apr_size_t kReturnEveryBlock = 1;

apr_allocator_t* conn_allocator(conn_rec* c) { return c->pool ? apr_pool_allocator_get(c->pool) : nullptr; }

// What the MPM set when it made the connection's allocator (MaxMemFree);
// the allocator outlives the connection (mpm_event recycles it), so the
// next connection must find it as it was.
void restore_allocator(conn_rec* c) {
  if (apr_allocator_t* a = conn_allocator(c)) apr_allocator_max_free_set(a, ap_max_mem_free);
}

SessionPlan* take_plan(conn_rec* c) {
  auto* plan = static_cast<SessionPlan*>(ap_get_module_config(c->conn_config, &wsbridge_module));
  if (plan) ap_set_module_config(c->conn_config, &wsbridge_module, nullptr);
  return plan;
}

// The connection ended without the hook running (it always runs before a
// close; this is the safety net): the plan's worker-reserve place is given
// back and the allocator restored.
apr_status_t drop_plan(void* data) {
  conn_rec* c = static_cast<conn_rec*>(data);
  std::unique_ptr<SessionPlan> plan(take_plan(c));
  if (plan) restore_allocator(c);
  return APR_SUCCESS;
}

const char* app_name(AppKind app) { return app == AppKind::Chat ? "chat" : "echo"; }

// In C++ http_log.h's ap_log_cerror() does not test the level first (that
// needs C99's __STDC_VERSION__): every call enters log_error_core(), whose
// 24 KiB frame touches a stack page no other part of a session's life
// reaches, 4 KiB more per idle connection. So the level is tested here.
bool debug_logged(const conn_rec* c) { return APLOG_C_IS_LEVEL(c, APLOG_DEBUG); }

}  // namespace

void send_switching_protocols(request_rec* r) {
  conn_rec* c = r->connection;
  std::string head = AP_SERVER_PROTOCOL " ";
  head += r->status_line ? r->status_line : "101 Switching Protocols";
  head += "\r\n";
  apr_table_do(
      [](void* out, const char* key, const char* value) {
        std::string& h = *static_cast<std::string*>(out);
        h.append(key).append(": ").append(value).append("\r\n");
        return 1;
      },
      &head, r->headers_out, nullptr);
  head += "\r\n";
  apr_table_clear(r->headers_out);
  apr_bucket_brigade* bb = apr_brigade_create(r->pool, c->bucket_alloc);
  APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(head.data(), head.size(), c->bucket_alloc));
  APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
  ap_pass_brigade(c->output_filters, bb);  // a failed write shows as EOF to the session
  apr_brigade_destroy(bb);
}

bool session_can_outlive_request(const conn_rec* c, AppKind app) {
  return c->master == nullptr && (app == AppKind::Echo || app == AppKind::Chat);
}

void release_request_memory(conn_rec* c) {
  if (apr_allocator_t* a = conn_allocator(c)) apr_allocator_max_free_set(a, kReturnEveryBlock);
}

void defer_session(conn_rec* c, std::unique_ptr<SessionPlan> plan) {
  ap_set_module_config(c->conn_config, &wsbridge_module, plan.release());
  apr_pool_cleanup_register(c->pool, c, drop_plan, apr_pool_cleanup_null);
}

int run_deferred_session(conn_rec* c) {
  std::unique_ptr<SessionPlan> plan(take_plan(c));
  if (!plan) return DECLINED;
  // mpm_event shortened the timeout for its lingering close, which follows
  // the session; the session's blocking writes keep the vhost's Timeout.
  if (apr_socket_t* s = ap_get_conn_socket(c)) apr_socket_timeout_set(s, plan->timeout);

  ProcessState& ps = process_state();
  SessionStats& stats = ps.stats(static_cast<int>(plan->app));
  uint16_t code = 0;
  {
    FilterTransport transport(c, plan->fd);
    transport.allow_tls_hub_writes();  // echo and chat use the connection for nothing else
    // Reading through mod_ssl (or another filter) allocates a block per
    // read from the connection's allocator: let it keep those for reuse, up
    // to MaxMemFree, instead of mapping and unmapping one per read. A plain
    // socket is read directly and allocates nothing, so whatever it does
    // free (a write the socket could not take at once) goes back at once.
    if (!transport.reads_socket_directly()) restore_allocator(c);
    transport.own_input();  // the request is over: nothing else reads this connection
    if (debug_logged(c))
      ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "wsbridge: upgraded %s (app %s, hub writes %s)",
                    plan->uri.c_str(), app_name(plan->app),
                    !plan->hub_writes ? "off" : transport.hub_writes_possible() ? "on" : "not possible here");
    EchoApp echo;
    std::unique_ptr<ChatApp> chat_app;
    if (plan->app == AppKind::Chat) {
      ChatService& chat = ChatService::get();
      chat_app = std::make_unique<ChatApp>(plan->chat, *chat.bus(), *chat.engine(), chat.next_conn_id(),
                                           std::move(plan->user), plan->user_fixed,
                                           chat.owner_key(static_cast<int>(getpid())), &chat.pending());
    }
    App& app = chat_app ? static_cast<App&>(*chat_app) : static_cast<App&>(echo);
    Session session(transport, app, plan->options, ps.stop, stats);
    ps.sessions.add(session.queue_ptr());
    code = session.run();
    ps.sessions.remove(session.queue_ptr());
  }
  restore_allocator(c);  // for the lingering close, and the next connection (mpm_event recycles it)
  if (debug_logged(c)) ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "wsbridge: closed %s with %u", plan->uri.c_str(), code);
  return OK;  // pre_close_connection runs every hook: OK and DECLINED both go on
}

}  // namespace wsb
