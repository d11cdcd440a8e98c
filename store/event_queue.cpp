#include "event_queue.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>

namespace elafros {
namespace {

// A commit's result, handed from the store thread to a coroutine waiting on its own executor.
template <class T>
struct Waiter : std::enable_shared_from_this<Waiter<T>> {
  explicit Waiter(const boost::asio::any_io_executor& ex)
      : home(ex), wake(ex, boost::asio::steady_timer::time_point::max()) {}
  std::function<void(Result<T>)> callback() {
    return [self = this->shared_from_this()](Result<T> r) {
      boost::asio::post(self->home, [self, r = std::move(r)]() mutable {
        self->result = std::move(r);
        self->wake.cancel();
      });
    };
  }
  boost::asio::awaitable<Result<T>> wait() {
    while (!result) co_await wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return std::move(*result);
  }
  boost::asio::any_io_executor home;
  boost::asio::steady_timer wake;
  std::optional<Result<T>> result;
};

}  // namespace

EventQueue::EventQueue(EventLog& log, boost::asio::any_io_executor store_thread)
    : log_(log), store_thread_(std::move(store_thread)) {}

void EventQueue::append(NewEvent event, Done done) {
  boost::asio::post(store_thread_,
                    [this, event = std::move(event), done = std::move(done)]() mutable {
                      pending_.emplace_back(std::move(event), std::move(done));
                      schedule();
                    });
}

boost::asio::awaitable<Result<std::int64_t>> EventQueue::committed_append(NewEvent event) {
  auto waiter = std::make_shared<Waiter<std::int64_t>>(co_await boost::asio::this_coro::executor);
  append(std::move(event), waiter->callback());
  co_return co_await waiter->wait();
}

boost::asio::awaitable<Result<void>> EventQueue::committed_record(Delivery delivery) {
  auto waiter = std::make_shared<Waiter<void>>(co_await boost::asio::this_coro::executor);
  record(std::move(delivery), waiter->callback());
  co_return co_await waiter->wait();
}

void EventQueue::record(Delivery delivery, std::function<void(Result<void>)> done) {
  boost::asio::post(store_thread_,
                    [this, delivery = std::move(delivery), done = std::move(done)]() mutable {
                      outcomes_.emplace_back(std::move(delivery), std::move(done));
                      schedule();
                    });
}

// On the store thread: after whatever else is queued there, so that the appends and outcomes
// that arrive meanwhile join the same transaction.
void EventQueue::schedule() {
  if (scheduled_) return;
  scheduled_ = true;
  boost::asio::post(store_thread_, [this] { drain(); });
}

void EventQueue::drain() {
  scheduled_ = false;
  if (!outcomes_.empty()) {
    std::vector<std::pair<Delivery, std::function<void(Result<void>)>>> outcomes;
    outcomes.swap(outcomes_);
    std::vector<Delivery> deliveries;
    deliveries.reserve(outcomes.size());
    for (auto& [d, done] : outcomes) deliveries.push_back(std::move(d));
    auto r = log_.update_deliveries(deliveries);
    ++transactions_;
    for (auto& [d, done] : outcomes) done(r);
  }
  std::vector<std::pair<NewEvent, Done>> batch;
  batch.swap(pending_);
  if (batch.empty()) return;
  std::vector<NewEvent> events;
  events.reserve(batch.size());
  bool deliveries = false;
  for (auto& [e, done] : batch) {
    deliveries = deliveries || !e.deliveries.empty();
    events.push_back(std::move(e));
  }
  auto seqs = log_.append_events(events);
  ++transactions_;
  if (seqs) events_ += seqs->size();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (seqs)
      batch[i].second((*seqs)[i]);
    else
      batch[i].second(seqs.error());
  }
  if (seqs && deliveries && committed_) committed_();
}

}  // namespace elafros
