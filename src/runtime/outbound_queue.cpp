// MPSC frame queue for one session (see outbound_queue.h).
//
// Wake-up protocol: a producer signals the eventfd only when it made the
// queue non-empty and the consumer is not known to be awake; the consumer
// must call clear_wake() *before* drain(). Then no wake-up is lost: a
// signal cleared by clear_wake() was sent after its push had completed, so
// the drain that follows sees that frame, and a push that lands after the
// drain found the queue empty and signals again.
// A consumer that says it is awake (mark_awake()) gets no signals at all
// until try_sleep(), which refuses (under the same lock) when anything was
// queued meanwhile, so nothing pushed unsignalled is slept on. A session
// busy writing one batch is thus not signalled for the next one, which it
// drains anyway before it sleeps: without this, about half the wake-ups of
// a TLS session under load found nothing left to write.
// Signals are sent after the lock is released so that producers never make
// each other wait on a system call.
#include "runtime/outbound_queue.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>
#include <iterator>
#include <utility>

namespace wsb {

namespace {

// Frame lists keep their capacity between wake-ups (they are swapped, not
// reallocated), but one burst must not pin thousands of slots on a
// connection that then idles: above this they are given back.
constexpr size_t kKeptFrames = 64;
// The same for the encoded bytes of a batch (TLS hub writes): a session
// keeps a buffer for small batches only.
constexpr size_t kKeptWire = 2048;

void trim(std::vector<FramePtr>& frames) {
  if (frames.capacity() > kKeptFrames) std::vector<FramePtr>().swap(frames);
}

}  // namespace

OutboundQueue::OutboundQueue(size_t max_bytes) : max_bytes_(max_bytes) {}

OutboundQueue::PushResult OutboundQueue::push(const FramePtr& frame) {
  bool wake = false;
  PushResult result = push_deferred(frame, &wake);
  if (wake) efd_.signal();
  return result;
}

OutboundQueue::PushResult OutboundQueue::push_deferred(const FramePtr& frame, bool* wake_owed) {
  bool& wake = *wake_owed;
  wake = false;
  PushResult result = PushResult::Ok;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || close_requested_) return PushResult::Closed;
    if (overflowed_) return PushResult::Overflow;
    if (!frame) return PushResult::Ok;  // nothing to send; keeps drain() null-free
    const size_t size = frame->size();
    if (size > max_bytes_ || bytes_ > max_bytes_ - size) {
      // The consumer must learn about the overflow even if it has nothing
      // left to drain, so it can disconnect the slow client.
      overflowed_ = true;
      wake = true;
      result = PushResult::Overflow;
    } else {
      wake = !awake_ && items_.empty();
      items_.push_back(frame);
      bytes_ += size;
    }
  }
  return result;
}

size_t OutboundQueue::drain(std::vector<FramePtr>& out, bool* overflowed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (overflowed) *overflowed = overflowed_;
  if (out.empty()) {
    // Swapping hands the consumer's spare capacity back to the producers,
    // so steady-state traffic allocates nothing and the lock is held O(1).
    out.swap(items_);
  } else {
    out.insert(out.end(), std::make_move_iterator(items_.begin()),
               std::make_move_iterator(items_.end()));
    items_.clear();
    trim(items_);
  }
  const size_t moved = bytes_;
  bytes_ = 0;
  return moved;
}

void OutboundQueue::mark_awake() {
  std::lock_guard<std::mutex> lock(mu_);
  awake_ = true;
}

bool OutboundQueue::try_sleep() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!items_.empty()) return false;
  awake_ = false;
  return true;
}

bool OutboundQueue::request_close(uint16_t code, std::string_view reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || close_requested_) return false;
    close_requested_ = true;
    close_taken_ = false;
    close_code_ = code;
    close_reason_.assign(reason);
  }
  // The consumer writes what is queued and then its close frame: no
  // producer may add bytes after it.
  disable_direct();
  efd_.signal();
  return true;
}

bool OutboundQueue::take_close_request(uint16_t* code, std::string* reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (close_taken_) return false;
  close_taken_ = true;
  *code = close_code_;
  *reason = std::move(close_reason_);
  return true;
}

void OutboundQueue::close() {
  {
    // The socket is about to be closed and its number reused: no producer
    // may write to it after this returns.
    std::lock_guard<std::mutex> w(write_mu_);
    direct_fd_.store(-1, std::memory_order_release);
    unsent_.clear();
  }
  std::vector<FramePtr> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    dropped.swap(items_);
    bytes_ = 0;
  }
  // Frames are released outside the lock: the last reference may free a
  // large buffer, which producers need not wait for.
  dropped.clear();
  efd_.signal();
}

bool OutboundQueue::overflowed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overflowed_;
}

size_t OutboundQueue::queued_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace wsb

namespace wsb {

void OutboundQueue::enable_direct(int fd, SessionStats* stats, DirectEncoder* encoder) {
  std::lock_guard<std::mutex> w(write_mu_);
  direct_fd_.store(fd, std::memory_order_release);
  direct_stats_ = stats;
  encoder_ = encoder;
}

namespace {

constexpr size_t kMaxIov = IOV_MAX < 256 ? IOV_MAX : 256;

// One non-blocking sendmsg() of frames[first..] (the first one from offset).
// Returns bytes sent, 0 when the socket is full, -1 on error.
ssize_t send_frames(int fd, const std::vector<FramePtr>& frames, size_t first, size_t offset) {
  iovec iov[kMaxIov];
  size_t n = 0;
  for (size_t i = first; i < frames.size() && n < kMaxIov; ++i, ++n) {
    size_t skip = i == first ? offset : 0;
    iov[n].iov_base = const_cast<char*>(frames[i]->data() + skip);
    iov[n].iov_len = frames[i]->size() - skip;
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  for (;;) {
    ssize_t sent = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent >= 0) return sent;
    if (errno == EINTR) continue;
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
  }
}

// The same for one buffer (already encoded bytes).
ssize_t send_bytes(int fd, const char* data, size_t len) {
  for (;;) {
    ssize_t sent = ::send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent >= 0) return sent;
    if (errno == EINTR) continue;
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
  }
}

}  // namespace

void OutboundQueue::count_hub_write(size_t messages, size_t bytes, bool stalled) {
  if (!direct_stats_) return;
  direct_stats_->messages_out.fetch_add(messages, std::memory_order_relaxed);
  direct_stats_->hub_writes.fetch_add(messages, std::memory_order_relaxed);
  direct_stats_->bytes_out.fetch_add(bytes, std::memory_order_relaxed);
  if (stalled) direct_stats_->hub_handbacks.fetch_add(1, std::memory_order_relaxed);
}

bool OutboundQueue::write_direct() {
  std::unique_lock<std::mutex> w(write_mu_, std::try_to_lock);
  if (!w.owns_lock() || !unsent_.empty()) return false;
  const int fd = direct_fd_.load(std::memory_order_acquire);
  if (fd < 0) return false;
  if (encoder_ && !encoder_->ready()) return false;
  std::vector<FramePtr>& frames = direct_batch_;
  bool overflowed = false;
  drain(frames, &overflowed);
  if (overflowed) {
    // The session cuts the slow client off; it drops what was queued too.
    frames.clear();
    return false;
  }
  if (encoder_) return write_encoded_locked(fd, frames);
  size_t i = 0, offset = 0, bytes = 0;
  bool stalled = false;
  while (i < frames.size()) {
    ssize_t sent = send_frames(fd, frames, i, offset);
    if (sent <= 0) {
      // Full, or the peer is gone: the session writes the rest through
      // Apache (and sees the error there); producers stop writing on error.
      if (sent < 0) disable_direct();
      stalled = true;
      break;
    }
    bytes += static_cast<size_t>(sent);
    size_t left = static_cast<size_t>(sent);
    while (left > 0) {
      size_t rest = frames[i]->size() - offset;
      if (left < rest) {
        offset += left;
        left = 0;
      } else {
        left -= rest;
        offset = 0;
        ++i;
      }
    }
  }
  count_hub_write(i, bytes, stalled);
  if (stalled) {
    unsent_.assign(std::make_move_iterator(frames.begin() + static_cast<std::ptrdiff_t>(i)),
                   std::make_move_iterator(frames.end()));
    unsent_offset_ = offset;
  }
  frames.clear();
  trim(frames);
  return !stalled;
}

// Encoded (TLS): the batch becomes one buffer of records, counted as
// delivered here: once encoded it is part of the stream, and whatever the
// socket does not take goes out through the session, in order, as it is.
// The buffer is kept between batches (small ones only), so a delivery costs
// no allocation unless the socket is full.
bool OutboundQueue::write_encoded_locked(int fd, std::vector<FramePtr>& frames) {
  if (frames.empty()) return true;
  const size_t messages = frames.size();
  size_t payload = 0;
  for (const auto& f : frames) payload += f->size();
  wire_.clear();
  const bool ok = encoder_->encode(frames, wire_);
  frames.clear();
  trim(frames);
  if (!ok) {
    disable_direct();  // a broken connection: the session's next write finds out
    return false;
  }
  size_t sent = 0;
  bool stalled = false;
  while (sent < wire_.size()) {
    const ssize_t n = send_bytes(fd, wire_.data() + sent, wire_.size() - sent);
    if (n <= 0) {
      if (n < 0) disable_direct();  // as in write_direct()
      stalled = true;
      break;
    }
    sent += static_cast<size_t>(n);
  }
  count_hub_write(messages, payload, stalled);
  if (stalled) {
    unsent_.push_back(make_frame(wire_.substr(sent)));
    unsent_offset_ = 0;
  }
  if (wire_.capacity() > kKeptWire) std::string().swap(wire_);
  return !stalled;
}

void OutboundQueue::take_unsent(std::vector<FramePtr>& out) {
  if (unsent_.empty()) return;
  if (unsent_offset_ > 0) unsent_[0] = make_frame(unsent_[0]->substr(unsent_offset_));
  out.insert(out.end(), std::make_move_iterator(unsent_.begin()), std::make_move_iterator(unsent_.end()));
  unsent_.clear();
  trim(unsent_);
  unsent_offset_ = 0;
}

}  // namespace wsb
