// libFuzzer target for the chat layer, which handles untrusted JSON from
// clients, the publish API and (on a shared Redis) other servers' records.
// Input: '\n'-separated lines; the first byte picks the action:
//   'a'/'b' + json: a text frame from connection A/B (then the hub applies
//                   what they published), 'r' + bytes: a raw bus record,
//   'p' + body: a publish API call, 'k' + key + ' ' + body: one with an
//   Idempotency-Key (answered from the engine), 'x': B closes, 'g': the hub loses one
//   record (an overrun: the engine asks for a sync, answers then apply),
//   't': a second passes and the hub ticks (presence updates). The presence
//   limit is 1, so any room with both connections is a large room.
// Checked: no crash/UB, and every frame a peer receives is one unmasked
// text frame whose payload is a JSON object with a "type".
#include <rapidjson/document.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_connection.h"
#include "chat/chat_engine.h"
#include "chat/publish_api.h"

#include "fuzz_support.h"

using namespace wsb;

namespace {

// The bus as a vector: the fuzzer drives the hub's part by hand.
class VectorBus : public Bus {
 public:
  uint64_t publish(std::string_view payload) override {
    if (payload.size() > 1 << 16) return 0;
    records.push_back({records.size() + 1, std::string(payload)});
    return records.size();
  }
  BusReadResult read(uint64_t* cursor, std::vector<BusRecord>& out, size_t max) override {
    while (*cursor < records.size() && max-- > 0) out.push_back(records[(*cursor)++]);
    return {};
  }
  bool wait(uint64_t, int) override { return false; }
  void wake() override {}
  uint64_t last_seq() const override { return records.size(); }
  uint64_t first_seq() const override { return records.empty() ? 0 : 1; }
  std::string id() const override { return "0123456789abcdef"; }
  std::vector<BusRecord> records;
};

class CheckingPeer : public Peer {
 public:
  bool deliver(const FramePtr& f) override {
    REQUIRE(f && f->size() >= 2);
    const uint8_t b0 = static_cast<uint8_t>((*f)[0]), b1 = static_cast<uint8_t>((*f)[1]);
    REQUIRE(b0 == 0x81 && (b1 & 0x80) == 0);
    size_t len7 = b1 & 0x7F, off = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
    REQUIRE(f->size() >= off);
    rapidjson::Document d;
    d.Parse(f->data() + off, f->size() - off);
    REQUIRE(!d.HasParseError() && d.IsObject() && d.HasMember("type") && d["type"].IsString());
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ChatConfig cfg;
  cfg.history_size = 8;
  cfg.max_text_length = 64;
  cfg.max_rooms = 4;
  cfg.rate_per_sec = 1000;
  cfg.rate_burst = 1000;
  cfg.presence_limit = 1;
  VectorBus bus;
  int64_t now = 1000;
  ChatEngine engine(cfg, [&now] { return now; });
  auto pa = std::make_shared<CheckingPeer>();
  auto pb = std::make_shared<CheckingPeer>();
  auto a = std::make_unique<ChatConnection>(cfg, bus, engine, "t-1-1", "alice", false, pa, 1);
  auto b = std::make_unique<ChatConnection>(cfg, bus, engine, "t-1-2", "", false, pb, 1);
  pa->deliver(a->open(1000));
  pb->deliver(b->open(1000));
  uint64_t applied = 0, lost = 0;  // seq = index + 1 + lost
  auto hub = [&] {
    while (applied < bus.records.size()) {
      engine.apply(applied + 1 + lost, bus.records[applied].payload);
      ++applied;
      // Like ChatService: sync requests and present answers go on the bus.
      for (std::string& r : engine.take_outbox()) bus.publish(r);
    }
  };
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty()) {
    size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    if (line.empty()) continue;
    std::string_view rest = line.substr(1);
    now += 10;
    switch (line[0]) {
      case 'a':
      case 'b': {
        ChatConnection* c = line[0] == 'a' ? a.get() : b.get();
        if (!c) break;
        ChatConnection::Action act = c->on_text(rest, now);
        if (act.reply) (line[0] == 'a' ? pa : pb)->deliver(act.reply);
        break;
      }
      case 'r': bus.publish(rest); break;
      case 'p': {
        PublishResult r = publish_from_http(rest, bus, cfg, now);
        REQUIRE(r.http_status == 202 || r.http_status == 400 || r.http_status == 413 || r.http_status == 503);
        REQUIRE((r.http_status == 202) == (r.seq != 0));
        break;
      }
      case 'k': {
        const size_t sp = rest.find(' ');
        Idempotency idem;
        idem.key = std::string(rest.substr(0, sp));
        idem.original = [&](const std::string& room, const std::string& key, uint64_t) {
          hub();
          return engine.cid_seq(room, "", key);
        };
        const std::string_view body = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
        PublishResult r = publish_from_http(body, bus, cfg, now, idem.key.empty() ? nullptr : &idem);
        REQUIRE(r.http_status == 202 || r.http_status == 400 || r.http_status == 413 || r.http_status == 503);
        REQUIRE((r.http_status == 202) == (r.seq != 0));
        REQUIRE(!r.replay || r.http_status == 202);
        break;
      }
      case 'g':
        ++lost;
        engine.on_overrun(applied + lost, applied + lost);
        for (std::string& r : engine.take_outbox()) bus.publish(r);
        break;
      case 't':
        now += 1000;
        engine.on_tick();
        break;
      case 'x':
        if (b) {
          b->close(now);
          b.reset();
        }
        break;
      default: break;
    }
    hub();
  }
  a->close(now);
  if (b) b->close(now);
  hub();
  return 0;
}
