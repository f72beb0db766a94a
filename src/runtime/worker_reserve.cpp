#include "runtime/worker_reserve.h"

#include <algorithm>

namespace wsb {

int default_reserve(const MpmFigures& mpm) {
  int pool = mpm.threaded ? mpm.threads_per_child : mpm.max_workers();
  int r = std::max(4, pool / 8);
  return std::max(1, std::min(r, pool / 2));
}

Capacity compute_capacity(const MpmFigures& mpm, int configured_reserve, int configured_max) {
  Capacity c;
  int pool = mpm.threaded ? mpm.threads_per_child : mpm.max_workers();
  c.reserve = configured_reserve >= 0 ? std::min(configured_reserve, pool) : default_reserve(mpm);
  c.per_child = mpm.threaded;
  if (mpm.threaded) {
    c.child_limit = std::max(0, mpm.threads_per_child - c.reserve);
    c.mpm_limit = c.child_limit * mpm.max_daemons;
  } else {
    c.child_limit = 0;
    c.mpm_limit = std::max(0, mpm.max_workers() - c.reserve);
  }
  if (configured_max >= 0) {
    c.configured_above_mpm = configured_max > c.mpm_limit;
    c.server_limit = std::min(configured_max, c.mpm_limit);
  } else {
    c.server_limit = c.mpm_limit;
  }
  return c;
}

Admission ConnectionGate::admit(Ticket* ticket, int64_t vhost_limit) {
  int64_t in_child = child_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (cap_.per_child && in_child > cap_.child_limit) {
    child_.fetch_sub(1, std::memory_order_relaxed);
    return Admission::ChildFull;
  }
  int64_t total = server_ ? server_->fetch_add(1, std::memory_order_relaxed) + 1 : in_child;
  if (total > std::min<int64_t>(cap_.server_limit, vhost_limit)) {
    if (server_) server_->fetch_sub(1, std::memory_order_relaxed);
    child_.fetch_sub(1, std::memory_order_relaxed);
    return Admission::ServerFull;
  }
  ticket->release();
  ticket->child_ = &child_;
  ticket->server_ = server_;
  return Admission::Ok;
}

}  // namespace wsb
