// WSBridgeMaxConnectionsPerIP in Apache: the shared table (post_config),
// each child's identity in it (child_init), and the check before a 101
// (README, "Per-client limits"; the table: src/runtime/per_ip_table.h).
#pragma once
#include <httpd.h>

#include <string>

#include "runtime/per_ip_table.h"
#include "runtime/worker_reserve.h"

namespace wsb {

// Parent, every (re)start: maps the table once (kept in the process pool
// across restarts, like the status block), sized from the MPM's hard
// limits; sets the effective limit from the directive or the capacity.
bool setup_per_ip(server_rec* s, const Capacity& cap, bool log);
// Child: counts as this process generation from now on.
void per_ip_child_init();

// Before the 101: false when the client's address already holds the limit;
// then *why says so (the error log has had its rate-limited line).
bool admit_per_ip(request_rec* r, PerIpTable::Ticket* ticket, std::string* why);

}  // namespace wsb
