#include "pusher/pusher_webhook.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>

#include "pusher/pusher_json.h"

namespace wsb {

namespace {
struct KindName {
  PusherHook::Kind kind;
  const char* name;
  unsigned bit;
};
constexpr KindName kKinds[] = {
    {PusherHook::Occupied, "channel_occupied", kHookOccupied},
    {PusherHook::Vacated, "channel_vacated", kHookVacated},
    {PusherHook::MemberAdded, "member_added", kHookMemberAdded},
    {PusherHook::MemberRemoved, "member_removed", kHookMemberRemoved},
    {PusherHook::ClientEvent, "client_event", kHookClientEvent},
    {PusherHook::CacheMiss, "cache_miss", kHookCacheMiss},
};
}  // namespace

const char* webhook_event_name(PusherHook::Kind kind) {
  for (const KindName& k : kKinds)
    if (k.kind == kind) return k.name;
  return "";
}

unsigned webhook_event_bit(PusherHook::Kind kind) {
  for (const KindName& k : kKinds)
    if (k.kind == kind) return k.bit;
  return 0;
}

unsigned webhook_event_bit(std::string_view name) {
  for (const KindName& k : kKinds)
    if (name == k.name) return k.bit;
  return 0;
}

std::string encode_webhook_event(const PusherHook& h) {
  using namespace pusher_json;
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_field(w, "name", webhook_event_name(h.kind));
  write_field(w, "channel", h.channel);
  switch (h.kind) {
    case PusherHook::MemberAdded:
    case PusherHook::MemberRemoved:
      write_field(w, "user_id", h.user_id);
      break;
    case PusherHook::ClientEvent:
      write_field(w, "event", h.event);
      write_field(w, "data", h.data);  // the data as the client sent it, as a string (Pusher's format)
      write_field(w, "socket_id", h.socket_id);
      if (!h.user_id.empty()) write_field(w, "user_id", h.user_id);
      break;
    default:
      break;
  }
  w.EndObject();
  return take(buf);
}

std::string encode_webhook_body(int64_t time_ms, const std::vector<std::string>& events) {
  std::string body = "{\"time_ms\":" + std::to_string(time_ms) + ",\"events\":[";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i) body.push_back(',');
    body += events[i];
  }
  body += "]}";
  return body;
}

bool WebhookQueue::add(std::string event, int64_t now_ms) {
  if (waiting_.size() >= policy_.max_queued) {
    ++dropped_events_;
    return false;
  }
  if (waiting_.empty()) first_waiting_ms_ = now_ms;
  waiting_.push_back(std::move(event));
  return true;
}

int64_t WebhookQueue::next_due() const {
  if (in_flight_) return INT64_MAX;  // done() decides
  if (retry_) return retry_at_;
  if (waiting_.empty()) return INT64_MAX;
  if (waiting_.size() >= policy_.max_batch_events) return first_waiting_ms_;  // full: at once
  return first_waiting_ms_ + policy_.batch_window_ms;
}

std::optional<WebhookBatch> WebhookQueue::take(int64_t now_ms, int64_t time_ms) {
  if (in_flight_ || next_due() > now_ms) return std::nullopt;
  if (retry_) {
    current_ = std::move(retry_);
    retry_.reset();
  } else {
    std::vector<std::string> events;
    size_t bytes = 0;
    while (!waiting_.empty() && events.size() < policy_.max_batch_events) {
      // One event alone may pass the byte cap (it must go somewhere).
      if (!events.empty() && bytes + waiting_.front().size() > policy_.max_batch_bytes) break;
      bytes += waiting_.front().size() + 1;
      events.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    // What stays waits no longer than it already has.
    WebhookBatch b;
    b.body = encode_webhook_body(time_ms, events);
    b.events = events.size();
    current_ = std::move(b);
  }
  ++current_->attempt;
  in_flight_ = true;
  return current_;
}

int64_t WebhookQueue::backoff(int attempts) const {
  int64_t d = policy_.backoff_ms;
  for (int i = 1; i < attempts && d < policy_.max_backoff_ms; ++i) d *= 2;
  return std::min(d, policy_.max_backoff_ms);
}

WebhookQueue::Outcome WebhookQueue::done(bool ok, int64_t now_ms) {
  in_flight_ = false;
  if (!current_) return Outcome::Dropped;
  WebhookBatch b = std::move(*current_);
  current_.reset();
  if (ok) {
    ++sent_batches_;
    sent_events_ += b.events;
    return Outcome::Sent;
  }
  ++failed_attempts_;
  if (b.attempt >= policy_.max_attempts) {
    dropped_events_ += b.events;
    return Outcome::Dropped;
  }
  retry_at_ = now_ms + backoff(b.attempt);
  retry_ = std::move(b);
  return Outcome::Retry;
}

bool parse_webhook_url(std::string_view text, WebhookUrl* out, std::string* why) {
  *out = WebhookUrl();
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      *why = "it must not contain spaces or control characters";
      return false;
    }
  }
  if (text.empty()) {
    *why = "it is empty";
    return false;
  }
  if (text[0] == '/') {
    if (text.size() > 1 && text[1] == '/') {
      *why = "a local path must not start with //";
      return false;
    }
    if (text.find('#') != std::string_view::npos) {
      *why = "a local path must not contain #";
      return false;
    }
    out->local = true;
    out->path.assign(text);
    return true;
  }
  auto lower_starts = [&](const char* p) {
    size_t n = std::strlen(p);
    if (text.size() < n) return false;
    for (size_t i = 0; i < n; ++i)
      if (std::tolower(static_cast<unsigned char>(text[i])) != p[i]) return false;
    return true;
  };
  out->tls = lower_starts("https://");
  if (!out->tls && !lower_starts("http://")) {
    *why = "use http://host[:port]/path, https://host[:port]/path or a local path starting with /";
    return false;
  }
  out->port = out->tls ? 443 : 80;
  std::string_view rest = text.substr(out->tls ? 8 : 7);
  size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  if (path.find('#') != std::string_view::npos) {
    *why = "it must not contain a fragment (#)";
    return false;
  }
  if (authority.find('@') != std::string_view::npos) {
    *why = "user:password@ is not supported";
    return false;
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *why = "an IPv6 address needs its ]";
      return false;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        *why = "garbage after the IPv6 address";
        return false;
      }
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) {
    *why = "it names no host";
    return false;
  }
  if (!port.empty() || authority.find(':') != std::string_view::npos) {
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      *why = "the port must be a number from 1 to 65535";
      return false;
    }
    int p = std::stoi(std::string(port));
    if (p < 1 || p > 65535) {
      *why = "the port must be a number from 1 to 65535";
      return false;
    }
    out->port = p;
  }
  out->host.assign(host);
  out->path.assign(path);
  if (out->path[0] == '?') out->path.insert(0, "/");
  return true;
}

}  // namespace wsb
