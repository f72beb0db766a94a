// Multi-producer single-consumer queue of shared frames for one session.
// Producers (the hub, other threads) push; the session thread drains
// everything at once and writes it as one batch. The eventfd is written only
// when the queue goes from empty to non-empty (or on overflow/close), so a
// burst of pushes costs one wake-up.
//
// Direct writes: when the session's socket carries the bytes unchanged (no
// TLS, no filter but Apache's core one), the session lends the socket to the
// producers. A producer that ends a batch (the hub) then writes what is
// queued itself with a non-blocking send() instead of waking the session:
// no thread switch per delivery. Whoever writes holds the queue's write
// lock, so bytes never interleave; a producer only ever try-locks it, and
// whatever the socket does not take at once is left for the session, in
// order, with a wake-up.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/event_fd.h"
#include "runtime/frame.h"
#include "runtime/session_stats.h"
#include "runtime/transport.h"

namespace wsb {

class OutboundQueue {
 public:
  enum class PushResult { Ok, Overflow, Closed };

  explicit OutboundQueue(size_t max_bytes);

  // Appends a frame (a null frame is ignored). When the queued bytes would exceed max_bytes the frame
  // is dropped, the queue is marked overflowed (sticky), the consumer is
  // woken and Overflow is returned; later pushes return Overflow too.
  // After close() pushes return Closed.
  PushResult push(const FramePtr& frame);
  // The same, but the eventfd write is left to the caller: *wake_owed says
  // whether push() would have signalled (see WakeBatch).
  PushResult push_deferred(const FramePtr& frame, bool* wake_owed);

  // Moves every queued frame to out (appending) in push order; returns the
  // number of bytes moved. Consumer thread only.
  // *overflowed (if given) reports the sticky overflow flag under the same
  // lock, so the consumer needs no second lock per wake-up.
  size_t drain(std::vector<FramePtr>& out, bool* overflowed = nullptr);

  // Stops accepting frames (consumer is going away) and drops queued ones.
  void close();

  // Any thread: the consumer should close the connection with code/reason
  // once the frames queued so far are out. Later pushes are refused, and
  // direct writes stop so the consumer writes the rest and its close frame
  // itself. False if a close was asked for already or the queue is closed.
  bool request_close(uint16_t code, std::string_view reason);
  // Consumer thread: the pending close request, if any (taken once).
  bool take_close_request(uint16_t* code, std::string* reason);

  // Wakes the consumer without queueing anything (e.g. server stopping).
  void wake() { efd_.signal(); }
  // Called by the consumer after poll() reported the fd readable, and
  // BEFORE drain(): in the other order a push between the two could leave
  // a frame queued with its wake-up already consumed.
  void clear_wake() { efd_.drain(); }
  // Consumer thread, right after poll() returned: it will look at the
  // queue before it sleeps again, so producers need not signal meanwhile.
  void mark_awake();
  // Consumer thread, before a poll() that may block: false when frames were
  // queued since it last looked (poll without blocking, then drain them);
  // true when the queue is empty, and producers signal again from now on.
  bool try_sleep();

  // --- direct writes (see the top of this file) ---
  // Session thread: producers may write queued frames to fd (a connected,
  // non-blocking-capable socket) from now on; what they write is counted in
  // stats.
  // With an encoder (TLS), producers encode each batch before they send it;
  // what the socket does not take is then encoded bytes, which the session
  // takes with take_unsent() and writes with Transport::write_encoded().
  void enable_direct(int fd, SessionStats* stats, DirectEncoder* encoder = nullptr);
  // Producer thread, outside every other lock: writes everything queued to
  // the lent socket. True when nothing is left for the session (all written,
  // or nothing queued); false when the session must be woken instead:
  // direct writes are off, the session is writing itself, the queue
  // overflowed, or the socket took only part (the rest waits in order).
  bool write_direct();
  // Session thread: held for the whole of each write the session makes, so
  // no producer writes at the same time.
  std::unique_lock<std::mutex> lock_writes() { return std::unique_lock<std::mutex>(write_mu_); }
  // Session thread, holding lock_writes(): appends what a producer's write
  // left unsent to out; call it before drain(), which appends what came later.
  void take_unsent(std::vector<FramePtr>& out);
  // No more direct writes: the session (holding lock_writes()) once its
  // close frame is out; any thread when Apache is about to close the socket
  // under the session (a hard stop). Takes no lock, so it never waits for a
  // session's blocking write.
  void disable_direct() { direct_fd_.store(-1, std::memory_order_release); }

  int wake_fd() const { return efd_.fd(); }
  bool ok() const { return efd_.ok(); }
  bool overflowed() const;
  size_t queued_bytes() const;

 private:
  friend struct SessionFootprintProbe;  // tests/unit/test_session_footprint.cpp
  mutable std::mutex mu_;
  std::vector<FramePtr> items_;
  size_t bytes_ = 0;
  const size_t max_bytes_;
  bool overflowed_ = false;
  bool closed_ = false;
  bool close_requested_ = false;   // request_close(): no more pushes
  bool close_taken_ = true;        // the consumer has not yet taken the request
  bool awake_ = false;             // the consumer will drain before it sleeps
  uint16_t close_code_ = 0;
  std::string close_reason_;
  EventFd efd_;

  // Guarded by write_mu_ (the write lock); direct_fd_ may also be cleared
  // without it (disable_direct), so it is atomic.
  std::mutex write_mu_;
  std::atomic<int> direct_fd_{-1};
  SessionStats* direct_stats_ = nullptr;
  DirectEncoder* encoder_ = nullptr;
  std::vector<FramePtr> unsent_;   // a producer's partial write, in order
  size_t unsent_offset_ = 0;       // bytes of unsent_[0] already on the wire
  std::vector<FramePtr> direct_batch_;
  std::string wire_;               // a batch's encoded bytes (encoder_)
  bool write_encoded_locked(int fd, std::vector<FramePtr>& frames);
  // A hub write's figures (messages and payload bytes; stalled: the socket
  // did not take it all and the session writes the rest).
  void count_hub_write(size_t messages, size_t bytes, bool stalled);
};

}  // namespace wsb
