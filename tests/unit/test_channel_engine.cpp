// GRIP channels in the engine: local subscriptions, pub records applied in
// bus order, one shared frame per publish, and the publisher's close.
#include <memory>
#include <string>

#include "chat/chat_engine.h"
#include "chat/chat_record.h"
#include "engine/channel_subscriptions.h"
#include "protocol/frame_encoder.h"
#include "runtime/outbound_queue.h"

#include "chat_test_support.h"  // last: includes CppUTest

using namespace wsb;
using wsb_test::RecordingPeer;

namespace {

class ClosingPeer : public RecordingPeer {
 public:
  bool close(uint16_t code, std::string_view reason) override {
    closes.emplace_back(code, std::string(reason));
    return true;
  }
  std::vector<std::pair<uint16_t, std::string>> closes;
};

std::string pub(const std::string& ns, const std::string& ch, PublishKind kind, const std::string& data,
                uint16_t code = 1000) {
  ChatRecord r = wsb_test::pub_record(ns, ch, kind, data);
  r.code = code;
  return encode_record(r);
}

}  // namespace

TEST_GROUP(ChannelSubscriptions){};

TEST(ChannelSubscriptions, SubscribeIsPerNamespaceAndIdempotent) {
  ChannelSubscriptions subs;
  auto p = std::make_shared<RecordingPeer>();
  CHECK(subs.subscribe("grip", "news", "c1", p) == ChannelSubscriptions::Result::Added);
  CHECK(subs.subscribe("grip", "news", "c1", p) == ChannelSubscriptions::Result::Already);
  CHECK(subs.subscribe("other", "news", "c1", p) == ChannelSubscriptions::Result::Added);
  CHECK_EQUAL(2u, subs.subscription_count());
  CHECK_EQUAL(1u, subs.subscribers("grip", "news")->size());
  CHECK(subs.subscribers("grip", "sports") == nullptr);
  CHECK_TRUE(subs.unsubscribe("grip", "news", "c1"));
  CHECK_FALSE(subs.unsubscribe("grip", "news", "c1"));
  CHECK(subs.subscribers("grip", "news") == nullptr);
  CHECK_EQUAL(1u, subs.remove_connection("c1"));
  CHECK_EQUAL(0u, subs.subscription_count());
  CHECK_EQUAL(0u, subs.channel_count());
}

TEST(ChannelSubscriptions, BoundedPerConnection) {
  ChannelSubscriptions subs;
  auto p = std::make_shared<RecordingPeer>();
  for (size_t i = 0; i < ChannelSubscriptions::kMaxPerConnection; ++i)
    CHECK(subs.subscribe("grip", "ch" + std::to_string(i), "c1", p) == ChannelSubscriptions::Result::Added);
  CHECK(subs.subscribe("grip", "one-more", "c1", p) == ChannelSubscriptions::Result::TooMany);
  CHECK(subs.subscribe("grip", "one-more", "c2", p) == ChannelSubscriptions::Result::Added);
  CHECK_EQUAL(ChannelSubscriptions::kMaxPerConnection, subs.channels_of("c1"));
}

TEST_GROUP(PublishRecord){};

TEST(PublishRecord, RoundTripsEveryKind) {
  const std::string bytes("\x00\xff\x10 bin", 7);
  struct Case { PublishKind kind; std::string data; } cases[] = {
      {PublishKind::Text, "h\xc3\xa9llo"}, {PublishKind::Binary, bytes}, {PublishKind::Ping, "p"},
      {PublishKind::Pong, ""}, {PublishKind::Close, "bye"}};
  for (const Case& c : cases) {
    ChatRecord r;
    CHECK_TRUE(parse_record(pub("grip", "a:b/c d", c.kind, c.data, 4001), &r));
    CHECK(r.type == RecordType::Publish);
    CHECK_EQUAL(std::string("grip"), r.ns);
    CHECK_EQUAL(std::string("a:b/c d"), r.channel);
    CHECK(r.kind == c.kind);
    CHECK_EQUAL(c.data, r.data);
    if (c.kind == PublishKind::Close) CHECK_EQUAL(4001, r.code);
  }
}

TEST(PublishRecord, RefusesMalformed) {
  ChatRecord r;
  CHECK_FALSE(parse_record(R"({"t":"pub","ns":"grip","ch":"x","k":"shout","d":"a","ts":1})", &r));
  CHECK_FALSE(parse_record(R"({"t":"pub","ns":"grip","ch":"","k":"text","d":"a","ts":1})", &r));
  CHECK_FALSE(parse_record(R"({"t":"pub","ns":"grip","ch":"x\u0001","k":"text","d":"a","ts":1})", &r));
  CHECK_FALSE(parse_record(R"({"t":"pub","ns":"grip","ch":"x","k":"binary","d":"**","ts":1})", &r));
  CHECK_FALSE(parse_record(R"({"t":"pub","ns":"grip","ch":"x","k":"close","code":99,"ts":1})", &r));
  CHECK_FALSE(parse_record(R"({"t":"pub","ch":"x","k":"text","d":"a","ts":1})", &r));
}

TEST_GROUP(ChannelEngine){};

TEST(ChannelEngine, PublishReachesLocalSubscribersWithOneSharedFrame) {
  ChatEngine engine{ChatConfig()};
  auto a = std::make_shared<RecordingPeer>();
  auto b = std::make_shared<RecordingPeer>();
  auto other = std::make_shared<RecordingPeer>();
  engine.subscribe("ca", "grip", "news", a);
  engine.subscribe("cb", "grip", "news", b);
  engine.subscribe("cx", "grip", "sports", other);
  engine.apply(1, pub("grip", "news", PublishKind::Text, "hello"));
  engine.apply(2, pub("chat-ns", "news", PublishKind::Text, "not for grip"));
  CHECK_EQUAL(1u, a->count());
  CHECK_EQUAL(1u, b->count());
  CHECK_EQUAL(0u, other->count());
  CHECK(a->last().get() == b->last().get());  // encoded once
  CHECK_EQUAL(encode_frame(Opcode::Text, "hello"), *a->last());
  engine.apply(3, pub("grip", "news", PublishKind::Binary, std::string("\x01\x02", 2)));
  CHECK_EQUAL(encode_frame(Opcode::Binary, std::string("\x01\x02", 2)), *b->last());
  CHECK_EQUAL(3u, engine.stats().publishes_applied);
  CHECK_EQUAL(3u, engine.stats().subscriptions);
}

TEST(ChannelEngine, CloseActionAsksEverySubscriberToClose) {
  ChatEngine engine{ChatConfig()};
  auto a = std::make_shared<ClosingPeer>();
  engine.subscribe("ca", "grip", "room", a);
  engine.apply(1, pub("grip", "room", PublishKind::Close, "done", 4000));
  CHECK_EQUAL(1u, a->closes.size());
  CHECK_EQUAL(4000, a->closes[0].first);
  CHECK_EQUAL(std::string("done"), a->closes[0].second);
  CHECK_EQUAL(0u, a->count());
}

TEST(ChannelEngine, UnsubscribedAndDetachedConnectionsGetNothing) {
  ChatEngine engine{ChatConfig()};
  auto a = std::make_shared<RecordingPeer>();
  engine.subscribe("ca", "grip", "n1", a);
  engine.subscribe("ca", "grip", "n2", a);
  engine.unsubscribe("ca", "grip", "n1");
  engine.apply(1, pub("grip", "n1", PublishKind::Text, "x"));
  CHECK_EQUAL(0u, a->count());
  engine.unsubscribe_all("ca");
  engine.apply(2, pub("grip", "n2", PublishKind::Text, "y"));
  CHECK_EQUAL(0u, a->count());
  CHECK_EQUAL(0u, engine.stats().channels);
}

TEST_GROUP(CloseRequest){};

TEST(CloseRequest, RefusesLaterPushesAndIsTakenOnce) {
  OutboundQueue q(1 << 20);
  CHECK(q.push(make_frame("a")) == OutboundQueue::PushResult::Ok);
  CHECK_TRUE(q.request_close(4000, "bye"));
  CHECK_FALSE(q.request_close(1000, "again"));
  CHECK(q.push(make_frame("b")) == OutboundQueue::PushResult::Closed);
  uint16_t code = 0;
  std::string reason;
  CHECK_TRUE(q.take_close_request(&code, &reason));
  CHECK_EQUAL(4000, code);
  CHECK_EQUAL(std::string("bye"), reason);
  CHECK_FALSE(q.take_close_request(&code, &reason));
  std::vector<FramePtr> out;
  q.drain(out);
  CHECK_EQUAL(1u, out.size());  // what came before the close still goes out
}
