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

namespace {
bool process_gone(int pid) { return kill(pid, 0) != 0 && errno == ESRCH; }
}  // namespace

ChildSlot* SharedStats::claim(int pid) {
  // Free slots first, so a dead child's slot waits for reap_dead() (which
  // tells the chat that its members are gone); a dead one only if full.
  for (int pass = 0; pass < 2; ++pass) {
    for (auto& slot : slots) {
      int cur = slot.pid.load(std::memory_order_acquire);
      if (cur != 0 && (pass == 0 || !process_gone(cur))) continue;
      if (slot.pid.compare_exchange_strong(cur, pid)) {
        // Figures stay in the totals; what was open died with its process.
        for (auto& app : slot.app) open_total.fetch_sub(app.open.exchange(0));
        slot.generation.fetch_add(1);
        return &slot;
      }
    }
  }
  return nullptr;
}

std::vector<int> SharedStats::reap_dead() {
  std::vector<int> dead;
  for (auto& slot : slots) {
    int cur = slot.pid.load(std::memory_order_acquire);
    if (cur == 0 || !process_gone(cur)) continue;
    if (slot.pid.compare_exchange_strong(cur, 0)) {
      for (auto& app : slot.app) open_total.fetch_sub(app.open.exchange(0));
      dead.push_back(cur);
    }
  }
  return dead;
}

void SharedStats::release(ChildSlot* slot) {
  if (slot) slot->pid.store(0, std::memory_order_release);
}

}  // namespace wsb
