// Whether bytes are whole TLS records and nothing else: each a 5-byte
// header (content type 20-24, version 3.x, a non-zero length) and that many
// bytes of body (RFC 8446 §5.1, RFC 5246 §6.2.1). The TLS hub writes check
// what mod_ssl handed down before sending it (src/apache/filter_transport.cpp):
// once its connection is shut down mod_ssl forwards data unencrypted, and
// such bytes must never reach the socket.
#pragma once
#include <cstddef>
#include <string_view>

namespace wsb {

inline bool whole_tls_records(std::string_view bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 5) return false;
    const auto* h = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    if (h[0] < 20 || h[0] > 24 || h[1] != 3) return false;
    const size_t len = (static_cast<size_t>(h[3]) << 8) | h[4];
    if (len == 0 || bytes.size() - at - 5 < len) return false;
    at += 5 + len;
  }
  return true;
}

}  // namespace wsb
