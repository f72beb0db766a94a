// The worker reserve: every WebSocket holds an Apache worker thread (or, under
// prefork, a whole child) for its life, so WebSockets alone could take every
// worker and the website would stop answering. The handler admits an upgrade
// only while that leaves `reserve` threads of its child, and enough workers of
// the server, for plain HTTP. Plain figures, no Apache types: the glue reads
// the MPM (ap_mpm_query) and fills MpmFigures.
#pragma once
#include <atomic>
#include <cstdint>
#include <algorithm>

namespace wsb {

struct MpmFigures {
  bool threaded = true;        // event/worker: threads per child; prefork: one connection per child
  int threads_per_child = 25;  // AP_MPMQ_MAX_THREADS (1 under prefork)
  int max_daemons = 4;         // AP_MPMQ_MAX_DAEMONS: children the MPM may run at once
  int max_workers() const { return threads_per_child * max_daemons; }  // MaxRequestWorkers
};

struct Capacity {
  int reserve = 0;        // threads per child (threaded) or workers per server (prefork) kept for HTTP
  bool per_child = true;  // threaded MPMs: each child keeps `reserve` threads
  int child_limit = 0;    // WebSockets one child may hold (when per_child)
  int mpm_limit = 0;      // WebSockets the MPM can carry with the reserve kept
  int server_limit = 0;   // effective WSBridgeMaxConnections
  bool configured_above_mpm = false;  // WSBridgeMaxConnections > mpm_limit (warned at start)
};

// Default reserve: an eighth of the workers, at least 4, but never more than
// half of what a child (or the server, under prefork) has.
int default_reserve(const MpmFigures& mpm);

// configured_reserve / configured_max: -1 when the directive is unset.
Capacity compute_capacity(const MpmFigures& mpm, int configured_reserve, int configured_max);

enum class Admission { Ok, ChildFull, ServerFull };

// Counts the WebSockets of this child and of the server. A Ticket holds one
// admitted connection and gives its place back when it goes.
class ConnectionGate {
 public:
  class Ticket {
   public:
    Ticket() = default;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    Ticket(Ticket&& o) noexcept : child_(o.child_), server_(o.server_) { o.child_ = o.server_ = nullptr; }
    ~Ticket() { release(); }
    void release() {
      if (child_) child_->fetch_sub(1, std::memory_order_relaxed);
      if (server_) server_->fetch_sub(1, std::memory_order_relaxed);
      child_ = server_ = nullptr;
    }

   private:
    friend class ConnectionGate;
    std::atomic<int64_t>* child_ = nullptr;
    std::atomic<int64_t>* server_ = nullptr;
  };

  // server_count: shared across children (shared memory); may be null when
  // there is no shared block, then only the child is counted.
  explicit ConnectionGate(std::atomic<int64_t>* server_count = nullptr) : server_(server_count) {}
  void set_capacity(const Capacity& c) { cap_ = c; }
  void set_server_counter(std::atomic<int64_t>* server_count) { server_ = server_count; }
  const Capacity& capacity() const { return cap_; }
  int64_t child_open() const { return child_.load(std::memory_order_relaxed); }

  // On Ok, *ticket holds the place; otherwise nothing is counted.
  // vhost_limit: a lower WSBridgeMaxConnections of the request's vhost.
  Admission admit(Ticket* ticket, int64_t vhost_limit = INT64_MAX);

 private:
  std::atomic<int64_t> child_{0};
  std::atomic<int64_t>* server_;
  Capacity cap_;
};

}  // namespace wsb
