#pragma once
// The namespace controller (docs/architecture.md, "Namespaces"), on the control thread. It keeps
// `default` (and every namespace that holds objects from before namespaces existed) as a
// Namespace object, writes each one's status.phase, and, once a namespace is being deleted,
// deletes everything in it through the API's hooks (a Service's instances stop, a Build is
// cancelled, a Broker's deliveries end), then releases the namespace's finalizer so that its
// deletion completes, as Kubernetes' namespace controller does.

#include <functional>
#include <memory>

#include "elafros/object_store.hpp"
#include "elafros/object_writer.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

class NamespaceController {
 public:
  NamespaceController(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
                      ObjectStore& store, WatchSource& watches, ObjectCommitter& committer,
                      ObjectWriter& writer);
  ~NamespaceController();
  NamespaceController(const NamespaceController&) = delete;
  NamespaceController& operator=(const NamespaceController&) = delete;

  // Lists what is stored, creates the namespaces that must exist, then follows the feed from
  // `from`. `done` on the control thread.
  void start(std::int64_t from, std::function<void(Result<void>)> done);
  void stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
