// RevisionStats with several proxy threads: each writes its own shard, readers sum them, while
// the writers run.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "elafros/routing.hpp"

using namespace elafros;

TEST_CASE("revision stats: each proxy thread writes its shard, and the reads sum them exactly") {
  constexpr std::size_t kThreads = 4;
  constexpr int kRequests = 20000;
  RevisionStats stats(kThreads);
  REQUIRE(stats.shards() == kThreads);

  std::atomic<bool> go{false}, done{false};
  std::vector<std::thread> writers;
  for (std::size_t t = 0; t < kThreads; ++t)
    writers.emplace_back([&, t] {
      proxy_thread_index() = t;
      while (!go.load()) std::this_thread::yield();
      std::int64_t ns = 1'000'000'000;
      for (int i = 0; i < kRequests; ++i) {
        stats.begin(ns);
        ns += 1000;  // 1 µs in flight
        stats.end(ns);
        ns += 1000;
        stats.metrics().count(i % 10 == 0 ? 503 : 200);
        stats.metrics().latency.observe(0.001);
      }
    });
  // A reader meanwhile (the autoscaler's): never more requests than begun, never negative.
  std::thread reader([&] {
    std::uint64_t last = 0;
    while (!done.load()) {
      auto s = stats.read(2'000'000'000);
      CHECK(s.requests >= last);
      CHECK(s.in_flight >= 0);
      CHECK(s.in_flight <= static_cast<std::int64_t>(kThreads));
      last = s.requests;
    }
  });
  go = true;
  for (auto& w : writers) w.join();
  done = true;
  reader.join();

  auto s = stats.read(1'000'000'000 + 2000LL * kRequests);
  CHECK(s.requests == kThreads * kRequests);
  CHECK(s.in_flight == 0);
  // Each thread had one request in flight for 1 µs per request: concurrency × time adds up.
  CHECK(s.busy_seconds == Approx(kThreads * kRequests * 1e-6).epsilon(1e-6));
  auto t = stats.totals();
  CHECK(t.by_class[1] == kThreads * kRequests * 9 / 10);
  CHECK(t.by_class[4] == kThreads * kRequests / 10);
  CHECK(t.latency.count() == kThreads * kRequests);
}

TEST_CASE("revision stats: a thread index past the shards writes the first (never out of range)") {
  RevisionStats stats(2);
  std::thread([&] {
    proxy_thread_index() = 7;
    stats.begin(10);
    stats.metrics().count(200);
  }).join();
  CHECK(stats.read(20).in_flight == 1);
  CHECK(stats.totals().by_class[1] == 1);
}
