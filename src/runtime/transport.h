// The byte stream under a session. In Apache it is the connection's filter
// chain (so mod_ssl works); in unit tests a socketpair.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "runtime/frame.h"

namespace wsb {

class Transport {
 public:
  enum class ReadStatus { Data, Again, Eof, Error };
  virtual ~Transport() = default;
  // Non-blocking: appends up to max bytes to buf. Again when nothing is
  // available right now.
  virtual ReadStatus read(std::string& buf, size_t max) = 0;
  // Writes every frame in order and flushes; blocking (bounded by the
  // transport's own write timeout). False when the peer is gone.
  virtual bool write(const std::vector<FramePtr>& frames) = 0;
  // Descriptor to poll for readability.
  virtual int poll_fd() const = 0;
  // True when the transport holds input that poll() on poll_fd() would not
  // show (e.g. TLS records already decrypted).
  virtual bool has_pending_input() const { return false; }
  // A socket that other threads may write frames to directly, with a
  // non-blocking send(), because nothing between the session and the wire
  // would change the bytes (no TLS, no filter but the core one); -1 when
  // every write must go through write(). See OutboundQueue, "direct writes".
  virtual int direct_write_fd() const { return -1; }
};

}  // namespace wsb
