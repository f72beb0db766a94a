// OutboundQueue direct writes through an encoder (TLS hub writes): the
// producer encodes each batch under the write lock and sends the result;
// what the socket does not take is encoded bytes, handed back in order; an
// encoder that is not ready (the transport holds bytes of its own) or fails
// leaves everything to the session. The encoder here is a stand-in with a
// visible framing ("[n:bytes]" per batch), so the tests can see batch
// boundaries and that nothing is encoded twice; the real one (mod_ssl) is
// exercised by tests/integration/test_hub_writes.py over wss://. Over a real
// socketpair; runs under ASan and TSan.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/outbound_queue.h"
#include "runtime/wake_batch.h"

#include "direct_write_support.h"

#include <CppUTest/TestHarness.h>

using namespace wsb;
using namespace wsb::direct_write_test;

namespace {

class BracketEncoder : public DirectEncoder {
 public:
  bool ready() const override { return is_ready; }
  bool encode(const std::vector<FramePtr>& frames, std::string& out) override {
    ++batches;
    if (fail) return false;
    std::string body;
    for (const auto& f : frames) body += *f;
    out += "[" + std::to_string(body.size()) + ":" + body + "]";
    return true;
  }
  bool is_ready = true;
  bool fail = false;
  int batches = 0;  // guarded by the queue's write lock
};

// A session's queue and socket whose direct writes go through the encoder.
struct EncodedPair : Pair {
  BracketEncoder enc;
  void lend() { Pair::lend(&enc); }
};

}  // namespace

TEST_GROUP(DirectWriteEncoded) {};

TEST(DirectWriteEncoded, ABatchIsEncodedOnceAndSentWithoutAWakeUp) {
  EncodedPair p;
  p.lend();
  deliver_batch(p.q, {"one,", "two,", "three"});
  CHECK_EQUAL(std::string("[13:one,two,three]"), read_all(p.fds[1]));
  CHECK_FALSE(woken(*p.q));
  CHECK_EQUAL(1, p.enc.batches);
  // Counted as the messages and payload delivered, not the encoded bytes.
  CHECK_EQUAL(3u, p.stats.messages_out.load());
  CHECK_EQUAL(3u, p.stats.hub_writes.load());
  CHECK_EQUAL(13u, p.stats.bytes_out.load());
}

TEST(DirectWriteEncoded, AnEncoderThatIsNotReadyLeavesTheBatchToTheSession) {
  EncodedPair p;
  p.lend();
  p.enc.is_ready = false;  // the transport holds bytes that must go first
  deliver_batch(p.q, {"x"});
  CHECK_TRUE(woken(*p.q));
  CHECK_EQUAL(0, p.enc.batches);
  CHECK_EQUAL(1u, p.q->queued_bytes());  // still queued, as plain frames
  CHECK_EQUAL(std::string(), read_all(p.fds[1]));
}

TEST(DirectWriteEncoded, AFullSocketHandsBackEncodedBytesInOrder) {
  EncodedPair p;
  p.shrink_buffers();
  p.lend();
  const std::string body = deliver_large_batch(p.q);
  const std::string first = "[" + std::to_string(body.size()) + ":" + body + "]";
  CHECK_TRUE(woken(*p.q));  // the socket filled up: the session takes over
  std::string got = read_all(p.fds[1]);
  CHECK(got.size() < first.size());
  CHECK_EQUAL(1, p.enc.batches);

  // Until the session has written the rest, producers encode nothing more.
  deliver_batch(p.q, {"later"});
  CHECK_EQUAL(1, p.enc.batches);
  CHECK_EQUAL(std::string(), read_all(p.fds[1]));

  // The session: the unsent encoded rest (from mid-buffer) goes out as it
  // is; what was queued since is still plain frames, for the session to
  // encode itself.
  std::vector<FramePtr> encoded, plain;
  {
    auto writing = p.q->lock_writes();
    p.q->take_unsent(encoded);
    p.q->drain(plain);
  }
  for (const auto& f : encoded) got += *f;
  CHECK(first == got);
  CHECK_EQUAL(1u, plain.size());
  CHECK_EQUAL(std::string("later"), *plain[0]);

  // Handed back: the next batch is encoded and sent directly again.
  deliver_batch(p.q, {"again"});
  CHECK_EQUAL(std::string("[5:again]"), read_all(p.fds[1]));
}

TEST(DirectWriteEncoded, AnEncoderErrorStopsDirectWrites) {
  EncodedPair p;
  p.lend();
  p.enc.fail = true;
  deliver_batch(p.q, {"lost with the connection"});
  CHECK_TRUE(woken(*p.q));  // the session's next write finds the broken connection
  CHECK_EQUAL(std::string(), read_all(p.fds[1]));
  p.enc.fail = false;
  deliver_batch(p.q, {"later"});
  CHECK_EQUAL(1, p.enc.batches);  // direct writes are off now
  CHECK_EQUAL(5u, p.q->queued_bytes());
}

// The session holds the write lock for all its own use of the transport
// (reads included, see Session::run): a producer never encodes meanwhile,
// and every byte still arrives once, in order, whoever wrote it.
TEST(DirectWriteEncoded, ProducersNeverEncodeWhileTheSessionHoldsTheLock) {
  EncodedPair p;
  p.lend();
  std::atomic<bool> session_inside{false};
  std::atomic<bool> overlap{false};
  struct Watch : BracketEncoder {
    std::atomic<bool>* inside;
    std::atomic<bool>* overlap;
    bool encode(const std::vector<FramePtr>& frames, std::string& out) override {
      if (inside->load()) overlap->store(true);
      return BracketEncoder::encode(frames, out);
    }
  } watch;
  watch.inside = &session_inside;
  watch.overlap = &overlap;
  p.q->enable_direct(p.fds[0], &p.stats, &watch);

  constexpr int kCount = 2000;
  std::thread producer([&] {
    for (int i = 0; i < kCount; ++i) {
      WakeBatch batch;
      deliver(p.q, std::to_string(i) + ";");
    }
  });
  std::string session_wrote;  // what the session "encodes" itself: same framing
  // The session's flush, holding the write lock: what a producer left
  // unsent goes out as it is, then the queue, encoded; written in order.
  auto session_flush = [&] {
    std::vector<FramePtr> encoded, plain;
    p.q->take_unsent(encoded);
    p.q->drain(plain);
    std::string bytes;
    for (const auto& f : encoded) bytes += *f;
    if (!plain.empty()) watch.BracketEncoder::encode(plain, bytes);
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(p.fds[0], bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) off += static_cast<size_t>(n);
      else session_wrote += read_all(p.fds[1]);  // full: the reader is this thread
    }
  };
  for (int round = 0; round < 400; ++round) {
    auto writing = p.q->lock_writes();
    session_inside = true;
    session_flush();
    session_inside = false;
    writing.unlock();
    session_wrote += read_all(p.fds[1]);
  }
  producer.join();
  {
    auto writing = p.q->lock_writes();
    session_flush();
  }
  session_wrote += read_all(p.fds[1]);
  CHECK_FALSE(overlap.load());

  // Decode: every "[n:...]" in order, then the numbers must be 0..kCount-1.
  std::string body;
  size_t at = 0;
  while (at < session_wrote.size()) {
    CHECK_EQUAL('[', session_wrote[at]);
    size_t colon = session_wrote.find(':', at);
    size_t n = std::stoul(session_wrote.substr(at + 1, colon - at - 1));
    body += session_wrote.substr(colon + 1, n);
    CHECK_EQUAL(']', session_wrote[colon + 1 + n]);
    at = colon + 2 + n;
  }
  std::string expected;
  for (int i = 0; i < kCount; ++i) expected += std::to_string(i) + ";";
  CHECK(expected == body);
}
