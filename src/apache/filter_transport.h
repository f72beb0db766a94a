// Transport over an Apache connection's filter chains: reads through
// c->input_filters (non-blocking) and writes through c->output_filters, so
// mod_ssl (wss://) is transparent.
//
// Direct reads: when the input chain is Apache's core filter alone (no TLS,
// no HTTP/2, nothing but mod_logio's byte counter) and that filter holds
// nothing any more, reads go straight to the socket with recv(): no 8 KiB heap bucket
// from the connection's allocator per read (which would stay in its free
// list while the connection idles), and a large message arrives in one
// call instead of 8,000-byte pieces. The mirror of the hub's direct writes.
//
// Coalesced writes (wss://): mod_ssl turns every data bucket it is passed
// into at least one TLS record (one SSL_write per bucket), and after the
// upgrade its coalescing filter is gone from the chain. A batch of N small
// frames as N buckets would cost N records: N x 22 bytes of record overhead
// (TLS 1.3, AES-GCM), N encryptions and N trips down to the core filter. On
// a connection behind mod_ssl a batch is therefore handed over in pieces of
// exactly one full record (16 KiB) each, small frames copied together into
// one buffer, whole records of a large frame passed in place: ceil(bytes /
// 16 KiB) records per batch, the fewest TLS allows. Plain connections keep
// one zero-copy bucket per shared frame.
//
// Hub writes over TLS: the hub writes a batch to a TLS session's socket
// itself, as it does to a plain one, instead of waking the session's thread
// for every delivery. mod_ssl still makes every byte: the batch goes down
// the connection's output chain as the session would send it, and a small
// filter right below mod_ssl (WSBRIDGE_TLS_TAP) catches the records mod_ssl
// passes down and hands them to the hub, which sends them with a
// non-blocking send(); what the socket does not take, the session writes
// later below mod_ssl (write_encoded), in order. mod_ssl's filter and the
// connection's bucket allocator are not thread-safe: the hub encodes only
// under the session's write lock, which the session holds for every read
// and write of its own (Session, encoded_direct_). Only where the output
// chain is mod_ssl, optionally mod_logio's counter, and the core filter,
// and only for apps that use the connection for nothing else (not the
// backend bridge, whose sub-requests use the connection's allocator).
#pragma once
#include <httpd.h>
#include <util_filter.h>

#include <string>

#include "runtime/transport.h"

namespace wsb {

class FilterTransport : public Transport, private DirectEncoder {
 public:
  // At start-up: registers the filter below mod_ssl (see the top).
  static void register_filters();

  // poll_fd: the descriptor from ap_get_pollfd_from_conn().
  FilterTransport(conn_rec* c, int poll_fd);
  ~FilterTransport() override;

  ReadStatus read(std::string& buf, size_t max) override;
  bool write(const std::vector<FramePtr>& frames) override;
  int poll_fd() const override { return fd_; }
  int direct_write_fd() const override { return direct_fd_; }
  DirectEncoder* direct_encoder(int* fd) override;
  bool write_encoded(const std::vector<FramePtr>& bytes) override;
  // The app uses this connection for nothing but the session's reads and
  // writes, so the hub may encode for it (see the top; off by default).
  void allow_tls_hub_writes() { tls_hub_writes_allowed_ = true; }
  // Whether the hub may write to this connection (plain or TLS); for logs.
  bool hub_writes_possible() const { return direct_fd_ >= 0 || (tls_direct_ok_ && tls_hub_writes_allowed_); }
  // Whether reads will go to the socket directly once the core filter has
  // nothing buffered (see the top of this file).
  bool reads_socket_directly() const { return direct_read_ok_; }
  // The connection's input belongs to this transport alone from now on (its
  // request is over, nothing else will read it): the first direct read may
  // take what the core filter holds without reading the socket through it,
  // which would take an 8 KiB buffer from the connection's allocator.
  void own_input() { own_input_ = true; }

 private:
  ReadStatus read_socket(std::string& buf, size_t max);
  ReadStatus take_core_input(std::string& buf, size_t max);
  // flush: end with a FLUSH bucket (the session's writes); the hub's
  // encoding needs none, mod_ssl passes each record down as it makes it.
  bool write_coalesced(const std::vector<FramePtr>& frames, bool flush = true);
  // Transient buckets over the frames (alive until the pass returns; the
  // FLUSH makes the core filter write or set aside before that).
  void add_in_place(const std::vector<FramePtr>& frames);
  // Passes out_ down from `to` (the top of the chain when null).
  bool pass(bool flush, ap_filter_t* to = nullptr);
  bool ready() const override;
  bool encode(const std::vector<FramePtr>& frames, std::string& out) override;
  static apr_status_t tap_filter(ap_filter_t* f, apr_bucket_brigade* bb);

  conn_rec* c_;
  int fd_;
  int direct_fd_ = -1;
  bool direct_read_ok_ = false;  // the input chain is the core filter alone
  bool core_drained_ = false;    // ... and it has answered "nothing buffered"
  bool own_input_ = false;
  bool coalesce_ = false;        // mod_ssl is in the output chain
  bool upgrade_eos_pending_ = false;  // HTTP/2 stream: the first EOS is not the end
  bool tls_direct_ok_ = false;   // the output chain is mod_ssl [, mod_logio], core
  bool tls_hub_writes_allowed_ = false;
  int socket_fd_ = -1;           // the connection's socket (TLS hub writes)
  ap_filter_t* tap_ = nullptr;   // WSBRIDGE_TLS_TAP, once installed
  std::string* capture_ = nullptr;  // while encoding: where the tap puts the records
  apr_bucket_brigade* in_;
  apr_bucket_brigade* out_;
};

}  // namespace wsb
