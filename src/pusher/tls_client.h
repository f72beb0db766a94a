// TLS for the webhook client (https:// targets): OpenSSL, the same library
// mod_ssl uses, on the webhook thread only. The peer's certificate is always
// verified (chain and name: SNI and host name for a name, the IP address
// for an address); there is no switch to turn that off: a receiver with a
// private CA or a self-signed certificate is trusted by naming that
// certificate's file (WSBridgePusherWebhookCA). The process must ignore
// SIGPIPE (Apache does): OpenSSL's socket BIO writes with write().
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <sys/types.h>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace wsb {

// Waits for `events` (POLLIN/POLLOUT) on fd until the monotonic deadline
// (ms); false on timeout or error.
bool wait_fd(int fd, short events, int64_t deadline_ms);

// What a client trusts: one per CA file, shared by every https target that
// names it. TLS 1.2 or newer.
class TlsClientContext {
 public:
  // ca_file empty: OpenSSL's default trust store (Debian:
  // /etc/ssl/certs). nullptr and *error when the file cannot be read or
  // holds no certificate.
  static std::shared_ptr<TlsClientContext> create(const std::string& ca_file, std::string* error);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  SSL_CTX* ctx() const { return ctx_; }

 private:
  explicit TlsClientContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// One TLS client session over a connected non-blocking socket, every step
// bounded by the caller's deadline. Does not own the socket.
class TlsStream {
 public:
  explicit TlsStream(const TlsClientContext& ctx);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;
  // host: the name or address the URL gave (what the certificate must name).
  bool handshake(int fd, const std::string& host, int64_t deadline_ms, std::string* error);
  bool write_all(const std::string& data, int64_t deadline_ms, std::string* error);
  // > 0: bytes read; 0: the peer closed; -1: error or deadline (*error).
  ssize_t read(char* buf, size_t len, int64_t deadline_ms, std::string* error);
  // A close_notify, without waiting for the peer's.
  void close_notify();

 private:
  // WANT_READ/WANT_WRITE: wait and try again (true); anything else false.
  bool wait_for(int ret, int64_t deadline_ms, const char* step, std::string* error);
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

}  // namespace wsb
