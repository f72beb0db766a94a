// WSBridgeApp chat: adapts a ChatConnection to the session runtime. Runs on
// the session thread.
#pragma once

#include <memory>
#include <string>

#include "chat/chat_connection.h"
#include "runtime/clock.h"
#include "runtime/session.h"

namespace wsb {

class ChatApp : public App {
 public:
  ChatApp(const ChatConfig& config, Bus& bus, ChatEngine& engine, std::string conn_id,
          std::string user_name, bool name_fixed, long owner_key, PendingPublishes* pending = nullptr)
      : config_(config),
        bus_(bus),
        engine_(engine),
        conn_id_(std::move(conn_id)),
        user_name_(std::move(user_name)),
        name_fixed_(name_fixed),
        owner_key_(owner_key),
        pending_(pending) {}

  void on_open(Session& s) override {
    conn_ = std::make_unique<ChatConnection>(config_, bus_, engine_, conn_id_, user_name_,
                                             name_fixed_, s.peer(), owner_key_, pending_);
    s.send_frame(conn_->open(wall_clock_ms()));
  }

  void on_message(Session& s, Opcode op, std::string_view payload) override {
    if (op != Opcode::Text) {
      s.close(close_code::kUnsupportedData, "chat takes JSON text frames");
      return;
    }
    ChatConnection::Action a = conn_->on_text(payload, wall_clock_ms());
    if (a.rate_limited) s.stats().rate_limited.fetch_add(1, std::memory_order_relaxed);
    if (a.reply) s.send_frame(a.reply);
    if (a.close) s.close(a.close_code, a.close_reason);
  }

  void on_close(Session&) override {
    if (conn_) conn_->close(wall_clock_ms());
  }

 private:
  const ChatConfig& config_;
  Bus& bus_;
  ChatEngine& engine_;
  std::string conn_id_;
  std::string user_name_;
  bool name_fixed_;
  long owner_key_;
  PendingPublishes* pending_;
  std::unique_ptr<ChatConnection> conn_;
};

}  // namespace wsb
