#include "apache/backend_handler.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <sys/random.h>

#include <chrono>

#include "apache/chat_service.h"
#include "apache/handler.h"
#include "runtime/clock.h"

APLOG_USE_MODULE(wsbridge);

namespace wsb {

namespace {

std::string g_default_key;

constexpr const char* kNamespace = "grip";

class EngineChannels : public ChannelDirectory {
 public:
  explicit EngineChannels(ChatEngine& e) : engine_(e) {}
  bool subscribe(const std::string& conn_id, std::string_view channel, const PeerPtr& peer) override {
    return engine_.subscribe(conn_id, kNamespace, channel, peer) != ChannelSubscriptions::Result::TooMany;
  }
  void unsubscribe(const std::string& conn_id, std::string_view channel) override {
    engine_.unsubscribe(conn_id, kNamespace, channel);
  }
  void unsubscribe_all(const std::string& conn_id) override { engine_.unsubscribe_all(conn_id); }

 private:
  ChatEngine& engine_;
};

class SlotCounters : public BackendCounters {
 public:
  explicit SlotCounters(BackendStats* s) : s_(s) {}
  void request_done(int64_t micros, int) override {
    if (s_) s_->observe(micros);
  }
  void failure(int status, const std::string&) override {
    if (!s_) return;
    BackendStats::Failure f = status < 0     ? BackendStats::Overflow
                              : status == 0  ? BackendStats::NoAnswer
                              : status == 504 ? BackendStats::Timeout
                              : status != 200 ? BackendStats::BadStatus
                                              : BackendStats::Malformed;
    s_->failures[f].fetch_add(1, std::memory_order_relaxed);
  }

 private:
  BackendStats* s_;
};

int collect(void* data, const char* key, const char* value) {
  static_cast<HeaderList*>(data)->emplace_back(key, value);
  return 1;
}

int64_t unix_now() { return apr_time_sec(apr_time_now()); }

}  // namespace

void setup_default_sig_key(apr_pool_t* process_pool) {
  void* data = nullptr;
  apr_pool_userdata_get(&data, "wsbridge.backend_key", process_pool);
  if (!data) {
    char raw[32];
    if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) return;  // no default: unsigned
    char* hex = static_cast<char*>(apr_palloc(process_pool, 65));
    for (int i = 0; i < 32; ++i) apr_snprintf(hex + 2 * i, 3, "%02x", static_cast<unsigned char>(raw[i]));
    apr_pool_userdata_set(hex, "wsbridge.backend_key", apr_pool_cleanup_null, process_pool);
    data = hex;
  }
  g_default_key = static_cast<const char*>(data);
}

BackendApp::Log backend_log(request_rec* r, const char* path) {
  return [r, path](bool error, const std::string& line) {
    ap_log_rerror(APLOG_MARK, error ? APLOG_ERR : APLOG_INFO, 0, r, "wsbridge: backend %s: %s", path, line.c_str());
  };
}

bool backend_open(request_rec* r, const DirConfig* d, const std::string& conn_id, BackendBridge* out) {
  ProcessState& ps = process_state();
  BackendConfig cfg;
  cfg.sig_key = d->backend_sig_key ? d->backend_sig_key : g_default_key;
  cfg.max_queued_bytes = static_cast<size_t>(max_queued(d));
  out->conn = std::make_unique<BackendConnection>(cfg, conn_id);

  HeaderList client;
  apr_table_do(collect, &client, r->headers_in, nullptr);
  std::string uri = d->backend_path;
  if (r->args && *r->args) uri += std::string("?") + r->args;  // the client's query string, as Pushpin keeps it
  out->client = std::make_unique<SubrequestClient>(r, uri, BackendConnection::filter_client_headers(client),
                                                   backend_timeout(d), cfg.max_response_body);
  BackendStats* stats = ps.slot ? &ps.slot->backend : nullptr;
  out->counters = std::make_unique<SlotCounters>(stats);
  if (ChatEngine* e = ChatService::get().engine()) out->channels = std::make_unique<EngineChannels>(*e);

  BackendRequest req = out->conn->take_request(unix_now());
  int64_t t0 = monotonic_us();
  BackendResponse resp = out->client->call(req);
  out->counters->request_done(monotonic_us() - t0, resp.status);
  BackendConnection::OpenResult open = out->conn->on_open_response(resp, monotonic_ms());
  if (open.accepted) {
    out->open_actions = std::move(open.actions);
    out->headers_for_101 = std::move(open.headers);
    return true;
  }
  // The backend's own refusal, or 502/504 for no usable answer.
  const std::string why = out->client->last_error().empty() ? open.reason : out->client->last_error();
  bool backend_refused = resp.status == 200 || (resp.status >= 400 && open.status == resp.status);
  if (stats) {
    if (backend_refused) stats->opens_refused.fetch_add(1, std::memory_order_relaxed);
    else out->counters->failure(resp.status, why);
  }
  if (ps.slot) ps.slot->refused[static_cast<int>(RefuseReason::Unavailable)].fetch_add(backend_refused ? 0 : 1);
  ap_log_rerror(APLOG_MARK, backend_refused ? APLOG_INFO : APLOG_ERR, 0, r,
                "wsbridge: backend %s %s the connection with %d: %s", d->backend_path,
                backend_refused ? "refused" : "could not open", open.status, why.c_str());
  r->status = open.status;
  for (const auto& h : open.headers)
    if (strcasecmp(h.first.c_str(), "Content-Type") != 0)
      apr_table_add(r->err_headers_out, h.first.c_str(), h.second.c_str());
  apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
  const std::string* ct = find_header(open.headers, "Content-Type");
  ap_set_content_type(r, ct ? apr_pstrdup(r->pool, ct->c_str()) : "text/plain; charset=utf-8");
  if (open.body.empty() && !backend_refused) open.body = "backend unavailable\n";
  ap_rwrite(open.body.data(), static_cast<int>(open.body.size()), r);
  return false;
}

}  // namespace wsb
