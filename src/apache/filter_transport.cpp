#include "apache/filter_transport.h"

#include <http_connection.h>
#include <http_core.h>
#include <http_log.h>
#include <apr_portable.h>

#include "apache/config.h"

APLOG_USE_MODULE(wsbridge);

namespace wsb {

FilterTransport::FilterTransport(conn_rec* c, int poll_fd)
    : c_(c),
      fd_(poll_fd),
      in_(apr_brigade_create(c->pool, c->bucket_alloc)),
      out_(apr_brigade_create(c->pool, c->bucket_alloc)) {
  // The hub may write to the socket itself only when Apache would pass the
  // bytes through unchanged: the core output filter alone (no mod_ssl, no
  // HTTP/2 stream, no other connection filter) with nothing buffered in it,
  // and the polled descriptor is the socket itself.
  ap_filter_t* f = c->output_filters;
  apr_socket_t* s = ap_get_conn_socket(c);
  apr_os_sock_t os = -1;
  if (f && !f->next && f->frec == ap_core_output_filter_handle &&
      !c->data_in_output_filters && s && apr_os_sock_get(&os, s) == APR_SUCCESS && os == poll_fd)
    direct_fd_ = os;
}

FilterTransport::~FilterTransport() {
  apr_brigade_destroy(in_);
  apr_brigade_destroy(out_);
}

Transport::ReadStatus FilterTransport::read(std::string& buf, size_t max) {
  apr_status_t rv = ap_get_brigade(c_->input_filters, in_, AP_MODE_READBYTES, APR_NONBLOCK_READ,
                                   static_cast<apr_off_t>(max));
  if (APR_STATUS_IS_EAGAIN(rv)) return ReadStatus::Again;
  if (APR_STATUS_IS_EOF(rv)) return ReadStatus::Eof;
  if (rv != APR_SUCCESS) {
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, c_, "wsbridge: read failed");
    return ReadStatus::Error;
  }
  bool eos = false;
  size_t before = buf.size();
  while (!APR_BRIGADE_EMPTY(in_)) {
    apr_bucket* b = APR_BRIGADE_FIRST(in_);
    if (APR_BUCKET_IS_EOS(b)) {
      eos = true;
    } else if (!APR_BUCKET_IS_METADATA(b)) {
      const char* data;
      apr_size_t len;
      rv = apr_bucket_read(b, &data, &len, APR_NONBLOCK_READ);
      if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
        apr_brigade_cleanup(in_);
        return ReadStatus::Error;
      }
      if (rv == APR_SUCCESS) buf.append(data, len);
    }
    apr_bucket_delete(b);
  }
  if (buf.size() > before) return ReadStatus::Data;
  // An empty brigade from a non-blocking read means "nothing now".
  return eos ? ReadStatus::Eof : ReadStatus::Again;
}

bool FilterTransport::write(const std::vector<FramePtr>& frames) {
  // Transient buckets reference the shared frames without copying; the
  // frames stay alive until this call returns, and the FLUSH makes the core
  // output filter write (or copy, if it has to set aside) before it returns.
  for (const auto& f : frames) {
    APR_BRIGADE_INSERT_TAIL(out_, apr_bucket_transient_create(f->data(), f->size(),
                                                               c_->bucket_alloc));
  }
  APR_BRIGADE_INSERT_TAIL(out_, apr_bucket_flush_create(c_->bucket_alloc));
  apr_status_t rv = ap_pass_brigade(c_->output_filters, out_);
  apr_brigade_cleanup(out_);
  if (rv != APR_SUCCESS || c_->aborted) {
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, c_, "wsbridge: write failed");
    return false;
  }
  return true;
}

}  // namespace wsb
