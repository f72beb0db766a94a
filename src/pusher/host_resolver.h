// Name lookup for the webhook client, bounded in time and cached.
//
// getaddrinfo() has no timeout: a slow or dead DNS server would hold the
// webhook thread (and every webhook of every app of the child) for the
// resolver's whole retry time. Here each lookup runs on a small detached
// thread of its own; the caller waits for it until its deadline and then
// gives up. The lookup thread only touches its own shared state (never the
// resolver), so it may finish after the resolver is gone. A lookup still
// under way is not started again: the next caller for that host waits for the
// same one, so a dead DNS server costs one thread per host, not one per POST.
//
// Answers are cached per host (ttl, bounded count); a literal address (IPv4,
// IPv6 without brackets) never reaches the resolver. Thread-safe.
#pragma once
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace wsb {

struct ResolvedAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// Looks host up (may block). Returns "" with the addresses in *out (port
// not set), or the reason it failed.
using ResolveFn = std::function<std::string(const std::string& host, std::vector<ResolvedAddress>* out)>;

// getaddrinfo() for stream sockets, at most 16 addresses.
std::string system_resolve(const std::string& host, std::vector<ResolvedAddress>* out);

class HostResolver {
 public:
  struct Options {
    int ttl_ms = 60000;       // how long an answer is used
    size_t max_hosts = 64;    // answers kept (the oldest goes first)
    size_t max_pending = 16;  // lookups under way at once (threads)
  };
  explicit HostResolver(ResolveFn fn = system_resolve) : HostResolver(std::move(fn), Options()) {}
  HostResolver(ResolveFn fn, Options options);

  // host's addresses with port set, waiting for the lookup until deadline_ms
  // (monotonic_ms). false: *error says why (names the host).
  bool resolve(const std::string& host, int port, int64_t deadline_ms, std::vector<ResolvedAddress>* out,
               std::string* error);
  // No address of host answered: look it up again next time.
  void forget(const std::string& host);
  size_t cached() const;

 private:
  struct Lookup;
  struct Entry {
    std::vector<ResolvedAddress> addrs;
    int64_t expires_ms = 0;
  };
  void reap();
  void store(const std::string& host, const std::vector<ResolvedAddress>& addrs, int64_t answered_ms);

  const ResolveFn fn_;
  const Options options_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> cache_;
  std::map<std::string, std::shared_ptr<Lookup>> pending_;
};

}  // namespace wsb
