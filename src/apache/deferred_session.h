// A WebSocket's session after its request has ended (docs/capacity.md,
// "Where the memory goes").
//
// An idle WebSocket used to keep its whole HTTP request alive: the request
// pool (headers, per-directory configs: two 8 KiB blocks) and the buffers
// the handshake was read and the 101 written with, about 20 KiB of the
// 28 KiB Apache's pools held per connection. So for an echo or chat
// connection on a plain HTTP/1.1 connection the handler now sends the 101
// and returns; Apache logs the request (the access log's 101 line appears
// at the upgrade) and destroys its pool; the connection's allocator gives
// those blocks back to the system instead of keeping them for a next
// request; and the same worker thread then runs the session from the
// pre_close_connection hook, which every MPM calls on that thread before it
// closes the connection. The session is still the thread (DESIGN.md); what
// it keeps is the connection: its pool, filters and socket.
//
// HTTP/2 streams (c->master) and the backend bridge (its sub-requests need
// the request) keep running inside the handler.
#pragma once
#include <httpd.h>
#include <http_connection.h>

#include <memory>
#include <string>

#include "apache/config.h"
#include "chat/chat_config.h"
#include "runtime/per_ip_table.h"
#include "runtime/session.h"
#include "runtime/worker_reserve.h"

namespace wsb {

// What the session needs once the request is gone; the handler fills it.
struct SessionPlan {
  explicit SessionPlan(ConnectionGate::Ticket&& t) : ticket(std::move(t)) {}
  AppKind app = AppKind::Echo;
  int fd = -1;                        // from ap_get_pollfd_from_conn()
  SessionOptions options;
  ChatConfig chat;
  std::string user;
  bool user_fixed = false;
  bool hub_writes = true;             // WSBridgeHubWrites, for the log line
  apr_interval_time_t timeout = 0;    // the vhost's Timeout: bounds blocking writes
  std::string uri;                    // for the log lines
  ConnectionGate::Ticket ticket;      // the worker reserve's place, held for the session's life
  PerIpTable::Ticket per_ip;          // WSBridgeMaxConnectionsPerIP's place, likewise
};

// Whether this upgrade's session can run after its request.
bool session_can_outlive_request(const conn_rec* c, AppKind app);

// Before the 101 (which is written through a heap buffer): from here on the
// connection's allocator returns freed blocks to the system, so the 101's
// buffer, the handshake's read buffer and the request pool do not stay
// resident for the connection's life. Undone when the session starts.
void release_request_memory(conn_rec* c);

// The 101 with r->headers_out, as ap_send_interim_response(r, 1) writes
// it, but from one transient bucket: that function formats into an 8 KiB
// heap buffer from the connection's allocator, one more block to give back.
void send_switching_protocols(request_rec* r);

// After the 101: the session runs once Apache is done with the request.
void defer_session(conn_rec* c, std::unique_ptr<SessionPlan> plan);

// The pre_close_connection hook: runs a deferred session to its end.
int run_deferred_session(conn_rec* c);

}  // namespace wsb
