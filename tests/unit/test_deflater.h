// A WebSocket client's permessage-deflate compressor, for the unit tests.
#pragma once
#include <zlib.h>

#include <string>

namespace wsb_test {

// A client's compressor: raw deflate, sync flush per message, tail removed
// (RFC 7692 §7.2.1). Keeps its window unless reset (context takeover).
class Deflater {
 public:
  Deflater() { deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY); }
  ~Deflater() { deflateEnd(&z_); }
  std::string compress(const std::string& in, int flush = Z_SYNC_FLUSH) {
    std::string out;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    unsigned char buf[4096];
    do {
      z_.next_out = buf;
      z_.avail_out = sizeof buf;
      deflate(&z_, flush);
      out.append(reinterpret_cast<char*>(buf), sizeof buf - z_.avail_out);
    } while (z_.avail_out == 0);
    if (flush != Z_SYNC_FLUSH) return out;
    // Nothing new since the last flush: zlib writes nothing; one 0x00 byte
    // is the empty message (RFC 7692 §7.2.3.6).
    if (out.size() < 4) return std::string(1, '\0');
    out.resize(out.size() - 4);  // 00 00 ff ff
    return out;
  }

 private:
  z_stream z_{};
};

}  // namespace wsb_test
