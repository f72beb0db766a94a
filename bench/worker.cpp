// The worker's message logic: templates, the event loop, sending on a
// schedule or a window, reading stamps. Connections (connect, handshake,
// output, close) are in worker_conn.cpp.
#include "worker.h"

#include <algorithm>
#include <cstdlib>

namespace lg {
namespace {

constexpr size_t kReadBuf = 256 * 1024;
constexpr size_t kInlineMax = 8 * 1024;      // larger templates go out by writev
constexpr size_t kMaxQueued = 1 << 20;       // per connection; beyond it sends are skipped
constexpr int64_t kStallNs = 2000000000;     // closed loop: give a lost message up
const char kWsKey[] = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 §1.3; worker_conn.cpp checks its accept
const char kHex[] = "0123456789abcdef";

void put_hex(uint8_t* out, uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[i] = static_cast<uint8_t>(kHex[v & 15]);
}

bool get_hex(const uint8_t* p, int digits, uint64_t* out) {
  uint64_t v = 0;
  for (int i = 0; i < digits; ++i) {
    uint8_t c = p[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    v = (v << 4) | d;
  }
  *out = v;
  return true;
}

const uint8_t* find(const uint8_t* p, size_t n, const char* needle) {
  return static_cast<const uint8_t*>(memmem(p, n, needle, std::strlen(needle)));
}

}  // namespace

Worker::Worker(const Options& o, Shared& sh, int id) : o_(o), sh_(sh), id_(id), rbuf_(kReadBuf) {
  for (int g = id; g < o.clients; g += o.threads) {
    conns_.emplace_back();
    Conn& c = conns_.back();
    c.gid = static_cast<uint32_t>(g);
    c.sender = o.mode != Mode::Connect && g < o.senders;
  }
  for (uint32_t i = 0; i < conns_.size(); ++i) {
    if (conns_[i].sender) senders_.push_back(i);
  }
  max_handshaking_ = std::max(1, o.concurrency / o.threads);
  request_ = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + ":" + std::to_string(o.port) +
             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + kWsKey +
             "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (o.rate > 0) interval_ns_ = static_cast<int64_t>(1e9 * o.senders / o.rate);
  build_templates();
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (o.tls) {
    // A loopback benchmark: the server's self-signed certificate is not
    // verified. Partial writes as with write(); buffers released while a
    // connection idles (10,000 held connections).
    tls_ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(tls_ctx_, TLS1_2_VERSION);
    SSL_CTX_set_verify(tls_ctx_, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_mode(tls_ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                   SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(tls_ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  }
}

Worker::~Worker() {
  for (Conn& c : conns_) close_conn(c);
  if (ep_ >= 0) close(ep_);
  if (tls_ctx_) SSL_CTX_free(tls_ctx_);
}

// The message every sender sends: chat {"type":"message",...,"text":"<stamp>xxx"}
// or, raw/echo, the text alone; masked once here with the thread's key.
void Worker::build_templates() {
  if (o_.mode == Mode::Connect) return;
  std::string text(o_.size, 'x');
  std::string payload, prefix;
  if (o_.proto == Proto::Chat && o_.mode == Mode::Broadcast)
    prefix = "{\"type\":\"message\",\"room\":\"" + o_.room + "\",\"text\":\"";
  payload = prefix + text + (prefix.empty() ? "" : "\"}");
  stamp_off_ = prefix.size();
  uint8_t hdr[wsb::kMaxFrameHeader];
  tmpl_hdr_ = wsb::encode_frame_header(hdr, wsb::Opcode::Text, true, payload.size(), key_);
  tmpl_.assign(hdr, hdr + tmpl_hdr_);
  tmpl_.insert(tmpl_.end(), payload.begin(), payload.end());
  wsb::apply_mask(tmpl_.data() + tmpl_hdr_, payload.size(), key_, 0);
  for (uint32_t i : senders_) {
    conns_[i].out.reserve_total(std::min(tmpl_.size(), kInlineMax) * (o_.window + 4) + 4096);
  }
}

void Worker::run() {
  epoll_event evs[512];
  int64_t close_deadline = 0;
  int64_t next_house = 0;
  bool have_pwait2 = true;
  for (;;) {
    int64_t now = mono_ns();
    int phase = sh_.phase.load(std::memory_order_acquire);
    if (phase == kPhaseClose && !closing_) {
      closing_ = true;
      begin_close();
      close_deadline = now + (o_.mode == Mode::Connect ? int64_t{3000000000} : int64_t{1000000000});
    }
    if (closing_ && (open_ == 0 || now >= close_deadline)) break;
    if (!closing_) open_more(now);
    int64_t next_due = INT64_MAX;
    if (phase == kPhaseRun && !closing_) {
      if (!run_started_) {
        run_started_ = true;
        t0_ = sh_.t0.load();
        t1_ = sh_.t1.load();
        int64_t start = sh_.t_start.load();
        for (uint32_t i : senders_) {
          Conn& c = conns_[i];
          c.next_ns = start + (interval_ns_ ? interval_ns_ * c.gid / o_.senders : 0);
          c.last_progress = start;
        }
      }
      timed_sends(now, &next_due);
    }
    if (now >= next_house) {
      housekeeping(now);
      next_house = now + 100000000;
    }
    for (uint32_t i : dirty_) {
      conns_[i].dirty = false;
      flush(conns_[i]);
    }
    dirty_.clear();
    pub_sent_window.store(sent_window_, std::memory_order_relaxed);
    pub_recv_window.store(recv_window_, std::memory_order_relaxed);
    pub_open.store(open_, std::memory_order_relaxed);
    pub_joined.store(joined_, std::memory_order_relaxed);
    pub_done.store(done_, std::memory_order_relaxed);
    pub_last_rx.store(last_rx_ns_, std::memory_order_relaxed);
    pub_frames.store(st.other_frames, std::memory_order_relaxed);

    int64_t wait = 5000000;  // 5 ms: phase changes and housekeeping
    if (next_due != INT64_MAX) wait = std::max<int64_t>(0, std::min(wait, next_due - now));
    int n;
    if (have_pwait2) {
      timespec ts{static_cast<time_t>(wait / 1000000000), static_cast<long>(wait % 1000000000)};
      n = epoll_pwait2(ep_, evs, 512, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        have_pwait2 = false;
        continue;
      }
    } else {
      n = epoll_wait(ep_, evs, 512, static_cast<int>((wait + 999999) / 1000000));
    }
    if (n < 0) continue;  // EINTR
    now = mono_ns();
    for (int i = 0; i < n; ++i) on_event(conns_[evs[i].data.u32], evs[i].events, now);
  }
  for (Conn& c : conns_) close_conn(c);
  pub_open.store(0);
}

void Worker::on_frame(Conn& c, uint8_t op, const uint8_t* p, size_t len, int64_t now) {
  switch (op) {
    case kOpText:
    case kOpBinary:
      return on_data(c, p, len, now);
    case kOpPing:
      return queue_frame(c, kOpPong, p, len);
    case kOpClose:
      if (c.st != ConnState::Closing) {
        ++st.server_closes;
        st.last_close_code = len >= 2 ? (p[0] << 8 | p[1]) : 1005;
        if (st.first_error.empty())
          note_error("server sent close " + std::to_string(st.last_close_code) + " " +
                     std::string(reinterpret_cast<const char*>(p) + (len >= 2 ? 2 : 0), len >= 2 ? len - 2 : 0));
        if (!c.close_sent) queue_frame(c, kOpClose, p, len >= 2 ? 2 : 0);
        c.close_sent = true;
        c.st = ConnState::Closing;
      }
      return;
    default:
      return;
  }
}

void Worker::on_data(Conn& c, const uint8_t* p, size_t len, int64_t now) {
  if (o_.mode == Mode::Connect) {
    // --join: the room's join storm (history, system joins, presence).
    ++st.other_frames;
    last_rx_ns_ = now;
    if (o_.join && !c.joined && find(p, std::min<size_t>(len, 24), "\"type\":\"presence\"")) {
      c.joined = true;
      ++joined_;
      st.last_join = std::max(st.last_join, now);
    }
    return;
  }
  const uint8_t* m = p;
  size_t mlen = len;
  if (o_.proto == Proto::Chat && o_.mode == Mode::Broadcast) {
    size_t head = std::min<size_t>(len, 24);
    if (!find(p, head, "\"type\":\"message\"")) {
      if (find(p, head, "\"type\":\"presence\"")) {
        if (!c.joined) {
          c.joined = true;
          ++joined_;
        }
      } else if (c.pid_slot < 0 && find(p, head, "\"type\":\"welcome\"")) {
        note_pid(c, p, len);
        ++st.other_frames;
      } else if (find(p, head, "\"type\":\"error\"")) {
        ++st.error_frames;
        if (find(p, len, "rate-limited")) ++st.rate_limited;
        if (st.first_error.empty())
          note_error("chat error frame: " + std::string(reinterpret_cast<const char*>(p), std::min<size_t>(len, 160)));
      } else {
        ++st.other_frames;
      }
      return;
    }
    const uint8_t* t = find(p, len, "\"text\":\"");
    if (!t) {
      ++st.other_frames;
      return;
    }
    m = t + 8;
    mlen = len - static_cast<size_t>(m - p);
  }
  uint64_t ts, gid, seq;
  if (mlen < kStamp || m[0] != 'B' || !get_hex(m + 1, 16, &ts) || !get_hex(m + 17, 8, &gid) ||
      !get_hex(m + 25, 8, &seq)) {
    ++st.other_frames;
    return;
  }
  ++st.recv;
  int64_t t = static_cast<int64_t>(ts);
  if (t >= t0_ && t < t1_) {
    ++recv_window_;
    latency.record(now - t);
    if (c.pid_slot >= 0) by_pid[static_cast<size_t>(c.pid_slot)].latency.record(now - t);
  }
  if (now >= t0_ && now < t1_) ++st.arrived_window;
  if (c.sender && gid == c.gid) {
    if (c.inflight) --c.inflight;
    c.last_progress = now;
    if (o_.rate <= 0) send_window(c, now);
  }
}

void Worker::note_pid(Conn& c, const uint8_t* p, size_t len) {
  const uint8_t* k = find(p, len, "\"pid\":");
  if (!k) return;
  long pid = std::strtol(reinterpret_cast<const char*>(k) + 6, nullptr, 10);
  for (size_t i = 0; i < by_pid.size(); ++i) {
    if (by_pid[i].pid == pid) {
      c.pid_slot = static_cast<int8_t>(i);
      ++by_pid[i].conns;
      return;
    }
  }
  if (by_pid.size() >= kMaxPids) return;
  by_pid.emplace_back();  // at connect time, not per message
  by_pid.back().pid = pid;
  by_pid.back().conns = 1;
  c.pid_slot = static_cast<int8_t>(by_pid.size() - 1);
}

// Closed loop: refill the sender's window while the send period lasts.
void Worker::send_window(Conn& c, int64_t now) {
  if (closing_ || !run_started_ || now >= t1_ || c.st != ConnState::Open) return;
  // A large message still being written (its shared tail) holds the next
  // one back; the loop comes back here once it is out.
  while (c.inflight < static_cast<uint32_t>(o_.window) && !c.tail_len) {
    if (!send_stamped(c, now)) return;
  }
}

void Worker::timed_sends(int64_t now, int64_t* next_due) {
  if (now < sh_.t_start.load(std::memory_order_relaxed)) {
    *next_due = sh_.t_start.load(std::memory_order_relaxed);
    return;
  }
  for (uint32_t i : senders_) {
    Conn& c = conns_[i];
    if (c.st != ConnState::Open) continue;
    if (o_.rate <= 0) {
      if (c.inflight && now - c.last_progress > kStallNs) {
        ++st.stalls;
        c.inflight = 0;
        c.last_progress = now;
      }
      send_window(c, now);
      continue;
    }
    while (c.next_ns <= now && c.next_ns < t1_) {
      st.max_send_lag = std::max(st.max_send_lag, now - c.next_ns);
      send_stamped(c, c.next_ns);  // stamped with the intended time
      c.next_ns += interval_ns_;
    }
    if (c.next_ns < t1_) *next_due = std::min(*next_due, c.next_ns);
  }
}

bool Worker::send_stamped(Conn& c, int64_t ts) {
  if (c.tail_len || c.out.size() > kMaxQueued) {
    ++st.skipped;
    return false;
  }
  size_t head = tmpl_.size() <= kInlineMax ? tmpl_.size() : tmpl_hdr_ + stamp_off_ + kStamp;
  uint8_t* d = c.out.prepare(head);
  std::memcpy(d, tmpl_.data(), head);
  uint8_t* s = d + tmpl_hdr_ + stamp_off_;
  s[0] = 'B';
  put_hex(s + 1, static_cast<uint64_t>(ts), 16);
  put_hex(s + 17, c.gid, 8);
  put_hex(s + 25, c.seq++, 8);
  wsb::apply_mask(s, kStamp, key_, stamp_off_);
  c.out.commit(head);
  if (head < tmpl_.size()) {
    c.tail = tmpl_.data() + head;
    c.tail_len = tmpl_.size() - head;
  }
  ++c.inflight;
  ++st.sent;
  if (ts >= t0_ && ts < t1_) ++sent_window_;
  mark_dirty(c);
  return true;
}

}  // namespace lg
