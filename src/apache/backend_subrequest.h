// The backend bridge's requests as Apache sub-requests on the session's
// thread (DESIGN.md "The backend bridge"): a POST to the configured local
// path in the same vhost, so whatever serves that path (PHP through
// mod_proxy_fcgi, mod_php, CGI, ProxyPass) serves it with the site's own
// configuration, access control and logs. No port of our own, no loopback
// hop. An input filter supplies the body; the response is captured by an
// output filter that passes nothing on, so no byte reaches the client's
// socket; the sub-request's protocol filters are a discarding stub too.
#pragma once
#include <httpd.h>
#include <util_filter.h>

#include <string>

#include "backend/backend_app.h"

namespace wsb {

// Registers the filters (register_hooks).
void register_backend_filters();

class SubrequestClient : public BackendClient {
 public:
  // r: the upgraded request (its pool lives as long as the session);
  // uri: the backend path with the client's query string; client: the
  // client's handshake headers, filtered (BackendConnection::filter_client_headers);
  // timeout: WSBridgeBackendTimeout.
  SubrequestClient(request_rec* r, std::string uri, HeaderList client, apr_interval_time_t timeout,
                   size_t max_response_body);
  BackendResponse call(const BackendRequest& request) override;
  // Why the last call had no usable answer ("" if it had one).
  const std::string& last_error() const { return last_error_; }

 private:
  request_rec* r_;
  std::string uri_;
  HeaderList client_;
  apr_interval_time_t timeout_;
  size_t max_body_;
  std::string last_error_;
  // Made once per session from r's pool (which lives as long as it): a
  // sub-request's pool is freed after each call.
  ap_filter_t* capture_ = nullptr;
  ap_filter_t* discard_ = nullptr;
  ap_filter_t* body_ = nullptr;
};

}  // namespace wsb
