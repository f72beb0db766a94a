// The GRIP side of BackendConnection: control messages ("c:" TEXT events)
// and the timers they arm (keep-alive, send-delayed), plus the backend's
// Keep-Alive-Interval refresh.
#include "backend/backend_conn.h"

namespace wsb {
namespace {

ClientSend::Kind send_kind(WsMessageType t) {
  switch (t) {
    case WsMessageType::Text: return ClientSend::Text;
    case WsMessageType::Binary: return ClientSend::Binary;
    case WsMessageType::Ping: return ClientSend::Ping;
    case WsMessageType::Pong: return ClientSend::Pong;
  }
  return ClientSend::Text;
}

}  // namespace

void BackendConnection::handle_control(std::string_view json, int64_t now_ms,
                                       BackendActions* actions) {
  GripControl c;
  std::string error;
  if (!parse_grip_control(json, &c, &error)) {
    actions->notes.push_back("control message ignored: " + error);
    return;
  }
  const auto to_send = [&c] { return ClientSend{send_kind(c.message_type), c.content, 0}; };
  switch (c.type) {
    case GripControlType::Subscribe:
      if (subscriptions_.count(c.channel) != 0) break;
      if (subscriptions_.size() >= config_.max_subscriptions) {
        actions->notes.push_back("subscribe ignored: too many subscriptions");
        break;
      }
      subscriptions_.insert(c.channel);
      actions->subscribe.push_back(c.channel);
      break;
    case GripControlType::Unsubscribe:
      if (subscriptions_.erase(c.channel) != 0) actions->unsubscribe.push_back(c.channel);
      break;
    case GripControlType::Detach:
      actions->detach = true;
      state_ = State::Detached;
      detach_close_pending_ = true;
      refresh_due_ms_ = -1;
      break;
    case GripControlType::KeepAlive:
      keep_alive_ = KeepAlive{};
      keep_alive_due_ms_ = -1;
      if (c.has_content) {
        keep_alive_ = KeepAlive{true, to_send(),
                                c.timeout_s > 0 ? c.timeout_s : kDefaultKeepAliveTimeoutS, c.mode};
        keep_alive_due_ms_ = now_ms + keep_alive_.timeout_s * 1000;
      }
      break;
    case GripControlType::SetMeta:
      if (!c.has_value)
        control_meta_.erase(c.name);
      else if (control_meta_.size() < config_.max_meta || control_meta_.count(c.name) != 0)
        control_meta_[c.name] = c.value;
      else
        actions->notes.push_back("set-meta ignored: too many entries");
      break;
    case GripControlType::Session: session_id_ = c.session_id; break;
    case GripControlType::SendDelayed:
      // A new delayed message sends the pending one first (Pushpin).
      if (delayed_) send(actions, std::move(*delayed_));
      delayed_ = to_send();
      delayed_due_ms_ =
          now_ms + (c.timeout_s > 0 ? c.timeout_s : kDefaultSendDelayedTimeoutS) * 1000;
      break;
    case GripControlType::FlushDelayed:
      if (delayed_) send(actions, std::move(*delayed_));
      delayed_.reset();
      delayed_due_ms_ = -1;
      break;
  }
}

int64_t BackendConnection::next_deadline_ms() const {
  int64_t next = -1;
  for (int64_t t : {keep_alive_due_ms_, delayed_due_ms_, refresh_due_ms_}) {
    if (t >= 0 && (next < 0 || t < next)) next = t;
  }
  return next;
}

BackendActions BackendConnection::on_timer(int64_t now_ms) {
  BackendActions a;
  if (state_ == State::Done || state_ == State::Failed) return a;
  if (delayed_due_ms_ >= 0 && now_ms >= delayed_due_ms_) {
    if (delayed_) send(&a, std::move(*delayed_));
    delayed_.reset();
    delayed_due_ms_ = -1;
  }
  if (keep_alive_due_ms_ >= 0 && now_ms >= keep_alive_due_ms_) {
    send(&a, keep_alive_.message);
    keep_alive_due_ms_ = now_ms + keep_alive_.timeout_s * 1000;
  }
  if (refresh_due_ms_ >= 0 && now_ms >= refresh_due_ms_) {
    refresh_due_ms_ = -1;
    if (!in_flight_ && (state_ == State::Open || state_ == State::Closing)) refresh_pending_ = true;
  }
  if (!a.sends.empty()) note_client_send(now_ms);
  return a;
}

void BackendConnection::note_client_send(int64_t now_ms) {
  if (keep_alive_.enabled && keep_alive_.mode == KeepAliveMode::Idle)
    keep_alive_due_ms_ = now_ms + keep_alive_.timeout_s * 1000;
}

}  // namespace wsb
