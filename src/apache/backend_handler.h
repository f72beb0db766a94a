// WSBridgeApp backend in the upgrade handler: the OPEN exchange before the
// 101 (the backend may refuse the connection: its status and body go to the
// client instead), then everything the session needs to run the bridge.
#pragma once
#include <httpd.h>

#include <memory>
#include <string>

#include "apache/backend_subrequest.h"
#include "apache/config.h"
#include "backend/backend_app.h"
#include "backend/backend_conn.h"

namespace wsb {

struct BackendBridge {
  std::unique_ptr<BackendConnection> conn;
  std::unique_ptr<SubrequestClient> client;
  std::unique_ptr<ChannelDirectory> channels;
  std::unique_ptr<BackendCounters> counters;
  BackendActions open_actions;
  HeaderList headers_for_101;
};

// post_config: the key Grip-Sig uses where WSBridgeBackendSigKey is not set
// (random, kept across graceful restarts in the process pool).
void setup_default_sig_key(apr_pool_t* process_pool);

// Runs OPEN. True: the backend accepted, *out is ready and the caller
// answers 101 with out->headers_for_101. False: the answer (the backend's
// refusal, 502 or 504) is written to r, and the caller returns OK.
bool backend_open(request_rec* r, const DirConfig* d, const std::string& conn_id, BackendBridge* out);

// The log callback of a BackendApp for this request.
BackendApp::Log backend_log(request_rec* r, const char* path);

}  // namespace wsb
