#include "proxy_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <deque>
#include <limits>
#include <random>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "elafros/traffic.hpp"
#include "log_store.hpp"
#include "proxy/access_log.hpp"
#include "proxy/broker_ingress.hpp"
#include "proxy/client_stream.hpp"
#include "proxy/http2_session.hpp"
#include "proxy/http_framing.hpp"
#include "proxy/proxy_tls.hpp"
#include "proxy/shedding.hpp"
#include "proxy/tunnel.hpp"
#include "telemetry/tracer.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;

namespace elafros {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kRelayBuffer = 16 * 1024;
// nginx's lingering_time and lingering_timeout.
constexpr auto kLingerTime = std::chrono::seconds(30);
constexpr auto kLingerTimeout = std::chrono::seconds(5);

// A request counted toward an instance. The increment is sequentially consistent, as is the
// read of `draining` after it (EndpointStats' drain handshake).
struct InFlight {
  explicit InFlight(EndpointStats& s) : stats(s) {
    stats.in_flight.fetch_add(1);
    stats.requests.fetch_add(1, std::memory_order_relaxed);
  }
  ~InFlight() { stats.in_flight.fetch_sub(1, std::memory_order_relaxed); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  EndpointStats& stats;
};

// A request being relayed to an instance now (ProxyServer::active_requests: what a shutdown
// waits for).
struct Active {
  explicit Active(std::atomic<std::int64_t>& n) : count(n) {
    count.fetch_add(1, std::memory_order_relaxed);
  }
  ~Active() { count.fetch_sub(1, std::memory_order_relaxed); }
  Active(const Active&) = delete;
  Active& operator=(const Active&) = delete;
  std::atomic<std::int64_t>& count;
};

// Knative's bounds of one exchange: the whole within timeoutSeconds, the answer's head within
// responseStartTimeoutSeconds (when set, else the same).
struct Bounds {
  explicit Bounds(const RevisionRoute& revision)
      : timeout(revision.timeout_seconds),
        start(revision.response_start_timeout_seconds > 0
                  ? std::min(std::chrono::seconds(revision.response_start_timeout_seconds), timeout)
                  : timeout) {}
  std::chrono::seconds timeout;
  std::chrono::seconds start;
};

}  // namespace

class ProxyServer::Impl : public std::enable_shared_from_this<ProxyServer::Impl> {
 public:
  Impl(asio::io_context& io, const RoutingSnapshot& routes, ProxyOptions options)
      : io_(io), routes_(routes), options_(std::move(options)), acceptor_(io), tls_acceptor_(io) {}

  Result<void> listen() {
    auto bound = bind(acceptor_, "--listen", options_.address, options_.port);
    if (!bound) return bound.error();
    port_ = *bound;
    if (options_.certificates) {
      bound = bind(tls_acceptor_, "--listen-tls", options_.tls_address, options_.tls_port);
      if (!bound) return bound.error();
      tls_port_ = *bound;
    }
    return {};
  }

  static Result<std::uint16_t> bind(tcp::acceptor& acceptor, const char* flag,
                                    const std::string& host, std::uint16_t port) {
    error_code ec;
    auto address = asio::ip::make_address(host, ec);
    if (ec) return Error::invalid(fmt::format("{}: \"{}\" is not an IP address", flag, host));
    tcp::endpoint ep(address, port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Error::unavailable(
          fmt::format("cannot listen on {}:{}: {} (is another server using the port? choose "
                      "another with {})",
                      host, port, ec.message(), flag));
    return acceptor.local_endpoint().port();
  }

  void start() {
    shed_above_ = shed_threshold(options_.descriptor_headroom);
    asio::co_spawn(io_, accept_loop(shared_from_this(), acceptor_, false), asio::detached);
    if (options_.certificates)
      asio::co_spawn(io_, accept_loop(shared_from_this(), tls_acceptor_, true), asio::detached);
    asio::co_spawn(io_, prune_loop(shared_from_this()), asio::detached);
  }

  void stop_accepting() {
    asio::post(io_, [self = shared_from_this()] {
      error_code ec;
      self->acceptor_.close(ec);
      self->tls_acceptor_.close(ec);
      self->stopping_ = true;
    });
  }

  awaitable<void> accept_loop(std::shared_ptr<Impl> self, tcp::acceptor& acceptor, bool secure) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kAwait);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        // Out of descriptors and the like: back off briefly rather than spin.
        asio::steady_timer t(io_, std::chrono::milliseconds(50));
        co_await t.async_wait(kAwait);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      std::string peer;
      bool from_instance = false;
      {
        auto ep = socket.remote_endpoint(ec);
        if (!ec) {
          peer = ep.address().to_string();
          from_instance =
              options_.instance_mask != 0 && ep.address().is_v4() &&
              (ep.address().to_v4().to_uint() & options_.instance_mask) == options_.instance_subnet;
        }
      }
      // The kernel gives the lowest free descriptor: this one's number says how many are in
      // use. Near the limit, the connection is answered 503 rather than served.
      std::string why;
      if (socket.native_handle() >= shed_above_)
        why =
            "elafrosd is near its limit of open files and sheds new connections; retry shortly (an "
            "operator raises LimitNOFILE or ulimit -n)\n";
      else if (options_.max_connections > 0 && connections_ >= options_.max_connections)
        why = fmt::format(
            "elafrosd is serving its limit of {} connections (max-connections); retry shortly\n",
            options_.max_connections);
      else if (auto held = per_client_.find(peer);
               options_.max_connections_per_client > 0 && held != per_client_.end() &&
               held->second >= options_.max_connections_per_client)
        why = fmt::format(
            "{} holds its limit of {} connections to elafrosd (max-connections-per-client); "
            "reuse connections (keep-alive) or retry shortly\n",
            peer, options_.max_connections_per_client);
      if (!why.empty() && secure) continue;  // no answer before a handshake: closed
      if (!why.empty()) {
        asio::co_spawn(io_,
                       shed_connection(beast::tcp_stream(std::move(socket)), options_.header_limit,
                                       std::move(why)),
                       asio::detached);
        continue;
      }
      ++per_client_[peer];  // here, not in the session: the next accept may come first
      beast::tcp_stream stream(std::move(socket));
      asio::co_spawn(
          io_,
          session(self,
                  secure ? ClientStream(std::move(stream), options_.certificates->context())
                         : ClientStream(std::move(stream)),
                  std::move(peer), from_instance),
          asio::detached);
    }
  }

  // Drops pooled connections of instances that left the routing table.
  awaitable<void> prune_loop(std::shared_ptr<Impl> /*keeps this alive*/) {
    asio::steady_timer t(io_);
    while (!stopping_) {
      t.expires_after(std::chrono::seconds(5));
      co_await t.async_wait(kAwait);
      RoutingTablePtr table = routes_.load();
      if (table == pruned_for_) continue;
      pruned_for_ = table;
      auto live = live_instances(*table);
      for (auto it = pool_.begin(); it != pool_.end();) {
        if (!live.count(it->first))
          it = pool_.erase(it);
        else
          ++it;
      }
      for (auto it = h2_pool_.begin(); it != h2_pool_.end();) {
        if (!live.count(it->first)) {
          for (auto& u : it->second) u->close();
          it = h2_pool_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  static std::unordered_set<std::string> live_instances(const RoutingTable& table) {
    std::unordered_set<std::string> ids;
    table.for_each([&ids](const ServiceRoute& r) {
      for (const auto& t : r.targets)
        for (const auto& e : t.revision->endpoints) ids.insert(e.instance_id);
    });
    return ids;
  }

  // HOST or HOST:PORT, case-insensitively.
  bool is_ingress_host(std::string_view host) const {
    auto colon = host.rfind(':');
    if (colon != std::string_view::npos && host.find(']') == std::string_view::npos)
      host = host.substr(0, colon);
    const std::string& want = options_.ingress_host;
    if (host.size() != want.size()) return false;
    for (std::size_t i = 0; i < host.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(host[i])) != want[i]) return false;
    return true;
  }

  struct Connection {
    std::string head;  // serialised headers
    std::string peer;
    // The response's relay buffer, made on first use (an HTTP/2 stream whose answer came whole
    // with its head needs none).
    std::unique_ptr<std::array<char, kRelayBuffer>> relay_buffer;
    char* relay() {
      if (!relay_buffer) relay_buffer = std::make_unique<std::array<char, kRelayBuffer>>();
      return relay_buffer->data();
    }
    std::unique_ptr<std::array<char, kRelayBuffer>> upload;  // the request body's, when one came
    // The request being served: what the metrics and the access log record of it.
    int status = 0;
    std::uint64_t bytes = 0;  // response body bytes sent
    bool body_broken = false;  // the body could not be read (malformed, cut): nothing to linger for
  };

  // GCC 12 destroys temporaries twice when they are built conditionally or inside a condition
  // around a co_await: callers build the body into a named string first.
  awaitable<error_code> send_simple(ClientStream& client, unsigned version, http::status status,
                                    std::string body, bool keep_alive, bool retry_soon = false) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::server, "elafros");
    if (retry_soon) res.set(http::field::retry_after, "1");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.body() += "\n";
    res.prepare_payload();
    client.next_layer().expires_after(options_.idle_timeout);
    auto [ec, n] = co_await http::async_write(client, res, kAwait);
    co_return ec;
  }

  awaitable<void> session(std::shared_ptr<Impl> /*keeps this alive*/, ClientStream client,
                          std::string peer, bool from_instance) {
    ++connections_;
    struct Held {
      std::size_t& n;
      std::unordered_map<std::string, std::size_t>& per_client;
      const std::string& peer;
      ~Held() {
        --n;
        auto it = per_client.find(peer);
        if (it != per_client.end() && --it->second == 0) per_client.erase(it);
      }
    } held{connections_, per_client_, peer};  // per_client_ was counted at the accept
    if (client.secure()) {
      error_code hec = co_await client.handshake(options_.header_timeout);
      if (hec) co_return;  // not TLS, or a client that gave up
      if (client.alpn() == "h2") {
        co_await serve_h2(client, std::string(), peer, from_instance);
        co_return;
      }
    }
    // Bounded, so that no request (a chunk header without end, say) grows it without limit.
    beast::flat_buffer buffer(options_.header_limit + kRelayBuffer * 4);
    // Per connection, not per request: the relay buffer and the peer's address.
    Connection conn;
    conn.peer = peer;
    http_framing::ChunkGuard chunk_guard;
    bool unread = false;  // the last request answered left (some of) its body unread
    bool first = true;    // HTTP/2's preface counts only as a connection's first bytes
    for (;;) {
      http::request_parser<http::buffer_body> parser;
      parser.header_limit(options_.header_limit);
      parser.body_limit(options_.body_limit);
      chunk_guard.attach(parser);
      auto read = co_await http_framing::read_head(client, buffer, parser, options_.header_limit,
                                                   options_.idle_timeout, options_.header_timeout);
      if (read.ec) break;  // closed, reset or timed out: nothing to answer
      bool at_start = std::exchange(first, false);
      if (read.http2_preface && at_start && !client.secure()) {
        // HTTP/2 with prior knowledge (h2c), which starts with a line that reads as a head.
        co_await h2_after_preface(client, buffer, peer, from_instance);
        co_return;
      }
      if (read.refusal) {
        // Framing two parsers could read differently: refuse, and close (RFC 9112 §6.3).
        unsigned version = parser.is_header_done() ? parser.get().version() : 11;
        co_await send_simple(client, version, static_cast<http::status>(read.refusal->status),
                             std::move(read.refusal->message), false);
        break;
      }
      auto& req = parser.get();
      if (req.version() != 11 && req.version() != 10) {
        co_await send_simple(client, 11, http::status::http_version_not_supported,
                             "only HTTP/1.0 and HTTP/1.1 are supported", false);
        break;
      }
      auto host = req[http::field::host];
      if (host.empty()) {
        co_await send_simple(client, req.version(), http::status::bad_request,
                             "bad request: the Host header is missing", false);
        break;
      }
      if (req.count(http::field::host) > 1) {
        co_await send_simple(client, req.version(), http::status::bad_request,
                             "bad request: more than one Host header", false);
        break;
      }
      bool keep_alive = req.keep_alive() && !stopping_;
      struct Unread {  // whichever way this request ends
        bool& flag;
        const http::request_parser<http::buffer_body>& parser;
        const bool& broken;
        ~Unread() { flag = !parser.is_done() && !broken; }
      } unread_at_end{unread, parser, conn.body_broken};
      conn.body_broken = false;
      if (options_.ingress && is_ingress_host(host)) {
        bool ok = co_await options_.ingress->serve(client, buffer, parser, keep_alive);
        if (!ok) break;
        continue;
      }
      if (from_instance && !options_.service_to_service) {
        std::string body = fmt::format(
            "instances may not call services through the proxy (\"{}\"): an operator turns "
            "network-service-to-service on; the brokers' ingress is open to instances",
            std::string(host));
        co_await send_simple(client, req.version(), http::status::forbidden, std::move(body),
                             false);
        break;
      }
      RoutingTablePtr table = routes_.load();
      const ServiceRoute* route = table->find(host);
      bool body_unread = !parser.is_done();
      if (!route) {
        if (body_unread) keep_alive = false;  // don't read a body we have no use for
        std::string body =
            fmt::format("no service serves host \"{}\" ('elafros service list' shows the URLs)",
                        std::string(host));
        error_code wec = co_await send_simple(client, req.version(), http::status::not_found,
                                              std::move(body), keep_alive);
        if (wec || !keep_alive) break;
        continue;
      }
      const RevisionRoute* revision = pick_revision(*route);
      if (!revision || !revision->stats) {
        if (body_unread) keep_alive = false;
        std::string body = fmt::format(
            "service \"{}\" has no revision to serve it ('elafros service describe {}' says why)",
            route->service, route->service);
        error_code wec = co_await send_simple(
            client, req.version(), http::status::service_unavailable, std::move(body), keep_alive);
        if (wec || !keep_alive) break;
        continue;
      }
      // From here the request counts toward its revision's concurrency, waiting included.
      std::shared_ptr<RevisionStats> stats = revision->stats;
      conn.status = 0;
      conn.bytes = 0;
      RequestAccounting accounting(*this, stats, conn);
      if (options_.tracer) {
        // The app's traceparent names this request's span, in the caller's trace or a new one.
        accounting.trace = options_.tracer->begin(req["traceparent"]);
        req.set("traceparent", accounting.trace.traceparent);
      }
      // What the access line and a sampled span name: copied only for them (the hot path).
      const bool described = options_.access_log || accounting.trace.sampled;
      if (described) accounting.describe(req, *route, *revision);
      std::optional<InFlight> claimed;  // after accounting: released first, then wake_one
      const Endpoint* endpoint = claim(*revision, claimed);
      if (!endpoint) {
        Activation got =
            co_await wait_for_instance(std::string(host), *revision, accounting, claimed);
        if (!got.endpoint) {
          if (body_unread) keep_alive = false;
          conn.status = static_cast<int>(got.status);
          error_code wec = co_await send_simple(client, req.version(), got.status,
                                                std::move(got.message), keep_alive);
          if (wec || !keep_alive) break;
          continue;
        }
        table = std::move(got.table);
        revision = got.revision;
        endpoint = got.endpoint;
      }
      if (described) accounting.instance = endpoint->instance_id;
      burst_check(*revision);
      bool ok = revision->h2c ? co_await http1_to_h2c(client, buffer, parser, conn, *revision,
                                                      *endpoint, keep_alive)
                              : co_await forward(client, buffer, parser, conn, *revision, *endpoint,
                                                 keep_alive);
      if (!ok || !keep_alive) break;
    }
    co_await client.close_send();
    if (unread && !client.secure()) co_await linger(client, conn);
  }

  // After an answer that left the request's body unread, reads and drops what the client still
  // sends until it closes too, as nginx's lingering_close does: closing a socket with unread
  // data resets the connection, and the reset can destroy the answer before the client read it.
  awaitable<void> linger(ClientStream& client, Connection& conn) {
    auto until = std::chrono::steady_clock::now() + kLingerTime;
    for (;;) {
      auto left = until - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) break;
      client.next_layer().expires_after(
          std::min<std::chrono::steady_clock::duration>(kLingerTimeout, left));
      auto [ec, n] =
          co_await client.async_read_some(asio::buffer(conn.relay(), kRelayBuffer), kAwait);
      if (ec) break;
    }
  }

  // Counts a request toward its revision from arrival to completion, hands freed capacity to
  // the first request waiting in the activator, and records what became of it: its status
  // class and latency, and an access log line when those are on.
  struct RequestAccounting {
    RequestAccounting(Impl& impl, std::shared_ptr<RevisionStats> s, Connection& c)
        : proxy(impl), stats(std::move(s)), conn(c), started_ns(now_ns()) {
      stats->begin(started_ns);
    }
    ~RequestAccounting() {
      std::int64_t end = now_ns();
      stats->end(end);
      double seconds = static_cast<double>(end - started_ns) / 1e9;
      // A response cut short (the client or the instance went away) counts as 502, as nginx
      // logs it.
      int status = conn.status != 0 ? conn.status : 502;
      stats->metrics().count(status);
      stats->metrics().latency.observe(seconds);
      if (proxy.options_.access_log) log(status, seconds);
      if (proxy.options_.tracer && trace.sampled) spans(status, end);
      proxy.wake_one(stats.get());
    }
    // The request's SERVER span; children for the activator's wait and, when no instance was
    // there, the cold start. Wall times from the steady clock's offsets.
    void spans(int status, std::int64_t end) {
      Tracer& tracer = *proxy.options_.tracer;
      auto wall = [this](std::int64_t steady) { return wall_start_ns + (steady - started_ns); };
      std::vector<Span> out;
      Span server;
      server.trace_id = trace.trace_id;
      server.span_id = trace.span_id;
      server.parent_span_id = trace.parent_id;
      server.has_parent = trace.has_parent;
      server.name = method;
      server.kind = 2;
      server.start_ns = wall_start_ns;
      server.end_ns = wall(end);
      server.status = status >= 500 ? 2 : 0;
      server.attributes = {{"http.request.method", method},
                           {"url.path", path.substr(0, path.find('?'))},
                           {"server.address", host},
                           {"elafros.instance", instance}};
      server.int_attributes = {{"http.response.status_code", status}};
      server.bool_attributes = {{"faas.coldstart", cold}};
      server.namespace_ = ns;
      server.service = service;
      server.revision = revision_name;
      out.push_back(server);
      if (waited) {
        Span wait = server;
        wait.attributes.clear();
        wait.int_attributes.clear();
        wait.bool_attributes.clear();
        wait.kind = 1;
        wait.status = 0;
        wait.parent_span_id = server.span_id;
        wait.has_parent = true;
        wait.span_id = tracer.new_span_id();
        wait.name = "activator wait";
        wait.start_ns = wall(wait_start_ns);
        wait.end_ns = wall(wait_end_ns ? wait_end_ns : end);
        out.push_back(wait);
        if (cold) {
          Span start = wait;
          start.parent_span_id = wait.span_id;
          start.span_id = tracer.new_span_id();
          start.name = "cold start";
          out.push_back(std::move(start));
        }
      }
      tracer.finish(std::move(out));
    }
    void describe(const http::request<http::buffer_body>& req, const ServiceRoute& route,
                  const RevisionRoute& revision) {
      describe(req.method_string(), req[http::field::host], req.target(), route, revision);
    }
    void describe(std::string_view m, std::string_view h, std::string_view p,
                  const ServiceRoute& route, const RevisionRoute& revision) {
      method = std::string(m);
      host = std::string(h);
      path = std::string(p);
      ns = route.namespace_;
      service = route.service;
      revision_name = revision.name;
    }
    void log(int status, double seconds) {
      boost::json::object line{{"time", format_log_time(std::chrono::system_clock::now())},
                               {"remote", conn.peer},
                               {"method", method},
                               {"host", host},
                               {"path", path},
                               {"status", status},
                               {"bytes", conn.bytes},
                               {"namespace", ns},
                               {"service", service},
                               {"revision", revision_name},
                               {"instance", instance},
                               {"activator", waited}};
      // Milliseconds with microsecond digits, as a plain decimal (not 4.5E-1).
      std::string text = boost::json::serialize(line);
      text.pop_back();
      text += fmt::format(",\"durationMs\":{:.3f}}}", seconds * 1e3);
      proxy.options_.access_log->append(text);
    }
    RequestAccounting(const RequestAccounting&) = delete;
    RequestAccounting& operator=(const RequestAccounting&) = delete;
    Impl& proxy;
    std::shared_ptr<RevisionStats> stats;
    Connection& conn;
    std::int64_t started_ns;
    std::int64_t wall_start_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    bool waited = false, cold = false;
    std::int64_t wait_start_ns = 0, wait_end_ns = 0;
    Tracer::Context trace;
    std::string instance;
    std::string method, host, path, ns, service, revision_name;
  };

  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  struct Activation {
    RoutingTablePtr table;
    const RevisionRoute* revision = nullptr;
    const Endpoint* endpoint = nullptr;
    http::status status = http::status::service_unavailable;
    std::string message;
  };

  struct Waiter {
    explicit Waiter(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
  };

  // Waits, in a bounded per-revision queue, until the revision has an instance with capacity or
  // its timeoutSeconds pass. The autoscaler is poked at once, not at its next tick.
  awaitable<Activation> activate(std::string host, const RevisionRoute& revision,
                                 std::optional<InFlight>& claimed) {
    Activation out;
    std::string name = revision.name;
    std::string ns = revision.namespace_;
    int timeout = revision.timeout_seconds;
    std::shared_ptr<RevisionStats> stats = revision.stats;
    auto& queue = queues_[stats.get()];
    if (queue.size() >= options_.activator_queue_limit) {
      out.message = fmt::format(
          "too many requests are waiting for revision \"{}\" (the limit is {}){}; retry shortly",
          name, options_.activator_queue_limit,
          revision.limited.empty() ? "" : ", and it cannot scale further: " + revision.limited);
      co_return out;
    }
    if (!revision.unavailable.empty()) {
      out.message = revision.unavailable;
      co_return out;
    }
    poke(ns, name, *stats, revision.endpoints.empty());
    Waiter waiter(io_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
    queue.push_back(&waiter);
    auto& queued = stats->metrics().queued;
    queued.store(queued.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    struct Leave {
      std::deque<Waiter*>& q;
      Waiter* w;
      std::atomic<std::int64_t>& queued;
      ~Leave() {
        q.erase(std::remove(q.begin(), q.end(), w), q.end());
        queued.store(queued.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
      }
    } leave{queue, &waiter, queued};
    for (;;) {
      waiter.timer.expires_at(deadline);
      co_await waiter.timer.async_wait(kAwait);
      RoutingTablePtr table = routes_.load();
      const RevisionRoute* current = find_revision(*table, host, name);
      if (current) {
        if (const Endpoint* e = claim(*current, claimed)) {
          out.table = std::move(table);
          out.revision = current;
          out.endpoint = e;
          co_return out;
        }
      } else {
        out.status = http::status::service_unavailable;
        out.message =
            fmt::format("revision \"{}\" no longer serves host \"{}\"; retry", name, host);
        co_return out;
      }
      if (!current->unavailable.empty()) {
        out.message = current->unavailable;
        co_return out;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        out.status = http::status::gateway_timeout;
        out.message = fmt::format(
            "no instance of revision \"{}\" could take the request within {} s (its "
            "timeoutSeconds){}",
            name, timeout,
            !current->limited.empty()
                ? "; it cannot scale further: " + current->limited
                : std::string(current->endpoints.empty()
                                  ? "; 'elafros service describe' says why it has none"
                                  : ""));
        co_return out;
      }
      poke(ns, name, *stats, current->endpoints.empty());
    }
  }

  // The activator: waits for an instance of the revision with capacity (breaker), poking the
  // autoscaler. A request that found no instance at all is a cold start.
  awaitable<Activation> wait_for_instance(std::string host, const RevisionRoute& revision,
                                          RequestAccounting& accounting,
                                          std::optional<InFlight>& claimed) {
    bool cold = revision.endpoints.empty() && revision.unavailable.empty();
    std::int64_t waited_from = now_ns();
    accounting.waited = true;
    accounting.cold = cold;
    accounting.wait_start_ns = waited_from;
    std::shared_ptr<RevisionStats> stats = revision.stats;
    Activation got = co_await activate(std::move(host), revision, claimed);
    accounting.wait_end_ns = now_ns();
    if (got.endpoint && cold) {
      auto& m = stats->metrics();
      m.cold_starts.store(m.cold_starts.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
      m.cold_start_latency.observe(static_cast<double>(now_ns() - waited_from) / 1e9);
    }
    co_return got;
  }

  static const RevisionRoute* find_revision(const RoutingTable& table, const std::string& host,
                                            const std::string& name) {
    const ServiceRoute* route = table.find(host);
    if (!route) return nullptr;
    for (const auto& t : route->targets)
      if (t.revision->name == name) return t.revision.get();
    return nullptr;
  }

  // Tells the control plane a revision needs capacity now; at most every 100 ms per revision.
  void poke(const std::string& ns, const std::string& revision, const RevisionStats& stats,
            bool at_zero) {
    if (!on_demand_) return;
    auto now = std::chrono::steady_clock::now();
    auto& last = last_poke_[&stats];
    if (!at_zero && now - last < std::chrono::milliseconds(100)) return;
    if (at_zero && now - last < std::chrono::milliseconds(20)) return;
    last = now;
    on_demand_(ns, revision, stats.read(now_ns()).in_flight);
  }

  // Knative's target burst capacity: while the ready instances' spare capacity is below the
  // revision's burst capacity, the autoscaler hears of the load at once (at most every 100 ms),
  // its in-flight count with the queued, so that the desired scale is set with the burst.
  void burst_check(const RevisionRoute& rev) {
    if (!on_demand_ || !rev.stats) return;
    if (below_burst_capacity(rev.endpoints.size(), rev.instance_capacity,
                             rev.stats->read(now_ns()).in_flight, rev.burst_capacity))
      poke(rev.namespace_, rev.name, *rev.stats, false);
  }

  void wake_one(const RevisionStats* key) {
    auto it = queues_.find(key);
    if (it == queues_.end() || it->second.empty()) return;
    it->second.front()->timer.cancel();
  }

  // The routing table changed: every waiting request looks again. The pokes' times older than
  // their 100 ms limit go, so that revisions that went leave nothing behind.
  void wake_all() {
    for (auto it = queues_.begin(); it != queues_.end();) {
      if (it->second.empty()) {
        it = queues_.erase(it);
        continue;
      }
      for (Waiter* w : it->second) w->timer.cancel();
      ++it;
    }
    auto stale = std::chrono::steady_clock::now() - std::chrono::milliseconds(100);
    for (auto it = last_poke_.begin(); it != last_poke_.end();)
      it = it->second < stale && !queues_.count(it->first) ? last_poke_.erase(it) : std::next(it);
  }

  // Weighted per request (Knative traffic split).
  const RevisionRoute* pick_revision(const ServiceRoute& route) {
    if (route.targets.empty()) return nullptr;
    if (route.targets.size() == 1) return route.targets.front().revision.get();
    percents_.clear();
    for (const auto& t : route.targets) percents_.push_back(t.percent);
    std::uniform_int_distribution<unsigned> roll(0, 99);
    return route.targets[pick_by_percent(percents_, roll(rng_))].revision.get();
  }

  // Picks an instance and counts the request toward it, unless the control plane began to drain
  // it meanwhile (the snapshot in hand may be older than the drain): then another, or none.
  const Endpoint* claim(const RevisionRoute& rev, std::optional<InFlight>& claimed) {
    for (std::size_t tries = 0; tries <= rev.endpoints.size(); ++tries) {
      const Endpoint* e = pick_endpoint(rev);
      if (!e) return nullptr;
      claimed.emplace(*e->stats);
      if (!e->stats->draining.load()) return e;
      claimed.reset();
    }
    return nullptr;
  }

  // Least in-flight requests, ties broken round-robin; with containerConcurrency N (the
  // breaker), only instances with fewer than N in flight; never one being drained.
  const Endpoint* pick_endpoint(const RevisionRoute& rev) {
    if (rev.endpoints.empty()) return nullptr;
    std::size_t n = rev.endpoints.size();
    std::size_t start = next_++ % n;
    const Endpoint* best = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
      const Endpoint& e = rev.endpoints[(start + i) % n];
      if (e.stats->draining.load(std::memory_order_relaxed)) continue;
      std::int64_t load = e.stats->in_flight.load(std::memory_order_relaxed);
      if (rev.container_concurrency > 0 && load >= rev.container_concurrency) continue;
      if (!best || load < best->stats->in_flight.load(std::memory_order_relaxed)) best = &e;
    }
    return best;
  }

  std::unique_ptr<beast::tcp_stream> take_pooled(const std::string& instance) {
    auto it = pool_.find(instance);
    if (it == pool_.end() || it->second.empty()) return nullptr;
    auto s = std::move(it->second.back());
    it->second.pop_back();
    return s;
  }

  void put_pooled(const std::string& instance, std::unique_ptr<beast::tcp_stream> s) {
    auto& v = pool_[instance];
    if (v.size() < options_.max_idle_upstream) v.push_back(std::move(s));
  }

  // The request body's half of a full-duplex exchange: a coroutine of its own streams the
  // body to the instance while forward() reads the response, so an app that answers as it
  // reads (an echo, a transcoder) cannot deadlock against a full socket buffer.
  struct Upload {
    bool running = false;
    bool stopped = false;   // forward() ended it: what it saw then is not the client's fault
    bool sent = false;      // the whole request reached the instance
    error_code client_ec;   // reading the body from the client failed
    http::status answer{};  // what the client is owed for client_ec, if anything
    std::string message;
    std::optional<asio::steady_timer> done;  // made when an upload starts, cancelled at its end
  };

  // What a client whose request body failed to read is owed: 413 over the limit, 400 for a
  // malformed chunk; nothing (status left as is) when it went away or timed out.
  void body_answer(const error_code& ec, http::status& status, std::string& message) const {
    if (ec == http::error::body_limit) {
      status = http::status::payload_too_large;
      message = fmt::format("request body larger than {} bytes", options_.body_limit);
    } else if (ec != beast::error::timeout && ec != asio::error::eof &&
               ec != http::error::partial_message && ec != asio::error::connection_reset &&
               ec != asio::error::operation_aborted) {
      status = http::status::bad_request;
      message = http_framing::body_error_message(ec);
    }
  }

  awaitable<void> send_body(ClientStream& client, beast::flat_buffer& client_buffer,
                            http::request_parser<http::buffer_body>& parser,
                            beast::tcp_stream& upstream, char* relay, Upload& up) {
    auto& req = parser.get();
    http::request_serializer<http::buffer_body> sr{req};
    error_code ec;
    if (req.chunked()) {
      // The head goes first: a chunked body may end in trailer fields, which Beast adds to
      // the head's fields, and they must not reach the instance as headers.
      req.body().data = nullptr;
      req.body().size = 0;
      req.body().more = true;
      std::tie(ec, std::ignore) = co_await http::async_write_header(upstream, sr, kAwait);
    }
    while (!ec && !sr.is_done()) {
      if (!parser.is_done()) {
        req.body().data = relay;
        req.body().size = kRelayBuffer;
        client.next_layer().expires_after(options_.body_timeout);
        auto [rec, rn] = co_await http::async_read(client, client_buffer, parser, kAwait);
        if (rec == http::error::need_buffer) rec = {};
        if (rec) {
          up.client_ec = rec;
          body_answer(rec, up.answer, up.message);
          // Wake forward() from its wait for the response: this exchange is over.
          upstream.close();
          break;
        }
        req.body().size = kRelayBuffer - req.body().size;
        req.body().data = relay;
        req.body().more = !parser.is_done();
      } else {
        req.body().data = nullptr;
        req.body().size = 0;
        req.body().more = false;
      }
      std::tie(ec, std::ignore) = co_await http::async_write(upstream, sr, kAwait);
      if (ec == http::error::need_buffer) ec = {};
    }
    // An instance that stopped reading may still answer (413, say): forward() reads on.
    up.sent = !ec && !up.client_ec && sr.is_done();
  }

  void start_upload(ClientStream& client, beast::flat_buffer& client_buffer,
                    http::request_parser<http::buffer_body>& parser, beast::tcp_stream& upstream,
                    char* relay, Upload& up) {
    up.running = true;
    up.done.emplace(client.get_executor(), std::chrono::steady_clock::time_point::max());
    auto finished = [&up](const std::exception_ptr&) {
      up.running = false;
      up.done->cancel();
    };
    asio::co_spawn(client.get_executor(),
                   send_body(client, client_buffer, parser, upstream, relay, up), finished);
  }

  // Ends an upload still under way and waits for it: it holds references into forward().
  awaitable<void> end_upload(ClientStream& client, beast::tcp_stream* upstream, Upload& up) {
    if (!up.running) co_return;
    up.stopped = true;
    if (upstream) upstream->close();
    error_code ignored;
    client.socket().cancel(ignored);
    if (up.running) co_await up.done->async_wait(kAwait);
  }

  // Relays one request to the instance (claimed: counted in flight there) and its response
  // back. Returns false when the client connection must close.
  awaitable<bool> forward(ClientStream& client, beast::flat_buffer& client_buffer,
                          http::request_parser<http::buffer_body>& parser, Connection& conn,
                          const RevisionRoute& revision, const Endpoint& endpoint,
                          bool& keep_alive) {
    Active active(active_);

    auto& req = parser.get();
    bool has_body = !parser.is_done();
    if (req[http::field::expect] == "100-continue" ||
        beast::iequals(req[http::field::expect], "100-continue")) {
      // Answer it here, as nginx does, and stream the body on.
      req.erase(http::field::expect);
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      client.next_layer().expires_after(options_.header_timeout);
      auto [ec, n] = co_await asio::async_write(client, asio::buffer(kContinue), kAwait);
      if (ec) co_return false;
    }
    if (has_body && !conn.upload) conn.upload = std::make_unique<std::array<char, kRelayBuffer>>();

    Upload up;
    std::unique_ptr<beast::tcp_stream> upstream;
    bool upstream_keep = false;
    bool ok = co_await exchange(client, client_buffer, parser, conn, revision, endpoint,
                                keep_alive, up, upstream, upstream_keep);
    // The answer is complete (or abandoned) while the body may still be on its way: the client
    // connection cannot carry another request then.
    if (up.running) keep_alive = false;
    co_await end_upload(client, upstream.get(), up);
    conn.body_broken = up.client_ec && !up.stopped && up.client_ec != http::error::body_limit;
    if (has_body && !(up.sent && parser.is_done())) {
      keep_alive = false;
      upstream_keep = false;
    }
    if (upstream && upstream_keep) {
      upstream->expires_never();
      put_pooled(endpoint.instance_id, std::move(upstream));
    }
    co_return ok && keep_alive;
  }

  // The instance agreed to switch protocols: its 101 goes to the client, and from then on the
  // connection is a tunnel (tunnel.cpp) that counts as one request in flight until it closes.
  // It ends the client's connection either way.
  awaitable<bool> switch_protocols(ClientStream& client, beast::flat_buffer& client_buffer,
                                   Connection& conn, const RevisionRoute& revision,
                                   std::chrono::steady_clock::time_point deadline,
                                   beast::tcp_stream& upstream, beast::flat_buffer& ubuf,
                                   http::response<http::buffer_body>& response, bool& keep_alive) {
    keep_alive = false;
    std::string protocol(response[http::field::upgrade]);
    http_framing::strip_hop_by_hop(response);
    response.version(11);
    response.set(http::field::connection, "upgrade");
    if (!protocol.empty()) response.set(http::field::upgrade, protocol);
    http_framing::serialize_head(response, conn.head);
    client.next_layer().expires_after(options_.idle_timeout);
    auto [ec, n] = co_await asio::async_write(client, asio::buffer(conn.head), kAwait);
    if (ec) co_return false;
    client.next_layer().expires_never();
    upstream.expires_never();
    // As in Knative, timeoutSeconds (from the request) bounds the upgraded connection too, and
    // idleTimeoutSeconds the time without a byte either way.
    std::chrono::steady_clock::duration idle = std::chrono::seconds(revision.idle_timeout_seconds);
    TunnelResult moved =
        co_await relay_upgraded(client, client_buffer, upstream.socket(), ubuf, deadline, idle);
    conn.bytes += moved.to_client;
    co_return false;
  }

  awaitable<bool> exchange(ClientStream& client, beast::flat_buffer& client_buffer,
                           http::request_parser<http::buffer_body>& parser, Connection& conn,
                           const RevisionRoute& revision, const Endpoint& endpoint,
                           bool& keep_alive, Upload& up,
                           std::unique_ptr<beast::tcp_stream>& upstream, bool& upstream_keep) {
    auto& req = parser.get();
    unsigned client_version = req.version();
    bool head = req.method() == http::verb::head;
    bool has_body = !parser.is_done();
    // An upgrade (WebSocket…) is passed on for a request without a body, from HTTP/1.1.
    std::string upgrade = client_version == 11 && !has_body && !head
                              ? http_framing::upgrade_protocol(req)
                              : std::string();
    http_framing::strip_hop_by_hop(req);
    req.version(11);
    req.keep_alive(true);
    if (!upgrade.empty()) {
      req.set(http::field::connection, "upgrade");
      req.set(http::field::upgrade, upgrade);
    }
    if (!conn.peer.empty()) {
      auto xff = req["X-Forwarded-For"];
      if (xff.empty())
        req.set("X-Forwarded-For", conn.peer);
      else
        req.set("X-Forwarded-For", std::string(xff) + ", " + conn.peer);
    }
    req.set("X-Forwarded-Proto", client.secure() ? "https" : "http");

    // Knative's bounds: the whole exchange within timeoutSeconds, the answer's head within
    // responseStartTimeoutSeconds, and no gap in the answer longer than idleTimeoutSeconds.
    const Bounds bounds(revision);
    const auto timeout = bounds.timeout, start_timeout = bounds.start;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    tcp::endpoint upstream_ep(endpoint.address != 0 ? asio::ip::address_v4(endpoint.address)
                                                    : asio::ip::address_v4::loopback(),
                              endpoint.port);

    bool reused = false;
    beast::flat_buffer ubuf;
    std::optional<http::response_parser<http::buffer_body>> res;
    char* relay = conn.relay();
    constexpr std::size_t kRelay = kRelayBuffer;

    for (int attempt = 0; attempt < 2; ++attempt) {
      upstream = take_pooled(endpoint.instance_id);
      reused = upstream != nullptr;
      if (!upstream) {
        upstream = std::make_unique<beast::tcp_stream>(io_);
        upstream->expires_after(options_.connect_timeout);
        auto [ec] = co_await upstream->async_connect(upstream_ep, kAwait);
        if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
          // Our own descriptors ran out, not the instance's fault: 503, retry soon.
          keep_alive = false;
          std::string body = fmt::format(
              "elafrosd is out of open files ({}) and cannot reach revision \"{}\"; retry "
              "shortly (an operator raises LimitNOFILE or ulimit -n)",
              ec.message(), revision.name);
          conn.status = static_cast<int>(http::status::service_unavailable);
          co_await send_simple(client, client_version, http::status::service_unavailable,
                               std::move(body), keep_alive, true);
          co_return keep_alive;
        }
        if (ec) {
          keep_alive = keep_alive && !has_body;
          std::string body =
              fmt::format("instance {} of revision \"{}\" refused the connection: {}",
                          endpoint.instance_id, revision.name, ec.message());
          conn.status = static_cast<int>(http::status::bad_gateway);
          co_await send_simple(client, client_version, http::status::bad_gateway, std::move(body),
                               keep_alive);
          co_return keep_alive;
        }
        error_code ignored;
        upstream->socket().set_option(tcp::no_delay(true), ignored);
      }
      deadline = std::chrono::steady_clock::now() + timeout;
      upstream->expires_after(start_timeout);
      error_code ec;
      if (!has_body) {
        // The common case: a header alone, written as one contiguous buffer.
        http_framing::serialize_head(req, conn.head);
        std::tie(ec, std::ignore) =
            co_await asio::async_write(*upstream, asio::buffer(conn.head), kAwait);
      } else {
        start_upload(client, client_buffer, parser, *upstream, conn.upload->data(), up);
      }
      if (!ec) {
        res.emplace();
        res->body_limit(boost::none);
        if (head) res->skip(true);
        std::tie(ec, std::ignore) = co_await http::async_read_header(*upstream, ubuf, *res, kAwait);
      }
      if (!ec) break;
      if (has_body) {
        // No answer: if the body's reading failed, that is what the client hears about.
        co_await end_upload(client, upstream.get(), up);
        if (up.client_ec && !up.stopped) {
          keep_alive = false;
          if (up.answer != http::status{}) {
            conn.status = static_cast<int>(up.answer);
            std::string body = std::move(up.message);
            co_await send_simple(client, client_version, up.answer, std::move(body), false);
          }
          co_return false;
        }
      }
      // A pooled connection the instance already closed: retry once on a fresh one, if the
      // request can be sent again.
      if (reused && !has_body && attempt == 0 &&
          (ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe)) {
        upstream.reset();
        ubuf.clear();
        continue;
      }
      http::status status =
          ec == beast::error::timeout ? http::status::gateway_timeout : http::status::bad_gateway;
      keep_alive = keep_alive && parser.is_done();
      std::string body;
      if (ec == beast::error::timeout && start_timeout < timeout)
        body = fmt::format(
            "revision \"{}\" did not start its answer within {} s (its "
            "responseStartTimeoutSeconds)",
            revision.name, revision.response_start_timeout_seconds);
      else if (ec == beast::error::timeout)
        body = fmt::format("revision \"{}\" did not answer within {} s (its timeoutSeconds)",
                           revision.name, revision.timeout_seconds);
      else
        body = fmt::format("instance {} of revision \"{}\" failed: {}", endpoint.instance_id,
                           revision.name, ec.message());
      conn.status = static_cast<int>(status);
      co_await send_simple(client, client_version, status, std::move(body), keep_alive);
      co_return keep_alive;
    }

    // Response: header and body, streamed back.
    auto& response = res->get();
    conn.status = static_cast<int>(response.result_int());
    if (!upgrade.empty() && response.result() == http::status::switching_protocols)
      co_return co_await switch_protocols(client, client_buffer, conn, revision, deadline,
                                          *upstream, ubuf, response, keep_alive);
    upstream_keep = response.keep_alive();
    http_framing::strip_hop_by_hop(response);
    bool delimited = head || response.has_content_length() || response.chunked() ||
                     response.result_int() / 100 == 1 ||
                     response.result() == http::status::no_content ||
                     response.result() == http::status::not_modified;
    if (!delimited) {
      // The instance ends the body by closing; re-frame it for the client.
      if (client_version == 11)
        response.chunked(true);
      else
        keep_alive = false;
      upstream_keep = false;
    }
    response.version(client_version);
    response.keep_alive(keep_alive);
    error_code ec;
    // The common case: a delimited body already read with the header. Write header and body
    // in one gather write, without Beast's per-field buffer sequence.
    bool bodiless = head || response.result_int() / 100 == 1 ||
                    response.result() == http::status::no_content ||
                    response.result() == http::status::not_modified;
    auto length =
        response.has_content_length() && !response.chunked() ? res->content_length() : boost::none;
    if (delimited && !response.chunked() && (bodiless || (length && ubuf.size() >= *length))) {
      std::size_t n = bodiless ? 0 : static_cast<std::size_t>(*length);
      http_framing::serialize_head(response, conn.head);
      std::array<asio::const_buffer, 2> out{asio::buffer(conn.head),
                                            asio::buffer(ubuf.data().data(), n)};
      client.next_layer().expires_after(options_.idle_timeout);
      std::tie(ec, std::ignore) = co_await asio::async_write(client, out, kAwait);
      upstream_keep = upstream_keep && !ec && ubuf.size() == n;
      if (ec) co_return false;
      conn.bytes += n;
      co_return keep_alive;
    }
    http::response_serializer<http::buffer_body> rs{response};
    if (ubuf.size() == 0 && !res->is_done()) {
      // Nothing of the body has come yet (a stream of events, a slow answer): the head goes
      // out now, so that the client sees the answer start when the app started it.
      client.next_layer().expires_after(options_.idle_timeout);
      std::tie(ec, std::ignore) = co_await http::async_write_header(client, rs, kAwait);
      if (ec) {
        upstream_keep = false;
        co_return false;
      }
    }
    do {
      if (!res->is_done()) {
        response.body().data = relay;
        response.body().size = kRelay;
        if (revision.idle_timeout_seconds > 0)
          upstream->expires_at(std::min<std::chrono::steady_clock::time_point>(
              deadline, std::chrono::steady_clock::now() +
                            std::chrono::seconds(revision.idle_timeout_seconds)));
        else
          upstream->expires_at(deadline);
        std::tie(ec, std::ignore) = co_await http::async_read_some(*upstream, ubuf, *res, kAwait);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          upstream_keep = false;
          co_return false;  // headers may be out already: the only honest thing is to close
        }
        response.body().size = kRelay - response.body().size;
        response.body().data = relay;
        response.body().more = !res->is_done();
        // A read that parsed only framing (a chunk's size line): nothing to pass on yet, and an
        // empty buffer would make the serializer end the chunked body.
        if (response.body().size == 0 && response.body().more) continue;
        if (response.body().size == 0) response.body().data = nullptr;  // the end, no data
      } else {
        response.body().data = nullptr;
        response.body().size = 0;
        response.body().more = false;
      }
      client.next_layer().expires_after(options_.idle_timeout);
      std::size_t chunk = response.body().size;
      std::tie(ec, std::ignore) = co_await http::async_write(client, rs, kAwait);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        upstream_keep = false;
        co_return false;
      }
      conn.bytes += chunk;
    } while (!rs.is_done());

    upstream_keep = upstream_keep && ubuf.size() == 0 && res->is_done();
    co_return keep_alive;
  }

  // --- HTTP/2 from clients ----------------------------------------------------------------

  // The rest of an h2c preface ("SM", an empty line) follows its "PRI * HTTP/2.0" line.
  awaitable<void> h2_after_preface(ClientStream& client, beast::flat_buffer& buffer,
                                   const std::string& peer, bool from_instance) {
    constexpr std::string_view kRest = "SM\r\n\r\n";
    client.next_layer().expires_after(options_.header_timeout);
    while (buffer.size() < kRest.size()) {
      auto [ec, n] = co_await client.async_read_some(buffer.prepare(kRest.size()), kAwait);
      if (ec) co_return;
      buffer.commit(n);
    }
    client.next_layer().expires_never();
    std::string_view got(static_cast<const char*>(buffer.data().data()), buffer.size());
    if (got.substr(0, kRest.size()) != kRest) {
      std::string body = "bad request: an HTTP/2 preface that does not end in SM (RFC 9113 §3.4)";
      co_await send_simple(client, 11, http::status::bad_request, std::move(body), false);
      co_return;
    }
    std::string preread(kHttp2Preface);
    preread.append(got.substr(kRest.size()));
    co_await serve_h2(client, std::move(preread), peer, from_instance);
  }

  awaitable<void> serve_h2(ClientStream& client, std::string preread, const std::string& peer,
                           bool from_instance) {
    Http2Options o;
    o.header_limit = options_.header_limit;
    o.idle_timeout = options_.idle_timeout;
    bool secure = client.secure();
    auto self = shared_from_this();
    auto handler = [self, peer, from_instance, secure](std::shared_ptr<Http2Stream> stream) {
      return self->h2_request(self, std::move(stream), peer, from_instance, secure);
    };
    co_await serve_http2(client, std::move(preread), o, std::move(handler));
  }

  static void h2_text(Http2Stream& s, int status, const std::string& text) {
    std::string body = text + "\n";
    Http2Fields fields{{"server", "elafros"},
                       {"content-type", "text/plain; charset=utf-8"},
                       {"content-length", std::to_string(body.size())}};
    if (status == 503) fields.emplace_back("retry-after", "1");
    if (!s.respond(status, fields, false)) return;
    s.put(body);
    s.finish();
  }

  // Ends an upload still under way and waits for it: it holds references into h2_to_http1.
  awaitable<void> end_h2_upload(beast::tcp_stream* upstream, Upload& up) {
    if (!up.running) co_return;
    up.stopped = true;
    if (upstream) upstream->close();
    if (up.running) co_await up.done->async_wait(kAwait);
  }

  // One HTTP/2 request: routed as an HTTP/1.1 one is (session()), then relayed to the instance.
  awaitable<void> h2_request(std::shared_ptr<Impl> /*keeps this alive*/,
                             std::shared_ptr<Http2Stream> stream, std::string peer,
                             bool from_instance, bool secure) {
    Http2Stream& s = *stream;
    std::string host = s.authority;
    for (const auto& [n, v] : s.headers)
      if (n == "host" && host.empty()) host = v;
    if (host.empty()) {
      h2_text(s, 400, "bad request: the :authority (or Host) is missing");
      co_return;
    }
    if (options_.ingress && is_ingress_host(host)) {
      h2_text(s, 505, "the brokers' ingress takes events over HTTP/1.1; send without HTTP/2");
      co_return;
    }
    if (from_instance && !options_.service_to_service) {
      h2_text(s, 403,
              fmt::format("instances may not call services through the proxy (\"{}\"): an "
                          "operator turns network-service-to-service on",
                          host));
      co_return;
    }
    RoutingTablePtr table = routes_.load();
    const ServiceRoute* route = table->find(host);
    if (!route) {
      h2_text(s, 404,
              fmt::format("no service serves host \"{}\" ('elafros service list' shows the URLs)",
                          host));
      co_return;
    }
    const RevisionRoute* revision = pick_revision(*route);
    if (!revision || !revision->stats) {
      h2_text(s, 503,
              fmt::format("service \"{}\" has no revision to serve it ('elafros service describe "
                          "{}' says why)",
                          route->service, route->service));
      co_return;
    }
    std::shared_ptr<RevisionStats> stats = revision->stats;
    Connection conn;
    conn.peer = peer;
    RequestAccounting accounting(*this, stats, conn);
    std::string traceparent;
    if (options_.tracer) {
      std::string from;
      for (const auto& [n, v] : s.headers)
        if (n == "traceparent") from = v;
      accounting.trace = options_.tracer->begin(from);
      traceparent = accounting.trace.traceparent;
    }
    const bool described = options_.access_log || accounting.trace.sampled;
    if (described) accounting.describe(s.method, host, s.path, *route, *revision);
    std::optional<InFlight> claimed;
    const Endpoint* endpoint = claim(*revision, claimed);
    if (!endpoint) {
      Activation got = co_await wait_for_instance(host, *revision, accounting, claimed);
      if (!got.endpoint) {
        conn.status = static_cast<int>(got.status);
        h2_text(s, conn.status, got.message);
        co_return;
      }
      table = std::move(got.table);
      revision = got.revision;
      endpoint = got.endpoint;
    }
    if (described) accounting.instance = endpoint->instance_id;
    burst_check(*revision);
    if (revision->h2c)
      co_await h2_to_h2c(s, conn, *revision, *endpoint, host, traceparent, secure);
    else
      co_await h2_to_http1(s, conn, *revision, *endpoint, host, traceparent, secure);
  }

  // --- HTTP/2 to instances (a port named h2c) -----------------------------------------------

  // A connection to the instance with room for one more stream: pooled, or new.
  awaitable<std::shared_ptr<Http2Upstream>> h2_upstream(const Endpoint& endpoint, error_code& ec) {
    auto& v = h2_pool_[endpoint.instance_id];
    v.erase(std::remove_if(v.begin(), v.end(), [](const auto& u) { return u->closed(); }), v.end());
    for (const auto& u : v)
      if (u->usable()) co_return u;
    tcp::endpoint to(endpoint.address != 0 ? asio::ip::address_v4(endpoint.address)
                                           : asio::ip::address_v4::loopback(),
                     endpoint.port);
    std::string id = endpoint.instance_id;
    auto u = co_await Http2Upstream::connect(io_.get_executor(), to, options_.connect_timeout, ec);
    if (u) h2_pool_[id].push_back(u);
    co_return u;
  }

  // The fields of a request for an instance over HTTP/2: the client's, less what belongs to
  // the hop (TE but "trailers", which gRPC needs), with X-Forwarded-* and the traceparent.
  static Http2Fields h2_request_fields(const Http2Fields& in, const std::string& peer,
                                       const std::string& traceparent, bool secure) {
    Http2Fields out;
    std::string xff;
    for (const auto& [n, v] : in) {
      if (n == "host" || n == "traceparent" || n == "connection" || n == "keep-alive" ||
          n == "transfer-encoding" || n == "upgrade" || n == "proxy-connection" || n == "expect" ||
          (n == "te" && v != "trailers"))
        continue;
      if (n == "x-forwarded-for") {
        xff = v;
        continue;
      }
      if (n == "x-forwarded-proto") continue;
      out.emplace_back(n, v);
    }
    if (!peer.empty()) out.emplace_back("x-forwarded-for", xff.empty() ? peer : xff + ", " + peer);
    out.emplace_back("x-forwarded-proto", secure ? "https" : "http");
    if (!traceparent.empty()) out.emplace_back("traceparent", traceparent);
    return out;
  }

  struct Pump {
    bool running = false;
    std::optional<asio::steady_timer> done;
  };

  void start_pump(Pump& p, awaitable<void> body) {
    p.running = true;
    p.done.emplace(io_, std::chrono::steady_clock::time_point::max());
    auto finished = [&p](const std::exception_ptr&) {
      p.running = false;
      p.done->cancel();
    };
    asio::co_spawn(io_, std::move(body), finished);
  }

  awaitable<void> wait_pump(Pump& p) {
    if (p.running) co_await p.done->async_wait(kAwait);
  }

  // A client's HTTP/2 request body to an instance's stream, trailers included.
  awaitable<void> h2_to_h2_body(Http2Stream& from, Http2Stream& to, char* relay) {
    for (;;) {
      Http2Stream::Read r = co_await from.read_body(relay, kRelayBuffer);
      if (r.gone) {
        to.reset();
        co_return;
      }
      if (r.n > 0 && !co_await to.write(std::string_view(relay, r.n))) co_return;
      if (r.end) {
        to.finish(from.trailers);
        co_return;
      }
    }
  }

  // The deadline of a response's next read: timeoutSeconds for the whole, idleTimeoutSeconds
  // between bytes.
  static std::chrono::steady_clock::time_point next_read_deadline(
      const RevisionRoute& revision, std::chrono::steady_clock::time_point deadline) {
    if (revision.idle_timeout_seconds <= 0) return deadline;
    return std::min<std::chrono::steady_clock::time_point>(
        deadline,
        std::chrono::steady_clock::now() + std::chrono::seconds(revision.idle_timeout_seconds));
  }

  // A client's HTTP/2 stream to an instance's (gRPC): headers, bodies both ways at once,
  // trailers, resets, each passed on.
  awaitable<void> h2_to_h2c(Http2Stream& s, Connection& conn, const RevisionRoute& revision,
                            const Endpoint& endpoint, const std::string& host,
                            const std::string& traceparent, bool secure) {
    Active active(active_);
    error_code ec;
    auto upstream = co_await h2_upstream(endpoint, ec);
    if (!upstream) {
      conn.status = 502;
      h2_text(s, 502,
              fmt::format("instance {} of revision \"{}\" refused the connection: {}",
                          endpoint.instance_id, revision.name, ec.message()));
      co_return;
    }
    Http2Fields fields = h2_request_fields(s.headers, conn.peer, traceparent, secure);
    auto up = upstream->request(s.method, host, s.path, fields, !s.body_expected);
    if (!up) {
      conn.status = 502;
      h2_text(s, 502,
              fmt::format("instance {} of revision \"{}\" took no new stream", endpoint.instance_id,
                          revision.name));
      co_return;
    }
    s.on_gone = [up] { up->reset(); };
    struct Forget {
      Http2Stream& s;
      ~Forget() { s.on_gone = nullptr; }
    } forget{s};
    const Bounds bounds(revision);
    const auto timeout = bounds.timeout, start_timeout = bounds.start;
    auto now = std::chrono::steady_clock::now();
    auto deadline = now + timeout;
    up->set_deadline(now + start_timeout);
    Pump pump;
    std::unique_ptr<std::array<char, kRelayBuffer>> upload;
    if (s.body_expected) {
      upload = std::make_unique<std::array<char, kRelayBuffer>>();
      start_pump(pump, h2_to_h2_body(s, *up, upload->data()));
    }
    bool headed = co_await up->wait_head();
    if (!headed) {
      up->reset();
      s.stop_reading();  // ends the pump
      co_await wait_pump(pump);
      if (s.gone() && !s.responded()) co_return;
      int status = up->timed_out() ? 504 : 502;
      conn.status = status;
      h2_text(s, status,
              up->timed_out()
                  ? fmt::format("revision \"{}\" did not start its answer within {} s",
                                revision.name, start_timeout.count())
                  : fmt::format("instance {} of revision \"{}\" reset the stream or closed",
                                endpoint.instance_id, revision.name));
      co_return;
    }
    conn.status = up->status;
    if (up->body_ended()) {
      // Trailers-only (gRPC's answer without a message): one HEADERS that ends the stream.
      Http2Fields all = up->headers;
      all.insert(all.end(), up->trailers.begin(), up->trailers.end());
      s.respond(up->status, all, true);
    } else if (s.respond(up->status, up->headers, false)) {
      char* relay = conn.relay();
      for (;;) {
        up->set_deadline(next_read_deadline(revision, deadline));
        Http2Stream::Read r = co_await up->read_body(relay, kRelayBuffer);
        if (r.gone) {
          conn.status = 0;  // cut short: counted as 502
          s.reset();
          break;
        }
        if (r.n > 0) {
          if (!co_await s.write(std::string_view(relay, r.n))) {
            up->reset();
            break;
          }
          conn.bytes += r.n;
        }
        if (r.end) {
          s.finish(up->trailers);
          break;
        }
      }
    }
    if (pump.running) {
      // The answer is complete while the client still sends: it is told to stop (NO_ERROR).
      s.reset(0);
      up->reset(0);
    }
    co_await wait_pump(pump);
  }

  // An HTTP/1.1 request's body (from Beast's parser) to an instance's HTTP/2 stream.
  awaitable<void> http1_to_h2_body(ClientStream& client, beast::flat_buffer& buffer,
                                   http::request_parser<http::buffer_body>& parser, Http2Stream& to,
                                   char* relay, error_code& broken) {
    auto& req = parser.get();
    while (!parser.is_done()) {
      req.body().data = relay;
      req.body().size = kRelayBuffer;
      client.next_layer().expires_after(options_.body_timeout);
      auto [ec, n] = co_await http::async_read(client, buffer, parser, kAwait);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        broken = ec;
        to.reset();
        co_return;
      }
      std::size_t got = kRelayBuffer - req.body().size;
      if (got > 0 && !co_await to.write(std::string_view(relay, got))) co_return;
    }
    to.finish();
  }

  // An HTTP/1.x client to an instance that speaks HTTP/2 (Knative's activator does this too):
  // the answer goes back chunked, its trailers in the last chunk.
  awaitable<bool> http1_to_h2c(ClientStream& client, beast::flat_buffer& client_buffer,
                               http::request_parser<http::buffer_body>& parser, Connection& conn,
                               const RevisionRoute& revision, const Endpoint& endpoint,
                               bool& keep_alive) {
    Active active(active_);
    auto& req = parser.get();
    unsigned version = req.version();
    bool has_body = !parser.is_done();
    bool head = req.method() == http::verb::head;
    std::string host(req[http::field::host]);
    std::string method(req.method_string());
    std::string path(req.target());
    std::string traceparent(req["traceparent"]);
    if (req[http::field::expect].size() > 0) {
      req.erase(http::field::expect);
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      client.next_layer().expires_after(options_.header_timeout);
      auto [wec, wn] = co_await asio::async_write(client, asio::buffer(kContinue), kAwait);
      if (wec) co_return false;
    }
    // TE is for the hop, but "trailers" in it says the client reads them: gRPC insists.
    bool trailers = req[http::field::te].find("trailers") != std::string_view::npos;
    http_framing::strip_hop_by_hop(req);
    Http2Fields in;
    if (trailers) in.emplace_back("te", "trailers");
    for (const auto& f : req) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      in.emplace_back(std::move(name), std::string(f.value()));
    }
    Http2Fields fields = h2_request_fields(in, conn.peer, traceparent, client.secure());
    error_code ec;
    auto upstream = co_await h2_upstream(endpoint, ec);
    std::shared_ptr<Http2Stream> up;
    if (upstream) up = upstream->request(method, host, path, fields, !has_body);
    if (!up) {
      keep_alive = keep_alive && !has_body;
      conn.status = 502;
      std::string body =
          fmt::format("instance {} of revision \"{}\" refused the connection: {}",
                      endpoint.instance_id, revision.name, ec ? ec.message() : "no stream");
      co_await send_simple(client, version, http::status::bad_gateway, std::move(body), keep_alive);
      co_return keep_alive;
    }
    const Bounds bounds(revision);
    const auto timeout = bounds.timeout, start_timeout = bounds.start;
    auto now = std::chrono::steady_clock::now();
    auto deadline = now + timeout;
    up->set_deadline(now + start_timeout);
    Pump pump;
    error_code broken;  // reading the client's body failed
    if (has_body) {
      if (!conn.upload) conn.upload = std::make_unique<std::array<char, kRelayBuffer>>();
      start_pump(pump,
                 http1_to_h2_body(client, client_buffer, parser, *up, conn.upload->data(), broken));
    }
    bool headed = co_await up->wait_head();
    if (!headed) {
      up->reset();
      error_code ignored;
      if (pump.running) client.socket().cancel(ignored);
      co_await wait_pump(pump);
      keep_alive = false;
      if (broken) {
        // The body failed (over the limit, a malformed chunk): that is what the client hears.
        http::status answer{};
        std::string why;
        body_answer(broken, answer, why);
        if (answer != http::status{}) {
          conn.status = static_cast<int>(answer);
          co_await send_simple(client, version, answer, std::move(why), false);
        }
        co_return false;
      }
      int status = up->timed_out() ? 504 : 502;
      conn.status = status;
      std::string body =
          up->timed_out() ? fmt::format("revision \"{}\" did not start its answer within {} s",
                                        revision.name, start_timeout.count())
                          : fmt::format("instance {} of revision \"{}\" reset the stream or closed",
                                        endpoint.instance_id, revision.name);
      co_await send_simple(client, version, static_cast<http::status>(status), std::move(body),
                           false);
      co_return false;
    }
    conn.status = up->status;
    http::response<http::empty_body> res{static_cast<http::status>(up->status), version};
    bool has_length = false;
    for (const auto& [n, v] : up->headers) {
      if (n == "content-length") has_length = true;
      res.insert(n, v);
    }
    bool bodiless = head || up->status == 204 || up->status == 304;
    bool chunked = !has_length && !bodiless && version == 11;
    if (!has_length && !bodiless && version == 10) keep_alive = false;
    if (chunked) res.set(http::field::transfer_encoding, "chunked");
    res.keep_alive(keep_alive);
    http_framing::serialize_head(res, conn.head);
    client.next_layer().expires_after(options_.idle_timeout);
    std::tie(ec, std::ignore) = co_await asio::async_write(client, asio::buffer(conn.head), kAwait);
    bool ok = !ec;
    char* relay = conn.relay();
    while (ok) {
      up->set_deadline(next_read_deadline(revision, deadline));
      Http2Stream::Read r = co_await up->read_body(relay, kRelayBuffer);
      if (r.gone) {
        ok = false;
        conn.status = 0;
        break;
      }
      std::string frame, last;
      if (chunked && r.n > 0) frame = fmt::format("{:x}\r\n", r.n);
      if (chunked && r.end) {
        last = r.n > 0 ? "\r\n0\r\n" : "0\r\n";
        for (const auto& [n, v] : up->trailers) last += n + ": " + v + "\r\n";
        last += "\r\n";
      } else if (chunked && r.n > 0) {
        last = "\r\n";
      }
      std::array<asio::const_buffer, 3> out{asio::buffer(frame), asio::buffer(relay, r.n),
                                            asio::buffer(last)};
      client.next_layer().expires_after(options_.idle_timeout);
      std::tie(ec, std::ignore) = co_await asio::async_write(client, out, kAwait);
      if (ec) {
        ok = false;
        up->reset();
        break;
      }
      conn.bytes += r.n;
      if (r.end) break;
    }
    if (pump.running) {
      up->reset(0);
      error_code ignored;
      client.socket().cancel(ignored);
      keep_alive = false;
    }
    co_await wait_pump(pump);
    if (broken || (has_body && !parser.is_done())) keep_alive = false;
    co_return ok && keep_alive;
  }

  // The request body of an HTTP/2 stream, to an instance over HTTP/1.1 (chunked unless the
  // client gave its length). Runs beside h2_to_http1's read of the answer, as send_body does.
  awaitable<void> h2_upload(Http2Stream& s, beast::tcp_stream& upstream, bool chunked, char* relay,
                            Upload& up) {
    for (;;) {
      Http2Stream::Read r = co_await s.read_body(relay, kRelayBuffer);
      if (r.gone) {
        up.client_ec = asio::error::connection_reset;
        upstream.close();
        co_return;
      }
      std::string frame;
      std::array<asio::const_buffer, 3> out;
      std::size_t parts = 0;
      if (chunked && r.n > 0) frame = fmt::format("{:x}\r\n", r.n);
      if (!frame.empty()) out[parts++] = asio::buffer(frame);
      if (r.n > 0) out[parts++] = asio::buffer(relay, r.n);
      static constexpr std::string_view kCrlf = "\r\n", kLast = "\r\n0\r\n\r\n",
                                        kEmptyLast = "0\r\n\r\n";
      if (chunked && r.n > 0) out[parts++] = asio::buffer(r.end ? kLast : kCrlf);
      if (chunked && r.n == 0 && r.end) out[parts++] = asio::buffer(kEmptyLast);
      if (parts > 0) {
        std::span<asio::const_buffer> sequence(out.data(), parts);
        auto [ec, n] = co_await asio::async_write(upstream, sequence, kAwait);
        if (ec) co_return;
      }
      if (r.end) {
        up.sent = true;
        co_return;
      }
    }
  }

  awaitable<void> h2_to_http1(Http2Stream& s, Connection& conn, const RevisionRoute& revision,
                              const Endpoint& endpoint, const std::string& host,
                              const std::string& traceparent, bool secure) {
    Active active(active_);
    http::request<http::empty_body> req;
    req.method_string(s.method);
    req.target(s.path);
    req.version(11);
    req.set(http::field::host, host);
    std::string cookies;
    bool has_length = false;
    for (const auto& [n, v] : s.headers) {
      // RFC 9113 §8.2.2 keeps connection-specific fields out; TE (trailers) and Expect are for
      // this hop; cookies may come split (§8.2.3).
      if (n == "host" || n == "te" || n == "expect" || n == "traceparent") continue;
      if (n == "cookie") {
        cookies += (cookies.empty() ? "" : "; ") + v;
        continue;
      }
      if (n == "content-length") has_length = true;
      req.insert(n, v);
    }
    if (!cookies.empty()) req.set(http::field::cookie, cookies);
    if (!traceparent.empty()) req.set("traceparent", traceparent);
    if (!conn.peer.empty()) {
      auto xff = req["X-Forwarded-For"];
      req.set("X-Forwarded-For", xff.empty() ? conn.peer : std::string(xff) + ", " + conn.peer);
    }
    req.set("X-Forwarded-Proto", secure ? "https" : "http");
    bool chunked = s.body_expected && !has_length;
    if (chunked) req.set(http::field::transfer_encoding, "chunked");
    bool head = s.method == "HEAD";
    http_framing::serialize_head(req, conn.head);

    const Bounds bounds(revision);
    const auto timeout = bounds.timeout, start_timeout = bounds.start;
    tcp::endpoint upstream_ep(endpoint.address != 0 ? asio::ip::address_v4(endpoint.address)
                                                    : asio::ip::address_v4::loopback(),
                              endpoint.port);
    std::unique_ptr<beast::tcp_stream> upstream;
    // The stream going away closes the instance's connection: every wait below ends.
    beast::tcp_stream* live = nullptr;
    s.on_gone = [&live] {
      if (live) live->close();
    };
    struct Forget {
      Http2Stream& s;
      ~Forget() { s.on_gone = nullptr; }
    } forget{s};
    Upload up;
    beast::flat_buffer ubuf;
    std::optional<http::response_parser<http::buffer_body>> res;
    std::unique_ptr<std::array<char, kRelayBuffer>> upload_buffer;
    bool reused = false;
    error_code ec;
    for (int attempt = 0; attempt < 2; ++attempt) {
      upstream = take_pooled(endpoint.instance_id);
      reused = upstream != nullptr;
      live = upstream.get();
      if (!upstream) {
        upstream = std::make_unique<beast::tcp_stream>(io_);
        live = upstream.get();
        upstream->expires_after(options_.connect_timeout);
        std::tie(ec) = co_await upstream->async_connect(upstream_ep, kAwait);
        if (ec) {
          conn.status = 502;
          h2_text(s, 502,
                  fmt::format("instance {} of revision \"{}\" refused the connection: {}",
                              endpoint.instance_id, revision.name, ec.message()));
          co_return;
        }
        error_code ignored;
        upstream->socket().set_option(tcp::no_delay(true), ignored);
      }
      upstream->expires_after(start_timeout);
      std::tie(ec, std::ignore) =
          co_await asio::async_write(*upstream, asio::buffer(conn.head), kAwait);
      if (!ec && s.body_expected) {
        if (!upload_buffer) upload_buffer = std::make_unique<std::array<char, kRelayBuffer>>();
        up.running = true;
        up.done.emplace(io_, std::chrono::steady_clock::time_point::max());
        auto finished = [&up](const std::exception_ptr&) {
          up.running = false;
          up.done->cancel();
        };
        asio::co_spawn(io_, h2_upload(s, *upstream, chunked, upload_buffer->data(), up), finished);
      }
      if (!ec) {
        res.emplace();
        res->body_limit(boost::none);
        if (head) res->skip(true);
        std::tie(ec, std::ignore) = co_await http::async_read_header(*upstream, ubuf, *res, kAwait);
      }
      if (!ec) break;
      if (reused && !s.body_expected && attempt == 0 && !s.gone() &&
          (ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe)) {
        upstream.reset();
        live = nullptr;
        ubuf.clear();
        continue;
      }
      break;
    }
    if (ec) {
      co_await end_h2_upload(upstream.get(), up);
      if (s.gone()) co_return;
      int status = ec == beast::error::timeout ? 504 : 502;
      conn.status = status;
      h2_text(s, status,
              ec == beast::error::timeout
                  ? fmt::format("revision \"{}\" did not answer within {} s", revision.name,
                                start_timeout.count())
                  : fmt::format("instance {} of revision \"{}\" failed: {}", endpoint.instance_id,
                                revision.name, ec.message()));
      co_return;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto& response = res->get();
    conn.status = static_cast<int>(response.result_int());
    // A body that ends with the connection leaves nothing to pool.
    bool upstream_keep = response.keep_alive() &&
                         (head || response.has_content_length() || response.chunked() ||
                          conn.status / 100 == 1 || conn.status == 204 || conn.status == 304);
    http_framing::strip_hop_by_hop(response);
    Http2Fields fields;
    for (const auto& f : response) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (name == "transfer-encoding") continue;
      fields.emplace_back(std::move(name), std::string(f.value()));
    }
    bool ended = res->is_done();
    auto length = response.has_content_length() && !response.chunked() && !head
                      ? res->content_length()
                      : boost::none;
    if (!ended && length && ubuf.size() >= *length) {
      // The common case: the whole body came with the head. No relay buffer, one DATA frame.
      std::size_t n = static_cast<std::size_t>(*length);
      if (s.respond(conn.status, fields, false)) {
        s.put(std::string_view(static_cast<const char*>(ubuf.data().data()), n));
        s.finish();
        conn.bytes += n;
      }
      ubuf.consume(n);
      co_await end_h2_upload(upstream.get(), up);
      if (!up.sent && s.body_expected) upstream_keep = false;
      if (upstream_keep && ubuf.size() == 0) {
        upstream->expires_never();
        live = nullptr;
        put_pooled(endpoint.instance_id, std::move(upstream));
      }
      co_return;
    }
    if (!s.respond(conn.status, fields, ended)) {
      co_await end_h2_upload(upstream.get(), up);
      co_return;
    }
    char* relay = conn.relay();
    while (!res->is_done()) {
      response.body().data = relay;
      response.body().size = kRelayBuffer;
      auto until = deadline;
      if (revision.idle_timeout_seconds > 0)
        until = std::min<std::chrono::steady_clock::time_point>(
            deadline,
            std::chrono::steady_clock::now() + std::chrono::seconds(revision.idle_timeout_seconds));
      upstream->expires_at(until);
      std::tie(ec, std::ignore) = co_await http::async_read_some(*upstream, ubuf, *res, kAwait);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) break;
      std::size_t n = kRelayBuffer - response.body().size;
      if (n == 0) continue;
      if (!co_await s.write(std::string_view(relay, n))) {
        ec = asio::error::connection_reset;
        break;
      }
      conn.bytes += n;
    }
    if (ec) {
      upstream_keep = false;
      conn.status = 0;  // cut short: counted as 502
      s.reset();
    } else {
      s.finish();
    }
    co_await end_h2_upload(upstream.get(), up);
    if (!up.sent && s.body_expected) upstream_keep = false;
    if (upstream && upstream_keep && ubuf.size() == 0 && !ec) {
      upstream->expires_never();
      live = nullptr;
      put_pooled(endpoint.instance_id, std::move(upstream));
    }
  }

  asio::io_context& io_;
  const RoutingSnapshot& routes_;
  ProxyOptions options_;
  tcp::acceptor acceptor_;
  tcp::acceptor tls_acceptor_;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  int shed_above_ = std::numeric_limits<int>::max();         // descriptor numbers that get a 503
  std::size_t connections_ = 0;                              // client sessions now (proxy thread)
  std::unordered_map<std::string, std::size_t> per_client_;  // sessions per client address
  bool stopping_ = false;
  std::atomic<std::int64_t> active_{0};
  std::unordered_map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>> pool_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Http2Upstream>>> h2_pool_;
  RoutingTablePtr pruned_for_;
  std::mt19937 rng_{std::random_device{}()};
  std::unordered_map<const RevisionStats*, std::deque<Waiter*>> queues_;  // the activator
  std::unordered_map<const RevisionStats*, std::chrono::steady_clock::time_point> last_poke_;
  DemandCallback on_demand_;
  std::vector<int> percents_;
  std::size_t next_ = 0;
};

ProxyServer::ProxyServer(asio::io_context& io, const RoutingSnapshot& routes, ProxyOptions options)
    : impl_(std::make_shared<Impl>(io, routes, std::move(options))) {}
ProxyServer::~ProxyServer() = default;
void ProxyServer::set_demand_callback(DemandCallback callback) {
  impl_->on_demand_ = std::move(callback);
}
void ProxyServer::routes_changed() {
  asio::post(impl_->io_, [impl = impl_] { impl->wake_all(); });
}
Result<void> ProxyServer::listen() {
  return impl_->listen();
}
void ProxyServer::start() {
  impl_->start();
}
void ProxyServer::stop_accepting() {
  impl_->stop_accepting();
}
void ProxyServer::set_instance_network(std::uint32_t subnet, std::uint32_t mask,
                                       bool service_to_service) {
  impl_->options_.instance_subnet = subnet;
  impl_->options_.instance_mask = mask;
  impl_->options_.service_to_service = service_to_service;
}
std::uint16_t ProxyServer::port() const {
  return impl_->port_;
}
std::uint16_t ProxyServer::tls_port() const {
  return impl_->tls_port_;
}
std::int64_t ProxyServer::active_requests() const {
  return impl_->active_.load();
}

}  // namespace elafros
