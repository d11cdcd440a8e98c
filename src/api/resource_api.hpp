#pragma once
// The generic verbs (get, list, watch, create, update, patch, delete) for every registered
// kind, in Kubernetes' conventions (docs/architecture.md, "API"). Kind-specific behaviour
// plugs in through KindHooks; the handlers themselves know no kind.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/router.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_store.hpp"
#include "elafros/object_writer.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros::api {

class KindHooks {
 public:
  virtual ~KindHooks() = default;
  // Before a create (old is null) or an update commits: may refuse, change the object, or add
  // writes to the same transaction (a Service's new Revision). dry_run: nothing will commit.
  virtual awaitable<Result<void>> before_write(const KindInfo& kind, const boost::json::object* old,
                                               boost::json::object& object,
                                               std::vector<ObjectWrite>& also, bool dry_run) = 0;
  // Before a delete: may refuse it.
  virtual awaitable<Result<void>> before_delete(const KindInfo& kind,
                                                const boost::json::object& current) = 0;
  // The object as clients see it (e.g. with its live status).
  virtual void present(const KindInfo& kind, boost::json::object& object) = 0;
};

class ResourceApi {
 public:
  ResourceApi(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
              ObjectStore& store, ObjectCommitter& committer, WatchSource& watches,
              const KindRegistry& kinds);
  ~ResourceApi();
  ResourceApi(const ResourceApi&) = delete;
  ResourceApi& operator=(const ResourceApi&) = delete;

  void set_hooks(const std::string& group, const std::string& kind, KindHooks* hooks);
  // Runs before every create and update (after admission, before the kind's hooks), with the
  // client's identity or null for the daemon's own writes: RBAC's escalation check, quotas.
  // It may change the object (a LimitRange's defaults); old is null for a create.
  using WriteCheck = std::function<awaitable<Result<void>>(
      const Identity* who, const KindInfo&, const boost::json::object* old, boost::json::object&)>;
  void set_write_check(WriteCheck check);
  // The generic resource paths: /apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}
  // [/status]] and their /api/v1 forms for the core group.
  void add_routes(Router& router);

  // Commits writes through the committer, resuming on the control thread.
  awaitable<Result<std::vector<ObjectEvent>>> commit(std::vector<ObjectWrite> writes);

  // Controllers' writes, through the same admission and hooks as the verbs.
  ObjectWriter& writer();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros::api
