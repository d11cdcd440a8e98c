#pragma once
// Quotas and limits (docs/architecture.md, "Quotas"), on the control thread: every
// ResourceQuota and LimitRange, from the store and its feed. At admission, a namespace's
// LimitRanges fill in and bound a Service's container limits, and a create or update that would
// pass a quota (a count of its kind, its min-scale × limits, its live instances) is refused with
// Kubernetes' "exceeded quota" words. The reconciler asks instance_quota() before it scales, so
// the autoscaler never passes a quota. status.used is written every 2 s when it changed.

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "elafros/kind_registry.hpp"
#include "elafros/object_store.hpp"
#include "elafros/quota.hpp"
#include "elafros/rbac.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

class QuotaBook {
 public:
  QuotaBook(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
            ObjectStore& store, WatchSource& watches, ObjectCommitter& committer,
            std::function<NamespaceUsage(const std::string& ns)> live_usage);
  ~QuotaBook();
  QuotaBook(const QuotaBook&) = delete;
  QuotaBook& operator=(const QuotaBook&) = delete;

  void start(std::int64_t from, std::function<void(Result<void>)> done);
  void stop();

  // Before a create (old null) or update commits, on the control thread: may change `object`
  // (LimitRange defaults) or refuse it (kForbidden).
  boost::asio::awaitable<Result<void>> admit(const KindInfo& kind, const boost::json::object* old,
                                             boost::json::object& object);
  InstanceQuota instance_quota(const std::string& ns) const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
