// Shared by the session-loop tests (test_session.cpp,
// test_session_footprint.cpp, test_session_pending_input.cpp): a real
// Session run on its own thread over one end of a socketpair, and the
// client's masked frames.
//
// It includes <CppUTest/TestHarness.h> (the harness checks socketpair()).
#pragma once
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "protocol/frame_encoder.h"
#include "runtime/echo_app.h"
#include "runtime/session.h"
#include "socket_transport.h"

#include <CppUTest/TestHarness.h>

namespace wsb {
namespace session_test {

// A client frame (masked with a fixed key); fin = false: a first fragment.
inline std::string client_frame(Opcode op, const std::string& payload, bool fin = true) {
  const uint8_t key[4] = {9, 8, 7, 6};
  std::string f = encode_client_frame(op, payload, key);
  if (!fin) f[0] = static_cast<char>(f[0] & 0x7F);
  return f;
}

// The client's close frame with code 1000.
inline std::string close_1000() { return client_frame(Opcode::Close, std::string("\x03\xe8", 2)); }

// A Session over fds[0] (a T made from fds[0] and transport_args) behind
// app (default: echo), run by start() on its own thread; fds[1] is the
// client's end. Going out of scope hangs up the client's end and waits for
// the session to end.
template <class T = SocketTransport>
struct SessionHarness {
  int fds[2] = {-1, -1};
  StopFlag stop;
  SessionStats stats;
  EchoApp echo;
  std::unique_ptr<T> transport;
  std::unique_ptr<Session> session;
  std::thread thread;
  std::atomic<int> result{-1};

  template <class... TransportArgs>
  explicit SessionHarness(SessionOptions opt, App* app = nullptr, TransportArgs&&... transport_args) {
    CHECK_EQUAL(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fds));
    transport = std::make_unique<T>(fds[0], std::forward<TransportArgs>(transport_args)...);
    session = std::make_unique<Session>(*transport, app ? *app : echo, opt, stop, stats);
  }
  SessionHarness(const SessionHarness&) = delete;
  SessionHarness& operator=(const SessionHarness&) = delete;
  void start() {
    thread = std::thread([this] { result = session->run(); });
  }
  // The session's result (its close code) once it has ended.
  int join() {
    if (thread.joinable()) thread.join();
    return result.load();
  }
  ~SessionHarness() {
    ::shutdown(fds[1], SHUT_RDWR);
    join();
    close(fds[0]);
    close(fds[1]);
  }
};

}  // namespace session_test
}  // namespace wsb
