// The Pusher-protocol load generator for scripts/bench-pusher.sh: raw
// WebSocket clients speaking Pusher frames (no pusher-js), an HTTP API
// client signing its own requests, and the counting. Shared declarations of
// pusher_load.cpp (options, main), subscribers.cpp (the WebSocket side) and
// trigger.cpp (the HTTP API side).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "util.h"

namespace pl {

enum class Scenario { Fanout, Client, Presence };

struct Options {
  Scenario scenario = Scenario::Fanout;
  std::string host = "127.0.0.1";
  int port = 0;      // WebSocket /app/<key>
  int api_port = 0;  // HTTP API (default: port)
  std::string app_id, key, secret;
  int subs = 100;             // subscribers (presence: members)
  double duration = 10;       // measured seconds
  double warmup = 1;          // seconds before the window
  double drain = 3;           // seconds after it for late deliveries
  double rate = 1000;         // fanout: events/s offered; 0 = saturate (closed loop)
  int batch = 1;              // events per HTTP request (>1: batch_events)
  int http_conns = 4;         // HTTP API connections
  int senders = 10;           // client: connections that send client events
  double sender_rate = 9;     // client: events/s per sender
  int threads = 1;            // receiving threads
  int size = 64;              // bytes of event data
  int max_handshakes = 32;    // handshakes in flight per thread
  size_t max_events = 2000000;
  double max_time = 90;
  std::string label;
  std::vector<int> server_pids;  // roots: CPU of them and their descendants
  std::string channel;
  // The same loads against nginx + nchan: subscribers are plain WebSockets
  // on /sub (every message is the raw event data), events are POSTed one per
  // request to nchan's publisher location /pub (a "batch" of n is n
  // pipelined requests). No app, no signing.
  bool nchan = false;
};

// Everything the threads share. Times are CLOCK_MONOTONIC nanoseconds; 0 =
// not set yet.
struct Shared {
  Options o;
  std::atomic<int64_t> t_start{0}, t0{0}, t1{0};  // sending starts; the window
  std::atomic<int64_t> t_join{0}, t_leave{0};     // presence
  std::atomic<bool> stop{false}, trigger_done{false};
  std::atomic<int> ready{0}, failed{0};
  // Per event (indexed by seq): deliveries seen; the closed loop's slot.
  size_t cap = 0;
  uint32_t expect = 0;  // deliveries per event
  std::unique_ptr<std::atomic<uint32_t>[]> count;
  std::unique_ptr<std::atomic<uint16_t>[]> slot_of;
  static constexpr int kSlots = 4096;
  std::unique_ptr<std::atomic<int>[]> slot_left;
  int wake_fd = -1;  // eventfd: a slot's events are all delivered
  std::atomic<uint64_t> next_seq{0};
  std::atomic<uint64_t> sent_window{0};  // events stamped in the window that were accepted
  std::atomic<uint64_t> done_window{0};  // ... and fully delivered
  // presence
  std::atomic<int> presence_done{0};
  std::atomic<int64_t> last_presence_ns{0};
  std::mutex mu;
  std::string first_error;
  void note_error(const std::string& e) {
    std::lock_guard<std::mutex> l(mu);
    if (first_error.empty()) first_error = e;
  }
  bool in_window(int64_t stamp) const { return stamp >= t0.load(std::memory_order_relaxed) && stamp < t1.load(std::memory_order_relaxed); }
  // Counts a delivery of event `seq`; the last expected one completes the
  // event (the drain, and in saturation its slot).
  void delivered(uint64_t seq, int64_t stamp, uint64_t* dups);
};

struct WorkerStats {
  Histogram latency;                 // deliveries of window events, microseconds
  uint64_t arrived_in_window = 0;    // deliveries that arrived during the window
  uint64_t window_deliveries = 0;    // deliveries of events stamped in the window
  uint64_t dups = 0, text_frames = 0, other_frames = 0;
  uint64_t pusher_errors = 0, rate_limited = 0, subscription_errors = 0, closed = 0;
  uint64_t client_sent = 0;
  int64_t max_send_lag_ns = 0;
  uint64_t join_frames = 0, leave_frames = 0, removed_frames = 0;
  int64_t last_removed_ns = 0;
  std::vector<int64_t> joined_ns;  // presence: when each member had seen everyone
  int64_t window_cpu_ns = 0;       // this thread's CPU during the window
};

struct TriggerStats {
  uint64_t requests = 0, ok = 0, non2xx = 0, lost = 0, reconnects = 0, stalled = 0, events = 0;
  int64_t max_lag_ns = 0;
  int64_t window_cpu_ns = 0;
  std::string first_bad;
};

void run_worker(Shared& g, int first_conn, int nconns, WorkerStats* out);
void run_trigger(Shared& g, TriggerStats* out);

// The event data: "t=<stamp> s=<seq> xxx..." padded to `size` bytes.
std::string event_data(int64_t stamp, uint64_t seq, int size);

}  // namespace pl
