// The Pusher protocol's channel state in the channel engine: which sockets
// are subscribed where in every process (subscription counts for the HTTP
// API, presence members with their user info, once per user however many
// connections), the last event of cache channels, and which sockets are
// local (their peers get the frames). Every process applies the same bus
// records in the same order, so every process holds the same global state
// and any child can answer the HTTP API; each delivers only to its own
// sockets, through the engine's shared ChannelSubscriptions.
//
// Records (chat_record.h): psub (a socket subscribed), pleave (a socket left
// one channel or all), pub with kind Event (an event for a channel, with an
// optional socket to skip), pterm (close a user's sockets), and the chat's
// gone (a process died: its sockets left).
//
// Not thread-safe: the engine's lock covers it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chat/chat_record.h"
#include "engine/channel_subscriptions.h"
#include "runtime/frame.h"
#include "runtime/peer.h"

namespace wsb {

// What the Pusher adapter renders; the engine only decides who gets what.
class PusherRender {
 public:
  virtual ~PusherRender() = default;
  struct Member {
    std::string user_id;
    std::string user_info;  // JSON text ("" = none)
  };
  virtual FramePtr subscription_succeeded(std::string_view channel, const std::vector<Member>* presence) = 0;
  virtual FramePtr member_added(std::string_view channel, const Member& m) = 0;
  virtual FramePtr member_removed(std::string_view channel, std::string_view user_id) = 0;
  virtual FramePtr event(std::string_view channel, std::string_view event, std::string_view data,
                         std::string_view user_id) = 0;
  virtual FramePtr cache_miss(std::string_view channel) = 0;
};

struct PusherChannelInfo {
  std::string name;
  size_t subscription_count = 0;
  size_t user_count = 0;  // presence channels
};

// Something a webhook may want to hear about. Every process applies the
// same records, so every process sees every transition; exactly one reports
// it (see report()): the process that owns the socket whose record caused it
// (psub, pleave, a client event), or, for the leaves of a dead process, the
// process that published the gone record ("by"). Across servers on Redis the
// owner keys differ by server tag, so the rule holds there too.
struct PusherHook {
  enum Kind { Occupied, Vacated, MemberAdded, MemberRemoved, CacheMiss, ClientEvent } kind;
  std::string ns, channel, user_id;
  std::string event, data, socket_id;  // ClientEvent
};

class PusherChannels {
 public:
  using Deliver = std::function<void(const PeerPtr&, const FramePtr&)>;
  PusherChannels(ChannelSubscriptions& subs, PusherRender& render, Deliver deliver)
      : subs_(subs), render_(render), deliver_(std::move(deliver)) {}

  // Local sockets (session threads, under the engine lock).
  void attach(const std::string& socket_id, std::string_view ns, PeerPtr peer);
  void detach(const std::string& socket_id);
  void set_user(const std::string& socket_id, std::string_view user_id);

  // Bus records, in order (hub thread, under the engine lock). local_pid:
  // this process's owner key, so hooks are reported by one process only.
  void apply_subscribe(const ChatRecord& r, long local_pid);
  void apply_leave(const ChatRecord& r, long local_pid);
  // local_pid: a client event (r.from "client") sent by a socket this
  // process owns is reported as a ClientEvent hook.
  void apply_event(const ChatRecord& r, long local_pid = -1);
  void apply_terminate(const ChatRecord& r);
  // reporter: the gone record's "by" (reports the leaves it causes).
  void apply_gone(long pid, long local_pid, long reporter = 0);

  // Queries for the HTTP API (any thread, under the engine lock).
  std::vector<PusherChannelInfo> channels(std::string_view ns, std::string_view prefix) const;
  std::optional<PusherChannelInfo> channel(std::string_view ns, std::string_view name) const;
  std::vector<std::string> users(std::string_view ns, std::string_view name) const;
  bool subscribed(const std::string& socket_id, std::string_view channel) const;

  std::vector<PusherHook> take_hooks();
  bool has_hooks() const { return !hooks_.empty(); }
  size_t local_sockets() const { return local_.size(); }

 private:
  struct MemberState {
    std::string info;
    size_t sockets = 0;
  };
  struct Channel {
    size_t subscriptions = 0;
    std::map<std::string, MemberState> members;  // presence: user_id -> info, sockets
    std::optional<std::pair<std::string, std::string>> cache;  // event, data
    int64_t cache_ts = 0;  // the bus time of the cached event (records' ts)
  };
  // Cache channels keep their last event for 30 minutes (Pusher's rule),
  // judged by record times so every process decides alike; at most
  // kMaxIdleCaches channels without subscribers keep one.
  static constexpr int64_t kCacheTtlMs = 30 * 60 * 1000;
  static constexpr size_t kMaxIdleCaches = 10000;
  size_t idle_caches_ = 0;
  struct Socket {  // every process knows every socket's subscriptions
    std::string ns;
    long pid = 0;
    std::map<std::string, std::string> channels;  // channel -> user_id ("" if not presence)
  };
  struct Local {
    std::string ns;
    PeerPtr peer;
    std::string user_id;  // signed in (pusher:signin)
  };

  static std::string key(std::string_view ns, std::string_view channel);
  void leave_channel(const std::string& socket_id, Socket& s, const std::string& channel, bool mine);
  void leave_socket(const std::string& socket_id, const std::string& channel, bool mine_if_owner, long local_pid,
                    bool force_mine);
  void report(PusherHook::Kind kind, std::string_view ns, std::string_view channel, std::string_view user, bool mine);

  ChannelSubscriptions& subs_;
  PusherRender& render_;
  Deliver deliver_;
  std::map<std::string, Channel, std::less<>> channels_;  // ns \n channel
  std::unordered_map<std::string, Socket> sockets_;
  std::unordered_map<std::string, Local> local_;
  std::vector<PusherHook> hooks_;
  // Nobody takes them (no hub drains them, e.g. a unit test): bounded.
  static constexpr size_t kMaxHooks = 100000;
};

}  // namespace wsb
