#include "apache/per_ip_limit.h"

#include <http_log.h>
#include <ap_mpm.h>
#include <apr_strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "apache/config.h"
#include "apache/handler.h"

APLOG_USE_MODULE(wsbridge);

namespace wsb {

namespace {

constexpr const char* kTableKey = "wsbridge.per_ip_table";
constexpr int64_t kLogIntervalSec = 10;

// An owner is alive while its status slot still holds that pid in that
// generation (a replacement child in the same slot, or a reused pid, is
// another owner) and the process runs.
bool child_alive(const PerIpOwner& o, void*) {
  ProcessState& ps = process_state();
  if (ps.shared && o.slot >= 0 && o.slot < kMaxChildSlots) {
    const ChildSlot& slot = ps.shared->slots[o.slot];
    if (slot.pid.load() != o.pid || static_cast<uint32_t>(slot.generation.load()) != o.gen) return false;
  }
  return PerIpTable::process_alive(o, nullptr);
}

int mpm_value(int query, int fallback) {
  int v = 0;
  return ap_mpm_query(query, &v) == APR_SUCCESS && v > 0 ? v : fallback;
}

}  // namespace

bool setup_per_ip(server_rec* s, const Capacity& cap, bool log) {
  ProcessState& ps = process_state();
  const ServerConfig* sc = server_config(s);
  ps.per_ip_limit = static_cast<uint32_t>(sc->max_per_ip >= 0 ? sc->max_per_ip : per_ip_default(cap.server_limit));
  void* data = nullptr;
  apr_pool_userdata_get(&data, kTableKey, s->process->pool);
  PerIpTable::Block* block = data ? PerIpTable::attach(data) : nullptr;
  if (!block) {
    // Twice the threads the MPM can ever run (ServerLimit x ThreadLimit,
    // fixed for the parent's life): every connection takes at most one
    // entry, so the table stays at most half full.
    const uint64_t threads = static_cast<uint64_t>(mpm_value(AP_MPMQ_HARD_LIMIT_DAEMONS, 16)) *
                             static_cast<uint64_t>(mpm_value(AP_MPMQ_HARD_LIMIT_THREADS, 64));
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed))
      seed = static_cast<uint64_t>(getpid()) * 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(apr_time_now());
    block = PerIpTable::create(static_cast<uint32_t>(std::min<uint64_t>(threads * 2, PerIpTable::kMaxEntries)), seed);
    if (!block) {
      ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, "wsbridge: cannot map the per-address connection table");
      return false;
    }
    apr_pool_userdata_set(block, kTableKey, apr_pool_cleanup_null, s->process->pool);
  }
  ps.per_ip.set_block(block);
  ps.per_ip.set_alive_check(child_alive, nullptr);
  if (log)
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "wsbridge: WebSockets per client address: %s (WSBridgeMaxConnectionsPerIP%s); table of %u entries",
                 ps.per_ip_limit ? apr_itoa(s->process->pool, static_cast<int>(ps.per_ip_limit)) : "no limit",
                 sc->max_per_ip >= 0 ? "" : " unset: a quarter of the capacity, at least 64",
                 PerIpTable::entries_of(block));
  return true;
}

void per_ip_child_init() {
  ProcessState& ps = process_state();
  PerIpOwner me;
  me.pid = static_cast<int32_t>(getpid());
  if (ps.shared && ps.slot) {
    me.slot = static_cast<int32_t>(ps.slot - ps.shared->slots.data());
    me.gen = static_cast<uint32_t>(ps.slot->generation.load());
  }
  ps.per_ip.set_owner(me);
}

bool admit_per_ip(request_rec* r, PerIpTable::Ticket* ticket, std::string* why) {
  ProcessState& ps = process_state();
  IpKey key;
  // useragent_ip: the peer, or the client mod_remoteip found behind a
  // trusted proxy. Not an address (a unix socket?): not counted.
  if (ps.per_ip_limit == 0 || !ip_key_from_string(r->useragent_ip, &key)) return true;
  PerIpTable::Admission a = ps.per_ip.admit(key, ps.per_ip_limit, ticket);
  if (a.result != PerIpTable::Result::OverLimit) return true;
  std::string who = ip_key_to_string(key);
  *why = "too many WebSockets from " + who + " (WSBridgeMaxConnectionsPerIP " + std::to_string(ps.per_ip_limit) + ")";
  uint64_t suppressed = 0;
  if (ps.per_ip.log_due(apr_time_sec(apr_time_now()), kLogIntervalSec, &suppressed))
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "wsbridge: refused a WebSocket of %s with 429: it has %u open (WSBridgeMaxConnectionsPerIP %u); "
                  "%" APR_UINT64_T_FMT " more such refusals since the last of these lines (one per %ds). "
                  "All clients behind one proxy? Trust it with mod_remoteip",
                  who.c_str(), a.open, ps.per_ip_limit, static_cast<apr_uint64_t>(suppressed),
                  static_cast<int>(kLogIntervalSec));
  return false;
}

}  // namespace wsb
