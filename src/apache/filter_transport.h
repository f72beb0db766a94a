// Transport over an Apache connection's filter chains: reads through
// c->input_filters (non-blocking) and writes through c->output_filters, so
// mod_ssl (wss://) is transparent.
#pragma once
#include <httpd.h>
#include <util_filter.h>

#include "runtime/transport.h"

namespace wsb {

class FilterTransport : public Transport {
 public:
  // poll_fd: the descriptor from ap_get_pollfd_from_conn().
  FilterTransport(conn_rec* c, int poll_fd);
  ~FilterTransport() override;

  ReadStatus read(std::string& buf, size_t max) override;
  bool write(const std::vector<FramePtr>& frames) override;
  int poll_fd() const override { return fd_; }
  int direct_write_fd() const override { return direct_fd_; }

 private:
  conn_rec* c_;
  int fd_;
  int direct_fd_ = -1;
  apr_bucket_brigade* in_;
  apr_bucket_brigade* out_;
};

}  // namespace wsb
