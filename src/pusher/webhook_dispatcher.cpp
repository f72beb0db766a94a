#include "pusher/webhook_dispatcher.h"

#include <algorithm>
#include <chrono>
#include <climits>

#include "pusher/pusher_auth.h"
#include "pusher/webhook_http.h"
#include "runtime/clock.h"

namespace wsb {

WebhookDispatcher::WebhookDispatcher(std::vector<WebhookTarget> targets, WebhookPolicy policy, int timeout_ms,
                                     Log log, std::shared_ptr<HostResolver> resolver)
    : timeout_ms_(timeout_ms),
      log_(std::move(log)),
      resolver_(resolver ? std::move(resolver) : std::make_shared<HostResolver>()) {
  for (WebhookTarget& t : targets) {
    auto slot = std::make_unique<Slot>();
    slot->target = std::move(t);
    slot->queue = WebhookQueue(policy);
    slots_.push_back(std::move(slot));
  }
  thread_ = std::thread([this] { run(); });
}

WebhookDispatcher::~WebhookDispatcher() { stop(); }

void WebhookDispatcher::stop(int flush_ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
    flush_ms_ = flush_ms;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  size_t left = 0;
  for (const auto& s : slots_) left += s->queue.queued();
  if (left > 0 && log_)
    log_(true, "Pusher webhooks: " + std::to_string(left) + " event(s) not sent (the process is stopping)");
}

void WebhookDispatcher::add(const std::vector<PusherHook>& hooks) {
  if (hooks.empty()) return;
  const int64_t now = monotonic_ms();
  std::string line;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const PusherHook& h : hooks) {
      const unsigned bit = webhook_event_bit(h.kind);
      std::string encoded;
      for (auto& s : slots_) {
        if (s->target.ns != h.ns || !(s->target.events & bit)) continue;
        if (encoded.empty()) encoded = encode_webhook_event(h);
        if (!s->queue.add(encoded, now)) ++drops_unlogged_;
      }
    }
    if (drops_unlogged_ > 0 && (drop_logged_ms_ == 0 || now - drop_logged_ms_ >= kDropLogMs)) {
      line = "Pusher webhooks: queue full (a receiver is down or too slow), " + std::to_string(drops_unlogged_) +
             " event(s) dropped";
      drops_unlogged_ = 0;
      drop_logged_ms_ = now;
    }
  }
  cv_.notify_all();
  if (!line.empty() && log_) log_(true, line);
}

WebhookStats WebhookDispatcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  WebhookStats st;
  for (const auto& s : slots_) {
    st.sent_batches += s->queue.sent_batches();
    st.sent_events += s->queue.sent_events();
    st.failed_attempts += s->queue.failed_attempts();
    st.dropped_events += s->queue.dropped_events();
  }
  return st;
}

void WebhookDispatcher::send(std::unique_lock<std::mutex>& lock, Slot& slot, int64_t deadline_ms) {
  std::optional<WebhookBatch> batch = slot.queue.take(deadline_ms == 0 ? monotonic_ms() : INT64_MAX - 1, wall_clock_ms());
  if (!batch) return;
  const WebhookTarget& t = slot.target;  // never changes after construction
  int timeout = timeout_ms_;
  if (deadline_ms) timeout = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(timeout, deadline_ms - monotonic_ms())));
  lock.unlock();  // add() never waits for the network
  std::vector<std::pair<std::string, std::string>> headers = {
      {"X-Pusher-Key", t.app_key}, {"X-Pusher-Signature", webhook_signature(t.secret, batch->body)}};
  HttpPostResult res =
      http_post(t.host, t.port, t.host_header, t.path, headers, batch->body, timeout, resolver_.get(), t.tls.get());
  const bool ok = res.status >= 200 && res.status < 300;
  lock.lock();
  WebhookQueue::Outcome o = slot.queue.done(ok, monotonic_ms());
  if (ok || !log_) return;
  std::string why = res.status ? "answered " + std::to_string(res.status) : res.error;
  lock.unlock();
  if (o == WebhookQueue::Outcome::Retry)
    log_(false, "Pusher webhook " + t.url + ": " + why + " (attempt " + std::to_string(batch->attempt) +
                    "); sending again later");
  else
    log_(true, "Pusher webhook " + t.url + ": " + why + " (attempt " + std::to_string(batch->attempt) + "); " +
                   std::to_string(batch->events) + " event(s) dropped");
  lock.lock();
}

// Stopping: each target's waiting events, batch by batch, until one fails
// or the time is up.
void WebhookDispatcher::flush(std::unique_lock<std::mutex>& lock, int64_t end_ms) {
  for (auto& s : slots_) {
    while (monotonic_ms() < end_ms && s->queue.next_due() != INT64_MAX) {
      const uint64_t failed = s->queue.failed_attempts();
      send(lock, *s, end_ms);
      if (s->queue.failed_attempts() != failed) break;
    }
  }
}

void WebhookDispatcher::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const int64_t now = monotonic_ms();
    Slot* due = nullptr;
    int64_t next = INT64_MAX;
    for (auto& s : slots_) {
      int64_t d = s->queue.next_due();
      if (d <= now && !due) due = s.get();
      next = std::min(next, d);
    }
    if (!due) {
      if (next == INT64_MAX) cv_.wait(lock);
      else cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(next - now, 60000)));
      continue;
    }
    send(lock, *due, 0);
  }
  if (flush_ms_ > 0) flush(lock, monotonic_ms() + flush_ms_);
}

}  // namespace wsb
