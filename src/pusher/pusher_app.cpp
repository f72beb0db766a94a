#include "pusher/pusher_app.h"

#include "chat/chat_engine.h"
#include "chat/pending_publishes.h"
#include "protocol/frame_encoder.h"
#include "pusher/pusher_channel.h"
#include "runtime/clock.h"

namespace wsb {

// ---- frames the engine fans out --------------------------------------------

namespace {
FramePtr text_frame(const std::string& json) { return make_frame(encode_frame(Opcode::Text, json)); }
PresenceMember to_member(const PusherRender::Member& m) {
  return PresenceMember{m.user_id, m.user_info.empty() ? std::string("null") : m.user_info};
}
}  // namespace

FramePtr PusherFrames::subscription_succeeded(std::string_view channel, const std::vector<Member>* presence) {
  if (!presence) return text_frame(render_subscription_succeeded(channel));
  std::vector<PresenceMember> members;
  members.reserve(presence->size());
  for (const Member& m : *presence) members.push_back(to_member(m));
  return text_frame(render_presence_subscription_succeeded(channel, members));
}

FramePtr PusherFrames::member_added(std::string_view channel, const Member& m) {
  return text_frame(render_member_added(channel, to_member(m)));
}

FramePtr PusherFrames::member_removed(std::string_view channel, std::string_view user_id) {
  return text_frame(render_member_removed(channel, user_id));
}

FramePtr PusherFrames::event(std::string_view channel, std::string_view event, std::string_view data,
                             std::string_view user_id) {
  return text_frame(render_channel_event(event, channel, data, user_id));
}

FramePtr PusherFrames::cache_miss(std::string_view channel) { return text_frame(render_cache_miss(channel)); }

// ---- one connection -----------------------------------------------------------

PusherApp::PusherApp(const PusherAppConfig* app, std::string socket_id, Bus& bus, ChatEngine& engine,
                     long owner_pid, PendingPublishes* pending, Log log)
    : app_(app),
      socket_id_(std::move(socket_id)),
      bus_(bus),
      engine_(engine),
      owner_pid_(owner_pid),
      pending_(pending),
      log_(std::move(log)),
      client_events_(app ? app->client_event_rate : 10, app ? app->client_event_rate : 10) {}

void PusherApp::error(Session& s, const PusherError& e) {
  s.send_text(render_error(e));
  if (e.close_code) s.close(static_cast<uint16_t>(e.close_code), e.message);
}

bool PusherApp::publish(const ChatRecord& r) { return bus_.publish(encode_record(r)) != 0; }

void PusherApp::on_open(Session& s) {
  if (!app_) {
    error(s, make_error(ErrorKind::AppNotFound));
    return;
  }
  engine_.pusher_attach(socket_id_, app_->ns(), s.peer());
  attached_ = true;
  s.send_text(render_connection_established(socket_id_, app_->activity_timeout_s));
}

void PusherApp::on_message(Session& s, Opcode op, std::string_view payload) {
  if (!app_ || s.closing()) return;
  if (op != Opcode::Text) {
    error(s, make_error(ErrorKind::InvalidMessage, "binary messages are not part of the protocol"));
    return;
  }
  ParseLimits limits;
  limits.max_client_data = app_->max_event_bytes;
  PusherCommand cmd;
  PusherError err;
  if (!parse_client_frame(payload, limits, &cmd, &err)) {
    error(s, err);
    return;
  }
  switch (cmd.type) {
    case PusherCommandType::Subscribe: subscribe(s, cmd); break;
    case PusherCommandType::Unsubscribe: unsubscribe(s, cmd); break;
    case PusherCommandType::Ping: s.send_text(render_pong()); break;
    case PusherCommandType::Pong: break;
    case PusherCommandType::Signin: signin(s, cmd); break;
    case PusherCommandType::ClientEvent: client_event(s, cmd); break;
  }
}

void PusherApp::subscribe(Session& s, const PusherCommand& cmd) {
  if (channels_.count(cmd.channel)) return;  // already subscribed: the first answer stands
  if (channels_.size() >= app_->max_channels) {
    s.send_text(render_subscription_error(cmd.channel, "LimitReached",
                                          "too many channels on one connection", 413));
    return;
  }
  SubscribeDecision d = check_subscribe(cmd, app_->key, app_->secret, socket_id_, user_ ? &*user_ : nullptr);
  if (!d.ok) {
    s.send_text(render_subscription_error(cmd.channel, d.error.type, d.error.message, d.error.status));
    return;
  }
  ChatRecord r;
  r.type = RecordType::PusherSubscribe;
  r.ns = app_->ns();
  r.channel = cmd.channel;
  r.conn = socket_id_;
  r.pid = owner_pid_;
  r.ts = wall_clock_ms();
  if (is_presence(d.kind)) {
    r.user = d.member.user_id;
    r.data = d.member.user_info_json;
  }
  if (!publish(r)) {
    s.send_text(render_subscription_error(cmd.channel, "ServerError", "the server cannot take it now", 503));
    return;
  }
  // subscription_succeeded comes from the engine once the record is applied
  // in bus order (with the presence members as of that point).
  channels_.emplace(cmd.channel, r.user);
}

void PusherApp::unsubscribe(Session&, const PusherCommand& cmd) {
  if (!channels_.erase(cmd.channel)) return;
  ChatRecord r;
  r.type = RecordType::PusherLeave;
  r.ns = app_->ns();
  r.channel = cmd.channel;
  r.conn = socket_id_;
  r.pid = owner_pid_;
  r.ts = wall_clock_ms();
  std::string rec = encode_record(r);
  if (bus_.publish(rec) == 0 && pending_) pending_->add(std::move(rec));
}

void PusherApp::signin(Session& s, const PusherCommand& cmd) {
  SigninDecision d = check_signin(cmd, app_->key, app_->secret, socket_id_, user_ ? &*user_ : nullptr);
  if (!d.ok) {
    log_(false, "pusher:signin refused: " + d.error.message);
    error(s, d.error);
    return;
  }
  user_ = d.user;
  engine_.pusher_set_user(socket_id_, user_->id);
  // The client then subscribes to #server-to-user-<id> itself (pusher-js
  // does, and check_subscribe lets only this user in): that is where
  // sendToUser's events arrive.
  s.send_text(render_signin_success(user_->user_data));
}

void PusherApp::client_event(Session& s, const PusherCommand& cmd) {
  if (!app_->client_events) {
    error(s, make_error(ErrorKind::ClientEventsDisabled, {}, cmd.channel));
    return;
  }
  auto it = channels_.find(cmd.channel);
  if (it == channels_.end()) {
    error(s, make_error(ErrorKind::NotSubscribed, {}, cmd.channel));
    return;
  }
  if (!client_events_.allow(monotonic_ms())) {
    s.stats().rate_limited.fetch_add(1, std::memory_order_relaxed);
    error(s, make_error(ErrorKind::RateLimited, {}, cmd.channel));
    return;
  }
  ChatRecord r;
  r.type = RecordType::Publish;
  r.kind = PublishKind::Event;
  r.ns = app_->ns();
  r.channel = cmd.channel;
  r.name = cmd.event;
  r.data = cmd.data;
  r.conn = socket_id_;  // not echoed to the sender
  r.user = it->second;  // presence: the sender's user_id
  r.from = "client";    // a client event (its webhook, pusher_channels.h)
  r.ts = wall_clock_ms();
  if (!publish(r)) error(s, make_error(ErrorKind::OverCapacity));
}

void PusherApp::on_close(Session&) {
  if (!attached_) return;
  if (!channels_.empty()) {
    ChatRecord r;
    r.type = RecordType::PusherLeave;
    r.ns = app_->ns();
    r.conn = socket_id_;
    r.pid = owner_pid_;
    r.ts = wall_clock_ms();
    std::string rec = encode_record(r);
    // A leave must not be lost (presence lists, occupancy): kept until the
    // bus takes it, like the chat's.
    if (bus_.publish(rec) == 0 && pending_) pending_->add(std::move(rec));
  }
  engine_.pusher_detach(socket_id_);
}

}  // namespace wsb
