#include "chat/rate_limiter.h"

#include <algorithm>

namespace wsb {

RateLimiter::RateLimiter(double rate_per_sec, double burst)
    : rate_per_sec_(std::max(0.0, rate_per_sec)),
      burst_milli_(std::max(0.0, burst) * 1000.0),
      milli_tokens_(burst_milli_) {}

void RateLimiter::refill(int64_t now_ms) {
  if (!started_) {
    // The first call only sets the reference time: the bucket is already full.
    started_ = true;
    last_ms_ = now_ms;
    return;
  }
  if (now_ms <= last_ms_) return;
  const double elapsed = static_cast<double>(now_ms - last_ms_);
  milli_tokens_ = std::min(burst_milli_, milli_tokens_ + elapsed * rate_per_sec_);
  last_ms_ = now_ms;
}

bool RateLimiter::allow(int64_t now_ms) {
  if (burst_milli_ <= 0) return true;  // off: a bucket that can never hold a token
  refill(now_ms);
  if (milli_tokens_ < 1000.0) return false;
  milli_tokens_ -= 1000.0;
  return true;
}

}  // namespace wsb
