// The chat's process-wide parts in Apache: the bus (created in the parent,
// inherited by every child), this child's engine and hub thread, and the
// publish API handler.
#pragma once
#include <httpd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "chat/chat_config.h"
#include "chat/chat_engine.h"
#include "runtime/bus.h"
#include "runtime/hub_thread.h"

namespace wsb {

class ChatService : public BusConsumer {
 public:
  static ChatService& get();

  // Parent, post_config: creates or re-attaches the shared-memory bus.
  bool setup_bus(server_rec* s, apr_pool_t* process_pool);
  // Session thread: starts the engine and hub thread on first use in this
  // child. False if the bus is unavailable.
  bool ensure_started(server_rec* s);
  void stop();  // child exit

  Bus* bus() { return bus_.get(); }
  ChatEngine* engine() { return engine_.get(); }
  std::string next_conn_id();

  void apply(uint64_t seq, std::string_view payload) override;
  void on_overrun(uint64_t lost_from, uint64_t lost_to) override;
  void on_tick() override;

 private:
  std::unique_ptr<Bus> bus_;
  ChatConfig engine_config_;
  std::unique_ptr<ChatEngine> engine_;
  std::unique_ptr<HubThread> hub_;
  std::mutex start_mu_;
  std::atomic<bool> started_{false};
  std::atomic<uint64_t> conn_counter_{0};
};

int publish_handler(request_rec* r);

}  // namespace wsb
