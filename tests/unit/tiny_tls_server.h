// Webhook tests over TLS: a real OpenSSL server on loopback with a freshly
// made self-signed certificate (TinyTlsServer), the https twin of
// TinyServer. The certificate's PEM goes to a temporary file, so a test can
// trust it as a CA file (it is its own issuer) or leave it untrusted.
#pragma once
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tiny_http_server.h"  // listen_loopback, read_request

class TinyTlsServer {
 public:
  // san: the certificate's subjectAltName, e.g. "IP:127.0.0.1" or
  // "DNS:other.example". handshake false: accept and stay silent (a
  // receiver that never answers the TLS handshake).
  explicit TinyTlsServer(const std::string& san, int status = 200, bool handshake = true)
      : status_(status), handshake_(handshake) {
    make_certificate(san);
    fd_ = listen_loopback(&port_);
    thread_ = std::thread([this] { run(); });
  }
  ~TinyTlsServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
    SSL_CTX_free(ctx_);
    X509_free(cert_);
    EVP_PKEY_free(key_);
    unlink(cert_file_.c_str());
  }
  int port() const { return port_; }
  const std::string& cert_file() const { return cert_file_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void make_certificate(const std::string& san) {
    key_ = EVP_EC_gen("P-256");
    cert_ = X509_new();
    X509_set_version(cert_, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert_), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert_), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert_), 3600);
    X509_set_pubkey(cert_, key_);
    X509_NAME* name = X509_get_subject_name(cert_);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("wsbridge test"), -1,
                               -1, 0);
    X509_set_issuer_name(cert_, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert_, cert_, nullptr, nullptr, 0);
    for (const auto& [nid, value] : {std::pair<int, std::string>{NID_subject_alt_name, san},
                                     {NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
      X509_add_ext(cert_, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(cert_, key_, EVP_sha256());
    char tmpl[] = "/tmp/wsb-tls-cert-XXXXXX";
    int fd = mkstemp(tmpl);
    cert_file_ = tmpl;
    FILE* f = fdopen(fd, "w");
    PEM_write_X509(f, cert_);
    fclose(f);
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx_, cert_);
    SSL_CTX_use_PrivateKey(ctx_, key_);
  }

  void run() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      if (!handshake_) {
        char b[512];
        while (!stop_ && recv(c, b, sizeof b, 0) > 0) {
        }
        close(c);
        continue;
      }
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) {
        std::string req = read_request(
            [ssl](char* buf, size_t len) { return static_cast<long>(SSL_read(ssl, buf, static_cast<int>(len))); });
        {
          std::lock_guard<std::mutex> l(mu_);
          requests_.push_back(req);
        }
        std::string ans = "HTTP/1.1 " + std::to_string(status_) + " X\r\nContent-Length: 0\r\n\r\n";
        SSL_write(ssl, ans.data(), static_cast<int>(ans.size()));
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
      close(c);
    }
  }

  int status_;
  bool handshake_;
  EVP_PKEY* key_ = nullptr;
  X509* cert_ = nullptr;
  SSL_CTX* ctx_ = nullptr;
  std::string cert_file_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};
