// Pusher webhooks (WSBridgePusherWebhook): what is sent and when, without
// threads or sockets, so it is tested as it is.
//
// A POST per batch, in Pusher's format:
//   {"time_ms":<wall ms>,"events":[{"name":"channel_occupied","channel":"c"}, ...]}
// member_added/member_removed carry "user_id"; client_event carries "event",
// "data", "socket_id" and, on presence channels, "user_id". Headers:
// X-Pusher-Key (the app key) and X-Pusher-Signature (hex HMAC-SHA256 of the
// body with the app secret, pusher_auth.h).
//
// WebhookQueue is one target's queue: events wait up to the batch window
// (so a burst goes in one POST), a batch holds at most kMaxBatchEvents
// events and about kMaxBatchBytes; one batch is in flight at a time; a failed
// one (non-2xx, connection error) is sent again, the same body, after 1 s,
// 2 s, 4 s, ... up to max_attempts, then dropped. While it waits, new events
// queue up to max_queued; beyond that they are dropped. Drops are counted.
// Not thread-safe: the webhook thread's lock covers it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/pusher_channels.h"

namespace wsb {

// Event names, as Pusher spells them; bits for WSBridgePusherWebhook's filter.
enum WebhookEventBit : unsigned {
  kHookOccupied = 1u << 0,
  kHookVacated = 1u << 1,
  kHookMemberAdded = 1u << 2,
  kHookMemberRemoved = 1u << 3,
  kHookClientEvent = 1u << 4,
  kHookCacheMiss = 1u << 5,
  kHookAll = (1u << 6) - 1,
};
const char* webhook_event_name(PusherHook::Kind kind);
unsigned webhook_event_bit(PusherHook::Kind kind);
// "channel_occupied" -> its bit; 0 for an unknown name.
unsigned webhook_event_bit(std::string_view name);

// One event object of the "events" array (JSON text).
std::string encode_webhook_event(const PusherHook& hook);
// The whole body from encoded events.
std::string encode_webhook_body(int64_t time_ms, const std::vector<std::string>& events);

struct WebhookPolicy {
  int64_t batch_window_ms = 250;
  size_t max_batch_events = 100;
  size_t max_batch_bytes = 256 * 1024;
  size_t max_queued = 10000;   // events waiting per target
  int max_attempts = 5;        // sends of one batch, the first included
  int64_t backoff_ms = 1000;   // before the 2nd attempt; doubles, at most max_backoff_ms
  int64_t max_backoff_ms = 30000;
};

struct WebhookBatch {
  std::string body;
  size_t events = 0;
  int attempt = 0;  // 1 = first send
};

class WebhookQueue {
 public:
  explicit WebhookQueue(WebhookPolicy policy = WebhookPolicy()) : policy_(policy) {}

  // An encoded event; false (and counted) when the queue is full.
  bool add(std::string event, int64_t now_ms);
  // When take() will next have something (INT64_MAX: nothing waits).
  int64_t next_due() const;
  // The batch due at now_ms (a retry, or the waiting events), or nothing.
  // time_ms goes into a new body. The batch stays in flight until done().
  std::optional<WebhookBatch> take(int64_t now_ms, int64_t time_ms);
  enum class Outcome { Sent, Retry, Dropped };
  Outcome done(bool ok, int64_t now_ms);

  // The delay before attempt n+1 after n failed attempts.
  int64_t backoff(int attempts) const;

  size_t queued() const { return waiting_.size(); }
  bool in_flight() const { return in_flight_; }
  uint64_t sent_batches() const { return sent_batches_; }
  uint64_t sent_events() const { return sent_events_; }
  uint64_t dropped_events() const { return dropped_events_; }
  uint64_t failed_attempts() const { return failed_attempts_; }

 private:
  WebhookPolicy policy_;
  std::deque<std::string> waiting_;
  int64_t first_waiting_ms_ = 0;
  std::optional<WebhookBatch> retry_;  // failed, waiting for retry_at_
  int64_t retry_at_ = 0;
  std::optional<WebhookBatch> current_;  // in flight
  bool in_flight_ = false;
  uint64_t sent_batches_ = 0, sent_events_ = 0, dropped_events_ = 0, failed_attempts_ = 0;
};

// Where a webhook goes: http://host[:port]/path, https://host[:port]/path,
// or a local path of this server ("/..."), sent to its own listener.
struct WebhookUrl {
  bool local = false;
  bool tls = false;  // https://
  std::string host;  // as written (an IPv6 literal without brackets)
  int port = 80;     // 443 for https unless given
  std::string path;  // with the query, "/" at least
};
// Checks and splits a target; false with *why.
bool parse_webhook_url(std::string_view text, WebhookUrl* out, std::string* why);

}  // namespace wsb
