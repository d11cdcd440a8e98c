#pragma once
// The source controller (docs/architecture.md, "Sources"), on the control thread. It follows
// the sources through the watch feed, resolves their sinks and writes their status, and runs
// them:
//   - a PingSource ticks on its cron schedule in its time zone (ticks missed while the daemon
//     was down are not replayed) and sends dev.knative.sources.ping events;
//   - a SinkBinding's Services are written again, so the API's Service hook puts K_SINK and
//     K_CE_OVERRIDES in their template (a new revision), or takes them out once it is gone;
//   - a ContainerSource runs its template as a Service NAME-source with min-scale and
//     max-scale 1 and K_SINK set, owned by it and deleted with it;
//   - an ApiServerSource turns every change of the kinds it selects, in its namespace, into a
//     dev.knative.apiserver.{ref|resource}.{add|update|delete} event.

#include <functional>
#include <memory>
#include <string>

#include "elafros/clock.hpp"
#include "elafros/object_store.hpp"
#include "elafros/object_writer.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

class EventSender;

struct SourceControllerOptions {
  std::string ingress_url;  // http://broker-ingress.DOMAIN:PORT
  std::string domain = "localhost";
  int proxy_port = 8080;
  std::string api_server_url;  // the `source` of ApiServerSource events
  ClockPtr clock;
};

class SourceController {
 public:
  SourceController(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
                   ObjectStore& store, WatchSource& watches, ObjectCommitter& committer,
                   ObjectWriter& writer, EventSender& sender, SourceControllerOptions options);
  ~SourceController();
  SourceController(const SourceController&) = delete;
  SourceController& operator=(const SourceController&) = delete;

  // Lists what is stored, then follows the feed from `from`. `done` on the control thread.
  void start(std::int64_t from, std::function<void(Result<void>)> done);
  void stop();

  // Any thread: the brokers' ingress saw (type, source) on a broker for the first time. An
  // EventType for it is created unless one of that name exists (eventtype-auto-create).
  void register_event_type(std::string ns, std::string broker, std::string type,
                           std::string source);

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
