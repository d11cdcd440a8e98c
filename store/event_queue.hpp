#pragma once
// Grouped commits of accepted events (docs/architecture.md, "Events"): the ingress, on the proxy
// thread, and the dispatcher (replies) hand events here; everything queued on the store thread
// when it gets to it commits in one transaction (one fsync), and each caller's `done` then runs
// on the store thread with the event's sequence number. Nothing is shared between threads but
// what asio::post carries.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <vector>

#include "elafros/event_log.hpp"

namespace elafros {

class EventQueue {
 public:
  using Done = std::function<void(Result<std::int64_t>)>;
  EventQueue(EventLog& log, boost::asio::any_io_executor store_thread);

  // Any thread.
  void append(NewEvent event, Done done);
  // A delivery's outcome, grouped the same way; `done` on the store thread once committed.
  void record(Delivery delivery, std::function<void(Result<void>)> done);
  // The same, awaited: the calling coroutine resumes on its own executor once the commit is
  // done (the ingress's 202, a reply's re-entry, a delivery's outcome).
  boost::asio::awaitable<Result<std::int64_t>> committed_append(NewEvent event);
  boost::asio::awaitable<Result<void>> committed_record(Delivery delivery);
  // Called on the store thread after each commit that stored deliveries (the dispatcher's wake).
  void on_committed(std::function<void()> fn) { committed_ = std::move(fn); }

  struct Stats {
    std::uint64_t transactions = 0;
    std::uint64_t events = 0;
  };
  Stats stats() const { return {transactions_.load(), events_.load()}; }

 private:
  void drain();
  void schedule();

  EventLog& log_;
  boost::asio::any_io_executor store_thread_;
  std::function<void()> committed_;
  // The store thread's.
  std::vector<std::pair<NewEvent, Done>> pending_;
  std::vector<std::pair<Delivery, std::function<void(Result<void>)>>> outcomes_;
  bool scheduled_ = false;
  std::atomic<std::uint64_t> transactions_{0}, events_{0};
};

}  // namespace elafros
