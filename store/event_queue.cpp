#include "event_queue.hpp"

#include <boost/asio/post.hpp>

namespace elafros {

EventQueue::EventQueue(EventLog& log, boost::asio::any_io_executor store_thread)
    : log_(log), store_thread_(std::move(store_thread)) {}

void EventQueue::append(NewEvent event, Done done) {
  boost::asio::post(store_thread_,
                    [this, event = std::move(event), done = std::move(done)]() mutable {
                      pending_.emplace_back(std::move(event), std::move(done));
                      if (scheduled_) return;
                      scheduled_ = true;
                      // After whatever else is queued on the store thread: the appends that arrive
                      // meanwhile join this transaction.
                      boost::asio::post(store_thread_, [this] { drain(); });
                    });
}

void EventQueue::drain() {
  scheduled_ = false;
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
