// RedisBus against a real redis-server that each test starts on a free
// loopback port (and kills in teardown): order and numbering, several buses
// as several servers, concurrent publishers, trimming overruns, wait/wake,
// an outage with recovery, and a Redis that lost its data. Helper threads
// never use CppUTest macros; the test thread checks what they recorded.
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/bus_id.h"
#include "runtime/redis_bus.h"

#include <CppUTest/TestHarness.h>

extern char** environ;

using wsb::BusReadResult;
using wsb::BusRecord;
using wsb::RedisBus;
using wsb::RedisBusEvent;
using wsb::RedisBusOptions;
using Clock = std::chrono::steady_clock;
using Records = std::vector<BusRecord>;

namespace {

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool on_path(const char* prog) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= p.size();) {
    const size_t end = std::min(p.find(':', start), p.size());
    if (::access((p.substr(start, end - start) + "/" + prog).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// A redis-server child. With a data dir it persists every write (AOF with
// fsync always), so a SIGKILL loses nothing and a restart reads it back.
class RedisServer {
 public:
  ~RedisServer() { kill(); }
  bool start(int port, const std::string& dir, std::string* error) {
    if (!on_path("redis-server")) {
      *error = "redis-server is not installed (scripts/install-deps.sh installs it)";
      return false;
    }
    std::vector<std::string> args = {"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
                                      "--save", "", "--daemonize", "no", "--appendonly", dir.empty() ? "no" : "yes"};
    if (!dir.empty()) args.insert(args.end(), {"--dir", dir, "--appendfsync", "always"});
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawnp(&pid_, "redis-server", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      *error = "cannot start redis-server";
      return false;
    }
    for (auto t0 = Clock::now(); elapsed_ms(t0) < 5000; sleep_ms(10)) {
      if (pings(port)) return true;
    }
    *error = "redis-server did not answer on port " + std::to_string(port) + " within 5 s";
    return false;
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  static bool pings(int port) {
    std::unique_ptr<redisContext, void (*)(redisContext*)> c(
        redisConnectWithTimeout("127.0.0.1", port, timeval{0, 200000}), redisFree);
    if (!c || c->err) return false;
    std::unique_ptr<redisReply, void (*)(void*)> r(static_cast<redisReply*>(redisCommand(c.get(), "PING")),
                                                   freeReplyObject);
    return r && r->type == REDIS_REPLY_STATUS;
  }
  pid_t pid_ = -1;
};

// Listener events, collected from whichever thread reported them.
struct Events {
  std::mutex mu;
  std::vector<RedisBusEvent> seen;
  RedisBus::Listener listener() {
    return [this](RedisBusEvent e, const std::string&) {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(e);
    };
  }
  size_t count(RedisBusEvent e) {
    std::lock_guard<std::mutex> lock(mu);
    return static_cast<size_t>(std::count(seen.begin(), seen.end(), e));
  }
};

bool in_order(const Records& records, uint64_t first) {
  for (size_t i = 0; i < records.size(); ++i)
    if (records[i].seq != first + i) return false;
  return true;
}

// Reads until *cursor reaches `until` or the time is up; false on an overrun.
bool read_all(RedisBus& bus, uint64_t* cursor, uint64_t until, Records& out, int timeout_ms) {
  for (auto t0 = Clock::now(); *cursor < until && elapsed_ms(t0) < timeout_ms;) {
    const size_t before = out.size();
    if (bus.read(cursor, out, 64).overrun) return false;
    if (out.size() == before) bus.wait(*cursor, 100);
  }
  return *cursor >= until;
}

// Publishes until Redis answers (it was just restarted); 0 if it never did.
uint64_t publish_soon(RedisBus& bus, const std::string& payload) {
  uint64_t seq = 0;
  for (auto t0 = Clock::now(); seq == 0 && elapsed_ms(t0) < 3000; sleep_ms(10)) seq = bus.publish(payload);
  return seq;
}

}  // namespace

TEST_GROUP(RedisBus) {
  RedisServer server;
  int port = 0;
  std::string dir;

  void setup() override {
    ::signal(SIGPIPE, SIG_IGN);  // as in Apache: a closed socket must not kill us
    port = free_port();
    std::string error;
    if (!server.start(port, "", &error)) FAIL(error.c_str());
  }
  void teardown() override {
    server.kill();
    if (!dir.empty()) std::system(("rm -rf '" + dir + "'").c_str());
  }
  RedisBusOptions options(uint64_t max_records = 1000) {
    RedisBusOptions o;
    o.address.host = "127.0.0.1";
    o.address.port = port;
    o.max_records = max_records;
    o.connect_timeout_ms = 200;
    o.command_timeout_ms = 300;
    o.backoff_min_ms = 20;
    o.backoff_max_ms = 200;
    return o;
  }
  void restart(bool persistent) {
    server.kill();
    if (persistent && dir.empty()) FAIL("restart(true) needs a server started with a data dir");
    std::string error;
    if (!server.start(port, persistent ? dir : "", &error)) FAIL(error.c_str());
  }
  void start_persistent() {
    server.kill();
    char tmpl[] = "/tmp/wsb-redis-XXXXXX";
    CHECK(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    std::string error;
    if (!server.start(port, dir, &error)) FAIL(error.c_str());
  }
};

TEST(RedisBus, ParsesUrls) {
  wsb::RedisAddress a;
  std::string err;
  CHECK(wsb::parse_redis_url("redis://10.0.0.5:6380/2", &a, &err));
  STRCMP_EQUAL("10.0.0.5", a.host.c_str());
  LONGS_EQUAL(6380, a.port);
  LONGS_EQUAL(2, a.db);
  CHECK(wsb::parse_redis_url("redis://cache.local", &a, &err) && a.port == 6379 && a.db == 0);
  for (const char* bad : {"redis://", "http://x:1", "redis://h:0", "redis://h:99999", "redis://h:1/x",
                          "redis://:pw@h:1", "redis://h:1/2?x", "redis://[::1]:7000"})
    CHECK_TEXT(!wsb::parse_redis_url(bad, &a, &err) && !err.empty(), bad);
}

TEST(RedisBus, PublishAndReadInOrder) {
  RedisBus bus(options());
  uint64_t cursor = 0;
  Records out;
  CHECK(bus.last_seq() == 0 && bus.first_seq() == 0);
  CHECK(!bus.read(&cursor, out, 10).overrun && out.empty() && cursor == 0);
  const std::string binary("a\0b\r\n", 5);
  UNSIGNED_LONGLONGS_EQUAL(1, bus.publish("alpha"));
  UNSIGNED_LONGLONGS_EQUAL(2, bus.publish(""));
  UNSIGNED_LONGLONGS_EQUAL(3, bus.publish(binary));
  UNSIGNED_LONGLONGS_EQUAL(4, bus.publish(std::string(100000, 'z')));
  CHECK(bus.last_seq() == 4 && bus.first_seq() == 1);
  CHECK(!bus.read(&cursor, out, 2).overrun && out.size() == 2 && cursor == 2);
  CHECK(!bus.read(&cursor, out, 10).overrun && out.size() == 4 && cursor == 4);
  CHECK(in_order(out, 1));
  STRCMP_EQUAL("alpha", out[0].payload.c_str());
  CHECK(out[1].payload.empty() && out[2].payload == binary && out[3].payload == std::string(100000, 'z'));
  CHECK(!bus.read(&cursor, out, 10).overrun && out.size() == 4);
  CHECK(bus.status().connected && bus.status().outages == 0);
}

TEST(RedisBus, TwoBusesAreOneLog) {
  // Two objects = two Apache servers: one numbering, one order.
  RedisBus a(options()), b(options());
  for (int i = 0; i < 10; ++i) {
    UNSIGNED_LONGLONGS_EQUAL(2 * i + 1, a.publish("a" + std::to_string(i)));
    UNSIGNED_LONGLONGS_EQUAL(2 * i + 2, b.publish("b" + std::to_string(i)));
  }
  Records ra, rb;
  uint64_t ca = 0, cb = 0;
  CHECK(read_all(a, &ca, 20, ra, 2000) && read_all(b, &cb, 20, rb, 2000));
  CHECK(in_order(ra, 1) && ra.size() == 20);
  for (size_t i = 0; i < ra.size(); ++i) CHECK(ra[i].payload == rb[i].payload);
  STRCMP_EQUAL("b9", rb.back().payload.c_str());
}

TEST(RedisBus, ConcurrentPublishersEveryRecordOnceInOneOrder) {
  constexpr int kThreads = 6, kEach = 150;
  RedisBus a(options(5000)), b(options(5000)), reader(options(5000));
  std::atomic<int> refused{0};
  Records seen;
  uint64_t cursor = 0;
  bool reader_ok = false;
  std::thread tail([&] { reader_ok = read_all(reader, &cursor, kThreads * kEach, seen, 8000); });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t)
    writers.emplace_back([&, t] {
      RedisBus& bus = t % 2 ? a : b;
      for (int n = 0; n < kEach; ++n)
        if (bus.publish(std::to_string(t) + ":" + std::to_string(n)) == 0) refused.fetch_add(1);
    });
  for (std::thread& w : writers) w.join();
  tail.join();
  LONGS_EQUAL(0, refused.load());
  CHECK(reader_ok);
  // Overlapping publishes went out on more than one connection; the reader
  // bus never published.
  CHECK(a.status().publish_links_used > 1 || b.status().publish_links_used > 1);
  CHECK(a.status().publish_links_used <= 4 && b.status().publish_links_used <= 4);
  LONGS_EQUAL(0, reader.status().publish_links_used);
  UNSIGNED_LONGS_EQUAL(kThreads * kEach, seen.size());
  CHECK(in_order(seen, 1));
  std::vector<int> next(kThreads, 0);
  for (const BusRecord& r : seen) {
    const size_t colon = r.payload.find(':');
    const int t = std::stoi(r.payload.substr(0, colon));
    CHECK_EQUAL(next[t], std::stoi(r.payload.substr(colon + 1)));  // each writer's order kept
    ++next[t];
  }
}

TEST(RedisBus, TrimmedRecordsAreAnExactOverrun) {
  RedisBus bus(options(10));
  for (int i = 1; i <= 30; ++i) bus.publish("r" + std::to_string(i));
  CHECK(bus.first_seq() == 21 && bus.last_seq() == 30);
  uint64_t cursor = 5;
  Records out;
  BusReadResult r = bus.read(&cursor, out, 100);
  CHECK(r.overrun);
  UNSIGNED_LONGLONGS_EQUAL(6, r.lost_from);
  UNSIGNED_LONGLONGS_EQUAL(20, r.lost_to);
  CHECK(in_order(out, 21) && out.size() == 10 && cursor == 30);
  STRCMP_EQUAL("r21", out[0].payload.c_str());
  CHECK(!bus.read(&cursor, out, 100).overrun && out.size() == 10);
  cursor = 0;  // a new reader: a late start from the oldest kept record
  out.clear();
  r = bus.read(&cursor, out, 3);
  CHECK(r.overrun && r.lost_from == 1 && r.lost_to == 20 && in_order(out, 21) && cursor == 23);
}

TEST(RedisBus, WaitWakesOnPublishOrWakeAndTimesOut) {
  RedisBus reader(options()), writer(options());
  uint64_t cursor = 0;
  auto t0 = Clock::now();
  CHECK_FALSE(reader.wait(cursor, 150));
  CHECK(elapsed_ms(t0) >= 140 && elapsed_ms(t0) < 1000);
  CHECK_FALSE(reader.wait(cursor, 0));

  std::thread pub([&] { sleep_ms(100), writer.publish("ping"); });
  t0 = Clock::now();
  CHECK(reader.wait(cursor, 3000));
  const long woke_after = elapsed_ms(t0);
  pub.join();
  CHECK(woke_after < 1500);
  Records out;
  CHECK(!reader.read(&cursor, out, 10).overrun && out.size() == 1 && out[0].payload == "ping");

  std::thread waker([&] { sleep_ms(100), reader.wake(); });
  t0 = Clock::now();
  reader.wait(cursor, 3000);  // true or false: a wake-up may be spurious
  const long waked_after = elapsed_ms(t0);
  waker.join();
  CHECK(waked_after >= 90 && waked_after < 1500);
  // The XREAD left pending by the wake-up does not confuse the next wait.
  CHECK_FALSE(reader.wait(cursor, 100));
  writer.publish("pong");
  CHECK(reader.wait(cursor, 2000));
  CHECK(!reader.read(&cursor, out, 10).overrun && out.size() == 2 && cursor == 2);
}

TEST(RedisBus, OutageFailsFastThenRecoversWithoutDuplicates) {
  start_persistent();
  Events events;
  RedisBus writer(options(), events.listener()), reader(options());
  for (int i = 1; i <= 5; ++i) UNSIGNED_LONGLONGS_EQUAL(i, writer.publish("before" + std::to_string(i)));
  Records seen;
  uint64_t cursor = 0;
  CHECK(read_all(reader, &cursor, 5, seen, 2000));

  server.kill();
  auto t0 = Clock::now();
  int accepted = 0;
  for (int i = 0; i < 50; ++i) accepted += writer.publish("lost") != 0;
  LONGS_EQUAL(0, accepted);
  CHECK(elapsed_ms(t0) < 2000);  // timeouts and backoff bound every attempt
  CHECK(!writer.status().connected && !writer.status().last_error.empty());
  UNSIGNED_LONGS_EQUAL(1, writer.status().outages);
  UNSIGNED_LONGS_EQUAL(1, events.count(RedisBusEvent::Down));  // logged once, not per publish
  CHECK(!reader.read(&cursor, seen, 10).overrun && seen.size() == 5);
  t0 = Clock::now();
  CHECK_FALSE(reader.wait(cursor, 200));
  CHECK(elapsed_ms(t0) < 1000);

  restart(true);
  UNSIGNED_LONGLONGS_EQUAL(6, publish_soon(writer, "after"));  // the counter survived: no reuse, no hole
  CHECK(writer.status().connected);
  CHECK(events.count(RedisBusEvent::Up) >= 1);
  UNSIGNED_LONGS_EQUAL(1, writer.status().outages);
  UNSIGNED_LONGLONGS_EQUAL(7, writer.publish("after2"));
  CHECK(read_all(reader, &cursor, 7, seen, 3000));
  CHECK(in_order(seen, 1) && seen.size() == 7);
  STRCMP_EQUAL("after", seen[5].payload.c_str());
}

TEST(RedisBus, LostDataDoesNotRestartNumbering) {
  Events events;
  RedisBus writer(options()), reader(options(), events.listener());
  for (int i = 1; i <= 5; ++i) writer.publish("old" + std::to_string(i));
  Records seen;
  uint64_t cursor = 0;
  CHECK(read_all(reader, &cursor, 5, seen, 2000));

  // An empty Redis. A writer that has seen seq 5 continues after it (its
  // floor), so readers that applied 1..5 go on without a gap.
  restart(false);
  UNSIGNED_LONGLONGS_EQUAL(6, publish_soon(writer, "floor"));
  CHECK(read_all(reader, &cursor, 6, seen, 3000));
  CHECK(in_order(seen, 1) && seen.back().payload == "floor");

  // Empty again, and this time the reader notices first: it reports the
  // reset and raises the counter, so even a bus with no memory of its own
  // (a new server) continues after 6.
  restart(false);
  Records none;
  for (auto t0 = Clock::now(); events.count(RedisBusEvent::Reset) == 0 && elapsed_ms(t0) < 3000; sleep_ms(10))
    reader.read(&cursor, none, 10);
  UNSIGNED_LONGS_EQUAL(1, events.count(RedisBusEvent::Reset));
  UNSIGNED_LONGS_EQUAL(1, reader.status().resets);
  CHECK(none.empty() && cursor == 6);
  RedisBus fresh(options());
  UNSIGNED_LONGLONGS_EQUAL(7, publish_soon(fresh, "fresh"));
  CHECK(read_all(reader, &cursor, 7, seen, 3000));
  CHECK(in_order(seen, 1) && seen.size() == 7 && seen.back().payload == "fresh");
}

TEST(RedisBus, OneIdPerRedisAndANewOneWhenRedisLostItsData) {
  start_persistent();
  RedisBus a(options()), b(options());
  const std::string id = a.id();
  CHECK_TEXT(wsb::is_valid_bus_id(id), id.c_str());
  STRCMP_EQUAL(id.c_str(), b.id().c_str());  // two servers, one bus
  a.publish("one");
  uint64_t cursor = 0;
  Records seen;
  CHECK(read_all(b, &cursor, 1, seen, 2000));
  STRCMP_EQUAL(id.c_str(), b.id().c_str());

  // A restart that kept the data (AOF) is the same bus.
  restart(true);
  RedisBus c(options());
  STRCMP_EQUAL(id.c_str(), c.id().c_str());

  // Data lost: the reader's next read makes (and every process then
  // reports) a new id.
  restart(false);
  Records none;
  for (auto t0 = Clock::now(); b.id() == id && elapsed_ms(t0) < 3000; sleep_ms(10)) b.read(&cursor, none, 10);
  const std::string renewed = b.id();
  CHECK_TEXT(wsb::is_valid_bus_id(renewed), renewed.c_str());
  CHECK(renewed != id);
  RedisBus d(options());
  STRCMP_EQUAL(renewed.c_str(), d.id().c_str());
  for (auto t0 = Clock::now(); a.id() == id && elapsed_ms(t0) < 3000; sleep_ms(10)) a.read(&cursor, none, 10);
  STRCMP_EQUAL(renewed.c_str(), a.id().c_str());

  // Unreachable before it ever knew: no id rather than a made-up one.
  server.kill();
  RedisBus e(options());
  STRCMP_EQUAL("", e.id().c_str());
}

// One command on the bus's id key from an outside client, as an operator
// (or another program) would run it; nullptr if Redis did not answer.
static std::unique_ptr<redisReply, void (*)(void*)> on_id_key(int port, const char* command, const char* value = "") {
  std::unique_ptr<redisReply, void (*)(void*)> none(nullptr, freeReplyObject);
  std::unique_ptr<redisContext, void (*)(redisContext*)> c(
      redisConnectWithTimeout("127.0.0.1", port, timeval{1, 0}), redisFree);
  if (!c || c->err) return none;
  const std::string key = RedisBusOptions().key_prefix + ":id";
  const std::string cmd = std::string(command) + " %s" + (*value ? " %s" : "");
  return {static_cast<redisReply*>(redisCommand(c.get(), cmd.c_str(), key.c_str(), value)), freeReplyObject};
}

TEST(RedisBus, SomethingElseUnderTheIdKeyIsReportedOnceAndNeverTakenForAnId) {
  auto set = on_id_key(port, "SET", "not-a-bus-id");
  CHECK(set && set->type == REDIS_REPLY_STATUS);
  Events events;
  RedisBus a(options(), events.listener());
  STRCMP_EQUAL("", a.id().c_str());  // no id rather than someone else's value
  UNSIGNED_LONGS_EQUAL(1, events.count(RedisBusEvent::BadId));
  a.publish("one");
  uint64_t cursor = 0;
  Records seen;
  CHECK(read_all(a, &cursor, 1, seen, 2000));  // the bus itself still works
  STRCMP_EQUAL("", a.id().c_str());
  UNSIGNED_LONGS_EQUAL(1, events.count(RedisBusEvent::BadId));  // once, not per call

  // Once the key is gone the bus takes an id of its own.
  auto del = on_id_key(port, "DEL");
  CHECK(del && del->type == REDIS_REPLY_INTEGER && del->integer == 1);
  const std::string id = a.id();
  CHECK_TEXT(wsb::is_valid_bus_id(id), id.c_str());
  UNSIGNED_LONGS_EQUAL(1, events.count(RedisBusEvent::BadId));
}
