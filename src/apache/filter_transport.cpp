#include "apache/filter_transport.h"

#include <http_connection.h>
#include <http_core.h>
#include <http_log.h>
#include <apr_portable.h>
#include <sys/socket.h>

#include <strings.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

#include "apache/config.h"
#include "protocol/tls_records.h"

APLOG_USE_MODULE(wsbridge);

namespace wsb {

namespace {
ap_filter_rec_t* g_tap = nullptr;
// Filter names are kept in lower case by Apache.
bool named(const ap_filter_t* f, const char* name) {
  return f && f->frec && f->frec->name && strcasecmp(f->frec->name, name) == 0;
}
constexpr size_t kFirstRead = 2048;
// The largest payload of one TLS record (RFC 8446 §5.1; RFC 5246 §6.2.1):
// one SSL_write of this many bytes is one record.
constexpr size_t kTlsRecord = 16384;
}  // namespace

FilterTransport::FilterTransport(conn_rec* c, int poll_fd)
    : c_(c),
      fd_(poll_fd),
      in_(apr_brigade_create(c->pool, c->bucket_alloc)),
      out_(apr_brigade_create(c->pool, c->bucket_alloc)) {
  // The hub may write to the socket itself only when Apache would pass the
  // bytes through unchanged: the core output filter alone (no mod_ssl, no
  // HTTP/2 stream, no other connection filter) with nothing buffered in it,
  // and the polled descriptor is the socket itself. Never on an HTTP/2
  // stream (c->master): its socket is mod_http2's process-wide dummy, its
  // bytes go into the stream's output beam, and its input is a pipe.
  ap_filter_t* f = c->output_filters;
  apr_socket_t* s = c->master ? nullptr : ap_get_conn_socket(c);
  apr_os_sock_t os = -1;
  const bool socket_polled = s && apr_os_sock_get(&os, s) == APR_SUCCESS && os == poll_fd;
  if (f && !f->next && f->frec == ap_core_output_filter_handle && !c->data_in_output_filters && socket_polled)
    direct_fd_ = os;
  // Reads may skip the chain on the same terms (see the header), and past
  // mod_logio's byte counter: it feeds the access log's %I, and the access
  // log line was written at the upgrade (deferred_session.h).
  ap_filter_t* in = c->input_filters;
  if (named(in, "log_input_output")) in = in->next;
  direct_read_ok_ = in && !in->next && in->frec == ap_core_input_filter_handle && socket_polled;
  // mod_ssl's output filter ("SSL/TLS Filter"; filter names are kept in
  // lower case): one record per bucket, so batches are coalesced.
  for (ap_filter_t* o = c->output_filters; o; o = o->next) coalesce_ = coalesce_ || named(o, "ssl/tls filter");
  // TLS hub writes (see the header): mod_ssl first, then at most mod_logio's
  // counter, then the core filter writing to the polled socket.
  if (socket_polled && named(f, "ssl/tls filter")) {
    ap_filter_t* below = f->next;
    if (named(below, "log_input_output")) below = below->next;
    if (below && !below->next && below->frec == ap_core_output_filter_handle) {
      tls_direct_ok_ = true;
      socket_fd_ = os;
    }
  }
  // An HTTP/2 stream (RFC 8441): mod_http2 answers the first read with an
  // EOS that ends the internal GET's empty body, not the stream.
  upgrade_eos_pending_ = c->master != nullptr;
}

FilterTransport::~FilterTransport() {
  // The connection outlives the session (mod_ssl's close_notify goes down
  // the chain later): the tap must not point at this object any more.
  if (tap_) ap_remove_output_filter(tap_);
  apr_brigade_destroy(in_);
  apr_brigade_destroy(out_);
}

Transport::ReadStatus FilterTransport::read(std::string& buf, size_t max) {
  if (core_drained_) return read_socket(buf, max);
  if (direct_read_ok_ && own_input_) return take_core_input(buf, max);
  apr_status_t rv = ap_get_brigade(c_->input_filters, in_, AP_MODE_READBYTES, APR_NONBLOCK_READ,
                                   static_cast<apr_off_t>(max));
  if (APR_STATUS_IS_EAGAIN(rv)) {
    if (direct_read_ok_) core_drained_ = true;
    return ReadStatus::Again;
  }
  if (APR_STATUS_IS_EOF(rv)) return ReadStatus::Eof;
  if (rv != APR_SUCCESS) {
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, c_, "wsbridge: read failed");
    return ReadStatus::Error;
  }
  bool eos = false, skipped_eos = false;
  size_t before = buf.size();
  while (!APR_BRIGADE_EMPTY(in_)) {
    apr_bucket* b = APR_BRIGADE_FIRST(in_);
    if (APR_BUCKET_IS_EOS(b)) {
      if (upgrade_eos_pending_) {
        upgrade_eos_pending_ = false;
        skipped_eos = true;
      } else {
        eos = true;
      }
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
  if (eos) return ReadStatus::Eof;
  // Only mod_http2's first EOS came: the stream's bytes may be there already.
  if (skipped_eos) return read(buf, max);
  // An empty brigade from a non-blocking read means "nothing now": the core
  // filter found its socket empty and keeps no data of its own, so from
  // here on the socket may be read directly.
  if (direct_read_ok_) core_drained_ = true;
  return ReadStatus::Again;
}

// AP_MODE_EXHAUSTIVE hands over everything the core filter holds: bytes
// that came with the handshake, then its socket bucket, then an EOS; it
// reads nothing. The socket bucket is dropped unread (the socket is read
// directly from now on) and the EOS means only "nothing more buffered".
// The core filter is left empty, so nothing may read through it again:
// hence only for a connection whose input the session owns (own_input()).
Transport::ReadStatus FilterTransport::take_core_input(std::string& buf, size_t max) {
  apr_status_t rv = ap_get_brigade(c_->input_filters, in_, AP_MODE_EXHAUSTIVE, APR_NONBLOCK_READ, 0);
  core_drained_ = true;
  const size_t before = buf.size();
  while (rv == APR_SUCCESS && !APR_BRIGADE_EMPTY(in_)) {
    apr_bucket* b = APR_BRIGADE_FIRST(in_);
    if (!APR_BUCKET_IS_METADATA(b) && !APR_BUCKET_IS_SOCKET(b)) {
      const char* data;
      apr_size_t len;
      rv = apr_bucket_read(b, &data, &len, APR_NONBLOCK_READ);
      if (rv == APR_SUCCESS) buf.append(data, len);
    }
    apr_bucket_delete(b);
  }
  apr_brigade_cleanup(in_);
  if (rv != APR_SUCCESS) {
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, c_, "wsbridge: read failed");
    return ReadStatus::Error;
  }
  return buf.size() > before ? ReadStatus::Data : read_socket(buf, max);
}

// Reads first into a small buffer on the stack: a read that finds nothing
// (the session's first, or after a wake-up for output) or a small message
// (a chat command, a pong) then costs no heap at all. Only when that buffer
// fills does the rest go straight into buf, up to max in all.
Transport::ReadStatus FilterTransport::read_socket(std::string& buf, size_t max) {
  char first[kFirstRead];
  const size_t want = std::min(max, sizeof first);
  ssize_t n;
  do {
    n = ::recv(fd_, first, want, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return ReadStatus::Eof;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadStatus::Again;
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, APR_FROM_OS_ERROR(errno), c_, "wsbridge: read failed");
    return ReadStatus::Error;
  }
  buf.append(first, static_cast<size_t>(n));
  if (static_cast<size_t>(n) < want || max <= want) return ReadStatus::Data;
  const size_t before = buf.size(), rest = max - want;
  buf.resize(before + rest);
  do {
    n = ::recv(fd_, &buf[before], rest, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  buf.resize(before + (n > 0 ? static_cast<size_t>(n) : 0));  // EAGAIN, EOF, errors: the next read sees them
  return ReadStatus::Data;
}

bool FilterTransport::write(const std::vector<FramePtr>& frames) {
  if (coalesce_) return write_coalesced(frames);
  // Transient buckets reference the shared frames without copying; the
  // frames stay alive until this call returns, and the FLUSH makes the core
  // output filter write (or copy, if it has to set aside) before it returns.
  add_in_place(frames);
  return pass(true);
}

void FilterTransport::add_in_place(const std::vector<FramePtr>& frames) {
  for (const auto& f : frames) {
    APR_BRIGADE_INSERT_TAIL(out_, apr_bucket_transient_create(f->data(), f->size(), c_->bucket_alloc));
  }
}

bool FilterTransport::pass(bool flush, ap_filter_t* to) {
  if (flush) APR_BRIGADE_INSERT_TAIL(out_, apr_bucket_flush_create(c_->bucket_alloc));
  apr_status_t rv = ap_pass_brigade(to ? to : c_->output_filters, out_);
  apr_brigade_cleanup(out_);
  if (rv != APR_SUCCESS || c_->aborted) {
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, c_, "wsbridge: write failed");
    return false;
  }
  return true;
}

// The batch as a byte stream cut into full records (see the header): bytes
// that share a record with another frame's are copied into one record's
// buffer; whole records of a large frame, and a last piece that starts a
// record of its own, go down in place. Each full buffer is passed before
// the buffer is reused: mod_ssl encrypts a bucket before it returns (any
// filter that kept a transient bucket would have to copy it first).
bool FilterTransport::write_coalesced(const std::vector<FramePtr>& frames, bool flush) {
  size_t left = 0;  // bytes of the batch not yet put in the brigade
  for (const auto& f : frames) left += f->size();
  std::unique_ptr<char[]> buf;  // only when two frames share a record
  size_t used = 0;
  auto add = [this](const char* p, size_t n) {
    APR_BRIGADE_INSERT_TAIL(out_, apr_bucket_transient_create(p, n, c_->bucket_alloc));
  };
  for (const auto& f : frames) {
    const char* p = f->data();
    size_t n = f->size();
    while (n > 0) {
      if (used == 0 && (n >= kTlsRecord || n == left)) {
        // Whole records of this frame, or the batch's last bytes alone.
        const size_t k = n == left ? n : n - n % kTlsRecord;
        add(p, k);
        p += k, n -= k, left -= k;
        continue;
      }
      // The buffer is sized when first needed, to what is left: no more
      // than that is ever copied into it.
      if (!buf) buf.reset(new char[std::min(left, kTlsRecord)]);
      const size_t k = std::min(n, kTlsRecord - used);
      std::memcpy(buf.get() + used, p, k);
      used += k, p += k, n -= k, left -= k;
      if (used == kTlsRecord) {
        add(buf.get(), used);
        used = 0;
        if (!pass(false)) return false;
      }
    }
  }
  if (used) add(buf.get(), used);
  return pass(flush);
}

void FilterTransport::register_filters() {
  // Right below mod_ssl's "SSL/TLS Filter" (AP_FTYPE_CONNECTION + 5),
  // above mod_logio (AP_FTYPE_NETWORK - 1) and the core filter.
  g_tap = ap_register_output_filter("WSBRIDGE_TLS_TAP", tap_filter, nullptr,
                                    static_cast<ap_filter_type>(AP_FTYPE_CONNECTION + 6));
}

// Passes everything on, except while the hub encodes a batch: then the
// records mod_ssl made are copied out (they are transient buckets over
// mod_ssl's buffer) and flushes stop here.
apr_status_t FilterTransport::tap_filter(ap_filter_t* f, apr_bucket_brigade* bb) {
  auto* self = static_cast<FilterTransport*>(f->ctx);
  if (!self || !self->capture_) return ap_pass_brigade(f->next, bb);
  apr_status_t rv = APR_SUCCESS;
  while (!APR_BRIGADE_EMPTY(bb)) {
    apr_bucket* b = APR_BRIGADE_FIRST(bb);
    if (!APR_BUCKET_IS_METADATA(b) && rv == APR_SUCCESS) {
      const char* data;
      apr_size_t len;
      rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
      if (rv == APR_SUCCESS) self->capture_->append(data, len);
    }
    apr_bucket_delete(b);
  }
  return rv;
}

DirectEncoder* FilterTransport::direct_encoder(int* fd) {
  if (!tls_direct_ok_ || !tls_hub_writes_allowed_ || !g_tap) return nullptr;
  if (!tap_) {
    tap_ = ap_add_output_filter_handle(g_tap, this, nullptr, c_);
    // The tap must sit directly below mod_ssl, or it would catch bytes
    // another filter still has to see: otherwise no hub writes.
    ap_filter_t* ssl = c_->output_filters;
    if (!tap_ || ssl == tap_ || ssl->next != tap_) {
      if (tap_) ap_remove_output_filter(tap_);
      tap_ = nullptr;
      tls_direct_ok_ = false;
      return nullptr;
    }
  }
  *fd = socket_fd_;
  return this;
}

bool FilterTransport::ready() const {
  // Bytes the core filter set aside (a write the socket did not take, or
  // mod_ssl's own output during a read) must go out before any the hub
  // sends; the session's next write, which flushes, sends them.
  return !c_->data_in_output_filters && !c_->aborted;
}

bool FilterTransport::encode(const std::vector<FramePtr>& frames, std::string& out) {
  const size_t before = out.size();
  capture_ = &out;
  const bool ok = write_coalesced(frames, false);
  capture_ = nullptr;
  if (ok && (out.size() == before || !whole_tls_records(std::string_view(out).substr(before)))) {
    ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c_,
                  "wsbridge: mod_ssl made no TLS records of a batch, or passed down something else; hub writes off "
                  "for this connection");
    out.resize(before);
    return false;
  }
  return ok;
}

bool FilterTransport::write_encoded(const std::vector<FramePtr>& bytes) {
  if (!tap_) return false;
  add_in_place(bytes);
  return pass(true, tap_->next);  // below mod_ssl: the bytes are records already
}

}  // namespace wsb
