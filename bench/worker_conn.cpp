// The worker's connections: non-blocking connect, the opening handshake,
// reads, buffered writes (writev of a small head and a shared tail), close.
#include <openssl/err.h>

#include <algorithm>

#include "worker.h"

namespace lg {
namespace {

const char kWsAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";  // RFC 6455 §1.3 example key's accept

}  // namespace

void Worker::open_more(int64_t now) {
  while (handshaking_ < max_handshaking_ && next_open_ < conns_.size()) {
    open_conn(conns_[next_open_++], now);
  }
}

void Worker::open_conn(Conn& c, int64_t now) {
  c.t_connect = now;
  st.first_connect = std::min(st.first_connect, now);
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) return fail(c, false, std::string("socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(o_.port));
  inet_pton(AF_INET, o_.host.c_str(), &a.sin_addr);
  ++handshaking_;
  c.st = ConnState::Connecting;
  if (connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 && errno != EINPROGRESS)
    return fail(c, false, std::string("connect: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.u32 = static_cast<uint32_t>(&c - conns_.data());
  epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
}

void Worker::fail(Conn& c, bool handshake, const std::string& why) {
  if (c.st == ConnState::Connecting || c.st == ConnState::Handshaking) {
    --handshaking_;
    ++done_;
  }
  ++(handshake ? st.handshake_failed : st.connect_failed);
  note_error(why);
  close_conn(c);
  c.st = ConnState::Done;
}

void Worker::drop(Conn& c, const char* why) {
  if (c.st == ConnState::Connecting || c.st == ConnState::Handshaking)
    return fail(c, c.st == ConnState::Handshaking, why);
  if (c.st != ConnState::Closing) {
    ++st.dropped;
    note_error(why);
  }
  close_conn(c);
  if (c.st == ConnState::Open || c.st == ConnState::Closing) --open_;
  c.st = ConnState::Done;
  c.out = ByteBuf();
  c.tail_len = 0;
}

void Worker::close_conn(Conn& c) {
  if (c.ssl) SSL_free(c.ssl);
  c.ssl = nullptr;
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
}

// wss://: one step of the TLS handshake; true once it is done. Until then
// the connection waits for whichever direction OpenSSL asks for.
bool Worker::tls_handshake(Conn& c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c.ssl);
  if (r == 1) {
    if (st.tls.empty())
      st.tls = std::string(SSL_get_version(c.ssl)) + " " + SSL_CIPHER_get_name(SSL_get_current_cipher(c.ssl));
    return true;
  }
  int e = SSL_get_error(c.ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    epoll_event ev{};
    ev.events = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
    ev.data.u32 = static_cast<uint32_t>(&c - conns_.data());
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    return false;
  }
  char why[256];
  ERR_error_string_n(ERR_get_error(), why, sizeof why);
  fail(c, true, std::string("TLS handshake: ") + why);
  return false;
}

// read() or, wss://, SSL_read(): > 0 bytes, 0 at EOF, -1 with errno
// (EAGAIN: nothing decrypted yet).
ssize_t Worker::io_read(Conn& c, uint8_t* p, size_t n) {
  if (!c.ssl) return read(c.fd, p, n);
  ERR_clear_error();
  int r = SSL_read(c.ssl, p, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  if (r > 0) return r;
  switch (SSL_get_error(c.ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: errno = EAGAIN; return -1;
    case SSL_ERROR_ZERO_RETURN: return 0;
    default: errno = EIO; return -1;
  }
}

void Worker::on_event(Conn& c, uint32_t ev, int64_t now) {
  if (c.fd < 0) return;
  if (c.st == ConnState::Connecting) {
    if (!c.ssl) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err || (ev & (EPOLLERR | EPOLLHUP))) return fail(c, false, std::string("connect: ") + std::strerror(err ? err : ECONNRESET));
      if (o_.tls) {
        c.ssl = SSL_new(tls_ctx_);
        SSL_set_fd(c.ssl, c.fd);
        SSL_set_connect_state(c.ssl);
      }
    }
    if (c.ssl && !tls_handshake(c)) return;
    // A fresh socket's send buffer takes the whole request.
    const int sent = c.ssl ? SSL_write(c.ssl, request_.data(), static_cast<int>(request_.size()))
                           : static_cast<int>(write(c.fd, request_.data(), request_.size()));
    if (sent != static_cast<int>(request_.size())) return fail(c, true, "handshake write failed");
    c.st = ConnState::Handshaking;
    epoll_event e{};
    e.events = EPOLLIN | EPOLLRDHUP;
    e.data.u32 = static_cast<uint32_t>(&c - conns_.data());
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &e);
    return;
  }
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_input(c, now);
  // wss://: a write that OpenSSL held for a read is retried after it.
  if (c.fd >= 0 && ((ev & EPOLLOUT) || (c.ssl && (c.out.size() || c.tail_len)))) flush(c);
}

void Worker::read_input(Conn& c, int64_t now) {
  // wss://: SSL_read() gives one record at a time, so read until it has
  // nothing more rather than stopping at a short read.
  const int rounds = c.ssl ? 64 : 4;
  for (int round = 0; round < rounds && c.fd >= 0; ++round) {
    ssize_t r = io_read(c, rbuf_.data(), rbuf_.size());
    if (r > 0) {
      size_t n = static_cast<size_t>(r);
      if (c.st == ConnState::Handshaking) {
        if (!on_handshake_bytes(c, rbuf_.data(), n, now)) return;
      } else {
        bool ok = c.walker.feed(rbuf_.data(), n, [&](uint8_t op, const uint8_t* p, size_t len, uint64_t) {
          if (c.fd >= 0) on_frame(c, op, p, len, now);
        });
        if (!ok && c.fd >= 0) {
          ++st.proto_errors;
          return drop(c, "framing error from server");
        }
      }
      if (n < rbuf_.size() && !c.ssl) return;
    } else if (r == 0) {
      return drop(c, "connection closed by server");
    } else {
      if (errno == EAGAIN || errno == EINTR) return;
      return drop(c, "read error");
    }
  }
}

bool Worker::on_handshake_bytes(Conn& c, const uint8_t* p, size_t n, int64_t now) {
  size_t old = c.hs.size();
  c.hs.append(reinterpret_cast<const char*>(p), n);
  size_t end = c.hs.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (c.hs.size() > 16384) fail(c, true, "handshake response too long");
    return c.fd >= 0;
  }
  if (c.hs.compare(0, 12, "HTTP/1.1 101") != 0 || c.hs.find(kWsAccept) == std::string::npos ||
      c.hs.find(kWsAccept) > end) {
    std::string line = c.hs.substr(0, c.hs.find("\r\n"));
    fail(c, true, "handshake refused: " + line);
    return false;
  }
  size_t body = end + 4 - old;  // first byte after the headers in p
  std::string().swap(c.hs);
  --handshaking_;
  ++done_;
  ++open_;
  c.st = ConnState::Open;
  handshake.record(now - c.t_connect);
  st.last_handshake = std::max(st.last_handshake, now);
  if (o_.proto == Proto::Chat && (o_.mode == Mode::Broadcast || o_.join)) {
    st.first_join = std::min(st.first_join, now);
    std::string join = "{\"type\":\"join\",\"room\":\"" + o_.room + "\",\"name\":\"c" + std::to_string(c.gid) + "\"}";
    queue_frame(c, kOpText, reinterpret_cast<const uint8_t*>(join.data()), join.size());
  } else {
    c.joined = true;
    ++joined_;
  }
  if (body < n) {
    bool ok = c.walker.feed(p + body, n - body, [&](uint8_t op, const uint8_t* q, size_t len, uint64_t) {
      if (c.fd >= 0) on_frame(c, op, q, len, now);
    });
    if (!ok && c.fd >= 0) {
      ++st.proto_errors;
      drop(c, "framing error from server");
    }
  }
  return c.fd >= 0;
}

// A control or join frame: masked here (rare, off the hot path).
void Worker::queue_frame(Conn& c, uint8_t op, const uint8_t* payload, size_t len) {
  if (c.fd < 0 || c.close_sent) return;
  if (c.tail_len) {  // keep the byte order: the pending tail goes first
    c.out.append(c.tail, c.tail_len);
    c.tail_len = 0;
  }
  uint8_t* d = c.out.prepare(wsb::kMaxFrameHeader + len);
  size_t h = wsb::encode_frame_header(d, static_cast<wsb::Opcode>(op), true, len, key_);
  std::memcpy(d + h, payload, len);
  wsb::apply_mask(d + h, len, key_, 0);
  c.out.commit(h + len);
  if (op == kOpClose) c.close_sent = true;
  mark_dirty(c);
}

void Worker::mark_dirty(Conn& c) {
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(static_cast<uint32_t>(&c - conns_.data()));
  }
}

void Worker::flush(Conn& c) {
  while (c.ssl && c.fd >= 0 && (c.out.size() || c.tail_len)) {
    // wss://: the buffer, then the shared tail (one SSL_write each).
    const bool head = c.out.size() > 0;
    const uint8_t* p = head ? c.out.data() : c.tail;
    const size_t len = head ? c.out.size() : c.tail_len;
    ERR_clear_error();
    int w = SSL_write(c.ssl, p, static_cast<int>(std::min<size_t>(len, INT_MAX)));
    if (w <= 0) {
      int e = SSL_get_error(c.ssl, w);
      if (e == SSL_ERROR_WANT_WRITE) return set_out(c, true);
      if (e == SSL_ERROR_WANT_READ) return;  // retried after the next read (on_event)
      return drop(c, "TLS write error");
    }
    if (head) {
      c.out.consume(static_cast<size_t>(w));
    } else {
      c.tail += w;
      c.tail_len -= static_cast<size_t>(w);
    }
  }
  while (c.fd >= 0 && (c.out.size() || c.tail_len)) {
    iovec iov[2];
    int k = 0;
    if (c.out.size()) iov[k++] = {const_cast<uint8_t*>(c.out.data()), c.out.size()};
    if (c.tail_len) iov[k++] = {const_cast<uint8_t*>(c.tail), c.tail_len};
    ssize_t w = writev(c.fd, iov, k);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return set_out(c, true);
      return drop(c, "write error");
    }
    size_t n = static_cast<size_t>(w);
    size_t a = std::min(n, c.out.size());
    c.out.consume(a);
    n -= a;
    c.tail += n;
    c.tail_len -= n;
  }
  if (c.fd >= 0) set_out(c, false);
}

void Worker::set_out(Conn& c, bool on) {
  if (c.out_armed == on) return;
  c.out_armed = on;
  epoll_event e{};
  e.events = EPOLLIN | EPOLLRDHUP | (on ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  e.data.u32 = static_cast<uint32_t>(&c - conns_.data());
  epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &e);
}

void Worker::begin_close() {
  static const uint8_t normal[2] = {0x03, 0xE8};  // 1000
  for (Conn& c : conns_) {
    if (c.st == ConnState::Open) {
      queue_frame(c, kOpClose, normal, 2);
      c.st = ConnState::Closing;
    } else if (c.st == ConnState::Connecting || c.st == ConnState::Handshaking) {
      fail(c, c.st == ConnState::Handshaking, "still connecting at the end of the run");
    }
  }
}

void Worker::housekeeping(int64_t now) {
  int64_t limit = static_cast<int64_t>(o_.connect_timeout * 1e9);
  for (Conn& c : conns_) {
    if ((c.st == ConnState::Connecting || c.st == ConnState::Handshaking) && now - c.t_connect > limit)
      fail(c, c.st == ConnState::Handshaking, "handshake timed out");
  }
}

}  // namespace lg
