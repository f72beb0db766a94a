// The chat side of one WebSocket connection, run by its session thread:
// validates client commands, applies the rate limit, publishes bus records.
// It never changes room state itself; the engine does that when the record
// comes back from the bus, in the same order in every process.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "chat/chat_config.h"
#include "chat/pending_publishes.h"
#include "chat/chat_engine.h"
#include "chat/chat_protocol.h"
#include "chat/rate_limiter.h"
#include "runtime/bus.h"
#include "runtime/frame.h"
#include "runtime/peer.h"

namespace wsb {

class ChatConnection {
 public:
  struct Action {
    FramePtr reply;  // send to this connection now (an error), or null
    bool close = false;
    uint16_t close_code = 0;
    std::string close_reason;
    bool rate_limited = false;  // refused by WSBridgeRateLimit (counted in the status)
  };

  // base_name: the user name from a token (name_fixed) or another trusted
  // source; empty for anonymous connections, which become "guest-<conn_id>"
  // unless their first join carries a name.
  ChatConnection(const ChatConfig& config, Bus& bus, ChatEngine& engine, std::string conn_id,
                 std::string base_name, bool name_fixed, PeerPtr self, long pid,
                 PendingPublishes* pending = nullptr);
  // Publishes the leaves if close() was not called (the session must not
  // leave ghost members behind on an early return).
  ~ChatConnection();
  ChatConnection(const ChatConnection&) = delete;
  ChatConnection& operator=(const ChatConnection&) = delete;

  // Attaches to the engine; returns the welcome frame to send first.
  FramePtr open(int64_t now_ms);
  // One client text frame (already valid UTF-8).
  Action on_text(std::string_view json, int64_t now_ms);
  // Publishes a leave for every room joined (or asked to join) and
  // detaches. Idempotent.
  void close(int64_t now_ms);

  const std::string& user_name() const { return base_; }
  // Rooms joined or asked to join -> our name there once the engine applied
  // the join ("" until then).
  const std::map<std::string, std::string>& rooms() const { return rooms_; }

 private:
  Action join(const ClientCommand& c, int64_t now_ms);
  Action leave(const ClientCommand& c, int64_t now_ms);
  Action message(const ClientCommand& c, int64_t now_ms);
  Action direct(const ClientCommand& c, int64_t now_ms);
  static Action error(ChatError code, std::string_view reason, std::string_view room = {});
  bool publish(const ChatRecord& record);

  const ChatConfig config_;  // a copy: no lifetime tie to the caller's config
  Bus& bus_;
  PendingPublishes* pending_;  // where leaves the bus refused at close go
  ChatEngine& engine_;
  const std::string conn_id_;
  std::string base_;
  // The base name is settled by a token, a trusted name or the first join;
  // after that, names in joins only name the member in that room.
  bool base_settled_;
  const bool name_fixed_;
  PeerPtr self_;
  const long pid_;
  RateLimiter limiter_;
  unsigned strikes_ = 0;
  std::map<std::string, std::string> rooms_;
  bool opened_ = false;
  bool closed_ = false;
};

}  // namespace wsb
