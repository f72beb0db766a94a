// A small HTTP/1.1 client for webhooks: one POST per call on a fresh TCP
// connection ("Connection: close"), plain or TLS (tls_client.h: the
// certificate is always verified), with one deadline for the whole
// exchange, name lookup and TLS handshake included (HostResolver: cached, and a lookup that
// does not answer in time fails the POST). Blocks until the answer or the
// deadline, which is why it runs on the webhook thread only. Reads the
// status line and the headers; the body of the answer is not needed and not
// read.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pusher/host_resolver.h"
#include "pusher/tls_client.h"

namespace wsb {

struct HttpPostResult {
  int status = 0;     // the answer's status code; 0 = no answer (see error)
  std::string error;  // why there is no answer (connect refused, timeout...)
};

// host: a name or an address (IPv6 without brackets). host_header: the Host
// header's value. headers: extra "Name", "value" pairs. resolver: nullptr =
// one shared by the process. tls: nullptr = plain HTTP; otherwise https,
// the certificate checked against the context's CAs and `host`.
HttpPostResult http_post(const std::string& host, int port, const std::string& host_header,
                         const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers,
                         const std::string& body, int timeout_ms, HostResolver* resolver = nullptr,
                         const TlsClientContext* tls = nullptr);

}  // namespace wsb
