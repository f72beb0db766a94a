// The Pusher part of the channel engine: records applied in bus order give
// every process the same subscriptions and presence members; frames go only
// to local sockets, once per event.
#include <memory>
#include <string>
#include <vector>

#include "chat/chat_engine.h"
#include "chat/chat_record.h"
#include "pusher/pusher_app.h"

#include "chat_test_support.h"  // last: includes CppUTest

using namespace wsb;
using wsb_test::RecordingPeer;
using wsb_test::payload_of;

namespace {

constexpr long kHere = 7, kThere = 9;
const std::string kNs = "pusher/1";

std::string psub(const std::string& sock, const std::string& ch, long pid, const std::string& user = "",
                 const std::string& info = "", int64_t ts = 1) {
  ChatRecord r;
  r.type = RecordType::PusherSubscribe;
  r.ns = kNs;
  r.channel = ch;
  r.conn = sock;
  r.pid = pid;
  r.user = user;
  r.data = info;
  r.ts = ts;
  return encode_record(r);
}

std::string pleave(const std::string& sock, const std::string& ch = "") {
  ChatRecord r;
  r.type = RecordType::PusherLeave;
  r.ns = kNs;
  r.channel = ch;
  r.conn = sock;
  r.ts = 1;
  return encode_record(r);
}

std::string pevent(const std::string& ch, const std::string& name, const std::string& data,
                   const std::string& except = "") {
  ChatRecord r = wsb_test::pub_record(kNs, ch, PublishKind::Event, data);
  r.name = name;
  r.conn = except;
  return encode_record(r);
}

std::string event_of(const FramePtr& f) {
  std::string p = payload_of(f);
  size_t at = p.find("\"event\":\"");
  return at == std::string::npos ? "" : p.substr(at + 9, p.find('"', at + 9) - at - 9);
}

struct Engine {
  ChatEngine e{ChatConfig()};
  uint64_t seq = 0;
  Engine() { e.enable_pusher(std::make_unique<PusherFrames>(), kHere); }
  void apply(const std::string& rec) { e.apply(++seq, rec); }
  std::shared_ptr<RecordingPeer> attach(const std::string& sock) {
    auto p = std::make_shared<RecordingPeer>();
    e.pusher_attach(sock, kNs, p);
    return p;
  }
};

}  // namespace

TEST_GROUP(PusherChannels){};

TEST(PusherChannels, SubscriptionSucceedsWhenItsRecordIsApplied) {
  Engine en;
  auto a = en.attach("1.1");
  en.apply(psub("1.1", "news", kHere));
  CHECK_EQUAL(1u, a->count());
  STRCMP_EQUAL("pusher_internal:subscription_succeeded", event_of(a->last()).c_str());
  en.apply(pevent("news", "greeting", "{\"x\":1}"));
  CHECK_EQUAL(2u, a->count());
  STRCMP_EQUAL("greeting", event_of(a->last()).c_str());
  CHECK_EQUAL(1u, en.e.pusher_channel(kNs, "news")->subscription_count);
}

TEST(PusherChannels, EventsSkipTheExcludedSocketAndAreEncodedOnce) {
  Engine en;
  auto a = en.attach("1.1");
  auto b = en.attach("1.2");
  en.apply(psub("1.1", "private-x", kHere));
  en.apply(psub("1.2", "private-x", kHere));
  en.apply(pevent("private-x", "client-typing", "{}", "1.1"));
  CHECK_EQUAL(1u, a->count());  // only its subscription_succeeded
  CHECK_EQUAL(2u, b->count());
  auto c = en.attach("1.3");
  en.apply(psub("1.3", "private-x", kHere));
  en.apply(pevent("private-x", "e", "{}"));
  CHECK(b->last().get() == c->last().get());  // one frame for all
}

TEST(PusherChannels, PresenceMembersOncePerUserAcrossConnectionsAndProcesses) {
  Engine en;
  auto alice = en.attach("1.1");
  en.apply(psub("1.1", "presence-room", kHere, "u-alice", "{\"name\":\"Alice\"}"));
  // Bob, twice, from another process: one member_added, one member_removed.
  en.apply(psub("2.1", "presence-room", kThere, "u-bob", "{\"name\":\"Bob\"}"));
  en.apply(psub("2.2", "presence-room", kThere, "u-bob", "{\"name\":\"Bob\"}"));
  std::vector<std::string> seen;
  for (const FramePtr& f : alice->frames()) seen.push_back(event_of(f));
  CHECK_EQUAL(2u, seen.size());
  STRCMP_EQUAL("pusher_internal:member_added", seen[1].c_str());
  auto info = en.e.pusher_channel(kNs, "presence-room");
  CHECK_EQUAL(3u, info->subscription_count);
  CHECK_EQUAL(2u, info->user_count);
  en.apply(pleave("2.1"));
  CHECK_EQUAL(2u, alice->count());  // Bob still has a connection
  en.apply(pleave("2.2", "presence-room"));
  CHECK_EQUAL(3u, alice->count());
  STRCMP_EQUAL("pusher_internal:member_removed", event_of(alice->last()).c_str());
  std::vector<std::string> users = en.e.pusher_users(kNs, "presence-room");
  CHECK_EQUAL(1u, users.size());
  STRCMP_EQUAL("u-alice", users[0].c_str());
}

TEST(PusherChannels, AJoinerSeesEveryMemberInItsSubscriptionSucceeded) {
  Engine en;
  en.apply(psub("2.1", "presence-room", kThere, "u-bob", "{\"name\":\"Bob\"}"));
  auto alice = en.attach("1.1");
  en.apply(psub("1.1", "presence-room", kHere, "u-alice", "{\"name\":\"Alice\"}"));
  std::string p = payload_of(alice->last());
  CHECK(p.find("u-bob") != std::string::npos);
  CHECK(p.find("u-alice") != std::string::npos);
  CHECK(p.find("\\\"count\\\":2") != std::string::npos);
}

TEST(PusherChannels, ADeadProcessesSocketsLeave) {
  Engine en;
  auto alice = en.attach("1.1");
  en.apply(psub("1.1", "presence-room", kHere, "u-alice"));
  en.apply(psub("2.1", "presence-room", kThere, "u-bob"));
  ChatRecord gone;
  gone.type = RecordType::Gone;
  gone.pid = kThere;
  gone.ts = 1;
  en.apply(encode_record(gone));
  STRCMP_EQUAL("pusher_internal:member_removed", event_of(alice->last()).c_str());
  CHECK_EQUAL(1u, en.e.pusher_channel(kNs, "presence-room")->subscription_count);
}

TEST(PusherChannels, CacheChannelsReplayTheLastEventOrSayMiss) {
  Engine en;
  auto a = en.attach("1.1");
  en.apply(psub("1.1", "cache-prices", kHere));
  STRCMP_EQUAL("pusher:cache_miss", event_of(a->last()).c_str());
  en.apply(pevent("cache-prices", "price", "{\"p\":1}"));
  en.apply(pevent("cache-prices", "price", "{\"p\":2}"));
  auto b = en.attach("1.2");
  en.apply(psub("1.2", "cache-prices", kHere));
  STRCMP_EQUAL("price", event_of(b->last()).c_str());
  CHECK(payload_of(b->last()).find("\\\"p\\\":2") != std::string::npos);
}

TEST(PusherChannels, ChannelQueriesByPrefixAndAppsNeverMix) {
  Engine en;
  en.apply(psub("2.1", "presence-a", kThere, "u1"));
  en.apply(psub("2.2", "presence-b", kThere, "u2"));
  en.apply(psub("2.3", "public-c", kThere));
  CHECK_EQUAL(2u, en.e.pusher_channels(kNs, "presence-").size());
  CHECK_EQUAL(3u, en.e.pusher_channels(kNs, "").size());
  CHECK_EQUAL(0u, en.e.pusher_channels("pusher/2", "").size());
  en.apply(pleave("2.3"));
  CHECK_EQUAL(2u, en.e.pusher_channels(kNs, "").size());
  CHECK_FALSE(en.e.pusher_channel(kNs, "public-c").has_value());
}

TEST(PusherChannels, ACachedEventExpiresAfterThirtyMinutesOfBusTime) {
  Engine en;
  en.apply(pevent("cache-x", "e", "{}"));  // ts 1, nobody subscribed
  auto a = en.attach("1.1");
  en.apply(psub("1.1", "cache-x", kHere, "", "", 1 + 29 * 60 * 1000));
  STRCMP_EQUAL("e", event_of(a->last()).c_str());
  auto b = en.attach("1.2");
  en.apply(psub("1.2", "cache-x", kHere, "", "", 1 + 31 * 60 * 1000));
  STRCMP_EQUAL("pusher:cache_miss", event_of(b->last()).c_str());
}
