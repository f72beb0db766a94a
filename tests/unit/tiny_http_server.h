// Webhook tests: a real HTTP server on loopback (TinyServer).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// A listening socket on 127.0.0.1, on a port the kernel picks (*port).
inline int listen_loopback(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  listen(fd, 16);
  return fd;
}

// One request: until the headers and the Content-Length body are in, or
// read_some(buf, size) returns <= 0 (the end).
template <typename ReadSome>
std::string read_request(ReadSome read_some) {
  std::string req;
  char buf[4096];
  for (;;) {
    size_t head = req.find("\r\n\r\n");
    if (head != std::string::npos) {
      size_t cl = req.find("Content-Length: ");
      size_t want = cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16));
      if (req.size() >= head + 4 + want) break;
    }
    long n = read_some(buf, sizeof buf);
    if (n <= 0) break;
    req.append(buf, static_cast<size_t>(n));
  }
  return req;
}

// A real HTTP server on loopback: answers each connection with the next
// status of its script (0 = accept and say nothing), records the requests.
class TinyServer {
 public:
  explicit TinyServer(std::vector<int> script) : script_(std::move(script)) {
    fd_ = listen_loopback(&port_);
    thread_ = std::thread([this] { run(); });
  }
  ~TinyServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void run() {
    for (size_t i = 0; !stop_; ++i) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req = read_request([c](char* buf, size_t len) { return static_cast<long>(recv(c, buf, len, 0)); });
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(req);
      }
      int status = i < script_.size() ? script_[i] : 200;
      if (status == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(400));  // silent past the client's timeout
      } else {
        std::string ans = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 0\r\n\r\n";
        send(c, ans.data(), ans.size(), MSG_NOSIGNAL);
      }
      close(c);
    }
  }
  std::vector<int> script_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};
