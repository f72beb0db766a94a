// OutboundQueue direct writes: a producer ending a WakeBatch writes queued
// frames to the session's lent socket instead of waking the session, and
// hands back to the session (with a wake-up) whenever it cannot finish.
// Over a real socketpair; runs under ASan and TSan.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/outbound_queue.h"
#include "runtime/session_registry.h"
#include "runtime/wake_batch.h"

#include "direct_write_support.h"

#include <CppUTest/TestHarness.h>

using namespace wsb;
using namespace wsb::direct_write_test;

TEST_GROUP(DirectWrite) {};

TEST(DirectWrite, ABatchIsWrittenToTheLentSocketWithoutAWakeUp) {
  Pair p;
  p.lend();
  {
    WakeBatch batch;
    deliver(p.q, "one,");
    deliver(p.q, "two,");
    deliver(p.q, "three");
    CHECK_EQUAL(std::string(), read_all(p.fds[1]));  // nothing before the batch ends
  }
  CHECK_EQUAL(std::string("one,two,three"), read_all(p.fds[1]));
  CHECK_FALSE(woken(*p.q));
  CHECK_EQUAL(0u, p.q->queued_bytes());
  CHECK_EQUAL(3u, p.stats.messages_out.load());
  CHECK_EQUAL(13u, p.stats.bytes_out.load());
}

TEST(DirectWrite, WithoutALentSocketTheSessionIsWoken) {
  Pair p;
  deliver_batch(p.q, {"x"});
  CHECK_TRUE(woken(*p.q));
  CHECK_EQUAL(std::string(), read_all(p.fds[1]));
  CHECK_EQUAL(1u, p.q->queued_bytes());
}

TEST(DirectWrite, WhileTheSessionWritesTheProducerOnlyWakesIt) {
  Pair p;
  p.lend();
  {
    auto writing = p.q->lock_writes();
    WakeBatch batch;
    deliver(p.q, "x");
    batch.flush();
    CHECK_TRUE(woken(*p.q));
    CHECK_EQUAL(1u, p.q->queued_bytes());  // left for the session
  }
  CHECK_EQUAL(std::string(), read_all(p.fds[1]));
}

TEST(DirectWrite, AFullSocketLeavesTheRestToTheSessionInOrder) {
  Pair p;
  p.shrink_buffers();
  p.lend();
  std::string expected = deliver_large_batch(p.q);
  CHECK_TRUE(woken(*p.q));  // the socket filled up: the session takes over
  std::string got = read_all(p.fds[1]);
  CHECK(got.size() < expected.size());
  CHECK(p.stats.bytes_out.load() == got.size());

  // Until the session has taken the rest, producers must not write again.
  deliver_batch(p.q, {"later"});
  CHECK_EQUAL(std::string(), read_all(p.fds[1]));
  expected += "later";

  // The session: the unsent rest first (from mid-frame), then the queue.
  std::vector<FramePtr> rest;
  {
    auto writing = p.q->lock_writes();
    p.q->take_unsent(rest);
    p.q->drain(rest);
  }
  for (const auto& f : rest) got += *f;
  CHECK(expected == got);

  // Handed back: the next batch is written directly again.
  deliver_batch(p.q, {"again"});
  CHECK_EQUAL(std::string("again"), read_all(p.fds[1]));
}

TEST(DirectWrite, NothingIsWrittenAfterDisableOrClose) {
  Pair p;
  p.lend();
  {
    auto writing = p.q->lock_writes();
    p.q->disable_direct();  // the session wrote its close frame
  }
  deliver_batch(p.q, {"after close frame"});
  CHECK_TRUE(woken(*p.q));
  CHECK_EQUAL(std::string(), read_all(p.fds[1]));

  Pair c;
  c.lend();
  c.q->close();  // the session ended; its socket number may be reused
  CHECK_FALSE(c.q->write_direct());
  bool owed = false;
  CHECK(c.q->push_deferred(make_frame("x"), &owed) == OutboundQueue::PushResult::Closed);
  CHECK_EQUAL(std::string(), read_all(c.fds[1]));
}

TEST(DirectWrite, OverflowIsLeftToTheSessionToCutOff) {
  Pair p(10);
  p.lend();
  deliver_batch(p.q, {"0123456789", "overflow"});
  CHECK_TRUE(woken(*p.q));
  CHECK_TRUE(p.q->overflowed());
  CHECK_EQUAL(std::string(), read_all(p.fds[1]));  // a slow consumer gets nothing more
}

TEST(DirectWrite, APeerThatIsGoneStopsDirectWrites) {
  Pair p;
  p.lend();
  ::shutdown(p.fds[1], SHUT_RDWR);
  deliver_batch(p.q, {"to nobody"});
  CHECK_TRUE(woken(*p.q));  // the session writes it and learns the peer is gone
  std::vector<FramePtr> rest;
  {
    auto writing = p.q->lock_writes();
    p.q->take_unsent(rest);
  }
  CHECK_EQUAL(1u, rest.size());
  deliver_batch(p.q, {"again"});
  CHECK_TRUE(woken(*p.q));
  CHECK_EQUAL(5u, p.q->queued_bytes());  // not written: direct writes are off
}

TEST(DirectWrite, AHardStopRevokesTheLoanWithoutWaitingForTheSession) {
  Pair p;
  p.lend();
  SessionRegistry registry;
  registry.add(p.q);
  {
    auto writing = p.q->lock_writes();  // the session is in a long blocking write
    registry.revoke_hub_writes();       // must not wait for it
  }
  deliver_batch(p.q, {"after the socket was closed"});
  CHECK_TRUE(woken(*p.q));
  CHECK_EQUAL(std::string(), read_all(p.fds[1]));
  registry.remove(p.q);
}

namespace {
// A lent socket that keeps message boundaries: one packet per sendmsg().
struct PacketPair : Pair {
  PacketPair() : Pair(1u << 20, SOCK_SEQPACKET) { lend(); }
  std::vector<std::string> packets() {
    std::vector<std::string> out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fds[1], buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      out.emplace_back(buf, static_cast<size_t>(n));
    }
    return out;
  }
};
}  // namespace

// What is delivered during a hand-over (the hub applying records that
// arrived meanwhile) joins it: queues not reached yet send both frames in
// one write, queues already written are written again before it ends.
TEST(DirectWrite, DeliveriesDuringAHandOverJoinIt) {
  constexpr size_t kQueues = 2 * WakeBatch::kBetweenEvery + 3;
  std::vector<std::unique_ptr<PacketPair>> pairs;
  for (size_t i = 0; i < kQueues; ++i) pairs.push_back(std::make_unique<PacketPair>());
  int calls = 0;
  {
    WakeBatch batch;
    for (auto& p : pairs) deliver(p->q, "a");
    batch.flush([&] {
      if (++calls == 1)
        for (auto& p : pairs) deliver(p->q, "b");
    });
    CHECK_FALSE(batch.pending());
  }
  CHECK_EQUAL(3, calls);  // after every kBetweenEvery queues while some were left
  for (size_t i = 0; i < kQueues; ++i) {
    const std::vector<std::string> got = pairs[i]->packets();
    if (i < WakeBatch::kBetweenEvery)
      CHECK(got == (std::vector<std::string>{"a", "b"}));  // written, then owed again
    else
      CHECK(got == std::vector<std::string>{"ab"});  // one write for both
    CHECK_FALSE(woken(*pairs[i]->q));
    CHECK_EQUAL(2u, pairs[i]->stats.messages_out.load());
  }
}
