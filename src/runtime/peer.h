// What the hub sees of a connected session: somewhere to put frames.
#pragma once
#include <memory>
#include <string>

#include "runtime/frame.h"

namespace wsb {

class Peer {
 public:
  virtual ~Peer() = default;
  // Queues a frame for the connection; false when it is closed or overflowed
  // (the session disconnects itself with 1008 then, the hub just moves on).
  virtual bool deliver(const FramePtr& frame) = 0;
};

using PeerPtr = std::shared_ptr<Peer>;

}  // namespace wsb
