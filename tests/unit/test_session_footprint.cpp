// What an idle connection keeps on the heap (docs/capacity.md, "Where the
// memory goes"): once it has been quiet for a moment, no read buffer, no
// parser buffer and no frame list grown by a burst; while it is busy, the
// buffers are reused rather than allocated per message.
#include <CppUTest/TestHarness.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <chrono>
#include <thread>
#include <vector>

#include "protocol/frame_encoder.h"
#include "protocol/frame_parser.h"
#include "runtime/echo_app.h"
#include "runtime/session.h"
#include "session_test_support.h"
#include "socket_transport.h"

namespace wsb {

// Reads the session's private buffers (a friend of Session and OutboundQueue).
struct SessionFootprintProbe {
  static size_t batch_capacity(const Session& s) { return s.batch_.capacity(); }
  static size_t pending_capacity(const Session& s) { return s.pending_.capacity(); }
  static size_t queue_capacity(const OutboundQueue& q) { return q.items_.capacity(); }
  static void set_idle_release_ms(Session& s, int ms) { s.idle_release_ms_ = ms; }
};

}  // namespace wsb

using namespace wsb;
using session_test::client_frame;
using session_test::close_1000;

namespace {

const size_t kSmallString = std::string().capacity();

struct NullSink : FrameSink {
  void on_message(Opcode, std::string_view p) override { messages.emplace_back(p); }
  void on_ping(std::string_view) override {}
  void on_pong(std::string_view) override {}
  void on_close(uint16_t, std::string_view) override {}
  void on_error(uint16_t, const char*) override { failed = true; }
  std::vector<std::string> messages;
  bool failed = false;
};

// Records the capacity of the buffer each read() gets, i.e. what the
// session kept since its previous read.
class RecordingTransport : public SocketTransport {
 public:
  using SocketTransport::SocketTransport;
  ReadStatus read(std::string& buf, size_t max) override {
    capacities.push_back(buf.capacity());
    times.push_back(std::chrono::steady_clock::now());
    ReadStatus st = SocketTransport::read(buf, max);
    statuses.push_back(st);
    return st;
  }
  // The buffer's capacity at the first read that returned data after t.
  size_t first_data_capacity_after(std::chrono::steady_clock::time_point t) const {
    for (size_t i = 0; i < statuses.size(); ++i)
      if (times[i] >= t && statuses[i] == ReadStatus::Data) return capacities[i];
    return 0;
  }
  std::vector<size_t> capacities;
  std::vector<std::chrono::steady_clock::time_point> times;
  std::vector<ReadStatus> statuses;
};

bool read_exactly(int fd, size_t n) {
  std::string buf(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, &buf[got], n - got, 0);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

}  // namespace

TEST_GROUP(SessionFootprint) {};

TEST(SessionFootprint, WholeFramesInTheBufferAllocateNothing) {
  FrameParser p{ParserLimits{}};
  NullSink sink;
  std::string bytes = client_frame(Opcode::Text, std::string(3000, 'a')) + client_frame(Opcode::Binary, "b");
  CHECK(p.feed(reinterpret_cast<uint8_t*>(&bytes[0]), bytes.size(), sink));
  CHECK_EQUAL(2u, sink.messages.size());
  CHECK_EQUAL(0u, p.heap_bytes());
  std::string ping = client_frame(Opcode::Ping, "hi");  // a control frame's 125-byte buffer
  CHECK(p.feed(reinterpret_cast<uint8_t*>(&ping[0]), ping.size(), sink));
  p.release_idle_buffers();
  CHECK_EQUAL(0u, p.heap_bytes());
}

TEST(SessionFootprint, AFrameSpanningReadsIsReservedOnceAndFreedOnRelease) {
  FrameParser p{ParserLimits{}};
  NullSink sink;
  const std::string payload(100000, 'b');
  std::string bytes = client_frame(Opcode::Binary, payload);
  size_t first = 1000;
  CHECK(p.feed(reinterpret_cast<uint8_t*>(&bytes[0]), first, sink));
  CHECK(p.heap_bytes() >= payload.size());  // the whole frame, not the first read's share
  size_t reserved = p.heap_bytes();
  for (size_t off = first; off < bytes.size(); off += 7000) {
    size_t n = std::min<size_t>(7000, bytes.size() - off);
    CHECK(p.feed(reinterpret_cast<uint8_t*>(&bytes[off]), n, sink));
    if (off + n < bytes.size()) CHECK_EQUAL(reserved, p.heap_bytes());  // never regrown
  }
  CHECK_EQUAL(1u, sink.messages.size());
  CHECK(sink.messages[0] == payload);
  p.release_idle_buffers();
  CHECK_EQUAL(0u, p.heap_bytes());
}

TEST(SessionFootprint, TheMessageBufferIsReusedUntilReleased) {
  FrameParser p{ParserLimits{}};
  NullSink sink;
  std::string bytes = client_frame(Opcode::Text, std::string(3000, 'r'));
  for (int i = 0; i < 3; ++i) {
    CHECK(p.feed(reinterpret_cast<uint8_t*>(&bytes[0]), 100, sink));  // spans two reads
    CHECK(p.feed(reinterpret_cast<uint8_t*>(&bytes[100]), bytes.size() - 100, sink));
  }
  CHECK_EQUAL(3u, sink.messages.size());
  CHECK(p.heap_bytes() >= 3000);  // kept for the next message
  p.release_idle_buffers();
  CHECK_EQUAL(0u, p.heap_bytes());
}

TEST(SessionFootprint, AFragmentedMessageKeepsItsBufferUntilTheLastFragment) {
  FrameParser p{ParserLimits{}};
  NullSink sink;
  std::string a = client_frame(Opcode::Text, std::string(500, 'x'), false);
  std::string b = client_frame(Opcode::Continuation, std::string(500, 'y'));
  CHECK(p.feed(reinterpret_cast<uint8_t*>(&a[0]), a.size(), sink));
  CHECK(p.heap_bytes() >= 500);  // the first fragment waits for the rest
  std::string ping = client_frame(Opcode::Ping, "p");
  CHECK(p.feed(reinterpret_cast<uint8_t*>(&ping[0]), ping.size(), sink));
  CHECK(p.heap_bytes() >= 500);
  p.release_idle_buffers();  // a message in progress keeps its bytes
  CHECK(p.heap_bytes() >= 500);
  CHECK(p.feed(reinterpret_cast<uint8_t*>(&b[0]), b.size(), sink));
  CHECK_EQUAL(1u, sink.messages.size());
  CHECK_EQUAL(1000u, sink.messages[0].size());
  p.release_idle_buffers();
  CHECK_EQUAL(0u, p.heap_bytes());
}

// While messages keep coming the read buffer is reused; once the
// connection has been quiet for idle_release_ms_ it is given back, so the
// first read after the pause starts from an empty (small-string) buffer.
TEST(SessionFootprint, TheReadBufferIsGivenBackWhenTheConnectionIsQuiet) {
  session_test::SessionHarness<RecordingTransport> h{SessionOptions()};
  SessionFootprintProbe::set_idle_release_ms(*h.session, 50);
  h.start();
  const std::string msg(20000, 'm');
  const size_t echo_size = encode_frame(Opcode::Binary, msg).size();
  std::string f = client_frame(Opcode::Binary, msg);
  auto round = [&] {
    CHECK(::send(h.fds[1], f.data(), f.size(), 0) == static_cast<ssize_t>(f.size()));
    CHECK(read_exactly(h.fds[1], echo_size));
  };
  round();
  auto busy = std::chrono::steady_clock::now();
  round();  // right after the first: the buffer is still there
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto quiet = std::chrono::steady_clock::now();
  round();  // after a pause: given back
  const std::string close = close_1000();
  ::send(h.fds[1], close.data(), close.size(), 0);
  h.join();
  CHECK(h.transport->first_data_capacity_after(busy) > kSmallString);       // busy: reused
  CHECK_EQUAL(kSmallString, h.transport->first_data_capacity_after(quiet));  // quiet: given back
}

// A burst of 1,000 queued frames goes out in one batch; the lists that
// carried it do not stay that large.
TEST(SessionFootprint, ABurstDoesNotLeaveLargeFrameLists) {
  session_test::SessionHarness<> h{SessionOptions()};
  FramePtr frame = make_frame(encode_frame(Opcode::Text, "burst"));
  for (int i = 0; i < 1000; ++i) h.session->queue().push(frame);
  h.start();
  CHECK(read_exactly(h.fds[1], 1000 * frame->size()));
  const std::string close = close_1000();
  ::send(h.fds[1], close.data(), close.size(), 0);
  h.join();
  CHECK(SessionFootprintProbe::batch_capacity(*h.session) <= 64);
  CHECK(SessionFootprintProbe::pending_capacity(*h.session) <= 64);
  CHECK(SessionFootprintProbe::queue_capacity(h.session->queue()) <= 64);
}
