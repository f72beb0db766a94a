#include "pusher/tls_client.h"

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include "runtime/clock.h"

namespace wsb {

namespace {

// The reason of the oldest error on this thread's OpenSSL queue (and the
// queue emptied), or `fallback`.
std::string openssl_reason(const char* fallback) {
  unsigned long e = ERR_get_error();
  std::string out;
  if (e && ERR_SYSTEM_ERROR(e)) {
    out = std::strerror(ERR_GET_REASON(e));  // errno, e.g. a file we may not read
  } else if (e) {
    const char* r = ERR_reason_error_string(e);
    out = r ? r : "error " + std::to_string(e);
  } else {
    out = fallback;
  }
  ERR_clear_error();
  return out;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

bool wait_fd(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - monotonic_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

std::shared_ptr<TlsClientContext> TlsClientContext::create(const std::string& ca_file, std::string* error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    *error = "cannot make a TLS context: " + openssl_reason("out of memory");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  // A receiver that closes without close_notify after its answer: the
  // answer is complete (Connection: close), not an error.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
  const bool ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx) == 1
                                  : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) == 1;
  if (!ok) {
    *error = (ca_file.empty() ? std::string("cannot load the system's CA certificates: ")
                              : "cannot load CA certificates from " + ca_file + ": ") +
             openssl_reason("no certificate found");
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return std::shared_ptr<TlsClientContext>(new TlsClientContext(ctx));
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

TlsStream::TlsStream(const TlsClientContext& ctx) : ssl_(SSL_new(ctx.ctx())) {}

TlsStream::~TlsStream() {
  if (ssl_) SSL_free(ssl_);
}

bool TlsStream::wait_for(int ret, int64_t deadline_ms, const char* step, std::string* error) {
  const int e = SSL_get_error(ssl_, ret);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    if (wait_fd(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline_ms)) return true;
    *error = std::string("TLS ") + step + ": timed out";
    return false;
  }
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    *error = std::string("TLS ") + step + ": " +
             (errno ? std::strerror(errno) : "the connection closed");
    return false;
  }
  *error = std::string("TLS ") + step + ": " + openssl_reason("failed");
  return false;
}

bool TlsStream::handshake(int fd, const std::string& host, int64_t deadline_ms, std::string* error) {
  if (!ssl_) {
    *error = "TLS: out of memory";
    return false;
  }
  fd_ = fd;
  ERR_clear_error();
  SSL_set_fd(ssl_, fd);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
  if (is_ip_literal(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());  // no SNI for an address (RFC 6066)
  } else {
    SSL_set_tlsext_host_name(ssl_, host.c_str());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
  for (;;) {
    errno = 0;
    const int r = SSL_connect(ssl_);
    if (r == 1) return true;
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      *error = "TLS: the certificate of " + host + " is not trusted: " + X509_verify_cert_error_string(verify);
      ERR_clear_error();
      return false;
    }
    if (!wait_for(r, deadline_ms, "handshake", error)) return false;
  }
}

bool TlsStream::write_all(const std::string& data, int64_t deadline_ms, std::string* error) {
  size_t off = 0;
  while (off < data.size()) {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
    if (r > 0) {
      off += static_cast<size_t>(r);
      continue;
    }
    if (!wait_for(r, deadline_ms, "send", error)) return false;
  }
  return true;
}

ssize_t TlsStream::read(char* buf, size_t len, int64_t deadline_ms, std::string* error) {
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_read(ssl_, buf, static_cast<int>(len));
    if (r > 0) return r;
    if (SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN) return 0;
    if (!wait_for(r, deadline_ms, "receive", error)) return -1;
  }
}

void TlsStream::close_notify() {
  if (!ssl_ || fd_ < 0) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // non-blocking: sends ours if it can, never waits for theirs
  ERR_clear_error();
}

}  // namespace wsb
