// The per-connection token bucket, with injected time.
#include "chat/rate_limiter.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using wsb::RateLimiter;

TEST_GROUP(RateLimiter){};

TEST(RateLimiter, StartsFullAndAllowsTheBurst) {
  RateLimiter rl(20, 40);
  for (int i = 0; i < 40; ++i) CHECK_TRUE(rl.allow(1000));
  CHECK_FALSE(rl.allow(1000));
}

TEST(RateLimiter, RefillsAtTheRate) {
  RateLimiter rl(20, 2);
  CHECK_TRUE(rl.allow(0));
  CHECK_TRUE(rl.allow(0));
  CHECK_FALSE(rl.allow(0));
  CHECK_FALSE(rl.allow(49));  // 20/s = one token per 50 ms
  CHECK_TRUE(rl.allow(50));
  CHECK_FALSE(rl.allow(50));
  CHECK_TRUE(rl.allow(100));
}

TEST(RateLimiter, NeverExceedsTheBurst) {
  RateLimiter rl(10, 3);
  CHECK_TRUE(rl.allow(0));
  // A long pause refills to burst, not beyond.
  for (int i = 0; i < 3; ++i) CHECK_TRUE(rl.allow(3600 * 1000));
  CHECK_FALSE(rl.allow(3600 * 1000));
}

TEST(RateLimiter, ClockGoingBackwardsAddsNothing) {
  RateLimiter rl(1000, 1);
  CHECK_TRUE(rl.allow(10000));
  CHECK_FALSE(rl.allow(5000));
  CHECK_FALSE(rl.allow(10000));
  CHECK_TRUE(rl.allow(10001));
}

TEST(RateLimiter, FractionalRatesAccumulate) {
  RateLimiter rl(0.5, 1);  // one token per 2 s
  CHECK_TRUE(rl.allow(0));
  CHECK_FALSE(rl.allow(1000));
  CHECK_FALSE(rl.allow(1999));
  CHECK_TRUE(rl.allow(2000));
}

TEST(RateLimiter, ZeroRateIsOnlyTheBurst) {
  RateLimiter rl(0, 2);
  CHECK_TRUE(rl.allow(0));
  CHECK_TRUE(rl.allow(1000000));
  CHECK_FALSE(rl.allow(2000000));
}

TEST(RateLimiter, DeterministicForTheSameTimes) {
  RateLimiter a(7, 5), b(7, 5);
  for (int64_t t = 0; t < 5000; t += 37) CHECK_EQUAL(a.allow(t), b.allow(t));
}

TEST(RateLimiter, BurstZeroIsOff) {
  // WSBridgeRateLimit off stores rate 0 and burst 0: nothing is refused.
  RateLimiter off(0, 0);
  for (int64_t i = 0; i < 10000; ++i) CHECK_TRUE(off.allow(i / 100));
}
