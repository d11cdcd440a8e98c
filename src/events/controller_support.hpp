#pragma once
// What the event and source controllers share: resolving a Destination (a ref to a Service or
// a Broker, and/or a URI) to the URL events go to, and writing an object's status (Ready from
// its parts, transition times kept, a write skipped when nothing changed).

#include <boost/json/object.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "elafros/eventing.hpp"
#include "elafros/model.hpp"
#include "elafros/object_store.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros {

struct Addressables {
  std::string ingress_url;  // http://broker-ingress.DOMAIN:PORT
  std::string domain = "localhost";
  int proxy_port = 8080;
  std::function<bool(const std::string&ns, const std::string&name)> has_service, has_broker;
};

// The URL, or "" and why it does not resolve.
std::pair<std::string, std::string> resolve_destination(const Destination& d, const std::string& ns,
                                                        const Addressables& where);

class StatusWriter {
 public:
  StatusWriter(boost::asio::io_context& control, ObjectCommitter& committer);
  ~StatusWriter() { *alive_ = false; }  // commits still in flight then do nothing
  StatusWriter(const StatusWriter&) = delete;
  StatusWriter& operator=(const StatusWriter&) = delete;

  // A condition of `object` ("Kind/ns/name"), its transition time kept while its status holds.
  Condition condition(const std::string& object, const char* type, bool ok, std::string reason,
                      std::string message);
  // Ready (True when every part is, else the first part that is not, with its reason), the
  // parts, and `status`'s other fields, unless the same was written last. `done(true)` on the
  // control thread once it committed (or was already so); `done(false)` when it failed.
  void write(const std::string& group, const std::string& kind, const std::string& ns,
             const std::string& name, std::int64_t generation, std::vector<Condition> parts,
             boost::json::object status, std::function<void(bool)> done = {});
  // The object is gone: its next status is written whatever it is.
  void forget(const std::string& kind, const std::string& ns, const std::string& name);

 private:
  boost::asio::io_context& control_;
  ObjectCommitter& committer_;
  std::map<std::string, std::string> written_;  // "Kind/ns/name" → the status last written
  std::map<std::string, std::pair<std::string, std::int64_t>> transitions_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace elafros
