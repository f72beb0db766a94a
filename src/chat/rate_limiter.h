// Token bucket for one connection's commands. Time is passed in by the
// caller so tests are deterministic and the session can reuse the clock
// reading it already took for the frame.
#pragma once
#include <cstdint>

namespace wsb {

class RateLimiter {
 public:
  // rate_per_sec tokens are added per second up to burst; the bucket starts
  // full so a page can join its rooms and send a few messages at once.
  // A burst of 0 (WSBridgeRateLimit off) allows everything; a rate of 0
  // with a burst allows only the burst.
  RateLimiter(double rate_per_sec, double burst);

  // Takes one token if available. A clock that goes backwards adds nothing
  // (no free tokens from a stepped clock).
  bool allow(int64_t now_ms);

  double tokens() const { return milli_tokens_ / 1000.0; }

 private:
  void refill(int64_t now_ms);

  // Kept in thousandths of a token: elapsed_ms * rate_per_sec is then exact
  // for whole-number rates, so "20/s for 50 ms = 1 token" holds without
  // floating-point drift.
  double rate_per_sec_;
  double burst_milli_;
  double milli_tokens_;
  int64_t last_ms_ = 0;
  bool started_ = false;
};

}  // namespace wsb
