// The WebSocket side: each thread owns a share of the connections in one
// epoll loop (level-triggered, one read of up to 256 KiB per wake-up),
// speaks raw Pusher frames, and counts what arrives. Event frames are
// recognised without a JSON parser: the data we send starts with "t=", so
// a delivery is the bytes `"data":"t=` followed by the stamp and the seq.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "pusher_load.h"

namespace pl {

void Shared::delivered(uint64_t seq, int64_t stamp, uint64_t* dups) {
  if (seq >= cap) return;
  uint32_t c = count[seq].fetch_add(1, std::memory_order_relaxed) + 1;
  if (c > expect) {
    (*dups)++;
    return;
  }
  if (c != expect) return;
  if (in_window(stamp)) done_window.fetch_add(1, std::memory_order_relaxed);
  if (o.scenario == Scenario::Fanout && o.rate <= 0) {
    int s = slot_of[seq].load(std::memory_order_relaxed);
    if (slot_left[s].fetch_sub(1, std::memory_order_acq_rel) == 1) {
      uint64_t one = 1;
      ssize_t w = write(wake_fd, &one, sizeof one);
      (void)w;
    }
  }
}

namespace {

enum class St { Idle, Connecting, Handshake, Open, Closed };

struct Conn {
  int id = 0;
  int fd = -1;
  St st = St::Idle;
  std::string in, out, msg;  // unparsed input, unsent output, a fragmented message
  std::string socket_id, auth, channel_data;
  bool subscribed = false, sender = false, joined = false, left = false;
  int64_t next_send = 0;  // sender: when the next client event is due
  int64_t recent[10] = {0};  // sender: its last 10 send times (a ring)
  uint64_t sent = 0;
  std::vector<uint8_t> seen;  // presence: members this one knows of
  int seen_n = 0;
};

const std::string_view kDataMark = "\"data\":\"t=";

bool starts(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

uint64_t digits(std::string_view s, size_t* i) {
  uint64_t v = 0;
  while (*i < s.size() && s[*i] >= '0' && s[*i] <= '9') v = v * 10 + uint64_t(s[(*i)++] - '0');
  return v;
}

// The text between `"key":"` (or `\"key\":\"` inside a JSON string) and the
// next quote or backslash.
std::string_view field(std::string_view s, std::string_view key, size_t from = 0) {
  size_t k = s.find(key, from);
  if (k == std::string_view::npos) return {};
  size_t i = k + key.size();
  while (i < s.size() && (s[i] == '"' || s[i] == '\\' || s[i] == ':')) i++;
  size_t j = i;
  while (j < s.size() && s[j] != '"' && s[j] != '\\') j++;
  return s.substr(i, j - i);
}

class Worker {
 public:
  Worker(Shared& g, int first, int n, WorkerStats* st) : g_(g), st_(*st) {
    conns_.resize(size_t(n));
    for (int i = 0; i < n; i++) {
      conns_[size_t(i)].id = first + i;
      if (g_.o.scenario == Scenario::Client && first + i < g_.o.senders) conns_[size_t(i)].sender = true;
    }
    buf_.resize(256 * 1024);
    const Options& o = g_.o;
    path_ = o.nchan ? "/sub" : "/app/" + o.key + "?protocol=7&client=js&version=8.4.0&flash=false";
    handshake_ = "GET " + path_ + " HTTP/1.1\r\nHost: " + o.host + ":" + std::to_string(o.port) +
                 "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n";
    st_.joined_ns.assign(size_t(n), 0);
  }

  void run() {
    ep_ = epoll_create1(0);
    size_t next_open = 0;
    int in_flight = 0;
    bool cpu0 = false, cpu1 = false;
    int64_t cpu_start = 0;
    bool join_sent = false, leave_sent = false;
    std::vector<epoll_event> evs(256);
    while (!g_.stop.load(std::memory_order_relaxed)) {
      // Open connections, a bounded number of handshakes at a time.
      while (next_open < conns_.size() && in_flight < g_.o.max_handshakes) {
        if (open(conns_[next_open++])) in_flight++;
      }
      int64_t now = now_ns();
      int64_t wake = now + 10'000'000;  // at least every 10 ms
      const int64_t t0 = g_.t0.load(std::memory_order_relaxed), t1 = g_.t1.load(std::memory_order_relaxed);
      if (t0) {
        if (!cpu0) {
          if (now >= t0) { cpu_start = thread_cpu_ns(); cpu0 = true; } else wake = std::min(wake, t0);
        } else if (!cpu1) {
          if (now >= t1) { st_.window_cpu_ns = thread_cpu_ns() - cpu_start; cpu1 = true; } else wake = std::min(wake, t1);
        }
      }
      if (g_.o.scenario == Scenario::Client) wake = std::min(wake, send_client_events(now));
      if (g_.o.scenario == Scenario::Presence) {
        int64_t tj = g_.t_join.load(std::memory_order_relaxed), tl = g_.t_leave.load(std::memory_order_relaxed);
        if (tj && !join_sent) {
          if (now >= tj) { join(); join_sent = true; } else wake = std::min(wake, tj);
        }
        if (tl && !leave_sent) {
          if (now >= tl) { leave(); leave_sent = true; } else wake = std::min(wake, tl);
        }
      }
      timespec ts{0, wake > now ? long(wake - now) : 0};
      int n = epoll_pwait2(ep_, evs.data(), int(evs.size()), &ts, nullptr);
      for (int i = 0; i < n; i++) {
        Conn& c = *static_cast<Conn*>(evs[size_t(i)].data.ptr);
        St before = c.st;
        if (evs[size_t(i)].events & EPOLLOUT) writable(c);
        if (c.st != St::Closed && (evs[size_t(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) readable(c);
        if ((before == St::Connecting || before == St::Handshake) && (c.st == St::Open || c.st == St::Closed)) in_flight--;
      }
    }
    for (auto& c : conns_)
      if (c.fd >= 0) close(c.fd);
    close(ep_);
  }

 private:
  bool open(Conn& c) {
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(g_.o.port));
    inet_pton(AF_INET, g_.o.host.c_str(), &a.sin_addr);
    int r = connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    if (r < 0 && errno != EINPROGRESS) {
      c.st = St::Connecting;
      fail(c, std::string("connect: ") + strerror(errno));
      return false;
    }
    c.st = St::Connecting;
    c.out = handshake_;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = &c;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  }

  void fail(Conn& c, const std::string& why) {
    if (c.st == St::Closed) return;
    bool setup = c.st != St::Open || (!c.subscribed && g_.o.scenario != Scenario::Presence);
    if (c.fd >= 0) {
      epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
      c.fd = -1;
    }
    c.st = St::Closed;
    st_.closed++;
    if (setup) g_.failed.fetch_add(1);
    g_.note_error("connection " + std::to_string(c.id) + ": " + why);
  }

  void writable(Conn& c) {
    if (c.st == St::Connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err) {
        fail(c, std::string("connect: ") + strerror(err));
        return;
      }
      c.st = St::Handshake;
    }
    flush(c);
  }

  void flush(Conn& c) {
    while (!c.out.empty()) {
      ssize_t w = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN) break;
        fail(c, std::string("send: ") + strerror(errno));
        return;
      }
      c.out.erase(0, size_t(w));
    }
    epoll_event ev{};
    ev.events = EPOLLIN | (c.out.empty() ? 0u : unsigned(EPOLLOUT));
    ev.data.ptr = &c;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  // A masked text frame (clients must mask).
  void send_text(Conn& c, std::string_view payload) {
    if (c.st != St::Open) return;
    const bool idle = c.out.empty();
    const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    c.out.push_back(char(0x81));
    size_t n = payload.size();
    if (n < 126) {
      c.out.push_back(char(0x80 | n));
    } else if (n < 65536) {
      c.out.push_back(char(0x80 | 126));
      c.out.push_back(char(n >> 8));
      c.out.push_back(char(n & 255));
    } else {
      c.out.push_back(char(0x80 | 127));
      for (int i = 7; i >= 0; i--) c.out.push_back(char((uint64_t(n) >> (8 * i)) & 255));
    }
    c.out.append(reinterpret_cast<const char*>(key), 4);
    for (size_t i = 0; i < n; i++) c.out.push_back(char(payload[i] ^ key[i & 3]));
    if (idle) flush(c);
  }

  void readable(Conn& c) {
    ssize_t n = recv(c.fd, buf_.data(), buf_.size(), 0);
    if (n == 0) {
      fail(c, "closed by the server");
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN) fail(c, std::string("recv: ") + strerror(errno));
      return;
    }
    const int64_t now = now_ns();
    if (c.st == St::Connecting) c.st = St::Handshake;
    if (c.st == St::Handshake) {
      c.in.append(buf_.data(), size_t(n));
      size_t end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) return;
      if (!starts(c.in, "HTTP/1.1 101")) {
        fail(c, "handshake answered " + c.in.substr(0, c.in.find("\r\n")));
        return;
      }
      c.st = St::Open;
      c.in.erase(0, end + 4);
      if (g_.o.nchan) {  // nchan: subscribed by the upgrade itself
        c.subscribed = true;
        g_.ready.fetch_add(1);
      }
      size_t used = frames(c, c.in.data(), c.in.size(), now);
      c.in.erase(0, used);
      return;
    }
    if (c.in.empty()) {
      size_t used = frames(c, buf_.data(), size_t(n), now);
      if (used < size_t(n)) c.in.assign(buf_.data() + used, size_t(n) - used);
    } else {
      c.in.append(buf_.data(), size_t(n));
      size_t used = frames(c, c.in.data(), c.in.size(), now);
      c.in.erase(0, used);
    }
  }

  // Parses whole frames from p; returns the bytes used.
  size_t frames(Conn& c, const char* p, size_t n, int64_t now) {
    size_t off = 0;
    while (c.st == St::Open && n - off >= 2) {
      const uint8_t b0 = uint8_t(p[off]), b1 = uint8_t(p[off + 1]);
      uint64_t len = b1 & 0x7f;
      size_t h = 2;
      if (len == 126) {
        if (n - off < 4) break;
        len = uint64_t(uint8_t(p[off + 2])) << 8 | uint8_t(p[off + 3]);
        h = 4;
      } else if (len == 127) {
        if (n - off < 10) break;
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | uint8_t(p[off + 2 + size_t(i)]);
        h = 10;
      }
      if (b1 & 0x80) h += 4;  // servers do not mask; tolerated, not unmasked
      if (n - off < h + len) break;
      std::string_view payload(p + off + h, size_t(len));
      off += h + size_t(len);
      const int op = b0 & 0x0f;
      const bool fin = b0 & 0x80;
      if (op == 0x1 || op == 0x0) {
        if (!fin || !c.msg.empty()) {
          c.msg.append(payload);
          if (!fin) continue;
          std::string whole;
          whole.swap(c.msg);
          text(c, whole, now);
        } else {
          text(c, payload, now);
        }
      } else if (op == 0x9) {  // ping: pong with the same payload
        pong(c, payload);
      } else if (op == 0x8) {
        uint16_t code = payload.size() >= 2 ? uint16_t(uint8_t(payload[0]) << 8 | uint8_t(payload[1])) : 0;
        fail(c, "close frame " + std::to_string(code) + " " + std::string(payload.substr(payload.size() >= 2 ? 2 : 0)));
      }
    }
    return off;
  }

  void pong(Conn& c, std::string_view payload) {
    const bool idle = c.out.empty();
    c.out.push_back(char(0x8a));
    c.out.push_back(char(0x80 | payload.size()));
    c.out.append("\0\0\0\0", 4);
    c.out.append(payload);
    if (idle) flush(c);
  }

  void text(Conn& c, std::string_view m, int64_t now) {
    st_.text_frames++;
    const Scenario sc = g_.o.scenario;
    if (sc == Scenario::Presence) {
      const int phase = g_.t_leave.load(std::memory_order_relaxed) && now >= g_.t_leave.load(std::memory_order_relaxed) ? 2
                        : g_.t_join.load(std::memory_order_relaxed) && now >= g_.t_join.load(std::memory_order_relaxed) ? 1 : 0;
      if (phase == 1) st_.join_frames++;
      if (phase == 2) st_.leave_frames++;
    }
    // Pusher: the data field of an event frame; nchan: the raw data.
    const std::string_view raw_mark = "t=";
    size_t k = g_.o.nchan ? (m.substr(0, 2) == raw_mark ? 0 : std::string_view::npos) : m.find(kDataMark);
    if (k != std::string_view::npos) {
      size_t i = k + (g_.o.nchan ? raw_mark.size() : kDataMark.size());
      int64_t stamp = int64_t(digits(m, &i));
      if (m.substr(i, 3) != " s=") { st_.other_frames++; return; }
      i += 3;
      uint64_t seq = digits(m, &i);
      if (now >= g_.t0.load(std::memory_order_relaxed) && now < g_.t1.load(std::memory_order_relaxed)) st_.arrived_in_window++;
      if (g_.in_window(stamp)) {
        st_.window_deliveries++;
        st_.latency.record((now - stamp) / 1000);
      }
      g_.delivered(seq, stamp, &st_.dups);
      return;
    }
    std::string_view ev = field(m, "\"event\"");
    if (ev == "pusher:connection_established") {
      c.socket_id = std::string(field(m, "socket_id"));
      established(c);
    } else if (ev == "pusher_internal:subscription_succeeded") {
      if (!c.subscribed) {
        c.subscribed = true;
        if (sc == Scenario::Presence) {
          size_t ids = m.find("ids"), end = m.find(']', ids == std::string_view::npos ? 0 : ids);
          if (ids != std::string_view::npos && end != std::string_view::npos) {
            std::string_view list = m.substr(ids, end - ids);
            for (size_t i = 0; (i = list.find("\"u", i)) != std::string_view::npos;) {
              i += 2;
              size_t j = i;
              uint64_t u = digits(list, &j);
              if (j > i) see(c, u, now);
            }
          }
        } else {
          g_.ready.fetch_add(1);
        }
      }
    } else if (ev == "pusher_internal:member_added") {
      std::string_view u = field(m, "user_id");
      if (!u.empty() && u[0] == 'u') {
        size_t j = 1;
        see(c, digits(u, &j), now);
      }
    } else if (ev == "pusher_internal:member_removed") {
      st_.removed_frames++;
      if (now > st_.last_removed_ns) st_.last_removed_ns = now;
      g_.last_presence_ns.store(now, std::memory_order_relaxed);
    } else if (ev == "pusher:ping") {
      send_text(c, "{\"event\":\"pusher:pong\",\"data\":{}}");
    } else if (ev == "pusher:pong") {
    } else if (ev == "pusher:error") {
      st_.pusher_errors++;
      if (m.find("4301") != std::string_view::npos) st_.rate_limited++;
      g_.note_error("pusher:error " + std::string(m.substr(0, 200)));
    } else if (ev == "pusher:subscription_error") {
      st_.subscription_errors++;
      g_.failed.fetch_add(1);
      g_.note_error(std::string(m.substr(0, 300)));
    } else {
      st_.other_frames++;
    }
  }

  void see(Conn& c, uint64_t u, int64_t now) {
    g_.last_presence_ns.store(now, std::memory_order_relaxed);
    if (u >= uint64_t(g_.o.subs) || c.joined) return;
    if (c.seen.empty()) c.seen.assign(size_t(g_.o.subs), 0);
    if (c.seen[u]) return;
    c.seen[u] = 1;
    if (++c.seen_n == g_.o.subs) {
      c.joined = true;
      st_.joined_ns[size_t(&c - conns_.data())] = now;
      g_.presence_done.fetch_add(1);
    }
  }

  std::string sign(const Conn& c, const std::string& extra) {
    std::string to_sign = c.socket_id + ":" + g_.o.channel + (extra.empty() ? "" : ":" + extra);
    return g_.o.key + ":" + hmac_sha256_hex(g_.o.secret, to_sign);
  }

  void established(Conn& c) {
    const std::string& ch = g_.o.channel;
    switch (g_.o.scenario) {
      case Scenario::Fanout:
        send_text(c, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"" + ch + "\"}}");
        break;
      case Scenario::Client:
        send_text(c, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"" + ch + "\",\"auth\":\"" + sign(c, "") + "\"}}");
        break;
      case Scenario::Presence: {
        // Signed now, sent at t_join: the join burst is only the sends.
        std::string u = "u" + std::to_string(c.id);
        c.channel_data = "{\"user_id\":\"" + u + "\",\"user_info\":{\"name\":\"" + u + "\"}}";
        c.auth = "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"" + ch + "\",\"auth\":\"" + sign(c, c.channel_data) +
                 "\",\"channel_data\":\"" + json_escape(c.channel_data) + "\"}}";
        g_.ready.fetch_add(1);
        break;
      }
    }
  }

  void join() {
    for (auto& c : conns_) send_text(c, c.auth);
  }

  void leave() {
    for (auto& c : conns_) send_text(c, "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":\"" + g_.o.channel + "\"}}");
  }

  // Client events: each sender at sender_rate, senders spread evenly over
  // the interval; the stamp is the time the event was due. A sender never
  // sends more than 10 in any 1.02 s (a late one waits instead of bursting),
  // so neither a token bucket of 10/s (mod_wsbridge) nor a fixed 1 s window
  // of 10 (soketi's limiter) refuses any, even when this process was
  // descheduled for a while. Returns when the next one is due.
  int64_t send_client_events(int64_t now) {
    const int64_t start = g_.t_start.load(std::memory_order_relaxed), t1 = g_.t1.load(std::memory_order_relaxed);
    int64_t next = now + 10'000'000;
    if (!start) return next;
    const int64_t interval = int64_t(1e9 / g_.o.sender_rate);
    for (auto& c : conns_) {
      if (!c.sender || c.st != St::Open) continue;
      if (!c.next_send) c.next_send = start + interval * c.id / g_.o.senders;
      while (c.next_send <= now && c.next_send < t1) {
        const int64_t allowed = c.recent[c.sent % 10] + 1'020'000'000LL;
        if (c.sent >= 10 && allowed > now) {
          if (allowed < next) next = allowed;
          break;
        }
        uint64_t seq = g_.next_seq.fetch_add(1);
        if (seq >= g_.cap) break;
        if (now - c.next_send > st_.max_send_lag_ns) st_.max_send_lag_ns = now - c.next_send;
        send_text(c, "{\"event\":\"client-bench\",\"channel\":\"" + g_.o.channel + "\",\"data\":\"" +
                         event_data(c.next_send, seq, g_.o.size) + "\"}");
        if (g_.in_window(c.next_send)) g_.sent_window.fetch_add(1);
        st_.client_sent++;
        c.recent[c.sent % 10] = now;
        c.sent++;
        c.next_send += interval;
      }
      if (c.next_send < t1 && c.next_send > now && c.next_send < next) next = c.next_send;
    }
    return next;
  }

  Shared& g_;
  WorkerStats& st_;
  std::vector<Conn> conns_;
  std::vector<char> buf_;
  std::string path_, handshake_;
  int ep_ = -1;
};

}  // namespace

void run_worker(Shared& g, int first_conn, int nconns, WorkerStats* out) {
  Worker w(g, first_conn, nconns, out);
  w.run();
}

}  // namespace pl
