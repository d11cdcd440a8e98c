#pragma once
// API objects of every kind, stored the way Kubernetes stores them: one generic record per
// object (group, kind, namespace, name) holding its whole JSON, with a global resourceVersion
// that grows in commit order. Writers commit through an ObjectCommitter, which groups
// concurrent writes into one transaction; every committed change is published, in
// resourceVersion order, to the watchers of a WatchSource (docs/architecture.md, "Store").

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "elafros/result.hpp"

namespace elafros {

// Names one object. namespace_ is empty for cluster-scoped kinds.
struct ObjectKey {
  std::string group;  // "" for the core group
  std::string kind;   // "Service"
  std::string namespace_;
  std::string name;
};

// One write of a transaction. The object is whole, as it is to be stored: metadata.name,
// namespace, uid and creationTimestamp set by the caller; the store sets resourceVersion.
struct ObjectWrite {
  // kUpdateStatus is a controller's status write: each top-level key of object["status"]
  // replaces the stored one, and nothing else of the stored object changes (not its generation,
  // not its deletion). A write that changes nothing commits nothing and publishes no event.
  enum class Op { kCreate, kUpdate, kDelete, kUpdateStatus };
  Op op = Op::kCreate;
  std::string group;
  std::string kind;
  boost::json::object object;  // for a delete, only metadata.name and namespace are read
  // Update and delete: refused with kConflict unless the stored resourceVersion is this one.
  // 0 skips the check.
  std::int64_t expected_resource_version = 0;
};

enum class WatchEventType { kAdded, kModified, kDeleted };
const char* to_string(WatchEventType type);  // "ADDED", "MODIFIED", "DELETED"

// One committed change. For kDeleted, the object as it was, with the deletion's version.
struct ObjectEvent {
  WatchEventType type = WatchEventType::kAdded;
  std::string group;
  std::string kind;
  boost::json::object object;
  std::int64_t resource_version = 0;
};

struct ObjectQuery {
  std::string group;
  std::string kind;
  std::string namespace_;       // empty: every namespace
  std::string name;             // non-empty: only this name (fieldSelector metadata.name=)
  std::size_t limit = 0;        // 0: no limit
  std::string after_namespace;  // continue: only objects after this (namespace, name)
  std::string after_name;
  // Non-empty: only objects whose controller (their first ownerReference, as elafros writes
  // them) has this uid. Found by index.
  std::string owner_uid;
};

struct ObjectList {
  std::vector<boost::json::object> items;  // ordered by namespace, then name
  std::int64_t resource_version = 0;       // the store's version when it was read
  bool more = false;                       // limit cut the list short
};

// The synchronous, one-thread-at-a-time side (SqliteStore implements it).
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  virtual Result<boost::json::object> get_object(const ObjectKey& key) = 0;
  virtual Result<ObjectList> list_objects(const ObjectQuery& query) = 0;
  // Applies every group of writes in one transaction with one commit. Each group is atomic on
  // its own: a group that fails leaves nothing, and the others still commit. Deleting an object
  // also deletes, in the same group, every object whose ownerReferences name its uid.
  virtual std::vector<Result<std::vector<ObjectEvent>>> write_object_groups(
      std::vector<std::vector<ObjectWrite>> groups) = 0;
  virtual std::int64_t current_resource_version() = 0;
};

// Transactions and write groups committed so far: how much grouping saves (one fsync per
// transaction), as /metrics and the benchmarks report it.
struct CommitStats {
  std::uint64_t transactions = 0;
  std::uint64_t groups = 0;
};

// Any thread may commit. `done` runs on the store's thread once the transaction has committed
// (or failed); post from it to your own executor. Writes that arrive while a commit is in
// progress are grouped into the next one.
class ObjectCommitter {
 public:
  virtual ~ObjectCommitter() = default;
  using Done = std::function<void(Result<std::vector<ObjectEvent>>)>;
  virtual void commit(std::vector<ObjectWrite> writes, Done done) = 0;
  virtual CommitStats stats() const = 0;
};

// Committed changes, in order, to whoever watches (the API's watch verb, the controllers).
class WatchSource {
 public:
  virtual ~WatchSource() = default;
  using Callback = std::function<void(const ObjectEvent&)>;
  // Replays every change after `from` (kept in memory), then delivers new ones as they commit,
  // on the thread that commits: post from it. kGone when `from` is older than what is kept.
  // from = 0 delivers only new changes. Returns a watch id.
  virtual Result<std::uint64_t> watch(std::int64_t from, Callback callback) = 0;
  virtual void unwatch(std::uint64_t id) = 0;
  virtual std::int64_t latest() const = 0;
};

}  // namespace elafros
