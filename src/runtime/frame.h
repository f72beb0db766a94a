// A server->client frame, encoded once and shared read-only by every receiver.
#pragma once
#include <memory>
#include <string>

namespace wsb {

using FramePtr = std::shared_ptr<const std::string>;

inline FramePtr make_frame(std::string bytes) {
  return std::make_shared<const std::string>(std::move(bytes));
}

}  // namespace wsb
