#include "pusher/webhook_http.h"

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace wsb {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Waits for events on fd until the deadline; false on timeout or error.
bool wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

int connect_to(const std::string& host, int port, int64_t deadline, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    *error = std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  *error = "no address";
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
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
  freeaddrinfo(res);
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
                         const std::string& body, int timeout_ms) {
  HttpPostResult out;
  const int64_t deadline = now_ms() + timeout_ms;
  int fd = connect_to(host, port, deadline, &out.error);
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
