#include "runtime/shared_stats.h"

#include <signal.h>
#include <sys/mman.h>

#include <cerrno>
#include <new>

namespace wsb {

SharedStats* SharedStats::create() {
  void* p = mmap(nullptr, sizeof(SharedStats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* s = ::new (p) SharedStats();  // the mapping outlives every C++ object; never deleted
  s->magic = kMagic;
  return s;
}

ChildSlot* SharedStats::claim(int pid) {
  for (auto& slot : slots) {
    int cur = slot.pid.load(std::memory_order_acquire);
    // A slot of a process that no longer exists (crashed child) is reused;
    // its figures stay in the totals.
    if (cur != 0 && kill(cur, 0) == 0) continue;
    if (cur != 0 && errno != ESRCH) continue;
    if (slot.pid.compare_exchange_strong(cur, pid)) {
      for (auto& app : slot.app) open_total.fetch_sub(app.open.exchange(0));
      slot.generation.fetch_add(1);
      return &slot;
    }
  }
  return nullptr;
}

void SharedStats::release(ChildSlot* slot) {
  if (slot) slot->pid.store(0, std::memory_order_release);
}

}  // namespace wsb
