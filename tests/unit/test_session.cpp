// The session loop over a socketpair: real poll(), eventfd wake-ups and
// timers, no Apache. Runs under ASan and TSan.
#include <CppUTest/TestHarness.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "protocol/frame_encoder.h"
#include "protocol/frame_parser.h"
#include "runtime/echo_app.h"
#include "runtime/session.h"
#include "runtime/wake_batch.h"
#include "session_test_support.h"
#include "socket_transport.h"
#include "test_deflater.h"

using namespace wsb;

namespace {

struct Frame {
  Opcode op;
  std::string payload;
  uint16_t code = 0;
};

// The client end: sends masked frames, collects what the server sends.
class Client : public FrameSink {
 public:
  explicit Client(int fd) : fd_(fd), parser_(limits()) {}
  static ParserLimits limits() {
    ParserLimits l;
    l.require_mask = false;
    l.max_message_size = l.max_frame_size = 1 << 24;
    return l;
  }
  void send(Opcode op, const std::string& payload) {
    const uint8_t key[4] = {1, 2, 3, 4};
    std::string f = encode_client_frame(op, payload, key);
    CHECK(::send(fd_, f.data(), f.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(f.size()));
  }
  // The next frame within timeout_ms, checked to be a close with this code.
  Frame expect_close(uint16_t code, int timeout_ms = 3000) {
    Frame f;
    CHECK(next(&f, timeout_ms));
    CHECK(f.op == Opcode::Close);
    CHECK_EQUAL(code, f.code);
    return f;
  }
  void send_raw(const std::string& bytes) { ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  // Next frame within timeout_ms; false on timeout or EOF.
  bool next(Frame* out, int timeout_ms = 3000) {
    while (frames_.empty()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return false;
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      parser_.feed(reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(n), *this);
    }
    *out = frames_.front();
    frames_.erase(frames_.begin());
    return true;
  }
  void on_message(Opcode op, std::string_view p) override { frames_.push_back({op, std::string(p)}); }
  void on_ping(std::string_view p) override { frames_.push_back({Opcode::Ping, std::string(p)}); }
  void on_pong(std::string_view p) override { frames_.push_back({Opcode::Pong, std::string(p)}); }
  void on_close(uint16_t code, std::string_view r) override { frames_.push_back({Opcode::Close, std::string(r), code}); }
  void on_error(uint16_t, const char*) override {}

 private:
  int fd_;
  FrameParser parser_;
  std::vector<Frame> frames_;
};

// Sends a greeting from on_open, like the chat's welcome.
class GreetingApp : public App {
 public:
  void on_open(Session& s) override { s.send_text("welcome"); }
  void on_message(Session& s, Opcode op, std::string_view p) override {
    if (op == Opcode::Text) s.send_text(p);
  }
};

// app: the application behind the session (default: echo).
struct Harness : session_test::SessionHarness<> {
  std::unique_ptr<Client> client;
  explicit Harness(SessionOptions opt = SessionOptions(), App* app = nullptr) : SessionHarness(opt, app) {
    client = std::make_unique<Client>(fds[1]);
  }
};

SessionOptions quick() {
  SessionOptions o;
  o.ping_interval_ms = 0;
  o.idle_timeout_ms = 0;
  o.close_timeout_ms = 300;
  return o;
}

}  // namespace

TEST_GROUP(Session) {};

TEST(Session, EchoesAndClosesWithTheClientsCode) {
  Harness h(quick());
  h.start();
  h.client->send(Opcode::Text, "hello");
  h.client->send(Opcode::Binary, std::string("\0\1\2", 3));
  Frame f;
  CHECK(h.client->next(&f));
  CHECK(f.op == Opcode::Text);
  STRCMP_EQUAL("hello", f.payload.c_str());
  CHECK(h.client->next(&f));
  CHECK(f.op == Opcode::Binary);
  CHECK_EQUAL(3u, f.payload.size());
  h.client->send(Opcode::Close, std::string("\x0f\xa0", 2));  // 4000
  h.client->expect_close(4000);
  CHECK_EQUAL(4000, h.join());
  CHECK_EQUAL(2u, h.stats.messages_in.load());
}

TEST(Session, AnswersPingWithSamePayload) {
  Harness h(quick());
  h.start();
  h.client->send(Opcode::Ping, "are you there");
  Frame f;
  CHECK(h.client->next(&f));
  CHECK(f.op == Opcode::Pong);
  STRCMP_EQUAL("are you there", f.payload.c_str());
}

TEST(Session, ProtocolErrorClosesWith1002) {
  Harness h(quick());
  h.start();
  h.client->send_raw(std::string("\x81\x02hi", 4));  // unmasked
  h.client->expect_close(1002);
  CHECK_EQUAL(1002, h.join());
}

TEST(Session, PeerVanishingIs1006) {
  Harness h(quick());
  h.start();
  ::shutdown(h.fds[1], SHUT_RDWR);
  CHECK_EQUAL(1006, h.join());
}

TEST(Session, FramesFromOtherThreadsArriveInOrderInBatches) {
  Harness h(quick());
  h.start();
  constexpr int kFrames = 2000;
  std::thread producer([&] {
    for (int i = 0; i < kFrames; ++i) CHECK(h.session->peer()->deliver(make_frame(encode_frame(Opcode::Text, std::to_string(i)))));
  });
  Frame f;
  for (int i = 0; i < kFrames; ++i) {
    CHECK(h.client->next(&f));
    STRCMP_EQUAL(std::to_string(i).c_str(), f.payload.c_str());
  }
  producer.join();
  // One write per wake-up, not per frame.
  CHECK(h.transport->writes < kFrames);
}

TEST(Session, QueueOverflowClosesWith1008) {
  SessionOptions o = quick();
  o.max_queued_bytes = 1024;
  Harness h(o);
  for (int i = 0; i < 20; ++i) h.session->peer()->deliver(make_frame(encode_frame(Opcode::Text, std::string(100, 'x'))));
  h.start();
  Frame f;
  bool closed = false;
  while (h.client->next(&f, 2000)) {
    if (f.op == Opcode::Close) {
      CHECK_EQUAL(1008, f.code);
      closed = true;
      break;
    }
    CHECK_TEXT(f.op != Opcode::Text, "nothing queued may be sent once the queue overflowed");
  }
  CHECK(closed);
  CHECK_EQUAL(1008, h.join());
  CHECK_EQUAL(1u, h.stats.queue_overflows.load());
}

TEST(Session, APublishersCloseFollowsWhatWasDeliveredBefore) {
  Harness h(quick());
  h.start();
  for (int i = 0; i < 50; ++i) CHECK(h.session->peer()->deliver(make_frame(encode_frame(Opcode::Text, std::to_string(i)))));
  CHECK(h.session->peer()->close(4000, "channel closed"));
  CHECK_FALSE(h.session->peer()->deliver(make_frame(encode_frame(Opcode::Text, "after"))));
  Frame f;
  for (int i = 0; i < 50; ++i) {
    CHECK(h.client->next(&f));
    STRCMP_EQUAL(std::to_string(i).c_str(), f.payload.c_str());
  }
  f = h.client->expect_close(4000);
  STRCMP_EQUAL("channel closed", f.payload.c_str());
  h.client->send(Opcode::Close, std::string("\x0f\xa0", 2));
  CHECK_EQUAL(4000, h.join());
}

TEST(Session, StopFlagSends1001AndWaitsForTheReply) {
  Harness h(quick());
  h.start();
  h.client->send(Opcode::Text, "x");
  Frame f;
  CHECK(h.client->next(&f));
  h.stop.stopping = true;
  h.session->queue().wake();
  h.client->expect_close(1001);
  h.client->send(Opcode::Close, std::string("\x03\xe9", 2));
  CHECK_EQUAL(1001, h.join());
}

TEST(Session, IdlePeerIsClosedAndUnansweredCloseTimesOut) {
  SessionOptions o = quick();
  o.idle_timeout_ms = 150;
  o.close_timeout_ms = 150;
  Harness h(o);
  h.start();
  const Frame f = h.client->expect_close(1001, 2000);
  STRCMP_EQUAL("idle timeout", f.payload.c_str());
  CHECK_EQUAL(1001, h.join());  // returns without our close reply
}

TEST(Session, QuietPeerIsPinged) {
  SessionOptions o = quick();
  o.ping_interval_ms = 100;
  Harness h(o);
  h.start();
  Frame f;
  CHECK(h.client->next(&f, 2000));
  CHECK(f.op == Opcode::Ping);
  CHECK_EQUAL(1u, h.stats.pings_sent.load());
}

// The hub writing to the lent socket while the session thread writes its own
// frames (pongs): no interleaved bytes, every frame intact and in order, and
// nothing after the close frame. Frames up to 48 KiB so the socketpair fills
// and the hub has to hand partial writes back to the session.
TEST(Session, HubWritesAndSessionWritesNeverInterleave) {
  Harness h(quick());
  h.transport->direct = true;
  h.start();
  constexpr int kFrames = 600;
  constexpr int kPings = 200;
  std::atomic<bool> hub_ok{true};
  std::thread hub([&] {
    for (int i = 0; i < kFrames;) {
      // A real hub outruns no reader this far: stay under the queue limit
      // (4 MiB) so the session does not cut the client off as too slow.
      while (h.session->queue().queued_bytes() > (1u << 20)) std::this_thread::yield();
      WakeBatch batch;  // like the hub: the batch's end writes or wakes
      for (int k = 0; k < 1 + i % 7 && i < kFrames; ++k, ++i) {
        std::string text = std::to_string(i) + ":" + std::string((i * 977) % (48 << 10), 'a' + i % 26);
        if (!h.session->peer()->deliver(make_frame(encode_frame(Opcode::Text, text)))) hub_ok = false;
      }
    }
  });
  std::thread pinger([&] {
    for (int i = 0; i < kPings; ++i) h.client->send(Opcode::Ping, "p" + std::to_string(i));
  });
  int texts = 0, pongs = 0;
  Frame f;
  while ((texts < kFrames || pongs < kPings) && h.client->next(&f, 5000)) {
    if (f.op == Opcode::Text) {
      size_t colon = f.payload.find(':');
      CHECK(colon != std::string::npos);
      int n = std::stoi(f.payload.substr(0, colon));
      CHECK_EQUAL(texts, n);
      CHECK_EQUAL(static_cast<size_t>((n * 977) % (48 << 10)), f.payload.size() - colon - 1);
      ++texts;
    } else if (f.op == Opcode::Pong) {
      CHECK_EQUAL("p" + std::to_string(pongs), f.payload);
      ++pongs;
    } else {
      FAIL(("unexpected frame, opcode " + std::to_string(static_cast<int>(f.op)) + " code " + std::to_string(f.code)).c_str());
    }
  }
  hub.join();
  pinger.join();
  CHECK(hub_ok);
  CHECK_EQUAL(kFrames, texts);
  CHECK_EQUAL(kPings, pongs);

  // After the close frame, hub deliveries must not reach the wire.
  h.client->send(Opcode::Close, std::string("\x03\xe8", 2));
  CHECK(h.client->next(&f));
  CHECK(f.op == Opcode::Close);
  CHECK_EQUAL(1000, h.join());
  {
    WakeBatch batch;
    h.session->peer()->deliver(make_frame(encode_frame(Opcode::Text, "late")));
  }
  CHECK_FALSE(h.client->next(&f, 200));
}

TEST(Session, WhatOnOpenSendsIsTheFirstFrameEvenWithFramesQueuedBefore) {
  GreetingApp app;
  Harness h(quick(), &app);
  h.transport->direct = true;
  // The hub delivered before the session thread got to run.
  {
    WakeBatch batch;
    h.session->peer()->deliver(make_frame(encode_frame(Opcode::Text, "from the hub")));
  }
  h.start();
  Frame f;
  CHECK(h.client->next(&f));
  STRCMP_EQUAL("welcome", f.payload.c_str());
  CHECK(h.client->next(&f));
  STRCMP_EQUAL("from the hub", f.payload.c_str());
}

// permessage-deflate agreed: compressed client messages are inflated, then
// held to the same rules as plain ones (size limit 1009, UTF-8 1007).
TEST(Session, CompressedMessagesAreInflatedAndCheckedLikePlainOnes) {
  SessionOptions o = quick();
  o.limits.allow_compressed = true;
  o.limits.max_message_size = 64 * 1024;
  auto compressed = [](const std::string& bytes, wsb_test::Deflater& d) {
    const uint8_t key[4] = {9, 8, 7, 6};
    std::string f = encode_client_frame(Opcode::Text, d.compress(bytes), key);
    f[0] = static_cast<char>(f[0] | 0x40);
    return f;
  };
  {
    Harness h(o);
    h.start();
    const std::string text = "héllo, compressed wörld " + std::string(5000, 'x');
    for (int i = 0; i < 2; ++i) {
      wsb_test::Deflater d;  // no context takeover: the handshake said so
      h.client->send_raw(compressed(text, d));
    }
    Frame f;
    for (int i = 0; i < 2; ++i) {
      CHECK(h.client->next(&f));
      CHECK(f.op == Opcode::Text);
      CHECK(f.payload == text);  // echoed uncompressed
    }
  }
  {
    Harness h(o);
    h.start();
    wsb_test::Deflater d;
    h.client->send_raw(compressed(std::string(1 << 20, 'z'), d));  // ~1 KB on the wire
    h.client->expect_close(1009);
  }
  {
    Harness h(o);
    h.start();
    wsb_test::Deflater d;
    h.client->send_raw(compressed(std::string("bad \xc3\x28 utf-8", 13), d));
    h.client->expect_close(1007);
  }
}
