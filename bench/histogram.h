// Latency histogram for the load generator: log-linear buckets (32 per
// power of two, so a reported percentile is within ~3% of the true value),
// fixed size, no allocation when recording. One per worker thread, merged
// at the end.
#pragma once
#include <cstdint>
#include <cstring>

namespace lg {

class Histogram {
 public:
  static constexpr int kSubBits = 5;                 // 32 sub-buckets
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = kSub * 60 + 2 * kSub;  // covers any int64 value

  Histogram() { std::memset(counts_, 0, sizeof counts_); }

  void record(int64_t v) {
    if (v < 0) v = 0;
    uint64_t u = static_cast<uint64_t>(v);
    ++counts_[index(u)];
    ++count_;
    sum_ += u;
    if (u > max_) max_ = u;
    if (count_ == 1 || u < min_) min_ = u;
  }

  void merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    if (o.count_ && (!count_ || o.min_ < min_)) min_ = o.min_;
    if (o.max_ > max_) max_ = o.max_;
    count_ += o.count_;
    sum_ += o.sum_;
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }

  // q in [0,1]; the midpoint of the bucket holding the q-th value, clamped
  // to the exact min/max.
  uint64_t quantile(double q) const {
    if (!count_) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_));
    if (rank >= count_) rank = count_ - 1;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen > rank) {
        uint64_t v = midpoint(i);
        if (v > max_) v = max_;
        if (v < min_) v = min_;
        return v;
      }
    }
    return max_;
  }

 private:
  static int index(uint64_t v) {
    if (v < 2 * kSub) return static_cast<int>(v);
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - kSubBits;
    return kSub * shift + static_cast<int>(v >> shift);
  }
  static uint64_t midpoint(int i) {
    if (i < 2 * kSub) return static_cast<uint64_t>(i);
    int shift = i / kSub - 1;
    uint64_t m = static_cast<uint64_t>(i - kSub * shift);
    return (m << shift) + ((uint64_t{1} << shift) >> 1);
  }

  uint64_t counts_[kBuckets];
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = 0;
};

}  // namespace lg
