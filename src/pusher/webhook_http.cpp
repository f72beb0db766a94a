#include "pusher/webhook_http.h"

#include <cctype>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/clock.h"

namespace wsb {

namespace {

// Waits for events on fd until the deadline; false on timeout or error.
bool wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - monotonic_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

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
    if (errno == EINPROGRESS && wait_for(fd, POLLOUT, deadline)) {
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
      if (!wait_for(fd, POLLOUT, deadline)) {
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

}  // namespace

HttpPostResult http_post(const std::string& host, int port, const std::string& host_header,
                         const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers,
                         const std::string& body, int timeout_ms, HostResolver* resolver) {
  HttpPostResult out;
  const int64_t deadline = monotonic_ms() + timeout_ms;
  int fd = connect_to(resolver ? *resolver : default_resolver(), host, port, deadline, &out.error);
  if (fd < 0) return out;
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + host_header +
                    "\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nUser-Agent: mod_wsbridge-webhook\r\n";
  for (const auto& h : headers) req += h.first + ": " + h.second + "\r\n";
  req += "\r\n";
  req += body;
  if (!send_all(fd, req, deadline, &out.error)) {
    close(fd);
    return out;
  }
  // The status line and headers (bounded); the status is all we need.
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      head.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) break;  // closed: what came is what there is
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_for(fd, POLLIN, deadline)) continue;
    out.error = errno == EAGAIN || errno == EWOULDBLOCK ? "no answer in time" : std::string("recv: ") + std::strerror(errno);
    close(fd);
    return out;
  }
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
