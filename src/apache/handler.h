// The request handlers (SetHandler wsbridge / wsbridge-status / wsbridge-publish)
// and the process-wide state they share.
#pragma once
#include <httpd.h>

#include "runtime/session.h"
#include "runtime/per_ip_table.h"
#include "runtime/session_registry.h"
#include "runtime/shared_stats.h"
#include "runtime/worker_reserve.h"

namespace wsb {

struct ProcessState {
  StopFlag stop;
  SessionRegistry sessions;
  SharedStats* shared = nullptr;  // created in post_config, inherited by children
  ChildSlot* slot = nullptr;      // this child's figures
  ConnectionGate gate;            // the worker reserve (set in post_config)
  PerIpTable per_ip;              // WSBridgeMaxConnectionsPerIP's shared table
  uint32_t per_ip_limit = 0;      // 0 = off
  SessionStats local[kAppCount];  // used when no shared block exists
  SessionStats& stats(int app) { return slot ? slot->app[app] : local[app]; }
};

ProcessState& process_state();

int upgrade_handler(request_rec* r);
// Child init: sessions also ask the MPM whether it is stopping (prefork).
void install_stop_check();
int status_handler(request_rec* r);
void register_status_hooks();

}  // namespace wsb
