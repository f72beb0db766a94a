// One WebSocket connection of `WSBridgeApp backend`, seen from the backend
// side, without I/O: client events go in (push), requests come out
// (take_request), the backend's responses go in (on_open_response,
// on_response) and come out as actions for the session (frames to send,
// channels to (un)subscribe, detach, fail). The protocol is Pushpin's
// WebSocket-over-HTTP with GRIP (docs/backend.md): one request in flight,
// client events queue meanwhile and go together in the next request.
//
// Times: take_request gets wall-clock Unix seconds (for Grip-Sig's exp);
// everything with _ms is the session's monotonic clock.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backend/backend_headers.h"
#include "backend/grip_control.h"
#include "backend/ws_events.h"

namespace wsb {

struct BackendConfig {
  std::string sig_key;  // the raw key (parse_sig_key); empty: no Grip-Sig
  std::string sig_iss = "wsbridge";
  int64_t sig_ttl_s = 3600;  // Grip-Sig exp = now + this (Pushpin: 3600)
  std::string default_message_prefix = "m:";
  // A request takes queued events up to this many bytes of body (the first
  // event always goes, however big) and this many events (1 is Pushpin's
  // one_event route option).
  size_t max_request_body = 1 << 20;
  size_t max_events_per_request = 1000;
  // Client events waiting for the request in flight; beyond, push() says
  // Overflow and the session closes the client (1008, as a full outbound
  // queue does).
  size_t max_queued_bytes = 4 << 20;
  // A response beyond either bound fails the connection.
  size_t max_response_body = 4 << 20;
  size_t max_events_per_response = 10000;
  size_t max_error_body = 64 << 10;  // an OPEN refusal's body is cut here
  size_t max_meta = 32;              // Set-Meta-* entries kept
  size_t max_meta_value = 1024;
  size_t max_subscriptions = 100;
};

struct ClientSend {
  enum Kind { Text, Binary, Ping, Pong, Close };
  Kind kind = Text;
  std::string data;         // message, ping/pong payload, or close reason
  uint16_t close_code = 0;  // Close: 0 = a close frame without a code
};

struct KeepAlive {
  bool enabled = false;
  ClientSend message;
  int64_t timeout_s = 0;
  KeepAliveMode mode = KeepAliveMode::Idle;
};

struct BackendActions {
  std::vector<ClientSend> sends;  // in order; a Close is always the last
  std::vector<std::string> subscribe, unsubscribe;
  // The backend let go (c:detach): keep the client and its subscriptions,
  // forward nothing more of its messages, answer its close yourself.
  bool detach = false;
  bool disconnect = false;  // the backend sent DISCONNECT: drop TCP, no close frame (as Pushpin)
  bool failed = false;      // close the client with 1011 and log fail_reason
  std::string fail_reason;
  std::vector<std::string> notes;  // things ignored or dropped, for a debug log line
};

enum class PushResult { Queued, Dropped, Overflow };

// What the session sets on the sub-request (after the client's filtered
// handshake headers; Content-Length is the session's), and what it got.
struct BackendRequest {
  HeaderList headers;
  std::string body;
};

struct BackendResponse {
  int status = 0;  // 0: no answer at all
  HeaderList headers;
  std::string body;
};

class BackendConnection {
 public:
  BackendConnection(BackendConfig config, std::string connection_id);

  // See backend_headers.h; the session copies the client's handshake headers
  // onto the sub-request, minus these, then sets take_request's headers.
  static HeaderList filter_client_headers(const HeaderList& client) {
    return wsb::filter_client_headers(client);
  }

  // A client event. Open is the bridge's own (queued at construction).
  // Disconnect (the client is gone without a close frame) replaces every
  // queued event, as in Pushpin. Dropped: after a close, detach, failure or
  // disconnect. Overflow: not queued, max_queued_bytes reached (each event
  // counts 24 bytes of framing on top of its content).
  PushResult push(WsEvent event);

  // A request can go now: something to send and none in flight.
  bool ready() const;

  // The next request: queued events as one body, and the headers to set
  // (Sec-WebSocket-Extensions, Grip-Sig, Accept, Connection-Id,
  // Content-Type, Meta-*). Call only when ready().
  BackendRequest take_request(int64_t now_unix);

  // The answer to OPEN. accepted: answer the client 101 with headers, then
  // apply actions (they may already hold messages, even a Close).
  // Otherwise answer status/headers/body (the backend's own refusal, or
  // 502 for an unusable answer) and log reason; status 0 means the client
  // went away meanwhile: nothing to answer (a DISCONNECT may still be ready()).
  struct OpenResult {
    bool accepted = false;
    int status = 0;
    HeaderList headers;
    std::string body;
    std::string reason;
    BackendActions actions;
  };
  OpenResult on_open_response(const BackendResponse& response, int64_t now_ms);

  // The answer to every later request (also the session's own failure to
  // get one: pass status 0, or 504 for a timeout, and it fails with 1011).
  BackendActions on_response(const BackendResponse& response, int64_t now_ms);

  // Timers: keep-alive messages (c:keep-alive), a send-delayed message, and
  // the backend's Keep-Alive-Interval (an empty request when no request
  // went for that long). -1 if none is armed.
  int64_t next_deadline_ms() const;
  // What is due at now_ms: keep-alive or delayed sends; a due refresh makes
  // ready() true.
  BackendActions on_timer(int64_t now_ms);
  // A message went to the client (a published one, say): an idle-mode
  // keep-alive starts counting again.
  void note_client_send(int64_t now_ms);

  bool grip() const { return grip_; }
  bool detached() const { return state_ == State::Detached; }
  // Nothing more will go to the backend or come from it. A detached
  // connection is finished but lives on: its subscriptions and its
  // keep-alive / delayed-send timers still serve the client.
  bool finished() const;
  const std::string& connection_id() const { return connection_id_; }
  const HeaderList& meta() const { return meta_; }  // Set-Meta-* values, sent as Meta-*
  const std::set<std::string>& subscriptions() const { return subscriptions_; }
  const KeepAlive& keep_alive() const { return keep_alive_; }
  // c:set-meta and c:session values. Pushpin keeps them for publish filters
  // and session state, never as Meta-* headers; we keep them for the same
  // future use and apply neither yet.
  const std::map<std::string, std::string>& control_meta() const { return control_meta_; }
  const std::string& session_id() const { return session_id_; }

 private:
  enum class State {
    Connecting,
    Open,
    Closing,
    ClientClosed,
    Detached,
    Disconnecting,
    Done,
    Failed
  };

  bool check_answer(const BackendResponse& response, BackendActions* actions);
  void apply_headers(const HeaderList& headers, BackendActions* actions);
  void process_events(std::vector<WsEvent>& events, size_t first, int64_t now_ms,
                      BackendActions* actions);
  void handle_message(WsEvent& event, BackendActions* actions);
  void handle_control(std::string_view json, int64_t now_ms, BackendActions* actions);
  void handle_close(const std::string& content, BackendActions* actions);
  void fail(BackendActions* actions, std::string reason);
  void send(BackendActions* actions, ClientSend message);

  BackendConfig config_;
  std::string connection_id_;
  State state_ = State::Connecting;
  bool in_flight_ = false;
  bool open_pending_ = true;
  bool refresh_pending_ = false;
  bool detach_close_pending_ = false;
  bool disconnect_sent_ = false;
  bool close_sent_ = false;         // a close frame is on its way to the client
  bool request_had_close_ = false;  // the request in flight carries the client's CLOSE
  std::string client_close_;        // that CLOSE's content, echoed if the backend does not answer
  std::deque<WsEvent> queue_;
  size_t queued_bytes_ = 0;
  bool grip_ = false;
  std::string message_prefix_;
  HeaderList meta_;
  std::set<std::string> subscriptions_;
  std::map<std::string, std::string> control_meta_;
  std::string session_id_;
  KeepAlive keep_alive_;
  int64_t keep_alive_due_ms_ = -1;
  std::optional<ClientSend> delayed_;
  int64_t delayed_due_ms_ = -1;
  int64_t refresh_interval_ms_ = -1;
  int64_t refresh_due_ms_ = -1;
};

}  // namespace wsb
