// The HTTP API side: POST /apps/<id>/events (or batch_events) on a few
// keep-alive connections, each request signed the way the Pusher libraries
// sign it (auth_key, auth_timestamp, auth_version, body_md5, sorted;
// auth_signature = HMAC-SHA256 of "POST\n<path>\n<query>"). One thread, one
// epoll loop.
//
// Open loop (rate > 0): request j is due at t_start + j * batch / rate; its
// events carry that due time, so a request that waits for a free
// connection counts against the latency. Closed loop (rate 0, saturation):
// every connection is a slot that sends its next request as soon as the
// previous one was answered and all of its events reached every subscriber
// (the subscribers count; the last delivery wakes this thread through an
// eventfd). A slot whose events are not all delivered within 2 s moves on
// (counted as stalled).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "pusher_load.h"

namespace pl {

std::string event_data(int64_t stamp, uint64_t seq, int size) {
  std::string d = "t=" + std::to_string(stamp) + " s=" + std::to_string(seq) + " ";
  if (int(d.size()) < size) d.append(size_t(size) - d.size(), 'x');
  return d;
}

namespace {

struct HttpConn {
  int fd = -1;
  bool connecting = false, busy = false, close_after = false;
  bool awaiting = false;  // closed loop: answered, events not all delivered yet
  int slot = -1;
  int64_t sent_ns = 0, answered_ns = 0;
  uint64_t first_seq = 0;
  int nev = 0, nwindow = 0;
  int answers_due = 0;  // nchan: one answer per pipelined request
  std::string out, in;
};

class Trigger {
 public:
  Trigger(Shared& g, TriggerStats* st) : g_(g), st_(*st) {
    const Options& o = g_.o;
    conns_.resize(size_t(o.http_conns));
    path_ = o.nchan ? "/pub" : "/apps/" + o.app_id + (o.batch > 1 ? "/batch_events" : "/events");
    host_ = o.host + ":" + std::to_string(o.api_port);
  }

  void run() {
    ep_ = epoll_create1(0);
    epoll_event wev{};
    wev.events = EPOLLIN;
    wev.data.ptr = nullptr;
    epoll_ctl(ep_, EPOLL_CTL_ADD, g_.wake_fd, &wev);
    const bool open_loop = g_.o.rate > 0;
    const int64_t start = g_.t_start.load(), t0 = g_.t0.load(), t1 = g_.t1.load();
    const int64_t interval = open_loop ? int64_t(1e9 * g_.o.batch / g_.o.rate) : 0;
    const int64_t give_up = t1 + int64_t(g_.o.drain * 1e9);
    uint64_t j = 0;
    bool cpu0 = false;
    int64_t cpu_start = 0;
    std::vector<epoll_event> evs(64);
    for (;;) {
      int64_t now = now_ns();
      if (!cpu0 && now >= t0) { cpu_start = thread_cpu_ns(); cpu0 = true; }
      if (now >= t1 && cpu0 && !st_.window_cpu_ns) st_.window_cpu_ns = thread_cpu_ns() - cpu_start;
      int64_t wake = now + 5'000'000;
      bool sending = now < t1 && !g_.stop.load(std::memory_order_relaxed);
      if (open_loop) {
        while (sending) {
          int64_t due = start + int64_t(j) * interval;
          if (due >= t1) break;
          if (due > now) { wake = std::min(wake, due); break; }
          HttpConn* c = free_conn();
          if (!c) break;  // every connection busy: send when one answers
          st_.max_lag_ns = std::max(st_.max_lag_ns, now - due);
          if (!request(*c, due)) break;
          j++;
        }
      } else if (sending) {
        for (auto& c : conns_) {
          if (c.awaiting) {
            if (g_.slot_left[c.slot].load(std::memory_order_acquire) <= 0) {
              c.awaiting = false;
            } else if (now - c.answered_ns > 2'000'000'000LL) {
              st_.stalled++;
              c.awaiting = false;
            }
          }
          if (!c.busy && !c.awaiting && !request(c, now)) break;
        }
      }
      bool pending = false;
      for (auto& c : conns_) pending = pending || c.busy;
      if (!sending && !pending) break;
      if (now >= give_up) break;
      timespec ts{0, wake > now ? long(wake - now) : 0};
      int n = epoll_pwait2(ep_, evs.data(), int(evs.size()), &ts, nullptr);
      for (int i = 0; i < n; i++) {
        if (!evs[size_t(i)].data.ptr) {
          uint64_t v;
          ssize_t r = read(g_.wake_fd, &v, sizeof v);
          (void)r;
          continue;
        }
        HttpConn& c = *static_cast<HttpConn*>(evs[size_t(i)].data.ptr);
        if (evs[size_t(i)].events & EPOLLOUT) {
          if (c.connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) { lost(c, std::string("connect: ") + strerror(err)); continue; }
            c.connecting = false;
          }
          flush(c);
        }
        if (c.fd >= 0 && (evs[size_t(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) readable(c);
      }
    }
    if (cpu0 && !st_.window_cpu_ns) st_.window_cpu_ns = thread_cpu_ns() - cpu_start;
    for (auto& c : conns_)
      if (c.fd >= 0) close(c.fd);
    close(ep_);
  }

 private:
  HttpConn* free_conn() {
    for (auto& c : conns_)
      if (!c.busy) return &c;
    return nullptr;
  }

  bool connect_conn(HttpConn& c) {
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(g_.o.api_port));
    inet_pton(AF_INET, g_.o.host.c_str(), &a.sin_addr);
    if (connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 && errno != EINPROGRESS) {
      close(c.fd);
      c.fd = -1;
      g_.note_error(std::string("API connect: ") + strerror(errno));
      return false;
    }
    c.connecting = true;
    c.in.clear();
    c.close_after = false;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = &c;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    st_.reconnects++;
    return true;
  }

  // Builds, signs and sends one request of `batch` events stamped `stamp`.
  bool request(HttpConn& c, int64_t stamp) {
    const Options& o = g_.o;
    const int n = o.batch;
    uint64_t first = g_.next_seq.fetch_add(uint64_t(n));
    if (first + uint64_t(n) > g_.cap) return false;  // the bound on events
    if (c.fd < 0 && !connect_conn(c)) return false;
    std::string body;
    if (o.nchan) {
      for (int i = 0; i < n; i++) {
        std::string d = event_data(stamp, first + uint64_t(i), o.size);
        c.out += "POST /pub HTTP/1.1\r\nHost: " + host_ + "\r\nContent-Type: text/plain\r\nContent-Length: " +
                 std::to_string(d.size()) + "\r\n\r\n" + d;
      }
      c.answers_due = n;
    } else if (n == 1) {
      body = "{\"name\":\"bench\",\"channels\":[\"" + o.channel + "\"],\"data\":\"" + event_data(stamp, first, o.size) + "\"}";
    } else {
      body = "{\"batch\":[";
      for (int i = 0; i < n; i++) {
        if (i) body += ',';
        body += "{\"name\":\"bench\",\"channel\":\"" + o.channel + "\",\"data\":\"" +
                event_data(stamp, first + uint64_t(i), o.size) + "\"}";
      }
      body += "]}";
    }
    if (!o.nchan) {
      std::string query = "auth_key=" + o.key + "&auth_timestamp=" + std::to_string(time(nullptr)) +
                          "&auth_version=1.0&body_md5=" + md5_hex(body);
      std::string sig = hmac_sha256_hex(o.secret, "POST\n" + path_ + "\n" + query);
      c.out += "POST " + path_ + "?" + query + "&auth_signature=" + sig + " HTTP/1.1\r\nHost: " + host_ +
               "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      c.answers_due = 1;
    }
    if (o.rate <= 0) {
      c.slot = next_slot_;
      next_slot_ = (next_slot_ + 1) % Shared::kSlots;
      g_.slot_left[c.slot].store(n, std::memory_order_relaxed);
      for (int i = 0; i < n; i++) g_.slot_of[first + uint64_t(i)].store(uint16_t(c.slot), std::memory_order_relaxed);
    }
    c.busy = true;
    c.sent_ns = now_ns();
    c.first_seq = first;
    c.nev = n;
    c.nwindow = g_.in_window(stamp) ? n : 0;
    st_.requests++;
    if (!c.connecting) flush(c);
    return true;
  }

  void flush(HttpConn& c) {
    while (!c.out.empty()) {
      ssize_t w = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN) break;
        lost(c, std::string("API send: ") + strerror(errno));
        return;
      }
      c.out.erase(0, size_t(w));
    }
    epoll_event ev{};
    ev.events = EPOLLIN | (c.out.empty() ? 0u : unsigned(EPOLLOUT));
    ev.data.ptr = &c;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void drop(HttpConn& c) {
    if (c.fd >= 0) {
      epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
    }
    c.fd = -1;
    c.connecting = false;
    c.out.clear();
    c.in.clear();
  }

  // The connection ended with a request unanswered.
  void lost(HttpConn& c, const std::string& why) {
    if (c.busy) {
      st_.lost++;
      g_.note_error(why);
      c.busy = false;
      c.awaiting = false;
    }
    drop(c);
  }

  void readable(HttpConn& c) {
    char buf[16384];
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && errno == EAGAIN) return;
      lost(c, "API connection closed with a request in flight");
      if (!c.busy) drop(c);
      return;
    }
    c.in.append(buf, size_t(n));
    int status = 0;
    while (c.busy && response(c, &status)) {
      const bool ok = status >= 200 && status < 300;
      if (!ok) c.answers_due = 1;  // the request failed: count it once
      if (--c.answers_due > 0) continue;
      c.busy = false;
      c.answered_ns = now_ns();
      if (status >= 200 && status < 300) {
        st_.ok++;
        st_.events += uint64_t(c.nev);
        if (c.nwindow) g_.sent_window.fetch_add(uint64_t(c.nwindow));
        c.awaiting = g_.o.rate <= 0;
      } else {
        st_.non2xx++;
        if (st_.first_bad.empty()) st_.first_bad = std::to_string(status) + " " + last_body_.substr(0, 200);
      }
      if (c.close_after) drop(c);
    }
  }

  // One whole response at the start of c.in: consumes it, sets the status.
  bool response(HttpConn& c, int* status) {
    size_t he = c.in.find("\r\n\r\n");
    if (he == std::string::npos) return false;
    std::string head = c.in.substr(0, he + 2);
    for (auto& ch : head) ch = char(tolower(uint8_t(ch)));
    *status = c.in.size() > 12 ? atoi(c.in.c_str() + 9) : 0;
    size_t body = he + 4, end;
    if (head.find("\r\ntransfer-encoding: chunked\r\n") != std::string::npos) {
      size_t i = body;
      std::string out;
      for (;;) {
        size_t le = c.in.find("\r\n", i);
        if (le == std::string::npos) return false;
        size_t sz = strtoul(c.in.c_str() + i, nullptr, 16);
        if (sz == 0) {
          if (c.in.size() < le + 4) return false;
          end = le + 4;  // no trailers
          break;
        }
        if (c.in.size() < le + 2 + sz + 2) return false;
        out.append(c.in, le + 2, sz);
        i = le + 2 + sz + 2;
      }
      last_body_ = out;
    } else {
      size_t cl = 0, k = head.find("\r\ncontent-length:");
      if (k != std::string::npos) cl = strtoul(head.c_str() + k + 17, nullptr, 10);
      if (c.in.size() < body + cl) return false;
      end = body + cl;
      last_body_ = c.in.substr(body, cl);
    }
    c.close_after = head.find("\r\nconnection: close\r\n") != std::string::npos ||
                    c.in.compare(0, 8, "HTTP/1.0") == 0;
    c.in.erase(0, end);
    return true;
  }

  Shared& g_;
  TriggerStats& st_;
  std::vector<HttpConn> conns_;
  std::string path_, host_, last_body_;
  int ep_ = -1;
  int next_slot_ = 0;
};

}  // namespace

void run_trigger(Shared& g, TriggerStats* out) {
  Trigger t(g, out);
  t.run();
}

}  // namespace pl
