// The byte stream under a session. In Apache it is the connection's filter
// chain (so mod_ssl works); in unit tests a socketpair.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "runtime/frame.h"

namespace wsb {

// Turns a batch of frames into the bytes the wire carries (TLS records:
// the transport's own TLS code, mod_ssl in Apache), for a producer writing
// to the session's socket itself (OutboundQueue, "direct writes"). Called
// only under the queue's write lock, which the session also holds for every
// use of its transport (reads included), so the encoder's state is never
// touched by two threads at once.
class DirectEncoder {
 public:
  virtual ~DirectEncoder() = default;
  // False when encoded bytes may not go to the socket now (the transport
  // holds bytes of its own that must go first): the session writes instead.
  virtual bool ready() const = 0;
  // Appends the encoded batch to out; false on an error (the connection is
  // broken; the session finds out on its next write).
  virtual bool encode(const std::vector<FramePtr>& frames, std::string& out) = 0;
};

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
  // The same for a socket whose bytes are encoded (TLS): the encoder and,
  // in *fd, the socket; nullptr when not possible. Asked once, by the
  // session, when direct_write_fd() is -1.
  virtual DirectEncoder* direct_encoder(int* fd) {
    (void)fd;
    return nullptr;
  }
  // Bytes already encoded by direct_encoder()'s encoder that a producer
  // could not send (a full socket): written below the encoder, in order,
  // before anything else. Blocking, like write().
  virtual bool write_encoded(const std::vector<FramePtr>& bytes) {
    (void)bytes;
    return false;
  }
};

}  // namespace wsb
