// WSBridgeMaxConnectionsPerIP: open WebSockets per client address, counted
// across every child of the server in one fixed-size table in shared memory
// (mapped in post_config, inherited by the children).
//
// An entry is (address, owner, count): each child counts its own
// connections in entries it owns, and an address's total is the sum of its
// entries. A child killed by SIGKILL never decrements, so an owner is a
// process generation (the child's pid, its status slot and that slot's
// generation), and entries of an owner that is gone stop counting: they are
// checked only when they matter (an address would be refused, or the
// entries near its hash are all taken) and are then zeroed for reuse.
//
// Open addressing: an address's entries live within kWindow entries from
// its (seeded) hash; every lookup scans the whole window, so there are no
// tombstones. With no free entry in the window the connection is let in
// uncounted ("untracked"): a full table never refuses anybody.
#pragma once
#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wsb {

// A client address as the limit counts it: IPv4 (and IPv4-mapped IPv6) by
// the whole address, IPv6 by its /64 (one host or one site's subnet; a
// host can take any address of its /64).
struct IpKey {
  uint8_t b[16] = {};
  bool operator==(const IpKey& o) const;
  bool operator!=(const IpKey& o) const { return !(*this == o); }
};

// "192.0.2.7", "2001:db8::1", "fe80::1%eth0", "::ffff:192.0.2.7". False
// for anything else.
bool ip_key_from_string(const char* addr, IpKey* out);
// "192.0.2.7" or "2001:db8:1:2::/64".
std::string ip_key_to_string(const IpKey& key);

// Who holds an entry: one process generation.
struct PerIpOwner {
  int32_t pid = 0;
  int32_t slot = -1;  // the child's status slot (SharedStats), -1 = none
  uint32_t gen = 0;   // that slot's generation when the child claimed it
  bool operator==(const PerIpOwner& o) const { return pid == o.pid && slot == o.slot && gen == o.gen; }
};

class PerIpTable {
 public:
  static constexpr uint32_t kWindow = 32;
  static constexpr uint32_t kMinEntries = 1024;
  static constexpr uint32_t kMaxEntries = 1u << 16;

  struct Block;  // the shared mapping (per_ip_table.cpp)

  // Whether the owner's process still runs (and still is that generation).
  using OwnerAlive = bool (*)(const PerIpOwner&, void* ctx);
  static bool process_alive(const PerIpOwner& o, void*);  // kill(pid, 0)

  // Maps a fresh table of at least `entries` entries (rounded up to a power
  // of two within kMinEntries..kMaxEntries). nullptr on failure.
  static Block* create(uint32_t entries, uint64_t seed);
  static Block* attach(void* base);  // nullptr if not a table of this layout
  static void destroy(Block* b);     // unmaps (tests; Apache keeps it for good)
  static uint32_t entries_of(const Block* b);

  PerIpTable() = default;
  explicit PerIpTable(Block* b) : block_(b) {}
  void set_block(Block* b) { block_ = b; }
  Block* block() const { return block_; }
  // The process that counts from here on (a child, after fork), and how it
  // tells whether another owner is gone.
  void set_owner(const PerIpOwner& me) { me_ = me; }
  void set_alive_check(OwnerAlive f, void* ctx) { alive_ = f; alive_ctx_ = ctx; }

  // One counted connection; gives its place back once, when released or
  // destroyed.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    Ticket(Ticket&& o) noexcept : table_(o.table_), index_(o.index_) { o.table_ = nullptr; }
    Ticket& operator=(Ticket&& o) noexcept;
    ~Ticket() { release(); }
    void release();
    bool held() const { return table_ != nullptr; }

   private:
    friend class PerIpTable;
    PerIpTable* table_ = nullptr;
    uint32_t index_ = 0;
  };

  enum class Result { Admitted, OverLimit, Untracked };
  struct Admission {
    Result result = Result::Untracked;
    uint32_t open = 0;  // the address's connections (with this one when admitted)
  };
  // limit 0: off (Untracked, nothing counted). On Admitted *ticket holds
  // the place; Untracked: let in without counting (no table, table full).
  Admission admit(const IpKey& key, uint32_t limit, Ticket* ticket);

  struct Stats {
    uint32_t entries = 0;      // table size
    uint32_t used = 0;         // entries of live owners
    uint32_t addresses = 0;    // distinct addresses with connections
    uint64_t connections = 0;  // counted connections
    uint32_t busiest = 0;      // connections of the busiest address
    uint64_t untracked = 0;    // let in uncounted: no free entry near the hash
    uint64_t reclaimed = 0;    // connections of dead children given back
  };
  Stats stats() const;

  // Rate-limited logging, shared by every child: true at most once per
  // `interval_sec`; *suppressed = calls answered false since the last true.
  bool log_due(int64_t now_sec, int64_t interval_sec, uint64_t* suppressed);

 private:
  bool alive(const PerIpOwner& o) const { return alive_(o, alive_ctx_); }
  void release(uint32_t index);

  Block* block_ = nullptr;
  PerIpOwner me_;
  OwnerAlive alive_ = process_alive;
  void* alive_ctx_ = nullptr;
};

}  // namespace wsb
