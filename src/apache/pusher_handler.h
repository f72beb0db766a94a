// WSBridgeApp pusher and SetHandler wsbridge-pusher-api: the Apache side of
// the Pusher protocol adapter (src/pusher/).
#pragma once
#include <httpd.h>

#include <string>

#include "apache/config.h"
#include "pusher/pusher_app.h"

namespace wsb {

// The API handler (register_hooks).
int pusher_api_handler(request_rec* r);

// Gives this child's engine the Pusher renderer, once.
void enable_pusher_engine();

// A socket id unique among this server's live processes ("<prefix>.<n>").
std::string next_pusher_socket_id();

// The key a client connects with: the last segment of /app/<key>.
std::string pusher_key_of(const request_rec* r);

PusherAppConfig pusher_app_config(const PusherAppDef& app, const DirConfig* d);

}  // namespace wsb
