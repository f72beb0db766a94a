// Figures for the status page, kept in a shared-memory block created before
// the children fork, so every child's sessions count into one place and any
// child can report the whole server. Atomics on a MAP_SHARED page are
// address-free and work across processes (lock-free 64-bit on the targets).
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/session_stats.h"

namespace wsb {

enum class RefuseReason : int {
  BadRequest = 0,   // 400
  Unauthorized,     // 401
  Forbidden,        // 403 (Origin)
  BadMethod,        // 405
  UpgradeRequired,  // 426 (plain GET, bad version)
  Overloaded,       // 503 (WSBridgeMaxConnections or what the MPM can carry)
  WorkerReserve,    // 503 (the child would keep fewer than WSBridgeReserveWorkers threads)
  Restarting,       // 503 (the child is stopping)
  Unavailable,      // 503 (the bus or the backend does not answer)
  Count
};

// Names for the status outputs, in RefuseReason order.
constexpr const char* kRefuseReasonNames[] = {"bad_request", "unauthorized", "forbidden_origin",
                                              "method_not_allowed", "upgrade_required", "overloaded",
                                              "worker_reserve", "restarting", "unavailable"};
static_assert(sizeof(kRefuseReasonNames) / sizeof(kRefuseReasonNames[0]) == static_cast<int>(RefuseReason::Count),
              "a name for every refusal reason");

constexpr int kAppCount = 4;  // echo, chat, backend, pusher
constexpr int kMaxChildSlots = 1024;

// The backend bridge's requests (WSBridgeApp backend).
struct BackendStats {
  enum Failure { BadStatus, Malformed, Timeout, NoAnswer, Overflow, kFailureCount };
  static constexpr const char* kFailureNames[kFailureCount] = {"bad_status", "malformed", "timeout",
                                                               "no_answer", "client_overflow"};
  // Latency histogram bounds (microseconds), Prometheus style (le=...).
  static constexpr int kBuckets = 9;
  static constexpr int64_t kBucketUpperUs[kBuckets] = {1000, 2500, 5000, 10000, 25000,
                                                        50000, 100000, 1000000, 10000000};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> latency_sum_us{0};
  std::array<std::atomic<uint64_t>, kBuckets + 1> latency{};  // [kBuckets] = +Inf
  std::array<std::atomic<uint64_t>, kFailureCount> failures{};
  std::atomic<uint64_t> opens_refused{0};  // the backend answered OPEN with a refusal

  void observe(int64_t us) {
    requests.fetch_add(1, std::memory_order_relaxed);
    latency_sum_us.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
    int i = 0;
    while (i < kBuckets && us > kBucketUpperUs[i]) ++i;
    latency[i].fetch_add(1, std::memory_order_relaxed);
  }
};

struct ChildSlot {
  std::atomic<int> pid{0};           // 0 = free
  std::atomic<int> generation{0};
  std::array<SessionStats, kAppCount> app;
  std::array<std::atomic<uint64_t>, static_cast<int>(RefuseReason::Count)> refused{};
  BackendStats backend;
};

struct SharedStats {
  uint64_t magic;
  std::atomic<int64_t> open_total{0};  // across children, for WSBridgeMaxConnections
  std::atomic<uint64_t> bus_overruns{0};
  std::array<ChildSlot, kMaxChildSlots> slots;

  static constexpr uint64_t kMagic = 0x7773627374617433ull;  // "wsbstat3": bump on any layout change

  // Maps a fresh block (inherited by children after fork). nullptr on failure.
  static SharedStats* create();
  static SharedStats* attach(void* base) {
    auto* s = static_cast<SharedStats*>(base);
    return s->magic == kMagic ? s : nullptr;
  }
  // A child takes a free slot (or one left by a dead pid it is told about).
  ChildSlot* claim(int pid);
  void release(ChildSlot* slot);
  // Frees the slots of children that died without releasing them (killed,
  // crashed) and returns their pids, so their chat members can be removed.
  // Each dead slot is reaped by exactly one caller.
  std::vector<int> reap_dead();
};

}  // namespace wsb
