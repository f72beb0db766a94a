#include "runtime/per_ip_table.h"

#include <arpa/inet.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace wsb {

namespace {

constexpr uint64_t kMagic = 0x7773626970746231ull;  // "wsbiptb1": bump on any layout change

struct Entry {
  IpKey key;
  PerIpOwner owner;
  uint32_t count;  // 0 = free
};
static_assert(sizeof(Entry) == 32, "two entries per cache line");

}  // namespace

struct PerIpTable::Block {
  uint64_t magic;
  uint32_t entries;  // a power of two
  uint32_t pad;
  uint64_t seed;
  size_t mapping_size;
  // Process-shared and robust: a child killed while it holds the lock must
  // not wedge every upgrade of the server. Entries are written key and
  // owner first, count last, so whatever a dead holder left half-written
  // is either free (count 0) or owned by the dead process (not counted).
  pthread_mutex_t mu;
  std::atomic<uint64_t> untracked{0};
  std::atomic<uint64_t> reclaimed{0};
  std::atomic<int64_t> last_log_sec{0};
  std::atomic<uint64_t> log_suppressed{0};
  // `entries` Entry follow at kSlotsOffset.
};

namespace {

using Block = PerIpTable::Block;

constexpr size_t kSlotsOffset = (sizeof(Block) + 63) / 64 * 64;
size_t mapping_for(uint32_t entries) { return kSlotsOffset + sizeof(Entry) * entries; }
Entry* slots_of(Block* b) { return reinterpret_cast<Entry*>(reinterpret_cast<char*>(b) + kSlotsOffset); }

uint32_t round_entries(uint32_t want) {
  uint32_t n = PerIpTable::kMinEntries;
  while (n < want && n < PerIpTable::kMaxEntries) n <<= 1;
  return n;
}

// Seeded, so nobody can pick addresses that all land in one window.
uint64_t hash_key(const IpKey& k, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (uint8_t c : k.b) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;  // splitmix64's finalizer: the low bits pick the window
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

class Lock {
 public:
  explicit Lock(Block* b) : mu_(&b->mu) {
    int rc = pthread_mutex_lock(mu_);
    if (rc == EOWNERDEAD) rc = pthread_mutex_consistent(mu_);
    locked_ = rc == 0;
  }
  ~Lock() {
    if (locked_) pthread_mutex_unlock(mu_);
  }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  bool locked() const { return locked_; }

 private:
  pthread_mutex_t* mu_;
  bool locked_ = false;
};

}  // namespace

bool IpKey::operator==(const IpKey& o) const { return std::memcmp(b, o.b, sizeof b) == 0; }

bool ip_key_from_string(const char* addr, IpKey* out) {
  if (!addr || !*addr) return false;
  char buf[INET6_ADDRSTRLEN + 1];
  size_t n = std::strcspn(addr, "%");  // a link-local address's zone
  if (n == 0 || n >= sizeof buf) return false;
  std::memcpy(buf, addr, n);
  buf[n] = '\0';
  IpKey k;
  in_addr v4;
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    k.b[10] = k.b[11] = 0xff;
    std::memcpy(k.b + 12, &v4, 4);
    *out = k;
    return true;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, buf, &v6) != 1) return false;
  std::memcpy(k.b, &v6, 16);
  if (!IN6_IS_ADDR_V4MAPPED(&v6)) std::memset(k.b + 8, 0, 8);  // the /64
  *out = k;
  return true;
}

std::string ip_key_to_string(const IpKey& key) {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char buf[INET6_ADDRSTRLEN];
  if (std::memcmp(key.b, kMapped, 12) == 0) {
    inet_ntop(AF_INET, key.b + 12, buf, sizeof buf);
    return buf;
  }
  inet_ntop(AF_INET6, key.b, buf, sizeof buf);
  return std::string(buf) + "/64";
}

bool PerIpTable::process_alive(const PerIpOwner& o, void*) {
  return o.pid > 0 && (::kill(o.pid, 0) == 0 || errno != ESRCH);
}

PerIpTable::Block* PerIpTable::create(uint32_t entries, uint64_t seed) {
  entries = round_entries(entries);
  const size_t size = mapping_for(entries);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  // The zeroed mapping is every entry free; only the header is constructed.
  auto* b = static_cast<Block*>(p);
  std::uninitialized_value_construct_n(&b->untracked, 1);
  std::uninitialized_value_construct_n(&b->reclaimed, 1);
  std::uninitialized_value_construct_n(&b->last_log_sec, 1);
  std::uninitialized_value_construct_n(&b->log_suppressed, 1);
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc == 0) {
    rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = pthread_mutex_init(&b->mu, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  if (rc != 0) {
    ::munmap(p, size);
    return nullptr;
  }
  b->entries = entries;
  b->seed = seed;
  b->mapping_size = size;
  b->magic = kMagic;  // last: the mapping is now a complete table
  return b;
}

PerIpTable::Block* PerIpTable::attach(void* base) {
  auto* b = static_cast<Block*>(base);
  return b && b->magic == kMagic && b->mapping_size == mapping_for(b->entries) ? b : nullptr;
}

void PerIpTable::destroy(Block* b) {
  if (b) ::munmap(b, b->mapping_size);
}

uint32_t PerIpTable::entries_of(const Block* b) { return b ? b->entries : 0; }

PerIpTable::Ticket& PerIpTable::Ticket::operator=(Ticket&& o) noexcept {
  if (this != &o) {
    release();
    table_ = o.table_;
    index_ = o.index_;
    o.table_ = nullptr;
  }
  return *this;
}

void PerIpTable::Ticket::release() {
  if (!table_) return;
  PerIpTable* t = table_;
  table_ = nullptr;
  t->release(index_);
}

PerIpTable::Admission PerIpTable::admit(const IpKey& key, uint32_t limit, Ticket* ticket) {
  ticket->release();
  Admission a;
  if (limit == 0 || !block_) return a;
  Block* b = block_;
  Lock lock(b);
  if (!lock.locked()) {
    b->untracked.fetch_add(1, std::memory_order_relaxed);
    return a;
  }
  Entry* const slots = slots_of(b);
  const uint32_t mask = b->entries - 1;
  const uint32_t start = static_cast<uint32_t>(hash_key(key, b->seed)) & mask;
  const uint32_t window = std::min(kWindow, b->entries);
  int64_t mine = -1, free_at = -1;
  uint64_t sum = 0;
  for (uint32_t i = 0; i < window; ++i) {
    uint32_t at = (start + i) & mask;
    const Entry& e = slots[at];
    if (e.count == 0) {
      if (free_at < 0) free_at = at;
    } else if (e.key == key) {
      if (e.owner == me_) mine = at;
      sum += e.count;
    }
  }
  // Over the limit: only now ask whether the other holders still run; a
  // dead child's connections are given back and its entries freed.
  auto reclaim = [&](Entry& e) {
    b->reclaimed.fetch_add(e.count, std::memory_order_relaxed);
    e.count = 0;
  };
  if (sum >= limit) {
    sum = 0;
    for (uint32_t i = 0; i < window; ++i) {
      uint32_t at = (start + i) & mask;
      Entry& e = slots[at];
      if (e.count == 0 || e.key != key) continue;
      if (static_cast<int64_t>(at) != mine && !alive(e.owner)) {
        reclaim(e);
        if (free_at < 0) free_at = at;
        continue;
      }
      sum += e.count;
    }
    if (sum >= limit) {
      a.result = Result::OverLimit;
      a.open = static_cast<uint32_t>(std::min<uint64_t>(sum, UINT32_MAX));
      return a;
    }
  }
  if (mine < 0 && free_at < 0) {
    // Every entry of the window is taken: a dead child's is as good as free.
    for (uint32_t i = 0; i < window && free_at < 0; ++i) {
      uint32_t at = (start + i) & mask;
      Entry& e = slots[at];
      if (!(e.owner == me_) && !alive(e.owner)) {
        reclaim(e);
        free_at = at;
      }
    }
    if (free_at < 0) {
      b->untracked.fetch_add(1, std::memory_order_relaxed);
      return a;  // let in uncounted (README: a full table never refuses)
    }
  }
  if (mine < 0) {
    Entry& e = slots[free_at];
    e.key = key;
    e.owner = me_;
    e.count = 1;
    mine = free_at;
  } else {
    ++slots[mine].count;
  }
  ticket->table_ = this;
  ticket->index_ = static_cast<uint32_t>(mine);
  a.result = Result::Admitted;
  a.open = static_cast<uint32_t>(std::min<uint64_t>(sum + 1, UINT32_MAX));
  return a;
}

void PerIpTable::release(uint32_t index) {
  Block* b = block_;
  if (!b || index >= b->entries) return;
  Entry* const slots = slots_of(b);
  Lock lock(b);
  if (!lock.locked()) return;
  Entry& e = slots[index];
  // Only this process decrements its own entries; nobody else touches an
  // entry whose owner runs, so the count is still ours.
  if (e.owner == me_ && e.count > 0) --e.count;
}

PerIpTable::Stats PerIpTable::stats() const {
  Stats s;
  Block* b = block_;
  if (!b) return s;
  s.entries = b->entries;
  s.untracked = b->untracked.load(std::memory_order_relaxed);
  s.reclaimed = b->reclaimed.load(std::memory_order_relaxed);
  std::vector<Entry> used;
  {
    Entry* const slots = slots_of(b);
    Lock lock(b);
    if (!lock.locked()) return s;
    for (uint32_t i = 0; i < b->entries; ++i)
      if (slots[i].count) used.push_back(slots[i]);
  }
  // Outside the lock: a dead owner's entries are not counted (the next
  // upgrade that needs them frees them).
  std::sort(used.begin(), used.end(), [](const Entry& x, const Entry& y) {
    return std::memcmp(x.key.b, y.key.b, sizeof x.key.b) < 0;
  });
  // A few children own every entry: ask about each once.
  std::vector<std::pair<PerIpOwner, bool>> owners;
  auto owner_alive = [&](const PerIpOwner& o) {
    for (const auto& seen : owners)
      if (seen.first == o) return seen.second;
    owners.emplace_back(o, alive(o));
    return owners.back().second;
  };
  const IpKey* last = nullptr;
  uint32_t run = 0;
  for (const Entry& e : used) {
    if (!owner_alive(e.owner)) continue;
    ++s.used;
    s.connections += e.count;
    if (!last || *last != e.key) {
      ++s.addresses;
      run = 0;
      last = &e.key;
    }
    run += e.count;
    s.busiest = std::max(s.busiest, run);
  }
  return s;
}

bool PerIpTable::log_due(int64_t now_sec, int64_t interval_sec, uint64_t* suppressed) {
  *suppressed = 0;
  if (!block_) return true;
  int64_t last = block_->last_log_sec.load(std::memory_order_relaxed);
  if (now_sec - last >= interval_sec &&
      block_->last_log_sec.compare_exchange_strong(last, now_sec, std::memory_order_relaxed)) {
    *suppressed = block_->log_suppressed.exchange(0, std::memory_order_relaxed);
    return true;
  }
  block_->log_suppressed.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace wsb
