// WSBridgeApp pusher: one Pusher protocol connection (pusher-js, Laravel
// Echo) as a thin adapter over the channel engine. Client frames become
// bus records (psub, pleave, pub events) that every process applies in
// order; what the engine delivers comes back as frames rendered once by
// PusherFrames. Runs on the session thread.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "chat/rate_limiter.h"
#include "engine/pusher_channels.h"
#include "pusher/pusher_protocol.h"
#include "pusher/pusher_subscribe.h"
#include "runtime/bus.h"
#include "runtime/session.h"

namespace wsb {

class ChatEngine;
class PendingPublishes;

struct PusherAppConfig {
  std::string id, key, secret;
  bool client_events = true;
  int activity_timeout_s = 120;
  size_t max_event_bytes = 10240;   // client events: the data string
  size_t max_channels = 100;        // subscriptions per connection
  double client_event_rate = 10;    // client events per second per connection (Pusher's limit)
  std::string ns() const { return "pusher/" + id; }
};

// The engine's renderer for Pusher frames (pusher_protocol.h), each frame
// made once per event.
class PusherFrames : public PusherRender {
 public:
  FramePtr subscription_succeeded(std::string_view channel, const std::vector<Member>* presence) override;
  FramePtr member_added(std::string_view channel, const Member& m) override;
  FramePtr member_removed(std::string_view channel, std::string_view user_id) override;
  FramePtr event(std::string_view channel, std::string_view event, std::string_view data,
                 std::string_view user_id) override;
  FramePtr cache_miss(std::string_view channel) override;
};

class PusherApp : public App {
 public:
  using Log = std::function<void(bool error, const std::string& line)>;
  // app: nullptr when the key in the URL names no app (4001 after the open).
  // pending: where leaves wait when the bus refuses them (a Redis outage).
  PusherApp(const PusherAppConfig* app, std::string socket_id, Bus& bus, ChatEngine& engine, long owner_pid,
            PendingPublishes* pending, Log log);

  void on_open(Session& s) override;
  void on_message(Session& s, Opcode op, std::string_view payload) override;
  void on_close(Session& s) override;

 private:
  void subscribe(Session& s, const PusherCommand& cmd);
  void unsubscribe(Session& s, const PusherCommand& cmd);
  void signin(Session& s, const PusherCommand& cmd);
  void client_event(Session& s, const PusherCommand& cmd);
  void error(Session& s, const PusherError& e);
  bool publish(const ChatRecord& r);

  const PusherAppConfig* app_;
  std::string socket_id_;
  Bus& bus_;
  ChatEngine& engine_;
  long owner_pid_;
  PendingPublishes* pending_;
  Log log_;
  RateLimiter client_events_;
  std::optional<SignedInUser> user_;
  std::map<std::string, std::string> channels_;  // subscribed (asked) -> presence user_id
  bool attached_ = false;
};

}  // namespace wsb
