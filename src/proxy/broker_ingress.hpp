#pragma once
// The brokers' ingress on the proxy's listener (docs/architecture.md, "Events"): POST
// http://broker-ingress.DOMAIN[:PORT]/NAMESPACE/BROKER takes a CloudEvent in binary or
// structured mode, matches it once against each of the broker's Triggers, and answers 202 only
// once the event and its deliveries are committed. Runs on the proxy thread; never blocks: the
// commit is the store thread's (EventQueue). Included by the proxy only: it brings Beast.

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "proxy/ingress_events.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros {

class ClientStream;
class EventQueue;

class BrokerIngress {
 public:
  BrokerIngress(const BrokerSnapshot& brokers, EventQueue& queue, std::uint64_t body_limit);

  // A request whose header was read: answers it. False when the connection must close.
  boost::asio::awaitable<bool> serve(
      ClientStream& client, boost::beast::flat_buffer& buffer,
      boost::beast::http::request_parser<boost::beast::http::buffer_body>& parser, bool keep_alive);

  const IngressStats& stats() const { return stats_; }

  // Who may publish (docs/architecture.md, "Event policy"); tokens are checked on `control`.
  // Set before serving.
  void set_policy(IngressPolicy policy, boost::asio::io_context& control) {
    policy_ = policy;
    control_ = &control;
  }

  // Called on the proxy thread the first time an accepted event shows a broker a (type, source)
  // pair (Knative's eventtype-auto-create); post from it. Set before serving.
  using TypeSeen = std::function<void(const std::string& ns, const std::string& broker,
                                      const std::string& type, const std::string& source)>;
  void on_type_seen(TypeSeen callback) { type_seen_ = std::move(callback); }

 private:
  // The event's (type, source), the first time this broker shows it; nothing otherwise.
  struct NewType {
    std::size_t key;
    std::string type, source;
  };
  std::optional<NewType> unseen_type(const std::string& ns, const std::string& broker,
                                     const CloudEvent& event);

  BrokerCounters& counters(const std::string& ns, const std::string& broker);
  bool anonymous_allowed(ClientStream& client) const;

  TypeSeen type_seen_;
  std::unordered_map<std::string, std::shared_ptr<BrokerCounters>> counters_;  // "ns/broker"
  std::unordered_set<std::size_t> types_seen_;  // hashes of (ns, broker, type, source); bounded
  const BrokerSnapshot& brokers_;
  EventQueue& queue_;
  std::uint64_t body_limit_;
  IngressStats stats_;
  IngressPolicy policy_;
  boost::asio::io_context* control_ = nullptr;
};

}  // namespace elafros
