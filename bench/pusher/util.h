// Helpers of the Pusher load generator (bench/pusher/): the clock, request
// signing (HMAC-SHA256, MD5 through OpenSSL), a latency histogram and CPU
// readings from /proc.
#pragma once
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace pl {

inline int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

inline int64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// hex(HMAC-SHA256(key, msg)) and hex(MD5(data)), lowercase as the Pusher
// libraries send them.
std::string hmac_sha256_hex(std::string_view key, std::string_view msg);
std::string md5_hex(std::string_view data);

// The characters a JSON string needs escaped (enough for what we build:
// quotes and backslashes; nothing else we send needs it).
std::string json_escape(std::string_view s);

// Log-linear histogram of microseconds: exact below 64, then 64 buckets per
// power of two (under 1.6% error). Per thread; merged at the end.
class Histogram {
 public:
  Histogram() : buckets_(kBuckets, 0) {}
  void record(int64_t us);
  void merge(const Histogram& o);
  uint64_t count() const { return n_; }
  int64_t max() const { return max_; }
  int64_t percentile(double p) const;  // microseconds, 0 when empty

 private:
  static constexpr int kBuckets = 64 * 64;
  static int index(uint64_t v);
  static int64_t value_of(int i);
  std::vector<uint64_t> buckets_;
  uint64_t n_ = 0;
  int64_t max_ = 0;
};

// utime + stime in seconds of every process in `roots` and their
// descendants (re-read each call: Apache's children are found from the
// master's pid).
double tree_cpu_seconds(const std::vector<int>& roots);
// Busy time of all CPUs (everything but idle and iowait), in seconds.
double machine_busy_seconds();
// This process's user + system CPU, in seconds.
double self_cpu_seconds();

}  // namespace pl
