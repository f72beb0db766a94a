// WebSockets over HTTP/2 (RFC 8441) and mod_http2's worker threads.
//
// mod_http2 runs each stream's request on a thread of its own pool
// (H2MinWorkers/H2MaxWorkers per child), not on an MPM worker; a WebSocket
// on a stream holds that h2 worker for its life, while the stream's HTTP/2
// connection holds one MPM worker as long as any of its streams is open.
// The worker reserve counts every WebSocket as one thread of its child, so
// it keeps at least as many MPM workers as with HTTP/1.1; what it cannot see
// is an H2MaxWorkers below the WebSockets a child may hold: then WebSockets
// could take every h2 worker, and other HTTP/2 requests would wait in
// mod_http2's queue. That case is warned about at start.
#pragma once
#include <httpd.h>

namespace wsb {

// H2MaxWorkers as mod_http2 computes it (its default: 3/2 of H2MinWorkers,
// which defaults to ThreadsPerChild; at least 4), or -1 when mod_http2 is
// not loaded.
int h2_max_workers(int threads_per_child);

// At start: warns when mod_http2 is loaded with fewer workers than
// WebSockets one child may hold plus the reserve.
void check_h2_workers(server_rec* s, int threads_per_child, int child_limit, int reserve);

}  // namespace wsb
