#include "pusher/host_resolver.h"

#include <netdb.h>
#include <netinet/in.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <system_error>
#include <thread>

#include "runtime/clock.h"

namespace wsb {

namespace {

constexpr size_t kMaxAddresses = 16;

void set_port(std::vector<ResolvedAddress>* addrs, int port) {
  for (ResolvedAddress& a : *addrs) {
    if (a.addr.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&a.addr)->sin_port = htons(static_cast<uint16_t>(port));
    else if (a.addr.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&a.addr)->sin6_port = htons(static_cast<uint16_t>(port));
  }
}

// flags: AI_NUMERICHOST for a literal (never asks a DNS server).
std::string lookup(const std::string& host, int flags, std::vector<ResolvedAddress>* out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) return rc == EAI_SYSTEM ? std::string(std::strerror(errno)) : std::string(gai_strerror(rc));
  for (addrinfo* a = res; a && out->size() < kMaxAddresses; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    ResolvedAddress r;
    std::memcpy(&r.addr, a->ai_addr, a->ai_addrlen);
    r.len = a->ai_addrlen;
    out->push_back(r);
  }
  freeaddrinfo(res);
  return out->empty() ? "no address" : "";
}

}  // namespace

std::string system_resolve(const std::string& host, std::vector<ResolvedAddress>* out) { return lookup(host, 0, out); }

// Shared by the lookup thread and the callers that wait for it.
struct HostResolver::Lookup {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int64_t done_ms = 0;  // when it answered (its answer's age)
  std::vector<ResolvedAddress> addrs;
  std::string error;
};

HostResolver::HostResolver(ResolveFn fn, Options options) : fn_(std::move(fn)), options_(options) {}

bool HostResolver::resolve(const std::string& host, int port, int64_t deadline_ms, std::vector<ResolvedAddress>* out,
                           std::string* error) {
  out->clear();
  if (host.empty()) {
    *error = "no host to resolve";
    return false;
  }
  if (lookup(host, AI_NUMERICHOST, out).empty()) {
    set_port(out, port);
    return true;
  }
  out->clear();
  std::shared_ptr<Lookup> lk;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reap();
    auto it = cache_.find(host);
    if (it != cache_.end()) {
      if (it->second.expires_ms > monotonic_ms()) {
        *out = it->second.addrs;
        set_port(out, port);
        return true;
      }
      cache_.erase(it);
    }
    auto p = pending_.find(host);
    if (p != pending_.end()) {
      lk = p->second;  // under way (an earlier caller gave up waiting): wait for that one
    } else {
      if (pending_.size() >= options_.max_pending) {
        *error = "cannot resolve " + host + ": " + std::to_string(pending_.size()) +
                 " name lookups are still under way (the DNS server does not answer?)";
        return false;
      }
      lk = std::make_shared<Lookup>();
      try {
        // Owns a copy of the function and of the name: nothing of this
        // resolver is touched, however late the answer comes.
        std::thread([fn = fn_, name = host, lk] {
          std::vector<ResolvedAddress> addrs;
          std::string why = fn(name, &addrs);
          if (why.empty() && addrs.empty()) why = "no address";
          const int64_t now = monotonic_ms();
          std::lock_guard<std::mutex> l(lk->mu);
          lk->done_ms = now;
          lk->addrs = std::move(addrs);
          lk->error = std::move(why);
          lk->done = true;
          lk->cv.notify_all();
        }).detach();
      } catch (const std::system_error& e) {
        *error = "cannot resolve " + host + ": cannot start the lookup (" + e.what() + ")";
        return false;
      }
      pending_[host] = lk;
    }
  }
  std::unique_lock<std::mutex> l(lk->mu);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms - monotonic_ms());
  if (!lk->cv.wait_until(l, until, [&] { return lk->done; })) {
    *error = "name lookup of " + host + " timed out (no answer from the resolver in time)";
    return false;
  }
  std::vector<ResolvedAddress> addrs = lk->addrs;
  std::string why = lk->error;
  l.unlock();
  {
    std::lock_guard<std::mutex> lock(mu_);
    reap();  // caches this answer (unless another caller already did)
  }
  if (!why.empty()) {
    *error = "cannot resolve " + host + ": " + why;
    return false;
  }
  *out = std::move(addrs);
  set_port(out, port);
  return true;
}

// mu_ held. answered_ms: when the lookup answered; an answer older than the
// ttl (its callers gave up and nobody asked since) is not kept.
void HostResolver::store(const std::string& host, const std::vector<ResolvedAddress>& addrs, int64_t answered_ms) {
  const int64_t now = monotonic_ms();
  if (options_.max_hosts == 0 || answered_ms + options_.ttl_ms <= now) return;
  cache_.erase(host);
  for (auto it = cache_.begin(); it != cache_.end();) it = it->second.expires_ms <= now ? cache_.erase(it) : std::next(it);
  while (cache_.size() >= options_.max_hosts) {
    auto oldest = cache_.begin();
    for (auto it = cache_.begin(); it != cache_.end(); ++it)
      if (it->second.expires_ms < oldest->second.expires_ms) oldest = it;
    cache_.erase(oldest);
  }
  cache_[host] = Entry{addrs, answered_ms + options_.ttl_ms};
}

// mu_ held. Finished lookups (also those whose callers gave up waiting):
// their answers go to the cache, their places to new lookups.
void HostResolver::reap() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    std::unique_lock<std::mutex> l(it->second->mu);
    if (!it->second->done) {
      ++it;
      continue;
    }
    if (it->second->error.empty()) store(it->first, it->second->addrs, it->second->done_ms);
    l.unlock();
    it = pending_.erase(it);
  }
}

void HostResolver::forget(const std::string& host) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(host);
}

size_t HostResolver::cached() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

}  // namespace wsb
