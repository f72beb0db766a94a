// The bus for several Apache servers: the ordered log lives in Redis
// (docs/redis.md). Every record is appended by one Lua script that takes the
// next number from a counter key and XADDs the record to a stream under the
// explicit ID "0-<seq>", trimmed to an exact MAXLEN. One script = one atomic
// step on the Redis server, so sequence numbers are contiguous and global
// across servers, and the stream keeps the newest max_records of them for
// history, resume and catching up after an outage.
//
// hiredis contexts are not thread-safe, so the bus keeps connections
// ("links"), each behind its own mutex: up to publish_links for publish()
// (session threads; a publisher takes the first free one, so an idle server
// uses one and the others connect only when publishes overlap — one
// connection would make every session of a child wait in line for each
// other's round trips), one for read()/first_seq()/last_seq() (the hub
// thread), and one for the
// blocking XREAD of wait(), which a wake() interrupts through an eventfd
// without disturbing the other two. Links connect lazily on first use, so an
// object made in the Apache parent holds no socket across fork(). Every
// connect and command has a timeout; a failed link waits an exponential
// backoff (backoff_min_ms doubling to backoff_max_ms) before it tries again,
// and while it waits its operations fail at once (publish() returns 0).
//
// Outages are reported once per transition (Down, then Up) through the
// listener and counted in status(). If the server's counter went backwards
// (Redis lost its data), the reader reports Reset and raises the counter to
// its cursor, and every publish carries the highest seq this process has
// seen as a floor, so numbering continues after what the engines applied
// instead of restarting at 1 (which they would ignore as old).
//
// The bus id (bus_id.h) is the key "<prefix>:id", set once by whichever
// process first needs it (id(), or the reader's read script) to a random
// value, and shared by every server on this Redis. It lives and dies with
// the log: Redis that lost its data has lost the id too, and the next read
// makes a new one, which every process then reports (so clients' old
// `since` values are answered with complete:false; numbering itself goes on
// from the floor above while any process remembers it).
//
// The process must ignore SIGPIPE (Apache does): hiredis writes with write().
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/bus.h"
#include "runtime/event_fd.h"

namespace wsb {

struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
};

// Parses "redis://host[:port][/db]" (host may be "[v6addr]"). False with a
// message in *error if it is not that.
bool parse_redis_url(std::string_view url, RedisAddress* out, std::string* error);

struct RedisBusOptions {
  RedisAddress address;
  // Keys are "<prefix>:seq" and "<prefix>:log". The {hash tag} keeps both in
  // one Redis Cluster slot, which a script touching both keys requires.
  std::string key_prefix = "wsbridge:{chat}";
  uint64_t max_records = 65536;  // exact MAXLEN of the stream
  int connect_timeout_ms = 500;
  int command_timeout_ms = 500;
  int backoff_min_ms = 100;
  int backoff_max_ms = 5000;
  int publish_links = 4;         // connections publish() may use at once (>= 1)
};

enum class RedisBusEvent {
  Down,   // Redis became unreachable (or never was); detail = the error
  Up,     // reachable again (or for the first time); detail says how long it was down
  Reset,  // the server's sequence went backwards: it lost its data
  BadId,  // the id key holds something that is not a bus id; detail = the key and its value
};

struct RedisBusStatus {
  bool connected = false;  // the last command on any link succeeded
  int publish_links_used = 0;  // publisher connections made so far (at most publish_links)
  uint64_t outages = 0;    // Down transitions
  uint64_t resets = 0;     // sequence resets seen by the reader
  std::string last_error;  // newest failure, "" if none yet
};

class RedisBus final : public Bus {
 public:
  // Called on the thread that noticed the transition, possibly holding one
  // of the bus's connection locks: it must be quick (log) and must not call
  // back into the bus.
  using Listener = std::function<void(RedisBusEvent, const std::string& detail)>;

  explicit RedisBus(RedisBusOptions options, Listener listener = nullptr);
  ~RedisBus() override;
  RedisBus(const RedisBus&) = delete;
  RedisBus& operator=(const RedisBus&) = delete;

  // Returns 0 when Redis is unreachable, in backoff, or refused the record.
  // A command whose reply is lost may still have appended the record.
  uint64_t publish(std::string_view payload) override;
  // One round trip; never waits longer than command_timeout_ms (or the
  // connect timeout when the link reconnects).
  BusReadResult read(uint64_t* cursor, std::vector<BusRecord>& out,
                     size_t max_records) override;
  // Blocks in XREAD BLOCK (records it returns are kept for the next read()).
  // One waiting thread at a time. A negative timeout waits without limit.
  bool wait(uint64_t cursor, int timeout_ms) override;
  void wake() override;
  // Ask Redis; when it is unreachable, the newest seq this process has seen
  // (last_seq) or 0 (first_seq).
  uint64_t last_seq() const override;
  uint64_t first_seq() const override;
  // The id the reader saw last; before the first read one round trip
  // (which creates it if Redis has none). "" while Redis is unreachable.
  std::string id() const override;

  RedisBusStatus status() const;
  const RedisBusOptions& options() const { return options_; }

 private:
  class Link;
  friend class Link;

  void link_failed(const std::string& error);
  void link_succeeded();
  void note_seen(uint64_t seq);
  void handle_reset(uint64_t cursor, uint64_t server_seq);
  bool take_cached(uint64_t* cursor, std::vector<BusRecord>& out, size_t max_records);
  bool consume_wait_reply(uint64_t cursor, const void* reply);
  bool sleep_until_woken(int64_t until_ms);
  // A random id this process offers when Redis has none (id_mu_ held).
  std::string candidate_locked() const;
  void note_id(std::string_view id) const;

  const RedisBusOptions options_;
  const Listener listener_;
  const std::string seq_key_, log_key_, id_key_;
  const std::string maxlen_;  // the stream's MAXLEN, as the publish script's argument

  struct Publisher;
  std::vector<std::unique_ptr<Publisher>> publishers_;  // each guarded by its own mutex
  std::atomic<unsigned> publish_turn_{0};               // whom to queue for when all are busy
  std::unique_ptr<Link> reader_;     // guarded by read_mu_
  std::unique_ptr<Link> waiter_;     // guarded by wait_mu_
  mutable std::mutex read_mu_;
  std::mutex wait_mu_;
  EventFd wake_fd_;

  // wait() fills it, read() drains it: records contiguous after a cursor.
  std::mutex cache_mu_;
  std::vector<BusRecord> cache_;

  // The bus id as last seen in Redis ("" before), and this process's
  // candidate for a new one (made lazily after fork, so every child offers
  // its own; replaced once Redis took it, so a later new bus gets another).
  mutable std::mutex id_mu_;
  mutable std::string id_;
  mutable std::string candidate_;
  mutable std::string bad_id_reported_;  // the last invalid value reported (BadId), once each

  // The highest seq this process has seen from Redis: the floor of the next
  // publish, so numbering never goes back while this process remembers.
  std::atomic<uint64_t> seen_seq_{0};

  enum class Health { Unknown, Up, Down };
  mutable std::mutex state_mu_;
  std::atomic<bool> healthy_{false};  // health_ == Up, read without the lock
  Health health_ = Health::Unknown;
  int64_t down_since_ms_ = 0;
  RedisBusStatus status_;
  // Bumped on every Down->Up transition: a link waiting out its backoff
  // retries at once when another link has seen Redis come back.
  std::atomic<uint64_t> recoveries_{0};
};

}  // namespace wsb
