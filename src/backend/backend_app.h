// WSBridgeApp backend: the session side of the backend bridge. Client
// events go into the connection's BackendConnection; after each read round
// (and when a timer is due) the queued events go to the backend in one
// request, made by a BackendClient (in Apache: a sub-request on this
// session's thread, src/apache/backend_subrequest.cpp); the answer's
// actions become frames, closes and channel subscriptions in the engine.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "backend/backend_conn.h"
#include "runtime/session.h"

namespace wsb {

// How a request reaches the backend. call() blocks this session's thread
// until the answer (status 0: no answer; 504: timed out).
class BackendClient {
 public:
  virtual ~BackendClient() = default;
  virtual BackendResponse call(const BackendRequest& request) = 0;
};

// Where subscriptions go (the channel engine); namespace "grip".
class ChannelDirectory {
 public:
  virtual ~ChannelDirectory() = default;
  virtual bool subscribe(const std::string& conn_id, std::string_view channel, const PeerPtr& peer) = 0;
  virtual void unsubscribe(const std::string& conn_id, std::string_view channel) = 0;
  virtual void unsubscribe_all(const std::string& conn_id) = 0;
};

// What the bridge counts (the status page's backend figures).
struct BackendCounters {
  virtual ~BackendCounters() = default;
  // Every request: how long it took and the HTTP status (0: no answer).
  virtual void request_done(int64_t micros, int status) = 0;
  // A failure that closes the connection: what answered (status) and why.
  virtual void failure(int status, const std::string& reason) = 0;
};

class BackendApp : public App {
 public:
  using Log = std::function<void(bool error, const std::string& line)>;

  // conn: after its OPEN was answered and accepted; open_actions: what that
  // answer asked for (messages, subscriptions), applied in on_open.
  BackendApp(BackendConnection& conn, BackendActions open_actions, BackendClient& client,
             ChannelDirectory* channels, BackendCounters* counters, Log log);

  void on_open(Session& s) override;
  void on_message(Session& s, Opcode op, std::string_view payload) override;
  bool auto_pong() const override { return false; }  // the backend answers PING (as behind Pushpin)
  void on_ping(Session& s, std::string_view payload) override;
  void on_pong(Session& s, std::string_view payload) override;
  void on_close_frame(Session& s, uint16_t code, std::string_view reason) override;
  void after_input(Session& s) override;
  int64_t deadline_ms() override;
  void on_deadline(Session& s, int64_t now_ms) override;
  void on_close(Session& s) override;

 private:
  void push(Session& s, WsEvent ev);
  void pump(Session& s);  // requests while the connection is ready
  void apply(Session& s, const BackendActions& a);

  BackendConnection& conn_;
  BackendActions open_actions_;
  BackendClient& client_;
  ChannelDirectory* channels_;
  BackendCounters* counters_;
  Log log_;
  bool failed_ = false;
};

}  // namespace wsb
