// Publishing into a room from the server side (the HTTP POST handler, so a
// PHP backend can post with one curl call). The Apache glue reads the body,
// calls publish_from_http and writes publish_response_body with
// http_status.
#pragma once
#include <cstdint>
#include <functional>
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
  bool replay = false;    // 202 for an Idempotency-Key seen before: seq is the original's
};

// The Idempotency-Key of a publish (the same semantics as a client's "cid",
// docs/chat-protocol.md): the first message of a room with a key wins in bus
// order; a repeat is not published and answers with the original's seq.
struct Idempotency {
  std::string key;  // the header's value; empty: no key
  // The seq of the room's message first published with this key (0 if
  // none is known) once this process's engine applied the bus up to
  // `upto` (the glue waits a bounded time for it; 0: as it is now).
  std::function<uint64_t(const std::string& room, const std::string& key, uint64_t upto)> original;
};

// body: {"room":R,"text":T,"from":NAME?}; from defaults to "server" and
// follows the user name rules. 202 means the message is in the bus: every
// engine will apply it (creating the room's history if nobody joined yet).
// With idempotency (a key set): an invalid key is a 400 bad-cid; a key the
// engine knows for the room answers its seq with replay, publishing nothing;
// otherwise the message is published with the key as its cid, and if
// another publish with the same key got onto the bus first, that one's seq
// is the answer (replay).
PublishResult publish_from_http(std::string_view body, Bus& bus, const ChatConfig& config,
                                int64_t now_ms, const Idempotency* idempotency = nullptr);

// {"seq":N} for 202 ({"seq":N,"replay":true} for a replay),
// {"error":CODE,"reason":TEXT} otherwise.
std::string publish_response_body(const PublishResult& result);

}  // namespace wsb
