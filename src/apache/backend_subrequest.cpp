#include "apache/backend_subrequest.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

APLOG_USE_MODULE(wsbridge);

namespace wsb {

namespace {

ap_filter_rec_t* g_capture = nullptr;
ap_filter_rec_t* g_discard = nullptr;
ap_filter_rec_t* g_body = nullptr;

struct CaptureCtx {
  std::string* out = nullptr;
  size_t max = 0;
  bool overflow = false;
};

struct BodyCtx {
  const std::string* body = nullptr;
  size_t offset = 0;
  bool eos_sent = false;
};

// The response body, into a string (bounded); nothing is passed on.
apr_status_t capture_out(ap_filter_t* f, apr_bucket_brigade* bb) {
  auto* ctx = static_cast<CaptureCtx*>(f->ctx);
  for (apr_bucket* b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
    if (APR_BUCKET_IS_METADATA(b) || !ctx || !ctx->out) continue;
    const char* data = nullptr;
    apr_size_t len = 0;
    apr_status_t rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
    if (rv != APR_SUCCESS) return rv;
    if (ctx->out->size() + len > ctx->max) {
      ctx->overflow = true;
      continue;
    }
    ctx->out->append(data, len);
  }
  apr_brigade_cleanup(bb);
  return APR_SUCCESS;
}

// Where a sub-request's protocol-level writes (an interim 1xx a proxied
// backend forwards) would go: never to the WebSocket.
apr_status_t discard_out(ap_filter_t* f, apr_bucket_brigade* bb) {
  (void)f;
  apr_brigade_cleanup(bb);
  return APR_SUCCESS;
}

// The request body from memory, then EOS; never reads the connection.
apr_status_t body_in(ap_filter_t* f, apr_bucket_brigade* bb, ap_input_mode_t mode, apr_read_type_e,
                     apr_off_t readbytes) {
  auto* ctx = static_cast<BodyCtx*>(f->ctx);
  if (mode == AP_MODE_INIT || mode == AP_MODE_EATCRLF) return APR_SUCCESS;
  if (!ctx || !ctx->body || ctx->eos_sent) return APR_EOF;
  apr_bucket_alloc_t* ba = f->c->bucket_alloc;
  const std::string& body = *ctx->body;
  size_t left = body.size() - ctx->offset;
  if (left > 0) {
    size_t n = left;
    if (mode == AP_MODE_GETLINE) {
      size_t nl = body.find('\n', ctx->offset);
      if (nl != std::string::npos) n = nl + 1 - ctx->offset;
    } else if (readbytes > 0) {
      n = std::min<size_t>(n, static_cast<size_t>(readbytes));
    }
    // The body outlives the sub-request: no copy.
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(body.data() + ctx->offset, n, ba));
    if (mode == AP_MODE_SPECULATIVE) return APR_SUCCESS;
    ctx->offset += n;
    left -= n;
  }
  if (left == 0 && mode != AP_MODE_SPECULATIVE) {
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    ctx->eos_sent = true;
  }
  return APR_SUCCESS;
}

// A copy of a vhost's server record with another Timeout, made once per
// (vhost, timeout) and kept for the process's life: mod_proxy keeps its
// backend connections (and their base_server) beyond the sub-request and
// shuts them down when the child exits, so the copy must outlive it too.
server_rec* server_with_timeout(server_rec* s, apr_interval_time_t timeout) {
  static std::mutex mu;
  static std::map<std::pair<server_rec*, apr_interval_time_t>, server_rec*> copies;
  std::lock_guard<std::mutex> lock(mu);
  server_rec*& copy = copies[{s, timeout}];
  if (!copy) {
    copy = static_cast<server_rec*>(apr_pmemdup(s->process->pool, s, sizeof(server_rec)));
    copy->timeout = timeout;
  }
  return copy;
}

ap_filter_t* make_filter(apr_pool_t* p, ap_filter_rec_t* rec, conn_rec* c) {
  auto* f = static_cast<ap_filter_t*>(apr_pcalloc(p, sizeof(ap_filter_t)));
  f->frec = rec;
  f->c = c;
  return f;  // r stays NULL: nothing of ours is a request filter of Apache's
}

int collect_header(void* data, const char* key, const char* value) {
  static_cast<HeaderList*>(data)->emplace_back(key, value);
  return 1;
}

}  // namespace

void register_backend_filters() {
  g_capture = ap_register_output_filter("WSBRIDGE_BACKEND_CAPTURE", capture_out, nullptr, AP_FTYPE_PROTOCOL);
  g_discard = ap_register_output_filter("WSBRIDGE_BACKEND_DISCARD", discard_out, nullptr, AP_FTYPE_PROTOCOL);
  g_body = ap_register_input_filter("WSBRIDGE_BACKEND_BODY", body_in, nullptr, AP_FTYPE_PROTOCOL);
}

SubrequestClient::SubrequestClient(request_rec* r, std::string uri, HeaderList client,
                                   apr_interval_time_t timeout, size_t max_response_body)
    : r_(r), uri_(std::move(uri)), client_(std::move(client)), timeout_(timeout), max_body_(max_response_body) {
  capture_ = make_filter(r->pool, g_capture, r->connection);
  discard_ = make_filter(r->pool, g_discard, r->connection);
  body_ = make_filter(r->pool, g_body, r->connection);
}

BackendResponse SubrequestClient::call(const BackendRequest& request) {
  BackendResponse resp;
  last_error_.clear();
  CaptureCtx cap{&resp.body, max_body_, false};
  BodyCtx body{&request.body, 0, false};
  capture_->ctx = &cap;
  body_->ctx = &body;
  apr_time_t t0 = apr_time_now();

  // The lookup (access control, handler mapping) runs with the client's
  // own handshake headers, as the browser's request would, and with
  // WSBRIDGE=1 already in the environment it copies from r, so that
  // `Require env WSBRIDGE` can keep browsers off the backend path.
  apr_table_setn(r_->subprocess_env, "WSBRIDGE", "1");
  request_rec* rr = ap_sub_req_method_uri("POST", uri_.c_str(), r_, capture_);
  // The port the client used (SERVER_PORT), not the default one a bare
  // path would give.
  rr->parsed_uri.port = r_->parsed_uri.port;
  rr->parsed_uri.port_str = r_->parsed_uri.port_str;
  if (rr->status != HTTP_OK) {
    resp.status = rr->status;
    last_error_ = apr_psprintf(rr->pool, "the backend path %s was refused by Apache with %d", uri_.c_str(), rr->status);
  } else {
    // What the backend sees: the client's headers (filtered), then ours.
    rr->headers_in = apr_table_make(rr->pool, 24);
    for (const auto& h : client_) apr_table_add(rr->headers_in, h.first.c_str(), h.second.c_str());
    for (const auto& h : request.headers) apr_table_set(rr->headers_in, h.first.c_str(), h.second.c_str());
    apr_table_set(rr->headers_in, "Content-Length", apr_off_t_toa(rr->pool, static_cast<apr_off_t>(request.body.size())));
    rr->input_filters = rr->proto_input_filters = body_;
    // mod_proxy_http passes a sub-request's body on only when the request
    // has a kept body (without one it sends none, so as not to read the
    // main request's); mod_request, where loaded, serves it from here.
    rr->kept_body = apr_brigade_create(rr->pool, rr->connection->bucket_alloc);
    if (!request.body.empty())
      APR_BRIGADE_INSERT_TAIL(rr->kept_body, apr_bucket_immortal_create(request.body.data(), request.body.size(),
                                                                       rr->connection->bucket_alloc));
    body_->r = nullptr;
    rr->proto_output_filters = discard_;
    rr->read_length = 0;
    // A variable no client can set ($_SERVER['WSBRIDGE'] in PHP): the
    // request came from the bridge, not from a browser.
    apr_table_setn(rr->subprocess_env, "WSBRIDGE", "1");
    apr_table_set(rr->subprocess_env, "WSBRIDGE_CONNECTION_ID",
                  [&] {
                    for (const auto& h : request.headers)
                      if (strcasecmp(h.first.c_str(), "Connection-Id") == 0) return h.second.c_str();
                    return "";
                  }());
    // WSBridgeBackendTimeout: handlers that wait on something (mod_proxy_*
    // without their own timeout, CGI) use the request's server Timeout.
    rr->server = server_with_timeout(rr->server, timeout_);
    int rc = ap_run_sub_req(rr);
    resp.status = (rc == OK || rc == DONE) ? rr->status : rc;
    if (rc != OK && rc != DONE)
      last_error_ = apr_psprintf(rr->pool, "the backend at %s failed with %d", uri_.c_str(), rc);
    apr_table_do(collect_header, &resp.headers, rr->headers_out, nullptr);
    apr_table_do(collect_header, &resp.headers, rr->err_headers_out, nullptr);
    if (rr->content_type) resp.headers.emplace_back("Content-Type", rr->content_type);
  }
  if (cap.overflow) {
    last_error_ = "the backend's answer is larger than the limit";
    resp.status = 0;
    resp.body.clear();
  }
  if (apr_time_now() - t0 >= timeout_ && (resp.status == 0 || resp.status >= 500)) {
    last_error_ = apr_psprintf(rr->pool, "the backend at %s did not answer within %" APR_TIME_T_FMT " s",
                               uri_.c_str(), apr_time_sec(timeout_));
    resp.status = HTTP_GATEWAY_TIME_OUT;
  }
  capture_->ctx = nullptr;
  body_->ctx = nullptr;
  ap_destroy_sub_req(rr);
  return resp;
}

}  // namespace wsb
