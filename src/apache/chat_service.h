// The chat's process-wide parts in Apache: the bus (shared memory: created
// in the parent, inherited by every child; Redis: made in each child on first
// use, because a connection must not cross fork()), this child's engine and
// hub thread, and the publish API handler.
#pragma once
#include <httpd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "chat/chat_config.h"
#include "chat/chat_engine.h"
#include "chat/pending_publishes.h"
#include "runtime/bus.h"
#include "runtime/hub_thread.h"
#include "runtime/redis_bus.h"
#include "pusher/webhook_dispatcher.h"

namespace wsb {

class ChatService : public BusConsumer {
 public:
  static ChatService& get();

  // Parent, post_config: creates or re-attaches the shared-memory bus, or
  // (WSBridgeBus redis://...) only checks and records the Redis address.
  // pconf: closes a WSBridgeBusFile bus cleanly when the parent exits.
  bool setup_bus(server_rec* s, apr_pool_t* process_pool, apr_pool_t* pconf);
  // WSBridgeBusFile of the shm bus ("" for an anonymous mapping or Redis).
  const std::string& bus_file() const { return bus_file_; }
  // Session thread: starts the engine and hub thread on first use in this
  // child. False if the bus is unavailable.
  bool ensure_started(server_rec* s);
  // Any thread in a child: the bus, made now if it is Redis (the publish API
  // may come before any chat connection); nullptr if there is none.
  Bus* ensure_bus();
  void stop();  // child exit

  Bus* bus() { return active_bus_.load(std::memory_order_acquire); }
  // The Redis bus of this child (for its status), nullptr with shm.
  bool uses_redis() const { return use_redis_; }
  const RedisBus* redis_bus() const { return redis_bus_.load(std::memory_order_acquire); }
  // Null until the hub started in this child (started_ publishes engine_).
  ChatEngine* engine() { return started_.load(std::memory_order_acquire) ? engine_.get() : nullptr; }
  // This child's webhook thread (WSBridgePusherWebhook), for its figures:
  // null until the hub started here, or when no webhook is configured.
  const WebhookDispatcher* webhooks() const {
    return started_.load(std::memory_order_acquire) ? webhooks_.get() : nullptr;
  }
  std::string next_conn_id();
  // (server tag << 32) | pid: who owns a chat member (see chat_record.h).
  long owner_key(int pid) const { return static_cast<long>((static_cast<uint64_t>(server_tag_) << 32) | static_cast<uint32_t>(pid)); }
  void set_server_tag(uint32_t tag) { server_tag_ = tag & 0x7fffffffu; }
  // Leaves (and "gone" records) the bus refused; the hub's tick retries them.
  PendingPublishes& pending() { return pending_; }

  void apply(uint64_t seq, std::string_view payload) override;
  void on_overrun(uint64_t lost_from, uint64_t lost_to) override;
  void on_tick() override;

 private:
  bool setup_redis(server_rec* s, const char* url);
  void publish_outbox();

  std::unique_ptr<Bus> bus_;
  std::atomic<Bus*> active_bus_{nullptr};  // bus_, for threads that do not hold start_mu_
  bool use_redis_ = false;
  std::string bus_file_;
  RedisBusOptions redis_options_;  // set by setup_bus, used in the child
  const server_rec* redis_server_ = nullptr;  // where its state changes are logged
  const server_rec* log_server_ = nullptr;    // where the hub thread logs (set before it starts)
  uint64_t sync_requests_logged_ = 0;         // hub thread only
  std::atomic<const RedisBus*> redis_bus_{nullptr};
  ChatConfig engine_config_;
  std::unique_ptr<ChatEngine> engine_;
  std::unique_ptr<HubThread> hub_;
  std::mutex start_mu_;
  std::mutex bus_mu_;  // making the Redis bus (ensure_started holds start_mu_)
  std::atomic<bool> started_{false};
  std::atomic<uint64_t> conn_counter_{0};
  PendingPublishes pending_;
  uint32_t server_tag_ = 0;
  std::unique_ptr<WebhookDispatcher> webhooks_;  // WSBridgePusherWebhook; made before the hub starts
};

int publish_handler(request_rec* r);

}  // namespace wsb
