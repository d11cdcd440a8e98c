#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace elafros {

// A latency histogram with fixed buckets (Prometheus' le bounds), written by one thread (the
// proxy's, the dispatcher's: relaxed loads and stores, no read-modify-write) and read by others.
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,    1,     2.5,  5,     10,   30};
  struct Snapshot {
    std::array<std::uint64_t, kBounds.size() + 1> counts{};  // per bucket; the last is +Inf
    double sum = 0;
    std::uint64_t count() const {
      std::uint64_t n = 0;
      for (auto c : counts) n += c;
      return n;
    }
    // Another writer's counts added in (the proxy threads' shards).
    void add(const Snapshot& other) {
      for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
      sum += other.sum;
    }
    Snapshot minus(const Snapshot& earlier) const {
      Snapshot d;
      for (std::size_t i = 0; i < counts.size(); ++i)
        d.counts[i] = counts[i] >= earlier.counts[i] ? counts[i] - earlier.counts[i] : 0;
      d.sum = sum - earlier.sum;
      return d;
    }
    // The q-quantile in seconds, interpolated within its bucket as histogram_quantile does.
    double quantile(double q) const {
      std::uint64_t total = count();
      if (total == 0) return 0;
      double rank = q * static_cast<double>(total);
      std::uint64_t seen = 0;
      for (std::size_t i = 0; i < counts.size(); ++i) {
        if (static_cast<double>(seen + counts[i]) >= rank && counts[i] > 0) {
          if (i == kBounds.size()) return kBounds.back();
          double lo = i == 0 ? 0 : kBounds[i - 1], hi = kBounds[i];
          return lo +
                 (hi - lo) * (rank - static_cast<double>(seen)) / static_cast<double>(counts[i]);
        }
        seen += counts[i];
      }
      return kBounds.back();
    }
  };

  void observe(double seconds) {
    std::size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    counts_[i].store(counts_[i].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + seconds, std::memory_order_relaxed);
  }
  Snapshot read() const {
    Snapshot s;
    for (std::size_t i = 0; i < counts_.size(); ++i)
      s.counts[i] = counts_[i].load(std::memory_order_relaxed);
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> counts_{};
  std::atomic<double> sum_{0};
};

}  // namespace elafros
