// Redis-backed bus (see redis_bus.h, and docs/redis.md for the design).
#include "runtime/redis_bus.h"
#include "runtime/redis_link.h"

#include "runtime/bus_id.h"
#include "runtime/clock.h"

#include <hiredis/hiredis.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <iterator>
#include <utility>

namespace wsb {

namespace {

// A stream entry [id, [field, value...]] whose id is "0-<seq>".
bool parse_entry(const redisReply* e, BusRecord* rec) {
  if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2) return false;
  const std::string_view id = reply_text(e->element[0]);
  const redisReply* fields = e->element[1];
  if (id.substr(0, 2) != "0-" || !to_u64(id.substr(2), &rec->seq) || rec->seq == 0) return false;
  if (!fields || fields->type != REDIS_REPLY_ARRAY || fields->elements < 2) return false;
  rec->payload.assign(reply_text(fields->element[1]));
  return true;
}

// Appends the records of `entries` that continue *cursor without a gap,
// advancing it. With `rr`, one gap in front of the first record is allowed
// and reported as an overrun (a gap later is left for the next read, as in
// ShmBus). Returns whether any entry is newer than the cursor was.
bool append_run(const redisReply* entries, uint64_t* cursor, std::vector<BusRecord>& out, size_t max,
                BusReadResult* rr) {
  bool newer = false;
  for (size_t i = 0, added = 0; i < entries->elements && added < max; ++i) {
    BusRecord rec;
    if (!parse_entry(entries->element[i], &rec) || rec.seq <= *cursor) continue;  // not ours, or old
    newer = true;
    if (rec.seq > *cursor + 1) {
      if (!rr || added > 0) break;
      rr->overrun = true, rr->lost_from = *cursor + 1, rr->lost_to = rec.seq - 1;
    }
    *cursor = rec.seq;
    out.push_back(std::move(rec));
    ++added;
  }
  return newer;
}

}  // namespace

bool parse_redis_url(std::string_view url, RedisAddress* out, std::string* error) {
  auto bad = [&](const char* why) {
    if (error) *error = "'" + std::string(url) + "': " + why;
    return false;
  };
  if (url.substr(0, 8) != "redis://") return bad("must start with redis://");
  std::string_view hostport = url.substr(8), db;
  if (const size_t slash = hostport.find('/'); slash != std::string_view::npos)
    db = hostport.substr(slash + 1), hostport = hostport.substr(0, slash);
  RedisAddress a;
  uint64_t n = 0;
  if (!db.empty() || url.back() == '/') {
    if (!to_u64(db, &n) || n > 100000) return bad("the database must be a number");
    a.db = static_cast<int>(n);
  }
  const size_t colon = hostport.find(':');
  a.host.assign(hostport.substr(0, colon));
  const std::string_view port = colon == std::string_view::npos ? "" : hostport.substr(colon);
  if (a.host.empty() || a.host.find_first_of("@?#[] ") != std::string::npos)
    return bad("needs a host (no user, password or query)");
  if (!port.empty()) {
    if (port[0] != ':' || !to_u64(port.substr(1), &n) || n == 0 || n > 65535) return bad("the port must be 1-65535");
    a.port = static_cast<int>(n);
  }
  *out = std::move(a);
  return true;
}


RedisBus::RedisBus(RedisBusOptions options, Listener listener)
    : options_(std::move(options)),
      listener_(std::move(listener)),
      seq_key_(options_.key_prefix + ":seq"),
      log_key_(options_.key_prefix + ":log"),
      id_key_(options_.key_prefix + ":id"),
      maxlen_(std::to_string(std::max<uint64_t>(1, options_.max_records))),
      reader_(std::make_unique<Link>(*this, true)),
      waiter_(std::make_unique<Link>(*this, false)) {
  for (int i = 0; i < std::max(1, options_.publish_links); ++i)
    publishers_.push_back(std::make_unique<Publisher>(*this));
}

RedisBus::~RedisBus() = default;

uint64_t RedisBus::publish(std::string_view payload) {
  const std::string floor = std::to_string(seen_seq_.load());
  uint64_t seq = 0;
  {
    // The first free link; when all are busy, queue for one in turn.
    std::unique_lock<std::mutex> lock;
    Publisher* p = nullptr;
    for (const auto& candidate : publishers_) {
      std::unique_lock<std::mutex> l(candidate->mu, std::try_to_lock);
      if (l.owns_lock()) {
        lock = std::move(l);
        p = candidate.get();
        break;
      }
    }
    if (p == nullptr) {
      p = publishers_[publish_turn_.fetch_add(1, std::memory_order_relaxed) % publishers_.size()].get();
      lock = std::unique_lock<std::mutex>(p->mu);
    }
    p->used.store(true, std::memory_order_relaxed);
    ReplyPtr r = p->link.call({payload, maxlen_, floor}, kPublish);
    if (!r) return 0;
    if (!reply_u64(r.get(), &seq) || seq == 0) {
      p->link.fail("publish: unexpected reply");
      return 0;
    }
  }
  note_seen(seq);
  return seq;
}

BusReadResult RedisBus::read(uint64_t* cursor, std::vector<BusRecord>& out, size_t max_records) {
  BusReadResult rr;
  if (cursor == nullptr || max_records == 0 || take_cached(cursor, out, max_records)) return rr;
  std::lock_guard<std::mutex> lock(read_mu_);
  const std::string from = "0-" + std::to_string(*cursor + 1), count = std::to_string(max_records);
  std::string candidate;
  {
    std::lock_guard<std::mutex> id_lock(id_mu_);
    candidate = candidate_locked();
  }
  ReplyPtr r = reader_->call({from, count, candidate}, kRead);
  if (!r) return rr;
  uint64_t server_seq = 0;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !reply_u64(r->element[0], &server_seq) ||
      r->element[1]->type != REDIS_REPLY_ARRAY) {
    reader_->fail("read: unexpected reply");
    return rr;
  }
  note_id(reply_text(r->element[2]));
  if (server_seq < *cursor) handle_reset(*cursor, server_seq);
  note_seen(server_seq);
  const size_t before = out.size();
  append_run(r->element[1], cursor, out, max_records, &rr);
  if (out.size() == before && server_seq > *cursor) {  // numbered, but nothing of it is left
    rr.overrun = true, rr.lost_from = *cursor + 1, rr.lost_to = server_seq;
    *cursor = server_seq;
  }
  return rr;
}

void RedisBus::handle_reset(uint64_t cursor, uint64_t server_seq) {
  // Every server's next publish must continue after what this process
  // applied: the engine ignores records numbered <= its last one.
  const std::string floor = std::to_string(cursor);
  reader_->call({floor}, kRaise);
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    ++status_.resets;
  }
  if (listener_)
    listener_(RedisBusEvent::Reset, "the sequence went back from " + floor + " to " + std::to_string(server_seq) +
                                        " (Redis lost its data); numbering continues after " + floor);
}

bool RedisBus::take_cached(uint64_t* cursor, std::vector<BusRecord>& out, size_t max_records) {
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_.empty()) return false;
  if (cache_.front().seq != *cursor + 1) {
    cache_.clear();  // another cursor: the records may not follow it
    return false;
  }
  const size_t n = std::min(max_records, cache_.size());
  std::move(cache_.begin(), cache_.begin() + static_cast<std::ptrdiff_t>(n), std::back_inserter(out));
  cache_.erase(cache_.begin(), cache_.begin() + static_cast<std::ptrdiff_t>(n));
  *cursor = out.back().seq;
  return true;
}

bool RedisBus::wait(uint64_t cursor, int timeout_ms) {
  std::lock_guard<std::mutex> lock(wait_mu_);
  {
    std::lock_guard<std::mutex> cache_lock(cache_mu_);
    if (!cache_.empty() && cache_.back().seq > cursor) return true;
  }
  const int64_t deadline = timeout_ms < 0 ? INT64_MAX : monotonic_ms() + timeout_ms;
  Link& w = *waiter_;
  for (int64_t now = monotonic_ms(); now < deadline; now = monotonic_ms()) {
    if (!w.pending) {
      if (!w.ready()) {
        if (sleep_until_woken(std::min(deadline, std::max(w.retry_at_ms(), now + 1)))) return true;
        continue;
      }
      // A bounded BLOCK even for "no limit", so a dead server is noticed.
      const int64_t block = std::clamp<int64_t>(deadline - now, 1, 10000);
      const std::string block_s = std::to_string(block), from = "0-" + std::to_string(cursor);
      if (!w.send({"XREAD", "COUNT", "256", "BLOCK", block_s, "STREAMS", log_key_, from})) continue;
      w.pending = true;
      w.pending_deadline_ms = now + block + options_.command_timeout_ms;
    }
    // A wake() or stale XREAD left pending is fine: its reply is read by the
    // next wait(), and records it has are filtered against that cursor.
    pollfd fds[2] = {{w.ctx()->fd, POLLIN, 0}, {wake_fd_.fd(), POLLIN, 0}};
    const int64_t until = std::min(deadline, w.pending_deadline_ms);
    if (::poll(fds, 2, static_cast<int>(std::clamp<int64_t>(until - now, 0, INT_MAX))) < 0 && errno != EINTR)
      return false;
    if (fds[1].revents & POLLIN) {
      wake_fd_.drain();
      return true;
    }
    if (fds[0].revents != 0) {
      ReplyPtr reply;
      if (!w.receive(&reply) || !reply) continue;  // failed (reported) or incomplete
      w.pending = false;
      if (consume_wait_reply(cursor, reply.get())) return true;
    } else if (monotonic_ms() >= w.pending_deadline_ms) {
      w.fail("XREAD BLOCK: no reply in time");
    }
  }
  return false;
}

bool RedisBus::consume_wait_reply(uint64_t cursor, const void* raw) {
  // [[log key, [entry...]]], or nil when BLOCK timed out.
  const auto* r = static_cast<const redisReply*>(raw);
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 || r->element[0]->type != REDIS_REPLY_ARRAY ||
      r->element[0]->elements != 2 || r->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
    return false;
  // Cache only a run that continues the cursor: read() must see any gap. The
  // reply to an older wait may hold only records <= cursor: nothing new.
  std::vector<BusRecord> fresh;
  const bool newer = append_run(r->element[0]->element[1], &cursor, fresh, SIZE_MAX, nullptr);
  if (!fresh.empty()) {
    note_seen(fresh.back().seq);
    std::lock_guard<std::mutex> lock(cache_mu_);
    cache_ = std::move(fresh);
  }
  return newer;
}

bool RedisBus::sleep_until_woken(int64_t until_ms) {
  pollfd p{wake_fd_.fd(), POLLIN, 0};
  const int64_t left = std::clamp<int64_t>(until_ms - monotonic_ms(), 0, INT_MAX);
  if (::poll(&p, 1, static_cast<int>(left)) <= 0 || !(p.revents & POLLIN)) return false;
  wake_fd_.drain();
  return true;
}

void RedisBus::wake() { wake_fd_.signal(); }

uint64_t RedisBus::last_seq() const {
  std::lock_guard<std::mutex> lock(read_mu_);
  ReplyPtr r = reader_->call({"GET", seq_key_});
  uint64_t seq = 0;  // stays 0 for a missing key (nil)
  if (!r) return seen_seq_.load();
  reply_u64(r.get(), &seq);
  return seq;
}

uint64_t RedisBus::first_seq() const {
  std::lock_guard<std::mutex> lock(read_mu_);
  ReplyPtr r = reader_->call({"XRANGE", log_key_, "-", "+", "COUNT", "1"});
  BusRecord rec;
  return r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && parse_entry(r->element[0], &rec) ? rec.seq : 0;
}

std::string RedisBus::id() const {
  std::string candidate;
  {
    std::lock_guard<std::mutex> lock(id_mu_);
    if (!id_.empty()) return id_;
    candidate = candidate_locked();
  }
  ReplyPtr r;
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    r = reader_->call({candidate}, kId);
  }
  if (r) note_id(reply_text(r.get()));
  std::lock_guard<std::mutex> lock(id_mu_);
  return id_;
}

std::string RedisBus::candidate_locked() const {
  if (candidate_.empty()) candidate_ = format_bus_id(random_bus_id());
  return candidate_;
}

void RedisBus::note_id(std::string_view id) const {
  if (!is_valid_bus_id(id)) {
    // Someone else's value under our key (SET NX never replaces it): keep
    // what we had, and say so once per value, since until the key is
    // deleted the bus has no id and clients cannot tell it from another.
    std::string detail;
    {
      std::lock_guard<std::mutex> lock(id_mu_);
      if (id.empty() || bad_id_reported_ == id) return;
      bad_id_reported_.assign(id);
      std::string shown(id.substr(0, 64));
      for (char& ch : shown) {
        if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e) ch = '?';
      }
      detail = "key " + id_key_ + " holds \"" + shown + (id.size() > 64 ? "...\"" : "\"") +
               ", not a bus id (16 hex digits); delete it (DEL " + id_key_ + ") and the bus takes a new one";
    }
    if (listener_) listener_(RedisBusEvent::BadId, detail);
    return;
  }
  std::lock_guard<std::mutex> lock(id_mu_);
  if (id == candidate_) candidate_.clear();  // taken: offer another next time
  if (id_ != id) id_.assign(id);
}

RedisBusStatus RedisBus::status() const {
  RedisBusStatus s;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    s = status_;
  }
  for (const auto& p : publishers_) s.publish_links_used += p->used.load(std::memory_order_relaxed) ? 1 : 0;
  return s;
}

void RedisBus::note_seen(uint64_t seq) {
  uint64_t cur = seen_seq_.load();
  while (cur < seq && !seen_seq_.compare_exchange_weak(cur, seq)) {
  }
}

// Both report only transitions, so an outage is logged once however many
// links and commands fail during it.
void RedisBus::link_failed(const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    status_.last_error = error;
    status_.connected = false;
    healthy_.store(false);
    if (health_ == Health::Down) return;
    health_ = Health::Down;
    ++status_.outages;
    down_since_ms_ = monotonic_ms();
  }
  if (listener_) listener_(RedisBusEvent::Down, error);
}

void RedisBus::link_succeeded() {
  if (healthy_.load()) return;  // the common case takes no lock
  std::string detail = "connected to " + options_.address.host + ":" + std::to_string(options_.address.port);
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (health_ == Health::Up) return;
    if (health_ == Health::Down) detail = "after " + std::to_string(monotonic_ms() - down_since_ms_) + " ms";
    if (health_ == Health::Down) recoveries_.fetch_add(1);
    health_ = Health::Up;
    status_.connected = true;
    healthy_.store(true);
  }
  if (listener_) listener_(RedisBusEvent::Up, detail);
}

}  // namespace wsb
