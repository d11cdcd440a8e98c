#include "proxy/broker_ingress.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <ctime>
#include <optional>

#include "event_queue.hpp"
#include "events/event_credentials.hpp"
#include "offload.hpp"
#include "proxy/client_stream.hpp"
#include "proxy/http_framing.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace elafros {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kNoBody;

std::string rfc3339_now(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, static_cast<int>(us % 1000000));
}

// The body is a view: GCC 12 mishandles string temporaries built inside a co_await expression
// (scheduler/offload.hpp), and a view has nothing to destroy.
asio::awaitable<bool> respond(ClientStream& client, unsigned version, http::status status,
                              std::string_view body, bool keep, bool allow) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::server, "elafros");
  if (allow) res.set(http::field::allow, "POST, OPTIONS");
  if (status == http::status::unauthorized)
    res.set(http::field::www_authenticate, "Bearer realm=\"elafros broker ingress\"");
  if (!body.empty()) {
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::string(body);
    res.body() += "\n";
  }
  if (status == http::status::service_unavailable) res.set(http::field::retry_after, "1");
  res.keep_alive(keep);
  res.prepare_payload();
  auto [ec, n] = co_await http::async_write(client, res, kAwait);
  co_return !ec && keep;
}

}  // namespace

Result<void> stamp_arrival(CloudEvent& e, std::chrono::system_clock::time_point now) {
  e.attributes["knativearrivaltime"] = rfc3339_now(now);
  auto it = e.attributes.find(kTtlAttribute);
  if (it == e.attributes.end()) {
    e.attributes[kTtlAttribute] = std::to_string(kMaxBrokerTtl);
    return {};
  }
  int ttl = 0;
  try {
    std::size_t used = 0;
    ttl = std::stoi(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing");
  } catch (...) {
    return Error::invalid(fmt::format("knativebrokerttl \"{}\" is not an integer", it->second));
  }
  if (ttl <= 0)
    return Error::invalid(
        "the event's knativebrokerttl is exhausted: it went through too many brokers (a reply "
        "loop?), and is dropped");
  if (ttl > kMaxBrokerTtl) it->second = std::to_string(kMaxBrokerTtl);
  return {};
}

std::vector<NewEvent::Target> matching_triggers(const BrokerRoute& broker, const CloudEvent& e) {
  std::vector<NewEvent::Target> out;
  for (const auto& t : broker.triggers)
    if (filter_matches(t.trigger.filter, e)) out.push_back({t.trigger.uid, t.trigger.name});
  return out;
}

BrokerIngress::BrokerIngress(const BrokerSnapshot& brokers, EventQueue& queue,
                             std::uint64_t body_limit)
    : brokers_(brokers), queue_(queue), body_limit_(body_limit) {}

asio::awaitable<bool> BrokerIngress::serve(ClientStream& client, beast::flat_buffer& buffer,
                                           http::request_parser<http::buffer_body>& header,
                                           bool keep_alive) {
  auto& head = header.get();
  unsigned version = head.version();
  auto answer = [&client, version](http::status status, std::string_view body, bool keep,
                                   bool allow = false) {
    return respond(client, version, status, body, keep, allow);
  };

  // A sender refused: 401 or 403, counted. The message outlives the answer (the caller's).
  auto refuse = [this, &answer](const PublishVerdict& verdict, BrokerCounters& counted, bool keep) {
    bool unauthenticated = verdict.outcome == PublishVerdict::Outcome::kUnauthenticated;
    stats_.reject(unauthenticated ? IngressStats::Reject::kUnauthenticated
                                  : IngressStats::Reject::kForbidden);
    ++counted.rejected;
    return answer(unauthenticated ? http::status::unauthorized : http::status::forbidden,
                  verdict.message, keep);
  };

  bool body_unread = !header.is_done();
  std::string target(head.target());
  std::string path = target.substr(0, target.find('?'));
  if (head.method() == http::verb::options) {
    if (body_unread) keep_alive = false;
    co_return co_await answer(http::status::ok, kNoBody, keep_alive, true);
  }
  if (head.method() != http::verb::post) {
    if (body_unread) keep_alive = false;
    std::string body = fmt::format("{} is not allowed: POST CloudEvents to /NAMESPACE/BROKER",
                                   std::string(head.method_string()));
    co_return co_await answer(http::status::method_not_allowed, body, keep_alive, true);
  }
  // /NAMESPACE/BROKER
  std::vector<std::string> parts;
  for (std::size_t i = 1; i <= path.size();) {
    auto j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  if (path == "/" || path.empty()) {
    stats_.reject(IngressStats::Reject::kNoBroker);
    std::string body = "no broker here: POST CloudEvents to /NAMESPACE/BROKER";
    co_return co_await answer(http::status::not_found, body, false);
  }
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
    stats_.reject(IngressStats::Reject::kBadPath);
    std::string body = fmt::format(
        "\"{}\" is not /NAMESPACE/BROKER: 'elafros broker describe NAME' shows the "
        "broker's URL",
        path);
    co_return co_await answer(http::status::bad_request, body, false);
  }
  BrokerTablePtr table = brokers_.load();
  const BrokerRoute* broker = table->find(parts[0], parts[1]);
  if (!broker) {
    stats_.reject(IngressStats::Reject::kUnknownBroker);
    std::string body = fmt::format(
        "broker \"{}\" not found in namespace \"{}\" ('elafros broker list -n {}' lists them)",
        parts[1], parts[0], parts[0]);
    co_return co_await answer(http::status::not_found, body, false);
  }
  BrokerCounters& counted = counters(parts[0], parts[1]);

  // Who sends: checked before the body is read, so a refused sender costs no upload.
  std::string authorization(head[http::field::authorization]);
  Publisher who;
  {
    boost::system::error_code ec;
    auto peer = client.socket().remote_endpoint(ec);
    who.via = ec ? "unknown" : peer.address().to_string();
  }
  std::optional<PublishVerdict> refused;
  if (EventCredentials::is_credential(authorization)) {
    std::optional<Publisher> sender;
    if (policy_.credentials)
      sender = policy_.credentials->verify(authorization, parts[0], parts[1]);
    if (sender) {
      sender->via = who.via;
      who = std::move(*sender);
    } else {
      refused = PublishVerdict{PublishVerdict::Outcome::kUnauthenticated,
                               fmt::format("the request's elfev: credential is not valid for "
                                           "broker \"{}\" in namespace \"{}\" (it was made for "
                                           "another broker, or by an earlier run of elafrosd)",
                                           parts[1], parts[0])};
    }
  } else if (!authorization.empty()) {
    if (!policy_.tokens || !control_) {
      refused = PublishVerdict{PublishVerdict::Outcome::kUnauthenticated,
                               "this ingress takes no tokens; send the event without one"};
    } else {
      const std::string& ns = parts[0];
      const std::string& name = parts[1];
      TokenPublisher checked = co_await offload(control_->get_executor(), &PublishTokens::check,
                                                policy_.tokens, authorization, ns, name);
      if (checked.verdict.allowed()) {
        checked.who.via = who.via;
        who = std::move(checked.who);
      } else {
        refused = std::move(checked.verdict);
      }
    }
  } else if (!anonymous_allowed(client)) {
    refused = PublishVerdict{
        PublishVerdict::Outcome::kUnauthenticated,
        fmt::format("publishing to broker \"{}\" in namespace \"{}\" needs a token: send "
                    "Authorization: Bearer elf_… (elafros token create NAME --namespace {} "
                    "--role edit); broker-anonymous-publish lets anonymous senders in only {}",
                    parts[1], parts[0], parts[0],
                    policy_.anonymous == AnonymousPublish::kNone
                        ? "never"
                        : "from this machine (the loopback and its instances)")};
  }
  if (refused) co_return co_await refuse(*refused, counted, false);

  // The body, whole: an event is small (body_limit, 413 above). The header was parsed under the
  // proxy's larger limit, so a declared length is checked here.
  if (auto length = header.content_length(); length && *length > body_limit_) {
    stats_.reject(IngressStats::Reject::kTooLarge);
    ++counted.rejected;
    std::string body = fmt::format("the event is over the limit of {} bytes", body_limit_);
    co_return co_await answer(http::status::payload_too_large, body, false);
  }
  http::request_parser<http::string_body> parser(std::move(header));
  parser.body_limit(body_limit_);
  http_framing::ChunkGuard chunk_guard;
  chunk_guard.attach(parser);
  // Beast adds a chunked body's trailer fields to the head's, where they would pass for
  // attributes (ce-*): an event with trailers is refused.
  auto head_fields =
      static_cast<std::size_t>(std::distance(parser.get().begin(), parser.get().end()));
  if (!parser.is_done()) {
    client.next_layer().expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await http::async_read(client, buffer, parser, kAwait);
    if (ec == http::error::body_limit) {
      stats_.reject(IngressStats::Reject::kTooLarge);
      ++counted.rejected;
      std::string body = fmt::format("the event is over the limit of {} bytes", body_limit_);
      co_return co_await answer(http::status::payload_too_large, body, false);
    }
    if (ec == http::error::bad_chunk || ec == http::error::bad_chunk_extension) {
      std::string body = http_framing::body_error_message(ec);
      co_return co_await answer(http::status::bad_request, body, false);
    }
    if (ec) co_return false;
  }
  auto& req = parser.get();
  if (static_cast<std::size_t>(std::distance(req.begin(), req.end())) != head_fields) {
    stats_.reject(IngressStats::Reject::kInvalidEvent);
    ++counted.rejected;
    std::string body =
        "invalid CloudEvent: trailer fields after a chunked body are not accepted; send every "
        "attribute as a header";
    co_return co_await answer(http::status::bad_request, body, false);
  }
  HttpHeaders headers;
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "content-type" || name.rfind("ce-", 0) == 0)
      headers.emplace_back(std::move(name), std::string(f.value()));
  }
  auto event = cloudevent_from_http(headers, std::move(req.body()));
  if (!event) {
    stats_.reject(IngressStats::Reject::kInvalidEvent);
    ++counted.rejected;
    std::string body = "invalid CloudEvent: " + event.error().message;
    co_return co_await answer(http::status::bad_request, body, keep_alive);
  }
  if (PublishVerdict verdict =
          evaluate_publish(broker->policies, policy_.mode, who, parts[0], parts[1], *event);
      !verdict.allowed())
    co_return co_await refuse(verdict, counted, keep_alive);
  if (auto stamped = stamp_arrival(*event, std::chrono::system_clock::now()); !stamped) {
    ++stats_.ttl_dropped;
    ++counted.ttl_dropped;
    std::string body = stamped.error().message;
    co_return co_await answer(http::status::bad_request, body, keep_alive);
  }

  // Committed before the 202: the store thread says when.
  NewEvent ne;
  ne.namespace_ = parts[0];
  ne.broker = parts[1];
  ne.received_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  ne.deliveries = matching_triggers(*broker, *event);
  std::optional<NewType> new_type = unseen_type(parts[0], parts[1], *event);
  ne.event = std::move(*event);
  auto stored = co_await queue_.committed_append(std::move(ne));
  if (!stored) {
    if (new_type) types_seen_.erase(new_type->key);  // seen again when it is stored
    ++stats_.failed;
    ++counted.failed;
    std::string body = "the event was not stored: " + stored.error().message;
    co_return co_await answer(http::status::service_unavailable, body, keep_alive);
  }
  ++stats_.accepted;
  ++counted.accepted;
  if (new_type) type_seen_(parts[0], parts[1], new_type->type, new_type->source);
  co_return co_await answer(http::status::accepted, kNoBody, keep_alive);
}

bool BrokerIngress::anonymous_allowed(ClientStream& client) const {
  switch (policy_.anonymous) {
    case AnonymousPublish::kAny:
      return true;
    case AnonymousPublish::kNone:
      return false;
    case AnonymousPublish::kLoopback:
      break;
  }
  boost::system::error_code ec;
  auto address = client.socket().remote_endpoint(ec).address();
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  if (address.is_loopback()) return true;
  return policy_.instance_mask != 0 && address.is_v4() &&
         (address.to_v4().to_uint() & policy_.instance_mask) == policy_.instance_subnet;
}

BrokerCounters& BrokerIngress::counters(const std::string& ns, const std::string& broker) {
  auto& c = counters_[ns + "/" + broker];
  if (!c) {
    c = std::make_shared<BrokerCounters>();
    c->namespace_ = ns;
    c->broker = broker;
    auto list = std::make_shared<BrokerCountersList>();
    for (const auto& [k, counter] : counters_) list->push_back(counter);
    stats_.brokers.store(std::move(list), std::memory_order_release);
  }
  return *c;
}

std::optional<BrokerIngress::NewType> BrokerIngress::unseen_type(const std::string& ns,
                                                                 const std::string& broker,
                                                                 const CloudEvent& event) {
  if (!type_seen_) return std::nullopt;
  constexpr std::size_t kMaxSeen = 4096;  // then forgotten: a repeat only re-checks
  auto attribute = [&event](const char* name) {
    auto it = event.attributes.find(name);
    return it == event.attributes.end() ? std::string_view() : std::string_view(it->second);
  };
  // A hash, not a key string: nothing is allocated for an event of a known type. A collision
  // (two pairs, one hash) only leaves one of them unregistered.
  std::hash<std::string_view> h;
  std::size_t key = h(ns);
  for (std::string_view part : {std::string_view(broker), attribute("type"), attribute("source")})
    key = (key ^ h(part)) * 1099511628211ull;
  if (types_seen_.count(key)) return std::nullopt;
  if (types_seen_.size() >= kMaxSeen) types_seen_.clear();
  types_seen_.insert(key);
  return NewType{key, std::string(attribute("type")), std::string(attribute("source"))};
}

}  // namespace elafros
