// ChatEngine's part for the Pusher protocol: the channel state lives in
// PusherChannels (engine/pusher_channels.h), under the engine's lock, with
// the engine's subscriptions and delivery.
#include "chat/chat_engine.h"

namespace wsb {

void ChatEngine::enable_pusher(std::unique_ptr<PusherRender> render, long local_pid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pusher_) return;  // once per engine
  pusher_render_ = std::move(render);
  local_pid_ = local_pid;
  pusher_ = std::make_unique<PusherChannels>(channels_, *pusher_render_,
                                             [this](const PeerPtr& p, const FramePtr& f) { deliver(p, f); });
}

void ChatEngine::apply_pusher(const ChatRecord& r) {
  if (!pusher_) return;
  switch (r.type) {
    case RecordType::PusherSubscribe: pusher_->apply_subscribe(r, local_pid_); break;
    case RecordType::PusherLeave: pusher_->apply_leave(r, local_pid_); break;
    case RecordType::PusherTerminate: pusher_->apply_terminate(r); break;
    default: break;
  }
}

void ChatEngine::pusher_attach(const std::string& socket_id, std::string_view ns, PeerPtr peer) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pusher_) pusher_->attach(socket_id, ns, std::move(peer));
}

void ChatEngine::pusher_detach(const std::string& socket_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pusher_) pusher_->detach(socket_id);
}

void ChatEngine::pusher_set_user(const std::string& socket_id, std::string_view user_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pusher_) pusher_->set_user(socket_id, user_id);
}

std::vector<PusherChannelInfo> ChatEngine::pusher_channels(std::string_view ns, std::string_view prefix) const {
  std::lock_guard<std::mutex> lock(mu_);
  return pusher_ ? pusher_->channels(ns, prefix) : std::vector<PusherChannelInfo>();
}

std::optional<PusherChannelInfo> ChatEngine::pusher_channel(std::string_view ns, std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return pusher_ ? pusher_->channel(ns, name) : std::nullopt;
}

std::vector<std::string> ChatEngine::pusher_users(std::string_view ns, std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return pusher_ ? pusher_->users(ns, name) : std::vector<std::string>();
}

uint64_t ChatEngine::last_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_.last_seq;
}

std::vector<PusherHook> ChatEngine::take_pusher_hooks() {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_pending_.store(false, std::memory_order_release);
  return pusher_ ? pusher_->take_hooks() : std::vector<PusherHook>();
}

}  // namespace wsb
