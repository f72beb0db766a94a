// Publishing into a room from the server side (the HTTP POST handler, so a
// PHP backend can post with one curl call). The Apache glue reads the body,
// calls publish_from_http and writes publish_response_body with
// http_status.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "chat/chat_config.h"
#include "runtime/bus.h"

namespace wsb {

struct PublishResult {
  int http_status = 500;  // 202 accepted, 400 bad request, 413 text too long, 503 bus refused
  uint64_t seq = 0;       // the message's sequence number when 202
  std::string error;      // error code as in error frames ("bad-room", ...), empty when 202
  std::string reason;     // human-readable explanation of error
};

// body: {"room":R,"text":T,"from":NAME?}; from defaults to "server" and
// follows the user name rules. 202 means the message is in the bus: every
// engine will apply it (creating the room's history if nobody joined yet).
PublishResult publish_from_http(std::string_view body, Bus& bus, const ChatConfig& config,
                                int64_t now_ms);

// {"seq":N} for 202, {"error":CODE,"reason":TEXT} otherwise.
std::string publish_response_body(const PublishResult& result);

}  // namespace wsb
