// The webhook thread of a child: takes the hooks the hub thread hands it
// (never blocking: a full queue drops and counts), batches them per target
// (WebhookQueue) and POSTs them with http_post, so no session or hub thread
// ever waits for an app server. Thread-safe: add() from the hub thread,
// stats() from any thread.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/pusher_channels.h"
#include "pusher/host_resolver.h"
#include "pusher/pusher_webhook.h"
#include "pusher/tls_client.h"

namespace wsb {

struct WebhookTarget {
  std::string ns;            // the app's engine namespace ("pusher/<id>")
  std::string app_key, secret;
  std::string url;           // as configured (for logs)
  unsigned events = kHookAll;
  // Where to connect and what to ask (a local path: this server's listener).
  std::string host;
  int port = 80;
  std::string host_header;
  std::string path;
  std::shared_ptr<const TlsClientContext> tls;  // https: what to trust; nullptr = plain HTTP
};

struct WebhookStats {
  uint64_t sent_batches = 0, sent_events = 0, failed_attempts = 0, dropped_events = 0;
};

class WebhookDispatcher {
 public:
  using Log = std::function<void(bool error, const std::string& line)>;
  // timeout_ms: one POST, name lookup to the answer's last header.
  // resolver: nullptr = a HostResolver of its own (getaddrinfo, cached).
  WebhookDispatcher(std::vector<WebhookTarget> targets, WebhookPolicy policy, int timeout_ms, Log log,
                    std::shared_ptr<HostResolver> resolver = nullptr);
  // Stops the thread (stop()).
  ~WebhookDispatcher();

  // Hub thread: every hook of this process; those no target wants are ignored.
  void add(const std::vector<PusherHook>& hooks);
  WebhookStats stats() const;
  size_t targets() const { return slots_.size(); }  // fixed at construction
  // Stops the thread. What still waits (and a batch waiting for its retry)
  // gets one last try each within flush_ms; the rest is dropped and logged.
  void stop(int flush_ms = 2000);

 private:
  void run();

  struct Slot {
    WebhookTarget target;
    WebhookQueue queue;
  };
  void flush(std::unique_lock<std::mutex>& lock, int64_t end_ms);
  // One POST of slot's due batch (deadline_ms 0: the normal timeout; else
  // whatever waits, within that time). The lock is held on entry and exit.
  void send(std::unique_lock<std::mutex>& lock, Slot& slot, int64_t deadline_ms);
  std::vector<std::unique_ptr<Slot>> slots_;
  int timeout_ms_;
  Log log_;
  std::shared_ptr<HostResolver> resolver_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  // Queue-full drops are logged at most every kDropLogMs, with their count.
  static constexpr int64_t kDropLogMs = 10000;
  int64_t drop_logged_ms_ = 0;
  uint64_t drops_unlogged_ = 0;
  int flush_ms_ = 0;
  std::thread thread_;
};

}  // namespace wsb
