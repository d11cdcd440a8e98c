#include "commit_queue.hpp"

#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

namespace elafros {

const char* to_string(WatchEventType type) {
  switch (type) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
  }
  return "MODIFIED";
}

WatchCache::WatchCache(std::int64_t current, std::size_t capacity, std::size_t max_bytes)
    : capacity_(capacity), max_bytes_(max_bytes), oldest_(current), latest_(current) {}

void WatchCache::publish(const std::vector<ObjectEvent>& events) {
  std::vector<std::shared_ptr<Callback>> targets;
  std::vector<Kept> kept;  // serialized before the lock
  kept.reserve(events.size());
  for (const auto& e : events)
    kept.push_back({e.type, e.group, e.kind, boost::json::serialize(e.object), e.resource_version});
  {
    std::lock_guard lock(mu_);
    for (auto& k : kept) {
      latest_ = k.resource_version;
      bytes_ += k.object.size();
      history_.push_back(std::move(k));
    }
    while (!history_.empty() && (history_.size() > capacity_ || bytes_ > max_bytes_)) {
      oldest_ = history_.front().resource_version;
      bytes_ -= history_.front().object.size();
      history_.pop_front();
    }
    for (const auto& [id, cb] : watchers_) targets.push_back(cb);
  }
  // Outside the lock: a callback may unwatch. Each callback only posts.
  for (const auto& cb : targets)
    for (const auto& e : events) (*cb)(e);
}

Result<std::uint64_t> WatchCache::watch(std::int64_t from, Callback callback) {
  std::lock_guard lock(mu_);
  if (from != 0 && from < oldest_)
    return Error{ErrorCode::kGone,
                 fmt::format("too old resource version: {} ({}); list again and watch from the "
                             "list's resourceVersion",
                             from, oldest_)};
  auto cb = std::make_shared<Callback>(std::move(callback));
  if (from != 0)
    for (const auto& k : history_) {
      if (k.resource_version <= from) continue;
      ObjectEvent e;
      e.type = k.type;
      e.group = k.group;
      e.kind = k.kind;
      e.object = boost::json::parse(k.object).as_object();
      e.resource_version = k.resource_version;
      (*cb)(e);
    }
  std::uint64_t id = next_id_++;
  watchers_.emplace(id, std::move(cb));
  return id;
}

void WatchCache::unwatch(std::uint64_t id) {
  std::lock_guard lock(mu_);
  watchers_.erase(id);
}

std::int64_t WatchCache::latest() const {
  std::lock_guard lock(mu_);
  return latest_;
}

CommitQueue::CommitQueue(ObjectStore& store, boost::asio::any_io_executor store_thread,
                         WatchCache& cache)
    : store_(store), store_thread_(std::move(store_thread)), cache_(cache) {}

void CommitQueue::commit(std::vector<ObjectWrite> writes, Done done) {
  std::lock_guard lock(mu_);
  queue_.push_back({std::move(writes), std::move(done)});
  if (scheduled_) return;
  scheduled_ = true;
  boost::asio::post(store_thread_, [this] { drain(); });
}

void CommitQueue::drain() {
  std::vector<Pending> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(queue_);
    scheduled_ = false;
  }
  if (batch.empty()) return;
  std::vector<std::vector<ObjectWrite>> groups;
  groups.reserve(batch.size());
  for (auto& p : batch) groups.push_back(std::move(p.writes));
  auto results = store_.write_object_groups(std::move(groups));
  {
    std::lock_guard lock(mu_);
    stats_.transactions++;
    stats_.groups += batch.size();
  }
  // Committed: publish in order, then answer each writer.
  for (auto& r : results)
    if (r) cache_.publish(*r);
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
}

CommitStats CommitQueue::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace elafros
