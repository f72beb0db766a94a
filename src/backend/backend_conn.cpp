#include "backend/backend_conn.h"

#include <algorithm>

#include "backend/grip_sig.h"
#include "protocol/opcode.h"
#include "protocol/utf8_validator.h"

namespace wsb {
namespace {

constexpr size_t kMaxControlFrame = 125;  // RFC 6455 §5.5
constexpr size_t kMaxCloseReason = 123;
// Pushpin's floor for Keep-Alive-Interval: a backend cannot make the bridge
// poll it more often than this.
constexpr int64_t kMinRefreshIntervalS = 20;
constexpr int64_t kMaxRefreshIntervalS = 86400;
constexpr char kBadGatewayBody[] = "The WebSocket backend gave an unusable answer.\n";
// Rough per-event framing (name, hex length, two CRLFs) for the body bound;
// the queue bound counts it too, so a flood of empty messages is bounded.
constexpr size_t kEventOverhead = 24;

bool is_utf8(std::string_view s) {
  return Utf8Validator::validate(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// The longest prefix of s, at most max bytes, that does not split a UTF-8
// sequence (s itself is valid UTF-8).
std::string cut_utf8(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

bool parse_decimal(std::string_view s, int64_t max, int64_t* out) {
  if (s.empty() || s.size() > 12) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = std::min(v, max);
  return true;
}

}  // namespace

BackendConnection::BackendConnection(BackendConfig config, std::string connection_id)
    : config_(std::move(config)), connection_id_(std::move(connection_id)) {}

PushResult BackendConnection::push(WsEvent event) {
  if (state_ != State::Connecting && state_ != State::Open && state_ != State::Closing)
    return PushResult::Dropped;
  switch (event.type) {
    case WsEventType::Open: return PushResult::Dropped;
    case WsEventType::Disconnect:
      queue_.clear();
      queued_bytes_ = 0;
      // Before OPEN went out the backend knows nothing to forget.
      state_ = open_pending_ && !in_flight_ ? State::Done : State::Disconnecting;
      open_pending_ = false;
      return PushResult::Queued;
    case WsEventType::Close: state_ = State::ClientClosed; break;
    default:
      if (queued_bytes_ + event.content.size() + kEventOverhead > config_.max_queued_bytes)
        return PushResult::Overflow;
      break;
  }
  queued_bytes_ += event.content.size() + kEventOverhead;
  queue_.push_back(std::move(event));
  return PushResult::Queued;
}

bool BackendConnection::ready() const {
  if (in_flight_) return false;
  switch (state_) {
    case State::Connecting: return open_pending_;
    case State::Open:
    case State::Closing: return !queue_.empty() || refresh_pending_;
    case State::ClientClosed: return !queue_.empty();
    case State::Detached: return !queue_.empty() || detach_close_pending_;
    case State::Disconnecting: return !disconnect_sent_;
    case State::Done:
    case State::Failed: return false;
  }
  return false;
}

BackendRequest BackendConnection::take_request(int64_t now_unix) {
  BackendRequest r;
  if (open_pending_) {
    append_event(r.body, WsEvent{WsEventType::Open, {}});
    open_pending_ = false;
  } else if (state_ == State::Disconnecting) {
    append_event(r.body, WsEvent{WsEventType::Disconnect, {}});
    disconnect_sent_ = true;
  } else {
    size_t n = 0;
    while (!queue_.empty() && n < config_.max_events_per_request) {
      WsEvent& ev = queue_.front();
      if (n > 0 && r.body.size() + ev.content.size() + kEventOverhead > config_.max_request_body)
        break;
      if (ev.type == WsEventType::Close) {
        request_had_close_ = true;
        client_close_ = ev.content;
      }
      append_event(r.body, ev);
      queued_bytes_ -= ev.content.size() + kEventOverhead;
      queue_.pop_front();
      ++n;
    }
    // Detach ends the backend's side with a CLOSE without a code, after the
    // events that were still queued (what Pushpin sends).
    if (state_ == State::Detached && queue_.empty() && n < config_.max_events_per_request) {
      append_event(r.body, WsEvent{WsEventType::Close, {}});
      detach_close_pending_ = false;
    }
  }
  in_flight_ = true;
  refresh_pending_ = false;
  refresh_due_ms_ = -1;
  r.headers.emplace_back("Sec-WebSocket-Extensions", "grip");
  const std::string sig =
      make_grip_sig(config_.sig_key, config_.sig_iss, now_unix + config_.sig_ttl_s);
  if (!sig.empty()) r.headers.emplace_back("Grip-Sig", sig);
  r.headers.emplace_back("Accept", std::string(kWebSocketEventsType));
  r.headers.emplace_back("Connection-Id", connection_id_);
  r.headers.emplace_back("Content-Type", std::string(kWebSocketEventsType));
  for (const auto& [name, value] : meta_) r.headers.emplace_back("Meta-" + name, value);
  return r;
}

BackendConnection::OpenResult BackendConnection::on_open_response(const BackendResponse& response,
                                                                  int64_t now_ms) {
  in_flight_ = false;
  OpenResult r;
  const auto refuse = [&](std::string reason) {
    r.status = 502;
    r.body = kBadGatewayBody;
    r.reason = std::move(reason);
    state_ = State::Failed;
    return r;
  };
  const bool client_gone = state_ == State::Disconnecting;
  if (response.status != 200) {
    if (response.status < 200 || response.status > 599)
      return refuse("backend answered OPEN with status " + std::to_string(response.status));
    r.status = response.status;
    r.headers = headers_for_client(response.headers, false);
    r.body = response.body.substr(0, config_.max_error_body);
    r.reason = "backend refused the connection with " + std::to_string(response.status);
    state_ = State::Failed;
    return r;
  }
  BackendActions check;
  if (!check_answer(response, &check)) return refuse(check.fail_reason);
  std::vector<WsEvent> events;
  std::string error;
  if (!parse_events(response.body, &events, &error)) return refuse("malformed events: " + error);
  if (events.empty() || events.front().type != WsEventType::Open)
    return refuse("the answer to OPEN does not start with OPEN");
  if (events.size() > config_.max_events_per_response) return refuse("too many events");
  if (client_gone) {
    r.reason = "the client went away during OPEN";
    return r;  // state stays Disconnecting: the backend accepted, so it hears DISCONNECT
  }
  state_ = State::Open;
  r.accepted = true;
  r.status = 101;
  r.headers = headers_for_client(response.headers, true);
  const GripExtension g = find_grip_extension(response.headers);
  grip_ = g.enabled;
  message_prefix_ = g.has_prefix ? g.message_prefix : config_.default_message_prefix;
  apply_headers(response.headers, &r.actions);
  process_events(events, 1, now_ms, &r.actions);
  if (!r.actions.sends.empty()) note_client_send(now_ms);
  if (refresh_interval_ms_ > 0) refresh_due_ms_ = now_ms + refresh_interval_ms_;
  return r;
}

BackendActions BackendConnection::on_response(const BackendResponse& response, int64_t now_ms) {
  in_flight_ = false;
  BackendActions a;
  // Once the client is gone or detached the backend's answer has no one to
  // go to; DISCONNECT (when it went) is the last request.
  if (state_ == State::Disconnecting && disconnect_sent_) state_ = State::Done;
  if (state_ == State::Disconnecting || state_ == State::Done || state_ == State::Failed ||
      state_ == State::Detached)
    return a;
  if (!check_answer(response, &a)) return a;
  std::vector<WsEvent> events;
  std::string error;
  if (!parse_events(response.body, &events, &error)) {
    fail(&a, "malformed events: " + error);
    return a;
  }
  if (events.size() > config_.max_events_per_response) {
    fail(&a, "too many events (" + std::to_string(events.size()) + ")");
    return a;
  }
  apply_headers(response.headers, &a);
  process_events(events, 0, now_ms, &a);
  if (request_had_close_) {
    request_had_close_ = false;
    // The backend has had its one chance to answer the client's close
    // (Pushpin then drops the TCP connection); we finish the handshake.
    if (state_ != State::Failed && state_ != State::Done && !close_sent_) {
      ClientSend echo{ClientSend::Close, {}, 0};
      if (client_close_.size() >= 2) {
        echo.close_code =
            static_cast<uint16_t>((static_cast<unsigned char>(client_close_[0]) << 8) |
                                  static_cast<unsigned char>(client_close_[1]));
        echo.data = client_close_.substr(2);
      }
      send(&a, std::move(echo));
    }
    if (state_ != State::Failed) state_ = State::Done;
  }
  if (!a.sends.empty()) note_client_send(now_ms);
  if (refresh_interval_ms_ > 0 && (state_ == State::Open || state_ == State::Closing))
    refresh_due_ms_ = now_ms + refresh_interval_ms_;
  return a;
}

bool BackendConnection::check_answer(const BackendResponse& response, BackendActions* actions) {
  if (response.status != 200) {
    fail(actions, response.status == 0
                      ? std::string("no answer from the backend")
                      : "backend answered status " + std::to_string(response.status));
    return false;
  }
  const std::string* type = find_header(response.headers, "Content-Type");
  if (type == nullptr || !is_websocket_events_type(*type)) {
    fail(actions, "backend answered 200 with Content-Type '" + (type ? *type : std::string()) +
                      "', not application/websocket-events");
    return false;
  }
  if (response.body.size() > config_.max_response_body) {
    fail(actions, "response body of " + std::to_string(response.body.size()) + " bytes");
    return false;
  }
  return true;
}

void BackendConnection::apply_headers(const HeaderList& headers, BackendActions* actions) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, "Keep-Alive-Interval")) {
      int64_t s = 0;
      // Pushpin: a positive number turns the refresh on (at least 20 s),
      // anything else turns it off.
      refresh_interval_ms_ = parse_decimal(v, kMaxRefreshIntervalS, &s) && s > 0
                                 ? std::max(s, kMinRefreshIntervalS) * 1000
                                 : -1;
      if (refresh_interval_ms_ < 0) refresh_due_ms_ = -1;
      continue;
    }
    if (k.size() <= 9 || !istarts_with(k, "Set-Meta-")) continue;
    const std::string name = k.substr(9);
    meta_.erase(std::remove_if(meta_.begin(), meta_.end(),
                               [&](const auto& m) { return iequals(m.first, name); }),
                meta_.end());
    if (v.empty()) continue;  // an empty value deletes
    if (v.size() > config_.max_meta_value || meta_.size() >= config_.max_meta) {
      actions->notes.push_back("Set-Meta-" + name + " ignored: over the meta bounds");
      continue;
    }
    meta_.emplace_back(name, v);
  }
}

void BackendConnection::process_events(std::vector<WsEvent>& events, size_t first, int64_t now_ms,
                                       BackendActions* actions) {
  for (size_t i = first; i < events.size(); ++i) {
    WsEvent& ev = events[i];
    // After our close frame only a CLOSE or DISCONNECT still means
    // something; messages and control messages are moot.
    if (close_sent_ && ev.type != WsEventType::Close && ev.type != WsEventType::Disconnect)
      continue;
    switch (ev.type) {
      case WsEventType::Open: fail(actions, "OPEN after the connection was open"); return;
      case WsEventType::Text:
        if (grip_ && ev.content.compare(0, 2, "c:") == 0) {
          handle_control(std::string_view(ev.content).substr(2), now_ms, actions);
          break;
        }
        [[fallthrough]];
      case WsEventType::Binary: handle_message(ev, actions); break;
      case WsEventType::Ping:
      case WsEventType::Pong:
        if (ev.content.size() > kMaxControlFrame) {
          actions->notes.push_back("PING/PONG over 125 bytes dropped");
          break;
        }
        send(actions, ClientSend{ev.type == WsEventType::Ping ? ClientSend::Ping : ClientSend::Pong,
                                 std::move(ev.content), 0});
        break;
      case WsEventType::Close:
        handle_close(ev.content, actions);
        return;  // events after a CLOSE are ignored, as in Pushpin
      case WsEventType::Disconnect:
        actions->disconnect = true;
        state_ = State::Done;
        return;
    }
    if (state_ == State::Failed) return;
  }
}

void BackendConnection::handle_message(WsEvent& ev, BackendActions* actions) {
  if (grip_) {
    if (ev.content.compare(0, message_prefix_.size(), message_prefix_) != 0) {
      actions->notes.push_back(std::string("dropped a ") + ws_event_name(ev.type) +
                               " without the message prefix");
      return;
    }
    ev.content.erase(0, message_prefix_.size());
  }
  if (ev.type == WsEventType::Text && !is_utf8(ev.content)) {
    fail(actions, "a TEXT event that is not UTF-8");
    return;
  }
  send(actions, ClientSend{ev.type == WsEventType::Text ? ClientSend::Text : ClientSend::Binary,
                           std::move(ev.content), 0});
}

void BackendConnection::handle_close(const std::string& content, BackendActions* actions) {
  // Without a code (or with one byte) Pushpin closes the client with 1000.
  uint16_t code = close_code::kNormal;
  std::string reason;
  if (content.size() >= 2) {
    code = static_cast<uint16_t>((static_cast<unsigned char>(content[0]) << 8) |
                                 static_cast<unsigned char>(content[1]));
    reason = content.substr(2);
  }
  if (!is_valid_close_code(code)) {
    fail(actions, "CLOSE with code " + std::to_string(code) + ", which a server may not send");
    return;
  }
  if (!is_utf8(reason)) {
    fail(actions, "CLOSE with a reason that is not UTF-8");
    return;
  }
  if (reason.size() > kMaxCloseReason) {
    reason = cut_utf8(reason, kMaxCloseReason);
    actions->notes.push_back("CLOSE reason cut to 123 bytes");
  }
  send(actions, ClientSend{ClientSend::Close, std::move(reason), code});
  if (state_ == State::Open) state_ = State::Closing;
}

void BackendConnection::fail(BackendActions* actions, std::string reason) {
  actions->failed = true;
  actions->fail_reason = std::move(reason);
  actions->sends.clear();
  state_ = State::Failed;
  queue_.clear();
  queued_bytes_ = 0;
  delayed_.reset();
  keep_alive_due_ms_ = delayed_due_ms_ = refresh_due_ms_ = -1;
}

void BackendConnection::send(BackendActions* actions, ClientSend message) {
  // Nothing follows a close frame (RFC 6455 §5.5.1).
  if (close_sent_) return;
  if (message.kind == ClientSend::Close) close_sent_ = true;
  actions->sends.push_back(std::move(message));
}

bool BackendConnection::finished() const {
  if (state_ == State::Done || state_ == State::Failed) return true;
  return state_ == State::Detached && !in_flight_ && queue_.empty() && !detach_close_pending_;
}

}  // namespace wsb
