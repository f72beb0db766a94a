#include "protocol/deflate.h"
#include "protocol/http_tokens.h"

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace wsb {

namespace {

// Splits on sep outside double quotes (extension parameters may be quoted,
// unlike the plain token lists the handshake walks).
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') quoted = !quoted;
    if (s[i] == sep && !quoted) {
      parts.push_back(trim_ows(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  parts.push_back(trim_ows(s.substr(start)));
  return parts;
}

// A window size parameter: 8..15, optionally quoted.
bool window_bits(std::string_view v, int* out) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 2) return false;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  if (v.size() == 2 && v[0] == '0') return false;
  if (n < 8 || n > 15) return false;
  *out = n;
  return true;
}

// One offer's parameters (after "permessage-deflate"); false to decline it.
bool accept_offer(const std::vector<std::string_view>& params, std::string* response) {
  bool server_nct = false, client_nct = false, server_bits = false, client_bits = false;
  int server_max = 15;
  for (size_t i = 1; i < params.size(); ++i) {
    const std::string_view p = params[i];
    const size_t eq = p.find('=');
    const std::string_view name = trim_ows(p.substr(0, eq));
    const bool has_value = eq != std::string_view::npos;
    const std::string_view value = has_value ? trim_ows(p.substr(eq + 1)) : std::string_view();
    bool* seen = nullptr;
    if (name == "server_no_context_takeover") {
      if (has_value) return false;
      seen = &server_nct;
    } else if (name == "client_no_context_takeover") {
      if (has_value) return false;
      seen = &client_nct;
    } else if (name == "server_max_window_bits") {
      if (!has_value || !window_bits(value, &server_max)) return false;
      seen = &server_bits;
    } else if (name == "client_max_window_bits") {
      int ignored = 0;
      if (has_value && !window_bits(value, &ignored)) return false;
      seen = &client_bits;
    } else {
      return false;  // unknown parameter: decline this offer
    }
    if (*seen) return false;  // repeated
    *seen = true;
  }
  // We never compress, so any server window the client asks for holds, and
  // no context is ever taken over. The client must not take its context
  // over either (a server may ask that, RFC 7692 §7.1.1.2): then nothing is
  // kept between messages, instead of a 32 KiB window and the inflater's
  // state for every connection. A 32K window reads any client window, so
  // client_max_window_bits needs no answer.
  (void)client_nct;
  *response = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
  if (server_bits) *response += "; server_max_window_bits=" + std::to_string(server_max);
  return true;
}

}  // namespace

DeflateAgreement negotiate_deflate(std::string_view header) {
  DeflateAgreement a;
  for (std::string_view ext : split(header, ',')) {
    std::vector<std::string_view> params = split(ext, ';');
    if (params.empty() || params[0] != "permessage-deflate") continue;
    if (accept_offer(params, &a.response)) {
      a.accepted = true;
      return a;
    }
  }
  return a;
}

struct Inflater::Stream {
  z_stream z{};
  bool ok = false;
};

Inflater::Inflater() : z_(new Stream) {
  // Raw deflate (no zlib header), the largest window: reads any client's.
  z_->ok = inflateInit2(&z_->z, -15) == Z_OK;
}

Inflater::~Inflater() {
  if (z_->ok) inflateEnd(&z_->z);
}

Inflater::Result Inflater::inflate(std::string_view message, size_t max_out, std::string* out) {
  out->clear();
  if (!z_->ok) return Result::Corrupt;
  if (message.size() > UINT32_MAX) return Result::TooBig;
  // RFC 7692 §7.2.2: the sender removed this empty stored block's tail.
  static const unsigned char kTail[4] = {0x00, 0x00, 0xff, 0xff};
  unsigned char buf[16384];
  for (int part = 0; part < 2; ++part) {
    z_->z.next_in = part == 0 ? reinterpret_cast<unsigned char*>(const_cast<char*>(message.data()))
                              : const_cast<unsigned char*>(kTail);
    z_->z.avail_in = part == 0 ? static_cast<uInt>(message.size()) : 4;
    do {
      z_->z.next_out = buf;
      z_->z.avail_out = sizeof buf;
      const int rc = ::inflate(&z_->z, Z_SYNC_FLUSH);
      const size_t got = sizeof buf - z_->z.avail_out;
      if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR || rc == Z_MEM_ERROR) {
        inflateReset(&z_->z);
        return Result::Corrupt;
      }
      if (out->size() + got > max_out) {
        inflateReset(&z_->z);
        return Result::TooBig;
      }
      out->append(reinterpret_cast<char*>(buf), got);
      if (rc == Z_STREAM_END) {
        // A block with BFINAL set ends the message (RFC 7692 §7.2.3.3); what
        // follows (our tail) is not data. The next message starts a stream.
        inflateReset(&z_->z);
        return Result::Ok;
      }
      if (rc == Z_BUF_ERROR && got == 0) break;  // no progress possible: input used up
    } while (z_->z.avail_in > 0 || z_->z.avail_out == 0);
  }
  return Result::Ok;
}

}  // namespace wsb
