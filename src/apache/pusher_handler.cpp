#include "apache/pusher_handler.h"

#include <unistd.h>

#include <memory>
#include <mutex>

#include "apache/chat_service.h"
#include "pusher/pusher_auth.h"

namespace wsb {

namespace {
std::mutex g_mu;
std::unique_ptr<SocketIdGenerator> g_ids;  // made in the child, on first use
pid_t g_ids_pid = 0;
}  // namespace

void enable_pusher_engine() {
  ChatService& svc = ChatService::get();
  ChatEngine* engine = svc.engine();
  if (!engine) return;
  std::lock_guard<std::mutex> lock(g_mu);
  engine->enable_pusher(std::make_unique<PusherFrames>(), svc.owner_key(static_cast<int>(getpid())));
}

std::string next_pusher_socket_id() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_ids || g_ids_pid != getpid()) {
    g_ids = std::make_unique<SocketIdGenerator>(SocketIdGenerator::process_prefix());
    g_ids_pid = getpid();
  }
  return g_ids->next();
}

std::string pusher_key_of(const request_rec* r) {
  std::string uri = r->uri ? r->uri : "";
  while (!uri.empty() && uri.back() == '/') uri.pop_back();
  size_t slash = uri.rfind('/');
  return slash == std::string::npos ? uri : uri.substr(slash + 1);
}

PusherAppConfig pusher_app_config(const PusherAppDef& app, const DirConfig* d) {
  PusherAppConfig c;
  c.id = app.id;
  c.key = app.key;
  c.secret = app.secret;
  c.client_events = d->pusher_client_events != 0;
  return c;
}

}  // namespace wsb
