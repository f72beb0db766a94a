// Internals of RedisBus shared by redis_bus.cpp and redis_link.cpp: the
// hiredis handles, the Lua scripts that make the log, and Link, one
// connection with its reconnect policy. Not for other users.
#pragma once
#include <hiredis/hiredis.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/clock.h"
#include "runtime/redis_bus.h"

namespace wsb {

struct ContextFree { void operator()(redisContext* c) const { redisFree(c); } };
struct ReplyFree { void operator()(redisReply* r) const { freeReplyObject(r); } };
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

enum RedisScript { kPublish, kRead, kRaise, kId, kScripts, kNoScript = -1 };
extern const char* const kScriptText[kScripts];

timeval to_timeval(int ms);
bool to_u64(std::string_view s, uint64_t* out);
std::string_view reply_text(const redisReply* r);
bool reply_u64(const redisReply* r, uint64_t* out);

// hiredis takes parallel pointer/length arrays: binary-safe payloads.
struct Argv {
  explicit Argv(const std::vector<std::string_view>& args) {
    for (std::string_view a : args) ptrs.push_back(a.data()), lens.push_back(a.size());
  }
  int count() const { return static_cast<int>(ptrs.size()); }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
};

// One hiredis connection with its reconnect policy. Only the thread that
// holds the mutex the RedisBus keeps for it may touch it.
class RedisBus::Link {
 public:
  Link(RedisBus& bus, bool scripts) : bus_(bus), scripts_(scripts) {}

  // A connected context, or nullptr while Redis is unreachable (the failure
  // is already reported) or this link waits out its backoff.
  redisContext* ready() {
    if (ctx_ && !pending) {
      // An idle connection has nothing to read unless the server closed it
      // (e.g. Redis restarted): reconnect now instead of failing a command.
      pollfd p{ctx_->fd, POLLIN, 0};
      if (ctx_->err != 0 || (::poll(&p, 1, 0) > 0 && p.revents != 0)) ctx_.reset();
    }
    if (ctx_) return ctx_.get();
    if (monotonic_ms() < retry_at_ms_ && bus_.recoveries_.load() == recoveries_seen_) return nullptr;
    return connect() ? ctx_.get() : nullptr;
  }
  int64_t retry_at_ms() const { return retry_at_ms_; }
  redisContext* ctx() const { return ctx_.get(); }

  // Runs a command, or one of the scripts on the bus's keys (EVALSHA; EVAL
  // if the server forgot it, e.g. SCRIPT FLUSH). nullptr (the link failed
  // and reported it) on any error.
  ReplyPtr call(std::vector<std::string_view> args, int script = kNoScript) {
    if (!ready()) return nullptr;
    if (script != kNoScript) args.insert(args.begin(), {"EVALSHA", sha_[script], "3", bus_.seq_key_, bus_.log_key_, bus_.id_key_});
    ReplyPtr r = command(args);
    if (script != kNoScript && r && r->type == REDIS_REPLY_ERROR && reply_text(r.get()).substr(0, 8) == "NOSCRIPT") {
      args[0] = "EVAL", args[1] = kScriptText[script];
      r = command(args);
    }
    return checked(std::move(r), script != kNoScript ? "script" : args[0]);
  }

  // Sends a command without waiting for its reply (wait()'s XREAD BLOCK).
  bool send(const std::vector<std::string_view>& args) {
    Argv argv(args);
    int done = 0;
    bool ok = redisAppendCommandArgv(ctx_.get(), argv.count(), argv.ptrs.data(), argv.lens.data()) == REDIS_OK;
    while (ok && !done) ok = redisBufferWrite(ctx_.get(), &done) == REDIS_OK;
    if (!ok) fail(std::string(args[0]) + ": " + ctx_->errstr);
    return ok;
  }

  // After poll() said readable: false on failure; *out stays empty until
  // the whole reply is in.
  bool receive(ReplyPtr* out) {
    void* reply = nullptr;
    if (redisBufferRead(ctx_.get()) != REDIS_OK || redisReaderGetReply(ctx_->reader, &reply) != REDIS_OK) {
      fail(std::string("XREAD: ") + ctx_->errstr);
      return false;
    }
    if (reply == nullptr) return true;
    *out = checked(ReplyPtr(static_cast<redisReply*>(reply)), "XREAD");
    return *out != nullptr;
  }

  void fail(const std::string& why) {
    ctx_.reset();
    pending = false;
    const RedisBusOptions& o = bus_.options_;
    backoff_ms_ = backoff_ms_ == 0 ? o.backoff_min_ms : std::min(backoff_ms_ * 2, o.backoff_max_ms);
    retry_at_ms_ = monotonic_ms() + backoff_ms_;
    recoveries_seen_ = bus_.recoveries_.load();
    bus_.link_failed(why);
  }

  bool pending = false;             // an XREAD BLOCK was sent, its reply not read
  int64_t pending_deadline_ms = 0;  // past this the server is presumed dead

 private:
  ReplyPtr command(const std::vector<std::string_view>& args) {
    Argv argv(args);
    return ReplyPtr(static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), argv.count(), argv.ptrs.data(), argv.lens.data())));
  }

  ReplyPtr checked(ReplyPtr r, std::string_view what) {
    std::string error;
    if (!r) error = ctx_->errstr[0] ? ctx_->errstr : "no reply";
    else if (r->type == REDIS_REPLY_ERROR) error = reply_text(r.get());
    if (!error.empty()) {
      fail(std::string(what) + ": " + error);
      return nullptr;
    }
    bus_.link_succeeded();
    backoff_ms_ = 0;
    return r;
  }

  bool connect() {
    const RedisBusOptions& o = bus_.options_;
    const RedisAddress& at = o.address;
    ContextPtr c(redisConnectWithTimeout(at.host.c_str(), at.port, to_timeval(o.connect_timeout_ms)));
    if (!c || c->err) {
      fail("connect to " + at.host + ":" + std::to_string(at.port) + ": " + (c ? c->errstr : "out of memory"));
      return false;
    }
    // Bounds every later send and receive, so a hung server costs at most this.
    redisSetTimeout(c.get(), to_timeval(o.command_timeout_ms));
    redisEnableKeepAlive(c.get());
    ctx_ = std::move(c);
    const std::string db = std::to_string(at.db);
    if (at.db != 0 && !call({"SELECT", db})) return false;
    for (int s = 0; scripts_ && s < kScripts; ++s) {
      ReplyPtr r = call({"SCRIPT", "LOAD", kScriptText[s]});
      if (!r) return false;
      sha_[s].assign(reply_text(r.get()));
    }
    return scripts_ || call({"PING"}) != nullptr;  // so Up means the server answers
  }

  RedisBus& bus_;
  const bool scripts_;
  ContextPtr ctx_;
  std::string sha_[kScripts];
  int backoff_ms_ = 0;
  int64_t retry_at_ms_ = 0;
  uint64_t recoveries_seen_ = 0;
};

struct RedisBus::Publisher {
  explicit Publisher(RedisBus& bus) : link(bus, true) {}
  std::mutex mu;
  Link link;
  std::atomic<bool> used{false};  // has published at least once (status)
};

}  // namespace wsb
