#include "pusher/webhook_http.h"

#include <cctype>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>

#include "pusher/tls_client.h"
#include "runtime/clock.h"

namespace wsb {

namespace {

HostResolver& default_resolver() {
  static HostResolver* r = new HostResolver();  // never destroyed: a late lookup thread may outlive exit()
  return *r;
}

int connect_to(HostResolver& resolver, const std::string& host, int port, int64_t deadline, std::string* error) {
  std::vector<ResolvedAddress> addrs;
  if (!resolver.resolve(host, port, deadline, &addrs, error)) return -1;
  int fd = -1;
  *error = "no address";
  for (const ResolvedAddress& a : addrs) {
    fd = socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) == 0) break;
    if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline)) {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) break;
      *error = std::string("connect: ") + std::strerror(err);
    } else {
      *error = errno == EINPROGRESS ? "connect: timed out" : std::string("connect: ") + std::strerror(errno);
    }
    close(fd);
    fd = -1;
  }
  if (fd < 0) resolver.forget(host);  // the host may have moved: ask again next time
  else error->clear();
  return fd;
}

bool send_all(int fd, const std::string& data, int64_t deadline, std::string* error) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_fd(fd, POLLOUT, deadline)) {
        *error = "send: timed out";
        return false;
      }
      continue;
    }
    *error = std::string("send: ") + std::strerror(errno);
    return false;
  }
  return true;
}

// > 0: bytes read; 0: the peer closed; -1: error or deadline (*error).
ssize_t recv_some(int fd, char* buf, size_t len, int64_t deadline, std::string* error) {
  for (;;) {
    ssize_t n = recv(fd, buf, len, 0);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLIN, deadline)) continue;
    *error = errno == EAGAIN || errno == EWOULDBLOCK ? "no answer in time" : std::string("recv: ") + std::strerror(errno);
    return -1;
  }
}

}  // namespace

HttpPostResult http_post(const std::string& host, int port, const std::string& host_header,
                         const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers,
                         const std::string& body, int timeout_ms, HostResolver* resolver,
                         const TlsClientContext* tls) {
  HttpPostResult out;
  const int64_t deadline = monotonic_ms() + timeout_ms;
  int fd = connect_to(resolver ? *resolver : default_resolver(), host, port, deadline, &out.error);
  if (fd < 0) return out;
  std::unique_ptr<TlsStream> stream;
  if (tls) {
    stream = std::make_unique<TlsStream>(*tls);
    if (!stream->handshake(fd, host, deadline, &out.error)) {
      close(fd);
      return out;
    }
  }
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + host_header +
                    "\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nUser-Agent: mod_wsbridge-webhook\r\n";
  for (const auto& h : headers) req += h.first + ": " + h.second + "\r\n";
  req += "\r\n";
  req += body;
  if (!(stream ? stream->write_all(req, deadline, &out.error) : send_all(fd, req, deadline, &out.error))) {
    close(fd);
    return out;
  }
  // The status line and headers (bounded); the status is all we need.
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
    ssize_t n = stream ? stream->read(buf, sizeof buf, deadline, &out.error)
                       : recv_some(fd, buf, sizeof buf, deadline, &out.error);
    if (n == 0) break;  // closed: what came is what there is
    if (n < 0) {
      close(fd);
      return out;
    }
    head.append(buf, static_cast<size_t>(n));
  }
  if (stream) stream->close_notify();
  close(fd);
  // "HTTP/1.x NNN ..."
  if (head.size() >= 12 && head.compare(0, 7, "HTTP/1.") == 0 && head[8] == ' ' &&
      isdigit(static_cast<unsigned char>(head[9])) && isdigit(static_cast<unsigned char>(head[10])) &&
      isdigit(static_cast<unsigned char>(head[11]))) {
    out.status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
  } else {
    out.error = head.empty() ? "the connection closed without an answer" : "not an HTTP answer";
  }
  return out;
}

}  // namespace wsb
