#include "apache/http2_workers.h"

#include <http_config.h>
#include <http_log.h>
#include <strings.h>

#include <algorithm>
#include <cstdlib>

APLOG_USE_MODULE(wsbridge);

namespace wsb {
namespace {

// The last value of a directive in the main server config, also inside
// <IfModule>/<IfDefine>/... sections (their conditions are not evaluated:
// good enough for a warning), or -1. mod_http2 reads H2MinWorkers and
// H2MaxWorkers from the main server only, so <VirtualHost> is not entered.
int main_server_int(const ap_directive_t* d, const char* name, int value) {
  for (; d; d = d->next) {
    if (!d->directive) continue;
    if (strncasecmp(d->directive, "<If", 3) == 0) value = main_server_int(d->first_child, name, value);
    else if (strcasecmp(d->directive, name) == 0 && d->args) value = std::atoi(d->args);
  }
  return value;
}

int top_level_int(const char* name) { return main_server_int(ap_conftree, name, -1); }

}  // namespace

int h2_max_workers(int threads_per_child) {
  if (!ap_find_linked_module("mod_http2.c")) return -1;
  int maxw = top_level_int("H2MaxWorkers");
  if (maxw > 0) return maxw;
  int minw = top_level_int("H2MinWorkers");
  if (minw <= 0) minw = threads_per_child;
  return std::max(4, 3 * minw / 2);
}

void check_h2_workers(server_rec* s, int threads_per_child, int child_limit, int reserve) {
  const int h2max = h2_max_workers(threads_per_child);
  if (h2max < 0 || h2max > child_limit + reserve) return;
  ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
               "wsbridge: H2MaxWorkers %d is not above the %d WebSockets a child may hold plus the %d reserved: "
               "WebSockets over HTTP/2 could take every mod_http2 worker and other HTTP/2 requests would wait; "
               "raise H2MaxWorkers to at least %d (or lower WSBridgeMaxConnections)",
               h2max, child_limit, reserve, child_limit + reserve + 1);
}

}  // namespace wsb
