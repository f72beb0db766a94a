// What the hub sees of a connected session: somewhere to put frames.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/frame.h"

namespace wsb {

class Peer {
 public:
  virtual ~Peer() = default;
  // Queues a frame for the connection; false when it is closed or overflowed
  // (the session disconnects itself with 1008 then, the hub just moves on).
  virtual bool deliver(const FramePtr& frame) = 0;
  // Asks the connection to close with code/reason after what was delivered
  // before (a publisher's close action); later deliveries are refused.
  virtual bool close(uint16_t code, std::string_view reason) {
    (void)code;
    (void)reason;
    return false;
  }
};

using PeerPtr = std::shared_ptr<Peer>;

}  // namespace wsb
