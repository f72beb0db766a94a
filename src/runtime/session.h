// One WebSocket connection, run by the thread that accepted it (DESIGN.md
// "Runtime model"). It sleeps in poll() on the transport and its outbound
// queue's eventfd, parses client frames, hands messages to the App, and
// writes everything pending as one batch per wake-up.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/deflate.h"
#include "protocol/frame_parser.h"
#include "protocol/opcode.h"
#include "runtime/clock.h"
#include "runtime/outbound_queue.h"
#include "runtime/peer.h"
#include "runtime/session_stats.h"
#include "runtime/transport.h"

namespace wsb {

struct SessionOptions {
  ParserLimits limits;
  int ping_interval_ms = 30000;   // ping a peer that has been quiet this long; 0 = never
  int idle_timeout_ms = 75000;    // close a peer that sent nothing this long; 0 = never
  int close_timeout_ms = 2000;    // wait this long for the peer's close reply
  size_t max_queued_bytes = 4u << 20;
  size_t read_chunk = 64 * 1024;
  // Let the hub write to the socket itself when the transport allows it
  // (WSBridgeHubWrites); otherwise every delivery wakes the session thread.
  bool direct_writes = true;
};

class Session;

// The application behind a session (echo, chat). Runs on the session thread.
class App {
 public:
  virtual ~App() = default;
  virtual void on_open(Session&) {}
  virtual void on_message(Session&, Opcode op, std::string_view payload) = 0;
  // Control frames from the client. The session answers pings itself
  // unless auto_pong() says the app does (the backend bridge: a backend
  // written for Pushpin answers PING with PONG).
  virtual bool auto_pong() const { return true; }
  virtual void on_ping(Session&, std::string_view) {}
  virtual void on_pong(Session&, std::string_view) {}
  // The client's close frame (before the session answers it).
  virtual void on_close_frame(Session&, uint16_t /*code*/, std::string_view /*reason*/) {}
  // After each round of reads, before the session writes and sleeps: what
  // the round's messages produced can be handled together (the backend
  // bridge sends them in one request).
  virtual void after_input(Session&) {}
  // The app's own timer (monotonic ms, -1: none): the session wakes for it
  // and calls on_deadline once it is due.
  virtual int64_t deadline_ms() { return -1; }
  virtual void on_deadline(Session&, int64_t /*now_ms*/) {}
  virtual void on_close(Session&) {}
};

// Signals that the server is stopping; shared by every session of a process.
// Tells sessions that the server is stopping; shared by every session of a
// process. The child_stopping hook sets `stopping` and wakes every session.
// Prefork has no such hook call while a handler runs: a signal interrupts
// poll() instead, and only then is `check` (the MPM's state) asked, so the
// per-message path never pays for it.
struct StopFlag {
  std::atomic<bool> stopping{false};
  bool (*check)() = nullptr;
  bool is_stopping() const { return stopping.load(std::memory_order_acquire); }
  void refresh_from_mpm() {
    if (check != nullptr && check()) stopping.store(true, std::memory_order_release);
  }
};

class Session : private FrameSink {
 public:
  Session(Transport& transport, App& app, const SessionOptions& options, StopFlag& stop,
          SessionStats& stats);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs until the connection is closed. Returns the close code that ended it
  // (1006 when the peer vanished without a close frame).
  uint16_t run();

  // Session thread: queue a message for this connection.
  void send_text(std::string_view text);
  void send_binary(std::string_view data);
  void send_frame(const FramePtr& frame);
  // Session thread: start the close handshake.
  void close(uint16_t code, std::string_view reason);
  // Session thread: end the connection without a close frame (1006).
  void drop();

  // Any thread: where other threads put frames for this connection, and how
  // they wake it (the server's stop path calls wake()).
  OutboundQueue& queue() { return *queue_; }
  const std::shared_ptr<OutboundQueue>& queue_ptr() const { return queue_; }
  PeerPtr peer() const { return peer_; }
  // The app's figures (the status page): apps count what they refuse.
  SessionStats& stats() { return stats_; }
  bool closing() const { return close_sent_; }
  bool close_received() const { return close_received_; }

 private:
  friend struct SessionFootprintProbe;  // tests/unit/test_session_footprint.cpp
  void on_message(Opcode op, std::string_view payload) override;
  void on_compressed_message(Opcode op, std::string_view payload) override;
  void on_ping(std::string_view payload) override;
  void on_pong(std::string_view payload) override;
  void on_close(uint16_t code, std::string_view reason) override;
  void on_error(uint16_t code, const char* why) override;

  bool read_input();      // false when the transport ended
  bool holds_buffers() const;
  void release_idle_buffers();
  // Writes the outbound queue, then pending_ (own_first: pending_ first).
  bool flush(bool own_first = false);
  void fail(uint16_t code, std::string_view reason);
  int next_timeout_ms(int64_t now) const;
  void on_timers(int64_t now);

  Transport& transport_;
  App& app_;
  SessionOptions options_;
  StopFlag& stop_;
  SessionStats& stats_;
  FrameParser parser_;
  std::shared_ptr<OutboundQueue> queue_;
  PeerPtr peer_;
  std::vector<FramePtr> pending_;   // frames made on this thread, not yet written
  std::vector<FramePtr> batch_;     // reused write batch
  std::string inbuf_;
  int idle_release_ms_ = 1000;      // quiet this long: give buffers back
  int64_t last_rx_ms_ = 0;
  int64_t last_ping_ms_ = 0;
  int64_t close_deadline_ms_ = 0;
  bool ping_outstanding_ = false;
  bool close_sent_ = false;
  bool close_received_ = false;
  bool close_written_ = false;
  bool more_input_ = false;
  // Producers encode and write to the socket themselves (TLS hub writes):
  // every use of the transport, reads included, holds the write lock, and
  // what they leave unsent is already encoded.
  bool encoded_direct_ = false;
  bool done_ = false;
  uint16_t close_code_ = close_code::kAbnormal;
};


}  // namespace wsb
