#pragma once
// Grouped commits and the watch feed (docs/architecture.md, "Store"). Writers on any thread
// hand their writes to the CommitQueue; the store's one thread takes everything queued at once
// and commits it in one transaction (one fsync), then publishes the changes, in resourceVersion
// order, to the WatchCache, which replays recent history to new watchers.

#include <boost/asio/any_io_executor.hpp>
#include <deque>
#include <map>
#include <mutex>

#include "elafros/object_store.hpp"

namespace elafros {

class WatchCache final : public WatchSource {
 public:
  // Keeps the last `capacity` changes, and at most `max_bytes` of their JSON, for watchers that
  // start from a past resourceVersion. They are kept as text (a parsed object takes several
  // times its text), parsed again only for a watcher that replays them.
  WatchCache(std::int64_t current, std::size_t capacity = 4096, std::size_t max_bytes = 4 << 20);

  // Called by the committing thread, in resourceVersion order.
  void publish(const std::vector<ObjectEvent>& events);

  // WatchSource
  Result<std::uint64_t> watch(std::int64_t from, Callback callback) override;
  void unwatch(std::uint64_t id) override;
  std::int64_t latest() const override;

 private:
  struct Kept {
    WatchEventType type;
    std::string group, kind;
    std::string object;  // serialized
    std::int64_t resource_version;
  };
  mutable std::mutex mu_;
  std::deque<Kept> history_;
  std::size_t capacity_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;  // of history_'s objects
  std::int64_t oldest_;  // history_ holds every change after this version
  std::int64_t latest_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::shared_ptr<Callback>> watchers_;
};

class CommitQueue final : public ObjectCommitter {
 public:
  // store_thread runs every call of `store`; cache receives what commits.
  CommitQueue(ObjectStore& store, boost::asio::any_io_executor store_thread, WatchCache& cache);

  // ObjectCommitter
  void commit(std::vector<ObjectWrite> writes, Done done) override;

  CommitStats stats() const override;

 private:
  void drain();

  struct Pending {
    std::vector<ObjectWrite> writes;
    Done done;
  };
  ObjectStore& store_;
  boost::asio::any_io_executor store_thread_;
  WatchCache& cache_;
  mutable std::mutex mu_;
  std::vector<Pending> queue_;
  bool scheduled_ = false;
  CommitStats stats_;
};

}  // namespace elafros
