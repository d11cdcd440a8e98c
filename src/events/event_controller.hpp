#pragma once
// The event controller (docs/architecture.md, "Events"): on the control thread, it follows
// Brokers, Triggers and Services through the watch feed, publishes the BrokerTable the ingress
// and the dispatcher read, and writes each Broker's and Trigger's status (address,
// subscriberUri, conditions with reasons).

#include <functional>
#include <memory>
#include <string>

#include "elafros/eventing.hpp"
#include "elafros/object_store.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

struct EventControllerOptions {
  std::string ingress_url;  // http://broker-ingress.DOMAIN:PORT
  std::string domain = "localhost";
  int proxy_port = 8080;
  std::function<void()> published;  // after each new BrokerTable (the dispatcher's wake)
};

class EventController {
 public:
  EventController(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
                  ObjectStore& store, WatchSource& watches, ObjectCommitter& committer,
                  BrokerSnapshot& snapshot, EventControllerOptions options);
  ~EventController();
  EventController(const EventController&) = delete;
  EventController& operator=(const EventController&) = delete;

  // Lists what is stored, publishes, then follows the feed from `from`. `done` on the control
  // thread once the first table is published.
  void start(std::int64_t from, std::function<void(Result<void>)> done);
  void stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
