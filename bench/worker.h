// One load-generator thread: an epoll loop over its share of the
// connections (connection i belongs to thread i % threads). Hot path:
// a send copies a pre-masked frame template into the connection's buffer
// and masks only the 33-byte stamp (time, sender, sequence) in place; a
// read goes into one thread-wide buffer and FrameWalker hands out
// pointers into it. Nothing is allocated per message.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include <openssl/ssl.h>

#include "conn.h"
#include "histogram.h"
#include "options.h"
#include "protocol/frame_encoder.h"
#include "protocol/masking.h"

namespace lg {

inline int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

enum Phase : int { kPhaseConnect = 0, kPhaseRun = 1, kPhaseClose = 2 };

// Written by the controller (main thread), read by every worker.
struct Shared {
  std::atomic<int> phase{kPhaseConnect};
  std::atomic<int64_t> t_start{INT64_MAX};  // senders start
  std::atomic<int64_t> t0{INT64_MAX};       // measured window [t0, t1)
  std::atomic<int64_t> t1{INT64_MAX};       // also: senders stop
};

struct WorkerStats {
  uint64_t sent = 0;           // messages written (all phases)
  uint64_t recv = 0;           // stamped messages received (all phases)
  uint64_t arrived_window = 0; // stamped messages that arrived in [t0,t1)
  uint64_t other_frames = 0;   // welcome, history, system, presence, ...
  uint64_t error_frames = 0;   // chat "error" frames
  uint64_t rate_limited = 0;
  uint64_t connect_failed = 0;
  uint64_t handshake_failed = 0;
  uint64_t dropped = 0;        // open connections lost before the end
  uint64_t server_closes = 0;  // close frames from the server before the end
  uint64_t proto_errors = 0;
  uint64_t skipped = 0;        // sends not made: the connection's buffer was full
  uint64_t stalls = 0;         // closed loop: own message never came back
  int64_t max_send_lag = 0;    // rate mode: worst lateness of a scheduled send
  int64_t first_connect = INT64_MAX;
  int64_t last_handshake = 0;
  int64_t first_join = INT64_MAX;  // connect --join: first join sent
  int64_t last_join = 0;           // connect --join: last own presence received
  int last_close_code = 0;
  std::string first_error;
  std::string tls;             // wss://: protocol version and cipher of the first connection
};

constexpr size_t kStamp = 33;  // 'B' + 16 hex time + 8 hex sender + 8 hex seq

class Worker {
 public:
  Worker(const Options& o, Shared& sh, int id);
  ~Worker();
  void run();

  WorkerStats st;
  Histogram latency;    // message latency (ns), messages stamped in [t0,t1)
  Histogram handshake;  // connect() to 101 (ns)
  // Chat: latency per serving Apache child (the welcome frame's pid), to
  // show when one child's deliveries lag the other's.
  static constexpr int kMaxPids = 16;
  struct PidLatency {
    long pid = 0;
    int conns = 0;
    Histogram latency;
  };
  std::vector<PidLatency> by_pid;
  // Live figures the controller reads.
  alignas(64) std::atomic<uint64_t> pub_sent_window{0};
  std::atomic<uint64_t> pub_recv_window{0};
  std::atomic<int> pub_open{0};
  std::atomic<int> pub_joined{0};
  std::atomic<int> pub_done{0};  // connections that finished connecting (ok or not)
  std::atomic<int64_t> pub_last_rx{0};      // connect --join: last frame seen
  std::atomic<uint64_t> pub_frames{0};      // connect --join: frames seen

 private:
  void build_templates();
  void open_more(int64_t now);
  void open_conn(Conn& c, int64_t now);
  void on_event(Conn& c, uint32_t ev, int64_t now);
  void on_connected(Conn& c, int64_t now);
  void read_input(Conn& c, int64_t now);
  bool on_handshake_bytes(Conn& c, const uint8_t* p, size_t n, int64_t now);
  void on_frame(Conn& c, uint8_t op, const uint8_t* p, size_t len, int64_t now);
  void on_data(Conn& c, const uint8_t* p, size_t len, int64_t now);
  bool send_stamped(Conn& c, int64_t ts);
  void send_window(Conn& c, int64_t now);
  void timed_sends(int64_t now, int64_t* next_due);
  void queue_frame(Conn& c, uint8_t op, const uint8_t* payload, size_t len);
  void mark_dirty(Conn& c);
  void flush(Conn& c);
  void set_out(Conn& c, bool on);
  bool tls_handshake(Conn& c);
  ssize_t io_read(Conn& c, uint8_t* p, size_t n);
  void close_conn(Conn& c);
  void fail(Conn& c, bool handshake, const std::string& why);
  void drop(Conn& c, const char* why);
  void begin_close();
  void housekeeping(int64_t now);
  void note_pid(Conn& c, const uint8_t* p, size_t len);
  void note_error(const std::string& e) {
    if (st.first_error.empty()) st.first_error = e;
  }

  const Options& o_;
  Shared& sh_;
  int id_;
  int ep_ = -1;
  SSL_CTX* tls_ctx_ = nullptr;
  std::vector<Conn> conns_;
  std::vector<uint32_t> senders_;
  std::vector<uint32_t> dirty_;
  size_t next_open_ = 0;
  int handshaking_ = 0;
  int max_handshaking_ = 1;
  int open_ = 0;
  int joined_ = 0;
  int done_ = 0;
  int64_t last_rx_ns_ = 0;
  uint64_t sent_window_ = 0;
  uint64_t recv_window_ = 0;
  int64_t t0_ = INT64_MAX, t1_ = INT64_MAX;
  bool run_started_ = false;
  bool closing_ = false;
  std::vector<uint8_t> rbuf_;
  std::string request_;
  uint8_t key_[4] = {0x3a, 0x91, 0x5c, 0xe7};
  std::vector<uint8_t> tmpl_;  // the stamped message, header and masked payload
  size_t tmpl_hdr_ = 0;        // header length (incl. mask key)
  size_t stamp_off_ = 0;       // stamp offset in the payload
  int64_t interval_ns_ = 0;    // rate mode: per-sender interval
};

}  // namespace lg
