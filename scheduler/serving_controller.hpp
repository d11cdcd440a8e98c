#pragma once
// The serving controller's informer (docs/architecture.md, "Controllers"): it watches the
// store's committed changes to Services and Revisions and tells the reconciler, and it finishes
// the deletion of a Service once its instances are gone by removing its finalizer. Nothing in
// the API calls the reconciler to deploy: a build or an event source that writes a Service
// deploys it the same way. It also writes the statuses the reconciler reports back to the store
// (a status write, which leaves spec and generation alone), so that a watch sees a Service or
// a Revision become Ready.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "elafros/object_store.hpp"
#include "reconciler.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros {

class ServingController {
 public:
  // remove_logs(ns, service, revision, done): drops the stored logs (revision "" for all).
  using RemoveLogs = std::function<void(const std::string&, const std::string&, const std::string&,
                                        std::function<void()>)>;
  ServingController(boost::asio::io_context& control, WatchSource& watches,
                    ObjectCommitter& committer, Reconciler& reconciler, RemoveLogs remove_logs);
  ~ServingController();
  ServingController(const ServingController&) = delete;
  ServingController& operator=(const ServingController&) = delete;

  // Watches from `from` (the version the reconciler loaded), and finishes the deletions the
  // reconciler found pending. Call on the control thread after Reconciler::start is done.
  Result<void> start(std::int64_t from);
  void stop();

  // The reconciler's view of a service's status changed (ReconcilerOptions::status_changed):
  // write its statuses that now read differently to the store, so that watchers see Ready
  // move. Coalesced: the services touched in a burst are written in one pass.
  void status_changed(const std::string& ns, const std::string& service);

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
