#pragma once
// The RBAC authorizer (docs/architecture.md, "Authorization"), on the control thread. It keeps
// every Role, ClusterRole, RoleBinding and ClusterRoleBinding in memory, from the store and then
// its watch feed, and answers whether an identity may do what a request asks: default deny,
// rules only grant, as Kubernetes' RBAC authorizer does. It also writes the built-in roles and
// bindings at start (again each start, unless one is annotated
// rbac.authorization.kubernetes.io/autoupdate: "false").

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "elafros/object_store.hpp"
#include "elafros/object_writer.hpp"
#include "elafros/rbac.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

class RbacAuthorizer {
 public:
  RbacAuthorizer(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
                 ObjectStore& store, WatchSource& watches, ObjectWriter& writer);
  ~RbacAuthorizer();
  RbacAuthorizer(const RbacAuthorizer&) = delete;
  RbacAuthorizer& operator=(const RbacAuthorizer&) = delete;

  // Loads the roles and bindings, writes the built-in ones, then follows the feed from `from`.
  // `done` on the control thread.
  void start(std::int64_t from, std::function<void(Result<void>)> done);
  void stop();

  // On the control thread.
  Decision authorize(const Identity& who, const RequestAttributes& request) const;
  // Every rule the identity holds in namespace `ns` ("" for cluster-wide rules only).
  std::vector<PolicyRule> rules_for(const Identity& who, const std::string& ns) const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
