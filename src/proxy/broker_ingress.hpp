#pragma once
// The brokers' ingress on the proxy's listener (docs/architecture.md, "Events"): POST
// http://broker-ingress.DOMAIN[:PORT]/NAMESPACE/BROKER takes a CloudEvent in binary or
// structured mode, matches it once against each of the broker's Triggers, and answers 202 only
// once the event and its deliveries are committed. Runs on the proxy thread; never blocks: the
// commit is the store thread's (EventQueue). Included by the proxy only: it brings Beast.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "elafros/event_log.hpp"
#include "elafros/eventing.hpp"

namespace elafros {

class EventQueue;

// One broker's counters: written on the proxy thread, read by /metrics.
struct BrokerCounters {
  std::string namespace_, broker;
  std::atomic<std::uint64_t> accepted{0}, rejected{0}, ttl_dropped{0}, failed{0};
};
using BrokerCountersList = std::vector<std::shared_ptr<BrokerCounters>>;

struct IngressStats {
  // Every broker that answered, replaced (never changed) when one is added.
  std::atomic<std::shared_ptr<const BrokerCountersList>> brokers{
      std::make_shared<const BrokerCountersList>()};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};  // invalid events (400), unknown brokers (404)
  enum class Reject { kNoBroker, kBadPath, kUnknownBroker, kTooLarge, kInvalidEvent, kCount };
  static constexpr const char* kRejectReasons[] = {"no_broker", "bad_path", "unknown_broker",
                                                   "too_large", "invalid_event"};
  std::atomic<std::uint64_t> rejected_by[static_cast<int>(Reject::kCount)] = {};
  void reject(Reject why) {
    ++rejected;
    ++rejected_by[static_cast<int>(why)];
  }
  std::atomic<std::uint64_t> ttl_dropped{0};  // arrived with an exhausted knativebrokerttl
  std::atomic<std::uint64_t> failed{0};       // could not be committed (503)
};

class BrokerIngress {
 public:
  BrokerIngress(const BrokerSnapshot& brokers, EventQueue& queue, std::uint64_t body_limit);

  // A request whose header was read: answers it. False when the connection must close.
  boost::asio::awaitable<bool> serve(
      boost::beast::tcp_stream& client, boost::beast::flat_buffer& buffer,
      boost::beast::http::request_parser<boost::beast::http::buffer_body>& parser, bool keep_alive);

  const IngressStats& stats() const { return stats_; }

  // Called on the proxy thread the first time an accepted event shows a broker a (type, source)
  // pair (Knative's eventtype-auto-create); post from it. Set before serving.
  using TypeSeen = std::function<void(const std::string& ns, const std::string& broker,
                                      const std::string& type, const std::string& source)>;
  void on_type_seen(TypeSeen callback) { type_seen_ = std::move(callback); }

 private:
  void note_type(const std::string& ns, const std::string& broker, const std::string& type,
                 const std::string& source);

  BrokerCounters& counters(const std::string& ns, const std::string& broker);

  TypeSeen type_seen_;
  std::unordered_map<std::string, std::shared_ptr<BrokerCounters>> counters_;  // "ns/broker"
  std::unordered_set<std::string> types_seen_;  // the proxy thread's; bounded
  const BrokerSnapshot& brokers_;
  EventQueue& queue_;
  std::uint64_t body_limit_;
  IngressStats stats_;
};

// The event with the ingress's stamps: knativearrivaltime now, knativebrokerttl 255 when absent.
// kInvalidArgument when its TTL is exhausted (a reply loop).
Result<void> stamp_arrival(CloudEvent& event, std::chrono::system_clock::time_point now);

// One delivery per Trigger of the broker whose filter passes the event.
std::vector<NewEvent::Target> matching_triggers(const BrokerRoute& broker, const CloudEvent& event);

}  // namespace elafros
