// Apache's side of the Pusher webhooks: the targets of every
// WSBridgePusherWebhook (main server and virtual hosts) resolved for this
// child, and its webhook thread (pusher/webhook_dispatcher.h).
#pragma once
#include <httpd.h>

#include <memory>

#include "pusher/webhook_dispatcher.h"

namespace wsb {

// nullptr when no webhook is configured. main: the main server.
std::unique_ptr<WebhookDispatcher> start_pusher_webhooks(server_rec* main);

}  // namespace wsb
