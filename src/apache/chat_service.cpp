#include "apache/chat_service.h"

#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "apache/config.h"
#include "apache/handler.h"
#include "apache/pusher_webhooks.h"
#include "chat/chat_app.h"
#include "chat/chat_record.h"
#include "chat/publish_api.h"
#include "chat/token.h"
#include "pusher/pusher_app.h"
#include "backend/grip_publish.h"
#include "runtime/clock.h"

#include <rapidjson/document.h>
#include "runtime/redis_bus.h"
#include "runtime/shm_bus.h"

APLOG_USE_MODULE(wsbridge);

namespace wsb {

namespace {
constexpr const char* kBusKey = "wsbridge.bus";

struct BusMapping {
  void* base;
  size_t size;       // of the mapping
  size_t requested;  // WSBridgeBusSize it was made for
  int fd;            // WSBridgeBusFile's, locked; -1: an anonymous mapping
  const char* path;  // WSBridgeBusFile (in the process pool); nullptr: none
  pid_t owner;       // the parent that opened the file
};

bool same_path(const char* a, const char* b) {
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

// Gives up the mapping: a file bus is written back and marked closed
// cleanly (the next open_file() continues it), an anonymous one unmapped.
void release_mapping(BusMapping* m) {
  if (!m->base) return;
  if (m->fd >= 0) ShmBus::close_file(m->base, m->size, m->fd);
  else ShmBus::destroy(m->base, m->size);
  m->base = nullptr;
  m->fd = -1;
}

// On pconf, registered at every reading of the configuration: pconf is
// cleared at every restart (this DSO is still loaded then: mod_so's unload
// cleanup was registered before, so it runs after this one) and destroyed
// when the parent exits. Only that last time, and only in the parent, is a
// file bus closed: a restart keeps the mapping for the next generation,
// and a child never owns it.
apr_status_t close_bus_file_at_exit(void* data) {
  auto* m = static_cast<BusMapping*>(data);
  if (m->fd >= 0 && m->owner == getpid() && ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_EXITING)
    release_mapping(m);
  return APR_SUCCESS;
}
}  // namespace

ChatService& ChatService::get() {
  static ChatService service;
  return service;
}

// The mapping is kept in the process pool's userdata because Apache reloads
// this DSO on restart while the process pool (and the mapping) live on: a
// graceful restart re-attaches and the new children read the same log, so
// history and resume survive it.
bool ChatService::setup_bus(server_rec* s, apr_pool_t* process_pool, apr_pool_t* pconf) {
  void* data = nullptr;
  apr_pool_userdata_get(&data, kBusKey, process_pool);
  auto* mapping = static_cast<BusMapping*>(data);
  if (const char* url = server_config(s)->bus_url) {
    if (server_config(s)->bus_file)
      ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "wsbridge: WSBridgeBusFile is ignored: the bus is Redis (WSBridgeBus)");
    if (mapping) release_mapping(mapping);  // switched to Redis: a file bus is closed cleanly
    bus_file_.clear();
    return setup_redis(s, url);
  }
  use_redis_ = false;
  size_t want = static_cast<size_t>(bus_size(server_config(s)));
  const char* file = server_config(s)->bus_file;
  bus_file_ = file ? file : "";
  if (!mapping) {
    mapping = static_cast<BusMapping*>(apr_pcalloc(process_pool, sizeof(BusMapping)));
    mapping->fd = -1;
    apr_pool_userdata_set(mapping, kBusKey, apr_pool_cleanup_null, process_pool);
  }
  apr_pool_cleanup_register(pconf, mapping, close_bus_file_at_exit, apr_pool_cleanup_null);
  // The parent is whoever reads the configuration now: `apache2 -k start`
  // forks into the background between its first and second reading.
  mapping->owner = getpid();
  if (mapping->base) {
    if (mapping->requested == want && same_path(mapping->path, file)) {
      bus_ = ShmBus::attach(mapping->base, mapping->size);
      active_bus_.store(bus_.get());
      if (bus_) return true;
    }
    // A new size, file or layout: children of the old generation keep
    // their inherited mapping until they exit; the parent's copy can go.
    // The same file with another size or layout cannot be made over while
    // they still write to it (and they hold its lock): it is unlinked, and
    // the new bus gets a new file under the same name.
    const bool same_file = mapping->fd >= 0 && same_path(mapping->path, file);
    release_mapping(mapping);
    if (same_file && ::unlink(file) != 0 && errno != ENOENT)
      ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "wsbridge: cannot remove the bus file %s to make it anew", file);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "wsbridge: bus size, file or layout changed; chat history starts anew");
  }
  std::string err;
  std::unique_ptr<ShmBus> shm;
  int fd = -1;
  if (file) {
    bool reopened = false;
    std::string why_new;
    shm = ShmBus::open_file(file, want, &fd, &reopened, &why_new, &err);
    if (shm && reopened)
      ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                   "wsbridge: bus file %s reopened: bus %s continues after seq %llu (history and message ids kept)",
                   file, shm->id().c_str(), static_cast<unsigned long long>(shm->last_seq()));
    else if (shm)
      ap_log_error(APLOG_MARK, why_new == "a new file" ? APLOG_NOTICE : APLOG_WARNING, 0, s,
                   "wsbridge: bus file %s: a new bus %s (%s)", file, shm->id().c_str(), why_new.c_str());
  } else {
    shm = ShmBus::create(want, &err);
  }
  if (!shm) {
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "wsbridge: cannot create the shared-memory bus (%" APR_SIZE_T_FMT " bytes): %s",
                 static_cast<apr_size_t>(want), err.c_str());
    return false;
  }
  mapping->base = shm->base();
  mapping->size = shm->mapping_size();
  mapping->requested = want;
  mapping->fd = fd;
  mapping->path = file ? apr_pstrdup(process_pool, file) : nullptr;
  bus_ = std::move(shm);
  active_bus_.store(bus_.get());
  return true;
}

namespace {
// Roughly what a chat record takes in the stream: WSBridgeBusSize / this is
// how many records Redis keeps (docs/redis.md).
constexpr size_t kRedisRecordEstimate = 256;

// s is the main server: with nullptr, Apache drops everything below its
// default level (warn), including the first "connected" line.
void log_redis_event(const server_rec* s, RedisBusEvent e, const std::string& detail) {
  switch (e) {
    case RedisBusEvent::Down:
      ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                   "wsbridge: Redis bus unavailable in child %d: %s; chat events are refused "
                   "(clients get \"unavailable\") until it is back", (int)getpid(), detail.c_str());
      break;
    case RedisBusEvent::Up:
      ap_log_error(APLOG_MARK, detail.compare(0, 6, "after ") == 0 ? APLOG_NOTICE : APLOG_INFO, 0, s,
                   "wsbridge: Redis bus available in child %d (%s)", (int)getpid(), detail.c_str());
      break;
    case RedisBusEvent::Reset:
      ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                   "wsbridge: Redis bus in child %d: %s; Redis must persist its data (appendonly yes)",
                   (int)getpid(), detail.c_str());
      break;
    case RedisBusEvent::BadId:
      ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                   "wsbridge: Redis bus in child %d: %s; until then a client coming back with \"since\" "
                   "cannot tell this bus from an earlier one",
                   (int)getpid(), detail.c_str());
      break;
  }
}
}  // namespace

// The parent only checks the address: connecting here would hand one socket
// to every forked child.
bool ChatService::setup_redis(server_rec* s, const char* url) {
  RedisBusOptions o;
  std::string err;
  if (!parse_redis_url(url, &o.address, &err)) {
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "wsbridge: WSBridgeBus %s", err.c_str());
    return false;
  }
  o.max_records = std::max<uint64_t>(1024, static_cast<uint64_t>(bus_size(server_config(s))) / kRedisRecordEstimate);
  redis_options_ = o;
  redis_server_ = s;  // lives as long as this configuration (children inherit it)
  use_redis_ = true;
  bus_.reset();  // a ShmBus wrapper from an earlier generation; its mapping stays in the pool
  active_bus_.store(nullptr);
  ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
               "wsbridge: chat bus is Redis at %s:%d db %d, keeping %" APR_UINT64_T_FMT " records",
               o.address.host.c_str(), o.address.port, o.address.db, static_cast<apr_uint64_t>(o.max_records));
  return true;
}

Bus* ChatService::ensure_bus() {
  if (Bus* b = active_bus_.load(std::memory_order_acquire)) return b;
  if (!use_redis_) return nullptr;
  std::lock_guard<std::mutex> lock(bus_mu_);
  if (Bus* b = active_bus_.load()) return b;
  const server_rec* s = redis_server_;
  auto redis = std::make_unique<RedisBus>(
      redis_options_, [s](RedisBusEvent e, const std::string& detail) { log_redis_event(s, e, detail); });
  redis_bus_.store(redis.get(), std::memory_order_release);
  bus_ = std::move(redis);
  active_bus_.store(bus_.get(), std::memory_order_release);
  return bus_.get();
}

bool ChatService::ensure_started(server_rec* s) {
  if (started_.load(std::memory_order_acquire)) return true;
  std::lock_guard<std::mutex> lock(start_mu_);
  if (started_.load()) return true;
  Bus* bus = ensure_bus();
  if (!bus) return false;
  engine_config_.history_size = static_cast<size_t>(history_size(server_config(s)));
  engine_config_.presence_limit = presence_limit(server_config(s));
  engine_ = std::make_unique<ChatEngine>(engine_config_);
  log_server_ = s;  // before the hub starts: its thread logs there
  // Pusher records must be applied from the first one this child reads,
  // whichever app started the hub (a child that served chat first would
  // otherwise miss the presence members who joined elsewhere).
  engine_->enable_pusher(std::make_unique<PusherFrames>(), owner_key(static_cast<int>(getpid())));
  webhooks_ = start_pusher_webhooks(ap_server_conf);  // the hub hands it hooks from its first record
  const ServerConfig* sc = server_config(s);
  hub_ = std::make_unique<HubThread>(*bus, *this, 0, batch_window(sc), static_cast<size_t>(batch_busy_records(sc)));
  started_.store(true, std::memory_order_release);
  ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "wsbridge: chat hub started in child %d", (int)getpid());
  return true;
}

void ChatService::stop() {
  if (webhooks_ && engine_ && bus()) {
    // The leaves this child's last sessions published are applied here
    // before the hub stops: this child owns those sockets, so it alone
    // reports their member_removed/channel_vacated (bounded wait).
    const uint64_t target = bus()->last_seq();
    const int64_t end = monotonic_ms() + 2000;
    while (engine_->last_seq() < target && monotonic_ms() < end) usleep(10000);
  }
  if (hub_) hub_->stop();
  if (webhooks_) webhooks_->stop();  // what waits gets one last try (at most 2 s)
}

std::string ChatService::next_conn_id() {
  char tag[16];
  snprintf(tag, sizeof tag, "%08x", server_tag_);
  return std::string(tag) + "-" + std::to_string(getpid()) + "-" + std::to_string(conn_counter_.fetch_add(1) + 1);
}

void ChatService::apply(uint64_t seq, std::string_view payload) {
  engine_->apply(seq, payload);
  publish_outbox();
  // Webhooks this process reports (pusher_channels.h); taken even without a
  // webhook so they never pile up.
  if (engine_->has_pusher_hooks()) {
    std::vector<PusherHook> hooks = engine_->take_pusher_hooks();
    if (webhooks_) webhooks_->add(hooks);
  }
}

// Sync requests and present answers (see chat_record.h). Rare: a child
// that started late or fell behind asks once, every child answers once.
void ChatService::publish_outbox() {
  if (!engine_->has_outbox()) return;  // the common case: one atomic load per record
  const uint64_t asked = engine_->stats().sync_requests;
  if (asked > sync_requests_logged_) {
    sync_requests_logged_ = asked;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, log_server_,
                 "wsbridge: child %d missed chat events (late start or overrun); "
                 "asking every child for its room members", (int)getpid());
  }
  Bus* bus = this->bus();
  for (std::string& record : engine_->take_outbox()) {
    if (!bus || bus->publish(record) == 0) pending_.add(std::move(record));
  }
}

void ChatService::on_overrun(uint64_t lost_from, uint64_t lost_to) {
  ProcessState& ps = process_state();
  if (ps.shared) ps.shared->bus_overruns.fetch_add(1);
  ap_log_error(APLOG_MARK, APLOG_WARNING, 0, log_server_,
               "wsbridge: child %d fell behind the bus; events %" APR_UINT64_T_FMT "..%" APR_UINT64_T_FMT " are lost to it "
               "(raise WSBridgeBusSize)", (int)getpid(), static_cast<apr_uint64_t>(lost_from),
               static_cast<apr_uint64_t>(lost_to));
  engine_->on_overrun(lost_from, lost_to);
  publish_outbox();
}

// A child killed (kill -9, crash) never publishes its members' leaves: the
// first hub to notice its slot is orphaned publishes one "gone" record, and
// every engine removes that process's members with leave events.
void ChatService::on_tick() {
  engine_->on_tick();  // presence updates of large rooms that are due
  ProcessState& ps = process_state();
  Bus* bus = this->bus();
  if (!ps.shared || !bus) return;
  if (pending_.size() > 0) {
    size_t n = pending_.retry(*bus);
    if (n > 0)
      ap_log_error(APLOG_MARK, APLOG_INFO, 0, log_server_,
                   "wsbridge: published %" APR_SIZE_T_FMT " chat leave(s) held back while the bus was unavailable", n);
  }
  for (int pid : ps.shared->reap_dead()) {
    ChatRecord r;
    r.type = RecordType::Gone;
    r.pid = owner_key(pid);
    r.by = owner_key(static_cast<int>(getpid()));  // sends the webhooks of its leaves
    r.ts = wall_clock_ms();
    std::string payload = encode_record(r);
    uint64_t seq = bus->publish(payload);
    if (seq == 0) pending_.add(std::move(payload));  // the slot is freed: it must not be lost
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, log_server_,
                 "wsbridge: child %d died without closing its WebSockets; its chat members left (seq %" APR_UINT64_T_FMT ")",
                 pid, static_cast<apr_uint64_t>(seq));
  }
}

namespace {

int read_body(request_rec* r, std::string* body, size_t limit) {
  int rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
  if (rc != OK) return rc;
  if (!ap_should_client_block(r)) return OK;
  char buf[8192];
  long n;
  while ((n = ap_get_client_block(r, buf, sizeof buf)) > 0) {
    if (body->size() + static_cast<size_t>(n) > limit) return HTTP_REQUEST_ENTITY_TOO_LARGE;
    body->append(buf, static_cast<size_t>(n));
  }
  return n < 0 ? HTTP_BAD_REQUEST : OK;
}

void json_reply(request_rec* r, int status, const std::string& body) {
  r->status = status;
  ap_set_content_type(r, "application/json");
  apr_table_setn(r->headers_out, "Cache-Control", "no-store");
  ap_rwrite(body.data(), static_cast<int>(body.size()), r);
  ap_rputs("\n", r);
}

void json_error(request_rec* r, int status, const char* code, const char* reason) {
  PublishResult res;
  res.http_status = status;
  res.error = code;
  res.reason = reason;
  json_reply(r, status, publish_response_body(res));
}

// A GRIP publish body ({"items":[...]}, what a publisher POSTs to
// Pushpin's /publish/) rather than a chat message.
bool is_grip_publish(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());  // no recursion on hostile nesting
  return !doc.HasParseError() && doc.IsObject() && doc.HasMember("items");
}

// How long a publish with an Idempotency-Key waits for this child's engine
// to apply the bus up to its record (normally a millisecond or two).
constexpr int64_t kIdempotencyWaitMs = 2000;

constexpr PublishKind kGripKinds[] = {PublishKind::Text, PublishKind::Binary, PublishKind::Ping, PublishKind::Pong,
                                      PublishKind::Close};

// Every ws-message item becomes one pub record on the bus, in body order:
// every child (and, with Redis, every server) delivers it to its local
// subscribers of the channel. Answered like Pushpin: 200 "Published".
int grip_publish(request_rec* r, const std::string& body, Bus& bus) {
  std::vector<GripItem> items;
  std::string error;
  if (!parse_grip_publish(body, &items, &error)) {
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "wsbridge: GRIP publish refused with 400: %s", error.c_str());
    json_error(r, HTTP_BAD_REQUEST, "bad-request", error.c_str());
    return OK;
  }
  for (const GripItem& item : items) {
    ChatRecord rec;
    rec.type = RecordType::Publish;
    rec.ns = "grip";
    rec.channel = item.channel;
    rec.kind = kGripKinds[static_cast<int>(item.kind)];
    rec.data = item.kind == GripItemKind::Close ? item.close_reason : item.content;
    rec.code = item.close_code;
    rec.ts = wall_clock_ms();
    if (bus.publish(encode_record(rec)) == 0) {
      ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "wsbridge: GRIP publish to channel %s: the bus refused it",
                    item.channel.c_str());
      json_error(r, HTTP_SERVICE_UNAVAILABLE, "bus-unavailable", "the bus did not take the message");
      return OK;
    }
  }
  ap_set_content_type(r, "text/plain; charset=utf-8");
  ap_rputs("Published\n", r);
  return OK;
}

}  // namespace

// SetHandler wsbridge-publish: POST {"room","text","from"?} -> 202 {"seq"};
// a GRIP publish body {"items":[...]} -> 200 "Published".
int publish_handler(request_rec* r) {
  if (!r->handler || strcmp(r->handler, "wsbridge-publish") != 0) return DECLINED;
  if (r->method_number != M_POST) {
    // Answered here, in JSON like every other publish answer (Apache's own
    // 405 page would build Allow from r->allowed).
    apr_table_setn(r->headers_out, "Allow", "POST");
    json_error(r, HTTP_METHOD_NOT_ALLOWED, "method-not-allowed", "use POST");
    return OK;
  }
  DirConfig* d = dir_config(r);
  ChatConfig cfg;
  cfg.max_text_length = d->max_text_length > 0 ? static_cast<size_t>(d->max_text_length) : Limits::kTextLength;
  if (d->secret && *d->secret) {
    // With WSBridgeSecret, callers prove themselves with a token too.
    const char* auth = apr_table_get(r->headers_in, "Authorization");
    std::string uid;
    TokenStatus ts = TokenStatus::Malformed;
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
      ts = verify_token(d->secret, auth + 7, apr_time_sec(apr_time_now()), &uid);
    if (ts != TokenStatus::Ok) {
      ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "wsbridge: publish refused: token %s", token_status_name(ts));
      apr_table_setn(r->err_headers_out, "WWW-Authenticate", "Bearer");
      json_error(r, HTTP_UNAUTHORIZED, "unauthorized", "a valid token is required");
      return OK;
    }
  }
  std::string body;
  // A GRIP item may carry a whole WebSocket message (base64 for binary).
  const size_t chat_limit = cfg.max_text_length * 6 + 4096;
  const size_t grip_limit = static_cast<size_t>(max_message(d)) * 2 + 65536;
  int rc = read_body(r, &body, std::max(chat_limit, grip_limit));
  bool grip = rc == OK && is_grip_publish(body);
  if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE || (rc == OK && !grip && body.size() > chat_limit)) {
    json_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "too-long", "the body is larger than any valid message");
    return OK;
  }
  if (rc != OK) return rc;
  Bus* bus = ChatService::get().ensure_bus();
  if (!bus) return HTTP_SERVICE_UNAVAILABLE;
  if (grip) return grip_publish(r, body, *bus);
  Idempotency idem;
  if (const char* key = apr_table_get(r->headers_in, "Idempotency-Key")) {
    idem.key = key;
    if (idem.key.empty()) idem.key = " ";  // present but empty: refused like any invalid key
    ChatService& svc = ChatService::get();
    // The answer comes from this child's engine, which sees every publish
    // in bus order (started here if no chat connection did it yet).
    if (!svc.ensure_started(r->server) || !svc.engine()) {
      json_error(r, HTTP_SERVICE_UNAVAILABLE, "unavailable", "the message bus is unavailable");
      return OK;
    }
    ChatEngine* engine = svc.engine();
    idem.original = [engine](const std::string& room, const std::string& k, uint64_t upto) {
      const int64_t deadline = monotonic_ms() + kIdempotencyWaitMs;
      while (engine->last_seq() < upto && monotonic_ms() < deadline) apr_sleep(1000);
      return engine->cid_seq(room, "", k);
    };
  }
  PublishResult res = publish_from_http(body, *bus, cfg, wall_clock_ms(), idem.key.empty() ? nullptr : &idem);
  if (res.http_status != HTTP_ACCEPTED)
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "wsbridge: publish refused with %d: %s", res.http_status,
                  res.reason.c_str());
  if (res.replay) {
    apr_table_setn(r->headers_out, "Idempotency-Replayed", "true");
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "wsbridge: publish with a known Idempotency-Key: seq %llu replayed",
                  static_cast<unsigned long long>(res.seq));
  }
  json_reply(r, res.http_status, publish_response_body(res));
  return OK;
}

}  // namespace wsb
