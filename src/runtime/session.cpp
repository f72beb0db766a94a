#include "runtime/session.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "protocol/frame_encoder.h"
#include "runtime/wake_batch.h"

namespace wsb {

namespace {

// How the hub (and anything else off this thread) reaches the session.
class QueuePeer : public Peer {
 public:
  explicit QueuePeer(std::shared_ptr<OutboundQueue> q) : q_(std::move(q)) {}
  bool deliver(const FramePtr& frame) override {
    WakeBatch* batch = WakeBatch::current();
    if (!batch) return q_->push(frame) == OutboundQueue::PushResult::Ok;
    bool wake = false;
    OutboundQueue::PushResult r = q_->push_deferred(frame, &wake);
    if (wake) batch->defer(q_);
    return r == OutboundQueue::PushResult::Ok;
  }
  bool close(uint16_t code, std::string_view reason) override { return q_->request_close(code, reason); }

 private:
  std::shared_ptr<OutboundQueue> q_;
};

// Reads at most this many chunks before writing what they produced, so one
// fast sender cannot starve the outbound side; the loop comes straight back.
constexpr int kMaxReadsPerRound = 16;

// A burst can grow a frame list to thousands of entries; once written, a
// list larger than this is given back rather than kept for the next burst.
constexpr size_t kKeptFrames = 64;

void trim(std::vector<FramePtr>& frames) {
  if (frames.capacity() > kKeptFrames) std::vector<FramePtr>().swap(frames);
}

}  // namespace

Session::Session(Transport& transport, App& app, const SessionOptions& options,
                 StopFlag& stop, SessionStats& stats)
    : transport_(transport),
      app_(app),
      options_(options),
      stop_(stop),
      stats_(stats),
      parser_(options.limits),
      queue_(std::make_shared<OutboundQueue>(options.max_queued_bytes)),
      peer_(std::make_shared<QueuePeer>(queue_)) {
  stats_.open.fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  queue_->close();
  stats_.open.fetch_sub(1, std::memory_order_relaxed);
}

void Session::send_text(std::string_view text) {
  if (!close_sent_) pending_.push_back(make_frame(encode_frame(Opcode::Text, text)));
}

void Session::send_binary(std::string_view data) {
  if (!close_sent_) pending_.push_back(make_frame(encode_frame(Opcode::Binary, data)));
}

void Session::send_frame(const FramePtr& frame) {
  if (!close_sent_) pending_.push_back(frame);
}

void Session::close(uint16_t code, std::string_view reason) {
  if (close_sent_) return;
  pending_.push_back(make_frame(encode_close(code, reason)));
  close_sent_ = true;
  close_code_ = code;
  close_deadline_ms_ = monotonic_ms() + options_.close_timeout_ms;
}

void Session::drop() {
  close_sent_ = close_written_ = true;  // nothing more goes out, not even a close
  queue_->disable_direct();
  pending_.clear();
  close_code_ = close_code::kAbnormal;
  done_ = true;
}

// Failing the connection (RFC 6455 §7.1.7): send the close frame and drop the
// TCP connection without waiting for the peer; Apache's lingering close
// drains what the peer still sends so our close frame is not lost to a RST.
void Session::fail(uint16_t code, std::string_view reason) {
  close(code, reason);
  done_ = true;
}

void Session::on_message(Opcode op, std::string_view payload) {
  stats_.messages_in.fetch_add(1, std::memory_order_relaxed);
  if (close_sent_) return;  // the peer has not seen our close yet; drop
  app_.on_message(*this, op, payload);
}

// permessage-deflate (RFC 7692): the limits and the UTF-8 rule apply to the
// inflated message, as if it had arrived uncompressed.
void Session::on_compressed_message(Opcode op, std::string_view payload) {
  // One inflater per message: the handshake told the client not to take
  // its context over, so idle connections hold no zlib state.
  Inflater inflater;
  std::string inflated;  // nor a buffer: it goes with the message
  switch (inflater.inflate(payload, options_.limits.max_message_size, &inflated)) {
    case Inflater::Result::Ok: break;
    case Inflater::Result::TooBig:
      fail(close_code::kMessageTooBig, "message exceeds the message size limit once inflated");
      return;
    case Inflater::Result::Corrupt:
      fail(close_code::kInvalidPayload, "invalid compressed data");
      return;
  }
  if (op == Opcode::Text &&
      !Utf8Validator::validate(reinterpret_cast<const uint8_t*>(inflated.data()), inflated.size())) {
    fail(close_code::kInvalidPayload, "invalid utf-8 in a text message");
    return;
  }
  on_message(op, inflated);
}

void Session::on_ping(std::string_view payload) {
  if (!close_sent_ && app_.auto_pong()) pending_.push_back(make_frame(encode_frame(Opcode::Pong, payload)));
  app_.on_ping(*this, payload);
}

void Session::on_pong(std::string_view payload) {
  ping_outstanding_ = false;
  app_.on_pong(*this, payload);
}

void Session::on_close(uint16_t code, std::string_view reason) {
  close_received_ = true;
  app_.on_close_frame(*this, code, reason);
  if (!close_sent_) {
    // Echo the peer's code (RFC 6455 §5.5.1); a close without a code is
    // answered with an empty close.
    bool has_code = code != close_code::kNoStatus;
    pending_.push_back(make_frame(encode_close(has_code ? code : 0)));
    close_sent_ = true;
  }
  close_code_ = code;
  done_ = true;
}

void Session::on_error(uint16_t code, const char* why) { fail(code, why); }

bool Session::read_input() {
  bool alive = true;
  for (int reads = 0;; ++reads) {
    if (reads == kMaxReadsPerRound) {
      more_input_ = true;
      break;
    }
    inbuf_.clear();
    Transport::ReadStatus st;
    {
      // With TLS hub writes the transport's state (mod_ssl's) is shared with
      // the hub's encoder: only the read itself holds the write lock, not
      // the handling of what it read (a publish may wait on the bus).
      std::unique_lock<std::mutex> reading;
      if (encoded_direct_) reading = queue_->lock_writes();
      st = transport_.read(inbuf_, options_.read_chunk);
    }
    if (st != Transport::ReadStatus::Data) {
      alive = st == Transport::ReadStatus::Again;
      break;
    }
    last_rx_ms_ = monotonic_ms();
    stats_.bytes_in.fetch_add(inbuf_.size(), std::memory_order_relaxed);
    // false: a close frame or a protocol error, handled by the callbacks
    if (!parser_.feed(reinterpret_cast<uint8_t*>(&inbuf_[0]), inbuf_.size(), *this) || done_) break;
  }
  return alive;
}

bool Session::holds_buffers() const {
  return inbuf_.capacity() > std::string().capacity() || parser_.heap_bytes() > 0 || batch_.capacity() > 0 ||
         pending_.capacity() > 0;
}

// The parser has copied whatever a partial frame needs, so the read buffer
// can go; a frame in progress keeps its bytes in the parser.
void Session::release_idle_buffers() {
  std::string().swap(inbuf_);
  parser_.release_idle_buffers();
  std::vector<FramePtr>().swap(batch_);
  if (pending_.empty()) std::vector<FramePtr>().swap(pending_);
}

bool Session::flush(bool own_first) {
  // Held across the write: a producer writing directly must not interleave
  // its bytes with ours (it only try-locks, and wakes us if it cannot).
  std::unique_lock<std::mutex> writing = queue_->lock_writes();
  batch_.clear();
  if (own_first) {
    for (auto& f : pending_) batch_.push_back(std::move(f));
    pending_.clear();
  }
  if (!close_written_) {
    if (encoded_direct_) {
      // A producer's partial write goes first, as the encoded bytes it is.
      std::vector<FramePtr> encoded;
      queue_->take_unsent(encoded);
      if (!encoded.empty() && !transport_.write_encoded(encoded)) return false;
    } else {
      queue_->take_unsent(batch_);  // a producer's partial write goes first
    }
    bool overflowed = false;
    queue_->drain(batch_, &overflowed);
    if (overflowed) {
      // A consumer that cannot keep up is cut off instead of buffering
      // without bound; what is queued for it is dropped.
      batch_.clear();
      stats_.queue_overflows.fetch_add(1, std::memory_order_relaxed);
      if (!close_sent_) fail(close_code::kPolicyViolation, "slow consumer: send queue overflow");
    }
  } else {
    std::vector<FramePtr> discard;
    queue_->drain(discard);
  }
  if (!close_written_) {
    for (auto& f : pending_) batch_.push_back(std::move(f));
  }
  pending_.clear();
  trim(pending_);
  if (batch_.empty()) return true;
  if (close_sent_) {
    close_written_ = true;
    queue_->disable_direct();  // nothing may follow the close frame
  }
  size_t bytes = 0;
  for (const auto& f : batch_) bytes += f->size();
  bool ok = transport_.write(batch_);
  stats_.messages_out.fetch_add(batch_.size(), std::memory_order_relaxed);
  stats_.bytes_out.fetch_add(bytes, std::memory_order_relaxed);
  batch_.clear();
  trim(batch_);
  return ok;
}

int Session::next_timeout_ms(int64_t now) const {
  int64_t deadline = INT64_MAX;
  if (close_sent_) deadline = std::min(deadline, close_deadline_ms_);
  if (!close_sent_ && options_.idle_timeout_ms > 0)
    deadline = std::min(deadline, last_rx_ms_ + options_.idle_timeout_ms);
  if (!close_sent_ && options_.ping_interval_ms > 0 && !ping_outstanding_)
    deadline = std::min(deadline, std::max(last_rx_ms_, last_ping_ms_) + options_.ping_interval_ms);
  int64_t app = app_.deadline_ms();
  if (app >= 0 && !close_sent_) deadline = std::min(deadline, app);
  if (deadline == INT64_MAX) return -1;
  int64_t wait = deadline - now;
  if (wait < 0) return 0;
  return static_cast<int>(std::min<int64_t>(wait, INT_MAX));
}

void Session::on_timers(int64_t now) {
  if (!close_sent_) {
    int64_t app = app_.deadline_ms();
    if (app >= 0 && now >= app) app_.on_deadline(*this, now);
  }
  if (close_sent_) {
    if (now >= close_deadline_ms_) done_ = true;  // peer never answered our close
    return;
  }
  if (options_.idle_timeout_ms > 0 && now - last_rx_ms_ >= options_.idle_timeout_ms) {
    close(close_code::kGoingAway, "idle timeout");
    return;
  }
  if (options_.ping_interval_ms > 0 && !ping_outstanding_ &&
      now - std::max(last_rx_ms_, last_ping_ms_) >= options_.ping_interval_ms) {
    pending_.push_back(make_frame(encode_frame(Opcode::Ping, "wsbridge")));
    ping_outstanding_ = true;
    last_ping_ms_ = now;
    stats_.pings_sent.fetch_add(1, std::memory_order_relaxed);
  }
}

uint16_t Session::run() {
  last_rx_ms_ = last_ping_ms_ = monotonic_ms();
  app_.on_open(*this);
  // What on_open sent (the chat's welcome) is the first thing on the wire:
  // before anything other threads queued meanwhile, and before the hub may
  // write to the socket itself.
  bool alive = flush(true);
  // The hub may write to the socket itself: plain, or through an encoder
  // (TLS) whose every use, ours included, then holds the write lock.
  int direct_fd = -1;
  DirectEncoder* encoder = nullptr;
  if (alive && options_.direct_writes) {
    direct_fd = transport_.direct_write_fd();
    if (direct_fd < 0) encoder = transport_.direct_encoder(&direct_fd);
  }
  encoded_direct_ = encoder != nullptr;  // it comes with the socket (direct_fd)
  if (direct_fd >= 0) queue_->enable_direct(direct_fd, &stats_, encoder);
  // Producers skip the signal while this thread is awake only where they
  // cannot write to the socket themselves (HTTP/2, direct writes off, TLS
  // for the backend bridge):
  // with hub writes an unsignalled push is also a write not done, and a
  // session busy reading a flood would let its queue overflow meanwhile.
  const bool quiet_when_awake = direct_fd < 0;
  // Bytes that arrived with the handshake sit in Apache's (or mod_ssl's)
  // buffers already; the socket will not show them, so read before polling.
  more_input_ = true;
  while (alive) {
    if (!close_sent_ && stop_.is_stopping()) close(close_code::kGoingAway, "server going away");
    on_timers(monotonic_ms());
    if (!flush()) break;  // peer gone
    if (done_) break;
    pollfd fds[2];
    fds[0] = {transport_.poll_fd(), POLLIN, 0};
    fds[1] = {queue_->wake_fd(), POLLIN, 0};
    int timeout = next_timeout_ms(monotonic_ms());
    if (more_input_ || transport_.has_pending_input()) timeout = 0;
    more_input_ = false;
    // Frames queued since the flush above were pushed without a signal
    // (this thread was awake): look again instead of sleeping.
    if (timeout != 0 && !queue_->try_sleep()) timeout = 0;
    // Buffers kept from the last burst go back once the connection has been
    // quiet for idle_release_ms_: a waiting connection holds no read buffer,
    // and a busy one does not allocate and free them per message (glibc
    // would trim its arena, madvise(), on every round).
    const bool release_when_quiet =
        holds_buffers() && (timeout < 0 || timeout > idle_release_ms_);
    if (release_when_quiet) timeout = idle_release_ms_;
    int rc = ::poll(fds, 2, timeout);
    if (quiet_when_awake) queue_->mark_awake();
    if (rc == 0 && release_when_quiet) release_idle_buffers();
    if (rc < 0) {
      if (errno == EINTR) {  // prefork's stop signal lands here
        stop_.refresh_from_mpm();
        continue;
      }
      break;
    }
    if (fds[1].revents) {
      queue_->clear_wake();
      uint16_t code = 0;
      std::string reason;
      // flush() at the top of the loop writes what was queued before it
      // ahead of the close frame (the queue drains before pending_).
      if (queue_->take_close_request(&code, &reason)) close(code, reason);
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) || timeout == 0) {
      if (!read_input()) {
        alive = false;  // EOF without a close frame: 1006
        if (!close_received_) close_code_ = close_code::kAbnormal;
      }
      app_.after_input(*this);
    }
  }
  if (!close_written_) flush();
  app_.on_close(*this);
  queue_->close();
  stats_.count_close(close_code_);
  return close_code_;
}

}  // namespace wsb
