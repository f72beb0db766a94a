#include "backend/backend_app.h"

#include <chrono>

#include "protocol/frame_encoder.h"
#include "runtime/clock.h"

namespace wsb {

namespace {
int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

BackendApp::BackendApp(BackendConnection& conn, BackendActions open_actions, BackendClient& client,
                       ChannelDirectory* channels, BackendCounters* counters, Log log)
    : conn_(conn),
      open_actions_(std::move(open_actions)),
      client_(client),
      channels_(channels),
      counters_(counters),
      log_(std::move(log)) {}

void BackendApp::on_open(Session& s) {
  apply(s, open_actions_);
  open_actions_ = BackendActions();
  pump(s);  // a backend may have asked for more (e.g. a refresh)
}

void BackendApp::push(Session& s, WsEvent ev) {
  if (failed_) return;
  if (conn_.push(std::move(ev)) == PushResult::Overflow) {
    // The backend is slower than this client: the same answer as a full
    // outbound queue.
    if (counters_) counters_->failure(-1, "client_overflow");
    log_(false, "client events queued beyond the limit while the backend was busy; closing with 1008");
    failed_ = true;
    s.close(close_code::kPolicyViolation, "backend busy: too many queued messages");
  }
}

void BackendApp::on_message(Session& s, Opcode op, std::string_view payload) {
  push(s, WsEvent{op == Opcode::Text ? WsEventType::Text : WsEventType::Binary, std::string(payload)});
}

void BackendApp::on_ping(Session& s, std::string_view payload) {
  push(s, WsEvent{WsEventType::Ping, std::string(payload)});
}

void BackendApp::on_pong(Session& s, std::string_view payload) {
  push(s, WsEvent{WsEventType::Pong, std::string(payload)});
}

void BackendApp::on_close_frame(Session& s, uint16_t code, std::string_view reason) {
  std::string content;
  if (code != close_code::kNoStatus) {
    content.push_back(static_cast<char>(code >> 8));
    content.push_back(static_cast<char>(code & 0xff));
    content.append(reason);
  }
  push(s, WsEvent{WsEventType::Close, std::move(content)});
}

void BackendApp::after_input(Session& s) { pump(s); }

int64_t BackendApp::deadline_ms() { return failed_ ? -1 : conn_.next_deadline_ms(); }

void BackendApp::on_deadline(Session& s, int64_t now_ms) {
  apply(s, conn_.on_timer(now_ms));
  pump(s);
}

void BackendApp::pump(Session& s) {
  // One request in flight: each call returns before the next is made, and
  // whatever the client sent meanwhile waits in the socket for the next round.
  for (int i = 0; i < 64 && !failed_ && conn_.ready(); ++i) {
    BackendRequest req = conn_.take_request(unix_now());
    int64_t t0 = monotonic_us();
    BackendResponse resp = client_.call(req);
    int64_t took = monotonic_us() - t0;
    BackendActions a = conn_.on_response(resp, monotonic_ms());
    if (counters_) {
      counters_->request_done(took, resp.status);
      if (a.failed) counters_->failure(resp.status, a.fail_reason);
    }
    if (a.failed && !failed_) log_(true, "backend failed: " + a.fail_reason + "; closing the connection with 1011");
    apply(s, a);
  }
}

void BackendApp::apply(Session& s, const BackendActions& a) {
  if (channels_) {
    const std::string& id = conn_.connection_id();
    for (const std::string& ch : a.subscribe) {
      if (!channels_->subscribe(id, ch, s.peer())) log_(false, "subscription refused (too many channels): " + ch);
    }
    for (const std::string& ch : a.unsubscribe) channels_->unsubscribe(id, ch);
  }
  for (const ClientSend& m : a.sends) {
    switch (m.kind) {
      case ClientSend::Text: s.send_text(m.data); break;
      case ClientSend::Binary: s.send_binary(m.data); break;
      case ClientSend::Ping: s.send_frame(make_frame(encode_frame(Opcode::Ping, m.data))); break;
      case ClientSend::Pong: s.send_frame(make_frame(encode_frame(Opcode::Pong, m.data))); break;
      case ClientSend::Close: s.close(m.close_code, m.data); break;  // 0: a close without a code
    }
  }
  if (!a.sends.empty()) conn_.note_client_send(monotonic_ms());
  if (a.failed && !failed_) {
    failed_ = true;
    s.close(close_code::kInternalError, "backend error");
  }
  if (a.disconnect) s.drop();
}

void BackendApp::on_close(Session& s) {
  // The client vanished without a close handshake: the backend hears
  // DISCONNECT (one last request, as Pushpin sends it).
  if (!failed_ && !s.close_received() && !conn_.finished()) {
    conn_.push(WsEvent{WsEventType::Disconnect, std::string()});
    if (conn_.ready()) {
      BackendRequest req = conn_.take_request(unix_now());
      int64_t t0 = monotonic_us();
      BackendResponse resp = client_.call(req);
      if (counters_) counters_->request_done(monotonic_us() - t0, resp.status);
      conn_.on_response(resp, monotonic_ms());
    }
  }
  if (channels_) channels_->unsubscribe_all(conn_.connection_id());
}

}  // namespace wsb
