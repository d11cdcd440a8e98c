#include "api_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "api/metrics.hpp"
#include "elafros/autoscaling.hpp"
#include "elafros/naming.hpp"
#include "elafros/registry_reference.hpp"
#include "elafros/resource_json.hpp"
#include "elafros/traffic.hpp"
#include "image_store.hpp"
#include "log_collector.hpp"
#include "offload.hpp"
#include "reconciler.hpp"
#include "registry_client.hpp"
#include "registry_credentials.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::awaitable;
using asio::local::stream_protocol;

namespace elafros {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kBodyLimit = 4 << 20;
constexpr std::string_view kServing = "/apis/serving.knative.dev/v1/namespaces/";

struct Reply {
  http::status status = http::status::ok;
  json::value body;
};

Reply error_reply(const Error& e) {
  return {
      static_cast<http::status>(http_status(e.code)),
      json::object{{"error", json::object{{"code", to_string(e.code)}, {"message", e.message}}}}};
}

std::string new_uid() {
  std::random_device rd;
  std::uniform_int_distribution<unsigned> d(0, 15);
  std::string s = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx";
  for (char& c : s) {
    if (c == 'x')
      c = "0123456789abcdef"[d(rd)];
    else if (c == 'y')
      c = "89ab"[d(rd) % 4];
  }
  return s;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) parts.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

std::string query_param(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    auto eq = kv.find('=');
    if (kv.substr(0, eq) == name)
      return std::string(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return {};
}

// Percent-decodes a path segment ("%2F" → "/"); nullopt when malformed.
std::optional<std::string> percent_decode(std::string_view in) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

json::object progress_json(const PullProgress& p) {
  const char* phase = p.phase == PullProgress::Phase::kResolved      ? "resolved"
                      : p.phase == PullProgress::Phase::kExists      ? "exists"
                      : p.phase == PullProgress::Phase::kDownloading ? "downloading"
                                                                     : "done";
  return json::object{{"phase", phase},
                      {"digest", p.digest},
                      {"kind", p.kind},
                      {"current", p.done},
                      {"total", p.total}};
}

bool looks_like_transport(const std::string& ref) {
  auto colon = ref.find(':');
  if (colon == std::string::npos) return false;
  std::string t = ref.substr(0, colon);
  return t == "oci" || t == "oci-archive" || t == "docker-archive" || t == "docker" || t == "dir" ||
         t == "containers-storage";
}

}  // namespace

// An import or pull in progress. Requests for the same reference while it runs wait for it
// instead of starting another (pulls are coalesced); each follows its progress events.
struct ImportJob {
  explicit ImportJob(const asio::any_io_executor& ex)
      : wake(ex, std::chrono::steady_clock::time_point::max()) {}
  std::vector<std::string> events;  // progress, as JSON lines, in order
  std::optional<Result<ImageRecord>> result;
  asio::steady_timer wake;  // cancelled on every event and at the end, waking every follower
};

// A logs request in progress: the backlog, then live lines, posted from the collector's thread.
struct LogFollow {
  explicit LogFollow(const asio::any_io_executor& ex)
      : wake(ex, std::chrono::steady_clock::time_point::max()) {}
  bool opened = false;
  bool closed = false;  // the client went away
  bool ended = false;   // the service was deleted: the follow is over
  std::string error;
  std::uint64_t id = 0;
  std::vector<LogLine> lines;
  asio::steady_timer wake;  // cancelled whenever one of the above changes
  char probe[64];
};

class ApiServer::Impl : public std::enable_shared_from_this<ApiServer::Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, asio::thread_pool& blocking,
       Store& store, ImageStore& images, RegistryClient& registry, CredentialStore& credentials,
       LogCollector& logs, Reconciler& reconciler, ApiInfo info)
      : control_(control),
        store_thread_(store_thread),
        blocking_(blocking),
        store_(store),
        images_(images),
        registry_(registry),
        credentials_(credentials),
        logs_(logs),
        reconciler_(reconciler),
        info_(std::move(info)),
        acceptor_(control),
        metrics_acceptor_(control),
        started_(std::chrono::steady_clock::now()) {}

  Result<void> listen(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code fec;
    fs::path p(path);
    if (p.has_parent_path()) fs::create_directories(p.parent_path(), fec);
    if (fs::is_socket(p, fec))
      fs::remove(p, fec);  // stale: the data-dir lock says no one else owns it
    else if (fs::exists(p, fec))
      return Error::precondition(fmt::format(
          "--socket {} exists and is not a socket; remove it or choose another path", path));
    boost::system::error_code ec;
    acceptor_.open(stream_protocol(), ec);
    if (!ec) acceptor_.bind(stream_protocol::endpoint(path), ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Error::unavailable(
          fmt::format("cannot listen on the API socket {}: {}", path, ec.message()));
    if (::chmod(path.c_str(), 0660) != 0)
      return Error::internal(fmt::format("cannot set mode 0660 on {}", path));
    return {};
  }

  void start() {
    asio::co_spawn(control_, accept_loop(shared_from_this(), acceptor_, &Impl::session),
                   asio::detached);
    if (metrics_acceptor_.is_open())
      asio::co_spawn(control_,
                     accept_loop(shared_from_this(), metrics_acceptor_, &Impl::metrics_session),
                     asio::detached);
  }

  void stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    metrics_acceptor_.close(ec);
  }

  // Accepts until the acceptor is closed, one `session` coroutine per connection.
  template <class Acceptor, class Session>
  awaitable<void> accept_loop(std::shared_ptr<Impl> self, Acceptor& acceptor, Session session) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kAwait);
      if (!acceptor.is_open()) co_return;
      if (ec) continue;
      asio::co_spawn(control_, (this->*session)(self, std::move(socket)), asio::detached);
    }
  }

  awaitable<void> session(std::shared_ptr<Impl> /*keeps this alive*/,
                          stream_protocol::socket socket) {
    beast::basic_stream<stream_protocol> stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kBodyLimit);
      stream.expires_after(std::chrono::seconds(300));
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kAwait);
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout)
        break;
      Reply reply;
      bool keep = false;
      unsigned version = 11;
      if (ec) {
        reply =
            error_reply(Error::invalid(fmt::format("malformed HTTP request: {}", ec.message())));
        if (ec == http::error::body_limit) reply.status = http::status::payload_too_large;
      } else {
        auto& req = parser.get();
        keep = req.keep_alive();
        version = req.version();
        std::string_view target = req.target();
        if (req.method() == http::verb::post &&
            target.substr(0, target.find('?')) == "/api/v1/images/pull") {
          bool ok = co_await stream_pull(stream, req.body(), version);
          if (!ok || !keep) break;
          continue;
        }
        if (req.method() == http::verb::get && target.substr(0, target.find('?')) == "/metrics") {
          bool ok = co_await write_metrics(stream, version, keep);
          if (!ok || !keep) break;
          continue;
        }
        if (req.method() == http::verb::get && is_logs_path(target)) {
          bool ok = co_await stream_logs(stream, std::string(target), version);
          if (!ok || !keep) break;
          continue;
        }
        reply = co_await handle(req);
      }
      bool written = co_await write_reply(stream, std::move(reply), version, keep);
      if (!written || !keep) break;
    }
    boost::system::error_code ec;
    stream.socket().shutdown(stream_protocol::socket::shutdown_send, ec);
  }

  static Result<json::value> parse_body(const std::string& body) {
    if (body.empty()) return Error::invalid("the request needs a JSON body");
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec)
      return Error::invalid(fmt::format("the request body is not valid JSON: {}", ec.message()));
    return v;
  }

  awaitable<Reply> handle(const http::request<http::string_body>& req) {
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    auto parts = split_path(path);
    auto method = req.method();
    auto method_not_allowed = [&](const char* allowed) {
      return error_reply(Error::invalid(fmt::format("{} is not allowed on {}; use {}",
                                                    std::string(req.method_string()),
                                                    std::string(path), allowed)));
    };

    if (path == "/api/v1/status") {
      if (method != http::verb::get) co_return method_not_allowed("GET");
      co_return co_await status();
    }
    if (path == "/api/v1/images") {
      if (method == http::verb::get) co_return co_await list_images();
      if (method == http::verb::post) co_return co_await import_image(req.body());
      co_return method_not_allowed("GET or POST");
    }
    if (path == "/api/v1/instances") {
      if (method != http::verb::get) co_return method_not_allowed("GET");
      json::array items;
      for (const auto& [rec, phase] : reconciler_.instances())
        items.push_back(json::object{{"id", rec.id},
                                     {"namespace", rec.namespace_},
                                     {"service", rec.service},
                                     {"revision", rec.revision},
                                     {"pid", rec.pid},
                                     {"port", rec.port},
                                     {"phase", phase}});
      co_return Reply{http::status::ok, json::object{{"items", std::move(items)}}};
    }
    if (path == "/api/v1/system/stop-all") {
      if (method != http::verb::post) co_return method_not_allowed("POST");
      asio::steady_timer stopped(control_, asio::steady_timer::time_point::max());
      bool finished = false;
      reconciler_.halt([&stopped, &finished] {
        finished = true;
        stopped.cancel();
      });
      if (!finished) co_await stopped.async_wait(kAwait);
      co_return Reply{http::status::ok, json::object{{"halted", true}}};
    }
    if (path == "/api/v1/system/start-all") {
      if (method != http::verb::post) co_return method_not_allowed("POST");
      reconciler_.resume();
      co_return Reply{http::status::ok, json::object{{"halted", false}}};
    }
    if (path == "/api/v1/registries") {
      if (method == http::verb::get) co_return list_logins();
      co_return method_not_allowed("GET");
    }
    if (path == "/api/v1/registries/login") {
      if (method == http::verb::post) co_return co_await login(req.body());
      co_return method_not_allowed("POST");
    }
    if (path == "/api/v1/registries/logout") {
      if (method == http::verb::post) co_return co_await logout(req.body());
      co_return method_not_allowed("POST");
    }
    if (path == "/api/v1/images/pull") co_return method_not_allowed("POST");
    if (path == "/api/v1/images/prune") {
      if (method == http::verb::post) co_return co_await prune_images();
      co_return method_not_allowed("POST");
    }
    if (path.rfind("/api/v1/images/", 0) == 0) {
      // The name is one percent-encoded segment: registry names hold '/'.
      auto name = percent_decode(path.substr(std::string_view("/api/v1/images/").size()));
      if (!name || name->empty())
        co_return error_reply(Error::invalid("the image name in the path is not valid"));
      if (method == http::verb::delete_) co_return co_await delete_image(*name);
      co_return method_not_allowed("DELETE");
    }
    // /apis/serving.knative.dev/v1/namespaces/{ns}/{services|revisions}[/{name}]
    if (path.rfind(kServing, 0) == 0 && (parts.size() == 6 || parts.size() == 7)) {
      std::string ns = parts[4];
      const std::string& kind = parts[5];
      if (auto problem = dns1035_label_problem(ns))
        co_return error_reply(Error::invalid(fmt::format("namespace \"{}\" {}", ns, *problem)));
      if (kind == "services" && parts.size() == 6) {
        if (method == http::verb::get) co_return co_await list_services(ns);
        if (method == http::verb::post) co_return co_await create_service(ns, req.body());
        co_return method_not_allowed("GET or POST");
      }
      if (kind == "services") {
        const std::string& name = parts[6];
        if (method == http::verb::get) co_return co_await get_service(ns, name);
        if (method == http::verb::put) co_return co_await replace_service(ns, name, req.body());
        if (method == http::verb::delete_) co_return co_await delete_service(ns, name);
        co_return method_not_allowed("GET, PUT or DELETE");
      }
      if (kind == "revisions" && parts.size() == 6) {
        if (method == http::verb::get)
          co_return co_await list_revisions(ns, query_param(target, "service"));
        co_return method_not_allowed("GET");
      }
      if (kind == "revisions") {
        const std::string& name = parts[6];
        if (method == http::verb::get) co_return co_await get_revision(ns, name);
        if (method == http::verb::delete_) co_return co_await delete_revision(ns, name);
        co_return method_not_allowed("GET or DELETE");
      }
    }
    co_return error_reply(
        Error::not_found(fmt::format("no API resource at {}", std::string(path))));
  }

  awaitable<Reply> status() {
    auto images = co_await offload(store_thread_.get_executor(), &Store::list_images, &store_);
    auto c = reconciler_.counts();
    json::object o{{"version", info_.version},
                   {"dataDir", info_.data_dir},
                   {"socket", info_.socket},
                   {"listen", info_.listen},
                   {"domain", info_.domain},
                   {"runtime", info_.runtime},
                   {"services", c.services},
                   {"instances", c.instances},
                   {"readyInstances", c.ready_instances},
                   {"images", images ? images->size() : 0},
                   {"halted", reconciler_.halted()},
                   {"uptimeSeconds", std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::steady_clock::now() - started_)
                                         .count()}};
    co_return Reply{http::status::ok, std::move(o)};
  }

  awaitable<Reply> list_images() {
    auto images = co_await offload(store_thread_.get_executor(), &Store::list_images, &store_);
    if (!images) co_return error_reply(images.error());
    auto users =
        co_await offload(store_thread_.get_executor(), &Store::revision_image_digests, &store_);
    if (!users) co_return error_reply(users.error());
    json::array items;
    for (const auto& i : *images) {
      json::object o = image_to_json(i);
      json::array used_by;
      for (const auto& [revision, digest] : *users)
        if (digest == i.digest) used_by.emplace_back(revision);
      o["usedBy"] = std::move(used_by);
      items.push_back(std::move(o));
    }
    co_return Reply{http::status::ok, json::object{{"items", std::move(items)}}};
  }

  // Refuses to remove an image a revision uses; its blobs go with the next prune.
  awaitable<Reply> delete_image(std::string name) {
    auto image = co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, name);
    if (!image) co_return error_reply(image.error());
    auto users =
        co_await offload(store_thread_.get_executor(), &Store::revision_image_digests, &store_);
    if (!users) co_return error_reply(users.error());
    std::string list;
    for (const auto& [revision, digest] : *users)
      if (digest == image->digest) list += (list.empty() ? "" : ", ") + revision;
    if (!list.empty())
      co_return error_reply(Error::precondition(fmt::format(
          "image \"{}\" is used by revision(s) {}; delete those revisions or their services first",
          name, list)));
    auto d = co_await offload(store_thread_.get_executor(), &Store::delete_image, &store_, name);
    if (!d) co_return error_reply(d.error());
    spdlog::info("removed image {}", name);
    co_return Reply{http::status::ok,
                    json::object{{"status", "Success"},
                                 {"details", json::object{{"name", name}, {"kind", "images"}}}}};
  }

  // Removes the images no revision uses, then every blob and root filesystem nothing needs.
  awaitable<Reply> prune_images() {
    auto images = co_await offload(store_thread_.get_executor(), &Store::list_images, &store_);
    if (!images) co_return error_reply(images.error());
    auto users =
        co_await offload(store_thread_.get_executor(), &Store::revision_image_digests, &store_);
    if (!users) co_return error_reply(users.error());
    std::vector<std::string> keep;
    for (const auto& [revision, digest] : *users) keep.push_back(digest);
    json::array removed;
    for (const auto& i : *images) {
      if (std::find(keep.begin(), keep.end(), i.digest) != keep.end()) continue;
      auto d =
          co_await offload(store_thread_.get_executor(), &Store::delete_image, &store_, i.name);
      if (d) removed.emplace_back(i.name);
    }
    // Files younger than a minute may belong to an import not recorded yet.
    auto freed = co_await offload(image_work_.get_executor(), &ImageStore::prune, &images_, keep,
                                  std::chrono::seconds(60));
    if (!freed) co_return error_reply(freed.error());
    spdlog::info("pruned images: removed {} image(s), freed {} bytes", removed.size(), *freed);
    co_return Reply{http::status::ok,
                    json::object{{"removedImages", std::move(removed)}, {"freedBytes", *freed}}};
  }

  // Starts an import, or joins the one already running for the same reference and name.
  std::shared_ptr<ImportJob> start_import(const std::string& reference, const std::string& name) {
    std::string key = reference + "\n" + name;
    if (auto it = imports_.find(key); it != imports_.end()) {
      spdlog::info("joining the import of {} already in progress", reference);
      return it->second;
    }
    auto job = std::make_shared<ImportJob>(control_.get_executor());
    imports_[key] = job;
    asio::co_spawn(control_, run_import(shared_from_this(), job, key, reference, name),
                   asio::detached);
    return job;
  }

  awaitable<void> run_import(std::shared_ptr<Impl> /*keeps this alive*/,
                             std::shared_ptr<ImportJob> job, std::string key, std::string reference,
                             std::string name) {
    // Progress comes from a worker thread; events are appended on the control thread.
    auto ex = control_.get_executor();
    PullProgressFn progress = [job, ex](const PullProgress& p) {
      asio::post(ex, [job, line = json::serialize(progress_json(p))] {
        job->events.push_back(line);
        job->wake.cancel();
      });
    };
    auto rec = co_await offload(image_work_.get_executor(), &ImageStore::import, &images_,
                                reference, name, progress);
    if (rec) {
      auto put = co_await offload(store_thread_.get_executor(), &Store::put_image, &store_, *rec);
      if (!put) rec = put.error();
    }
    if (rec)
      spdlog::info("imported image {} ({}) from {}", rec->name, rec->digest, reference);
    else
      spdlog::warn("importing {} failed: {}", reference, rec.error().message);
    // Events posted before the result are already appended: the post queue is in order.
    job->result = std::move(rec);
    job->wake.cancel();
    imports_.erase(key);
  }

  awaitable<Result<ImageRecord>> import(std::string reference, std::string name) {
    auto job = start_import(reference, name);
    while (!job->result) co_await job->wake.async_wait(kAwait);
    co_return *job->result;
  }

  // POST /api/v1/images/pull: the import's progress as chunked JSON lines (application/x-ndjson),
  // {"progress": {...}} while it runs, then {"image": {...}} or {"error": {...}}. False when the
  // connection is no longer usable.
  awaitable<bool> stream_pull(beast::basic_stream<stream_protocol>& stream, const std::string& body,
                              unsigned version) {
    auto request = parse_import_request(body);
    if (!request) {
      Reply refused = error_reply(request.error());
      co_return co_await write_reply(stream, std::move(refused), version);
    }
    auto job = start_import(request->first, request->second);
    http::response<http::empty_body> res{http::status::ok, version};
    res.set(http::field::content_type, "application/x-ndjson");
    res.set(http::field::server, "elafrosd");
    res.chunked(true);
    http::response_serializer<http::empty_body> serializer{res};
    stream.expires_never();
    auto [hec, hn] = co_await http::async_write_header(stream, serializer, kAwait);
    if (hec) co_return false;
    std::size_t sent = 0;
    for (;;) {
      std::string lines;
      for (; sent < job->events.size(); ++sent)
        lines += "{\"progress\":" + job->events[sent] + "}\n";
      bool done = job->result.has_value();
      if (done) {
        json::object last;
        if (*job->result)
          last["image"] = image_to_json(**job->result);
        else
          last = error_reply(job->result->error()).body.as_object();
        lines += json::serialize(last) + "\n";
      }
      if (!lines.empty()) {
        auto chunk = http::make_chunk(asio::buffer(lines));
        auto [ec, n] = co_await asio::async_write(stream, chunk, kAwait);
        if (ec) co_return false;  // the client left; the import goes on for any other
      }
      if (done) break;
      co_await job->wake.async_wait(kAwait);
    }
    auto last_chunk = http::make_chunk_last();
    auto [ec, n] = co_await asio::async_write(stream, last_chunk, kAwait);
    co_return !ec;
  }

  // The metrics now: the reconciler's view, the proxy's counters, and every instance's cgroup
  // (read on the blocking pool).
  awaitable<std::string> metrics_text() {
    MetricsInput in;
    in.version = info_.version;
    in.revisions = reconciler_.revision_metrics();
    struct Usage {
      explicit Usage(const asio::any_io_executor& ex)
          : wake(ex, std::chrono::steady_clock::time_point::max()) {}
      bool done = false;
      std::vector<Reconciler::InstanceUsage> list;
      asio::steady_timer wake;
    };
    auto usage = std::make_shared<Usage>(control_.get_executor());
    reconciler_.instance_usage([usage](std::vector<Reconciler::InstanceUsage> list) {
      usage->list = std::move(list);
      usage->done = true;
      usage->wake.cancel();
    });
    while (!usage->done) co_await usage->wake.async_wait(kAwait);
    in.instances = std::move(usage->list);
    // Rendering reads /proc: off the control thread.
    co_return co_await offload(blocking_.get_executor(), &render_metrics, std::move(in));
  }

  template <class Stream>
  awaitable<bool> write_metrics(Stream& stream, unsigned version, bool keep) {
    std::string text = co_await metrics_text();
    http::response<http::string_body> res{http::status::ok, version};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.set(http::field::server, "elafrosd");
    res.keep_alive(keep);
    res.body() = std::move(text);
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(stream, res, kAwait);
    co_return !ec;
  }

  // --metrics-listen: GET /metrics over TCP, for a Prometheus server to scrape. Nothing else is
  // served there.
  Result<void> listen_metrics(const std::string& address, unsigned short port) {
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(address, ec);
    if (ec)
      return Error::invalid(fmt::format("--metrics-listen: \"{}\" is not an IP address", address));
    asio::ip::tcp::endpoint ep(ip, port);
    metrics_acceptor_.open(ep.protocol(), ec);
    if (!ec) metrics_acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) metrics_acceptor_.bind(ep, ec);
    if (!ec) metrics_acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Error::unavailable(
          fmt::format("cannot listen on --metrics-listen {}:{}: {}", address, port, ec.message()));
    auto bound = metrics_acceptor_.local_endpoint(ec);
    spdlog::info("serving GET /metrics on http://{}:{}/metrics", address, bound.port());
    return {};
  }

  awaitable<void> metrics_session(std::shared_ptr<Impl> /*keeps this alive*/,
                                  asio::ip::tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::empty_body> parser;
      parser.header_limit(16 * 1024);
      stream.expires_after(std::chrono::seconds(60));
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kAwait);
      if (ec) break;
      auto& req = parser.get();
      bool keep = req.keep_alive();
      std::string_view target = req.target();
      if (req.method() == http::verb::get && target.substr(0, target.find('?')) == "/metrics") {
        bool ok = co_await write_metrics(stream, req.version(), keep);
        if (!ok || !keep) break;
        continue;
      }
      http::response<http::string_body> res{http::status::not_found, req.version()};
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.keep_alive(keep);
      res.body() = "only GET /metrics is served here\n";
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, kAwait);
      if (wec || !keep) break;
    }
    boost::system::error_code ec;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  }

  // GET /api/v1/namespaces/{ns}/services/{name}/logs
  static bool is_logs_path(std::string_view target) {
    auto parts = split_path(target.substr(0, target.find('?')));
    return parts.size() == 7 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "namespaces" &&
           parts[4] == "services" && parts[6] == "logs";
  }

  // A JSON answer. False when the connection is no longer usable.
  awaitable<bool> write_reply(beast::basic_stream<stream_protocol>& stream, Reply reply,
                              unsigned version, bool keep = true) {
    http::response<http::string_body> res{reply.status, version};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::server, "elafrosd");
    res.keep_alive(keep);
    res.body() = json::serialize(reply.body) + "\n";
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(stream, res, kAwait);
    co_return !ec;
  }

  // Reads the logs request's query into `query`; false (and an error) when it is malformed.
  static Result<bool> parse_logs_query(const std::string& target, LogQuery& query) {
    auto parts = split_path(std::string_view(target).substr(0, target.find('?')));
    query.namespace_ = parts[3];
    query.service = parts[5];
    query.revision = query_param(target, "revision");
    query.instance = query_param(target, "instance");
    for (const char* name : {"tailLines", "sinceSeconds"}) {
      std::string v = query_param(target, name);
      if (v.empty()) continue;
      std::int64_t n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || end != v.data() + v.size() || n < 0)
        return Error::invalid(
            fmt::format("{} must be a whole number of at least 0, not \"{}\"", name, v));
      if (std::string_view(name) == "tailLines")
        query.tail = static_cast<std::size_t>(n);
      else
        query.since = std::chrono::system_clock::now() - std::chrono::seconds(n);
    }
    std::string follow = query_param(target, "follow");
    if (!follow.empty() && follow != "true" && follow != "false")
      return Error::invalid(fmt::format("follow must be true or false, not \"{}\"", follow));
    return follow == "true";
  }

  // The logs of a service as chunked JSON lines (application/x-ndjson), oldest first; with
  // follow=true, then every new line until the client goes away. Query: revision, instance,
  // follow, tailLines, sinceSeconds (Kubernetes' names).
  awaitable<bool> stream_logs(beast::basic_stream<stream_protocol>& stream, std::string target,
                              unsigned version) {
    LogQuery query;
    auto parsed = parse_logs_query(target, query);
    if (!parsed) co_return co_await write_reply(stream, error_reply(parsed.error()), version);
    bool follow = *parsed;
    auto service = co_await offload(store_thread_.get_executor(), &Store::get_service, &store_,
                                    query.namespace_, query.service);
    if (!service) co_return co_await write_reply(stream, error_reply(service.error()), version);
    if (!query.revision.empty()) {
      auto rev = co_await offload(store_thread_.get_executor(), &Store::get_revision, &store_,
                                  query.namespace_, query.revision);
      if (!rev || rev->service != query.service) {
        Reply missing = error_reply(Error::not_found(fmt::format(
            "service \"{}\" has no revision \"{}\"; 'elafros revision list -s {}' lists them",
            query.service, query.revision, query.service)));
        co_return co_await write_reply(stream, std::move(missing), version);
      }
    }

    // The backlog, then the live lines, arrive from the collector's thread.
    auto ex = control_.get_executor();
    auto state = std::make_shared<LogFollow>(ex);
    logs_.open(
        query, follow,
        [state, ex](std::vector<LogLine> lines) {
          asio::post(ex, [state, lines = std::move(lines)]() mutable {
            if (lines.empty()) state->ended = true;  // the service was deleted
            for (auto& l : lines) state->lines.push_back(std::move(l));
            state->wake.cancel();
          });
        },
        [state, ex](std::vector<LogLine> backlog, std::uint64_t id, std::string error) {
          asio::post(ex, [state, backlog = std::move(backlog), id, error]() mutable {
            state->lines = std::move(backlog);
            state->id = id;
            state->error = std::move(error);
            state->opened = true;
            state->wake.cancel();
          });
        });
    while (!state->opened) co_await state->wake.async_wait(kAwait);
    if (!state->error.empty()) {
      Reply refused = error_reply(Error::precondition(state->error));
      co_return co_await write_reply(stream, std::move(refused), version);
    }
    http::response<http::empty_body> res{http::status::ok, version};
    res.set(http::field::content_type, "application/x-ndjson");
    res.set(http::field::server, "elafrosd");
    res.chunked(true);
    http::response_serializer<http::empty_body> serializer{res};
    stream.expires_never();
    bool ok = true;
    auto [hec, hn] = co_await http::async_write_header(stream, serializer, kAwait);
    if (hec) ok = false;
    if (ok && follow) {
      // A read that ends when the client closes the connection, so that an idle follow ends.
      stream.socket().async_read_some(asio::buffer(state->probe),
                                      [state](boost::system::error_code, std::size_t) {
                                        state->closed = true;
                                        state->wake.cancel();
                                      });
    }
    while (ok) {
      std::string text;
      for (const auto& l : state->lines) {
        text += json::serialize(log_line_json(l));
        text += '\n';
      }
      state->lines.clear();
      if (!text.empty()) {
        auto chunk = http::make_chunk(asio::buffer(text));
        auto [ec, n] = co_await asio::async_write(stream, chunk, kAwait);
        if (ec) ok = false;
      }
      if (!ok || !follow || state->closed || state->ended) break;
      co_await state->wake.async_wait(kAwait);
    }
    if (state->id != 0) logs_.close(state->id);
    // A follow ends with the connection; one whose service was deleted ends its answer first.
    if (!ok || state->closed) co_return false;
    if (follow && !state->ended) co_return false;
    auto last_chunk = http::make_chunk_last();
    auto [ec, n] = co_await asio::async_write(stream, last_chunk, kAwait);
    co_return !ec && !follow;
  }

  // {"reference": "...", "name": "..."} → (reference, name).
  static Result<std::pair<std::string, std::string>> parse_import_request(const std::string& body) {
    auto v = parse_body(body);
    if (!v) return v.error();
    const json::object* o = v->if_object();
    const json::value* ref = o ? o->if_contains("reference") : nullptr;
    if (!ref || !ref->is_string() || ref->get_string().empty())
      return Error::invalid(
          "the body needs \"reference\": a string such as \"oci:/path/to/layout:tag\" or "
          "\"docker.io/library/nginx:alpine\"");
    std::string name;
    if (const json::value* n = o->if_contains("name"); n && !n->is_null()) {
      if (!n->is_string()) return Error::invalid("\"name\" must be a string");
      name = std::string(n->get_string());
    }
    for (const auto& kv : *o)
      if (kv.key() != "reference" && kv.key() != "name")
        return Error::invalid(fmt::format("unknown field \"{}\" (known fields: reference, name)",
                                          std::string_view(kv.key())));
    std::string reference(ref->get_string());
    // A bare registry name ("nginx", "registry.example.com/team/app:1") is a pull.
    if (!looks_like_transport(reference)) {
      auto registry = parse_registry_reference(reference);
      if (!registry) return registry.error();
      reference = "docker://" + registry->str();
    }
    return std::make_pair(reference, name);
  }

  // Registry logins: checked against the registry (as `docker login` does), then stored.
  static Result<std::pair<std::string, RegistryCredentials>> parse_login(const std::string& body) {
    auto v = parse_body(body);
    if (!v) return v.error();
    const json::object* o = v->if_object();
    if (!o) return Error::invalid("the body must be a JSON object");
    for (const auto& kv : *o)
      if (kv.key() != "registry" && kv.key() != "username" && kv.key() != "password")
        return Error::invalid(
            fmt::format("unknown field \"{}\" (known fields: registry, username, password)",
                        std::string_view(kv.key())));
    auto text = [&](const char* key) -> std::string {
      const json::value* f = o->if_contains(key);
      return f && f->is_string() ? std::string(f->get_string()) : std::string();
    };
    auto host = canonical_registry_host(text("registry"));
    if (!host) return host.error();
    RegistryCredentials c{text("username"), text("password")};
    if (c.username.empty() || c.username.find(':') != std::string::npos)
      return Error::invalid("\"username\" must be a non-empty string without ':'");
    if (c.password.empty()) return Error::invalid("\"password\" must be a non-empty string");
    return std::make_pair(*host, c);
  }

  awaitable<Reply> login(std::string body) {
    auto parsed = parse_login(body);
    if (!parsed) co_return error_reply(parsed.error());
    auto checked = co_await offload(image_work_.get_executor(), &RegistryClient::check_login,
                                    &registry_, parsed->first, parsed->second);
    if (!checked) co_return error_reply(checked.error());
    auto stored = co_await offload(blocking_.get_executor(), &CredentialStore::put, &credentials_,
                                   parsed->first, parsed->second);
    if (!stored) co_return error_reply(stored.error());
    spdlog::info("logged in to registry {} as {}", parsed->first, parsed->second.username);
    co_return Reply{http::status::ok, json::object{{"registry", parsed->first},
                                                   {"username", parsed->second.username}}};
  }

  awaitable<Reply> logout(std::string body) {
    auto v = parse_body(body);
    if (!v) co_return error_reply(v.error());
    const json::value* r = v->is_object() ? v->get_object().if_contains("registry") : nullptr;
    auto host = canonical_registry_host(r && r->is_string() ? std::string(r->get_string()) : "");
    if (!host) co_return error_reply(host.error());
    auto removed =
        co_await offload(blocking_.get_executor(), &CredentialStore::remove, &credentials_, *host);
    if (!removed) co_return error_reply(removed.error());
    if (!*removed)
      co_return error_reply(Error::not_found(fmt::format("not logged in to registry {}", *host)));
    spdlog::info("logged out of registry {}", *host);
    co_return Reply{http::status::ok, json::object{{"registry", *host}}};
  }

  Reply list_logins() {
    json::array items;
    for (const auto& [host, user] : credentials_.usernames())
      items.push_back(json::object{{"registry", host}, {"username", user}});
    return Reply{http::status::ok, json::object{{"items", std::move(items)}}};
  }

  awaitable<Reply> import_image(std::string body) {
    auto request = parse_import_request(body);
    if (!request) co_return error_reply(request.error());
    auto rec = co_await import(request->first, request->second);
    if (!rec) co_return error_reply(rec.error());
    co_return Reply{http::status::created, image_to_json(*rec)};
  }

  json::object service_json(const Service& s) {
    ServiceStatus st = reconciler_.service_status(s);
    return service_to_json(s, &st);
  }

  awaitable<Reply> list_services(const std::string& ns) {
    auto services =
        co_await offload(store_thread_.get_executor(), &Store::list_services, &store_, ns);
    if (!services) co_return error_reply(services.error());
    json::array items;
    for (const auto& s : *services) items.push_back(service_json(s));
    co_return Reply{http::status::ok, json::object{{"apiVersion", "serving.knative.dev/v1"},
                                                   {"kind", "ServiceList"},
                                                   {"items", std::move(items)}}};
  }

  awaitable<Reply> get_service(const std::string& ns, const std::string& name) {
    auto s = co_await offload(store_thread_.get_executor(), &Store::get_service, &store_, ns, name);
    if (!s) co_return error_reply(s.error());
    co_return Reply{http::status::ok, service_json(*s)};
  }

  awaitable<Reply> list_revisions(const std::string& ns, const std::string& service) {
    auto revs = co_await offload(store_thread_.get_executor(), &Store::list_revisions, &store_, ns,
                                 service);
    if (!revs) co_return error_reply(revs.error());
    json::array items;
    for (const auto& r : *revs) {
      RevisionStatus st = reconciler_.revision_status(ns, r.meta.name);
      items.push_back(revision_to_json(r, &st));
    }
    co_return Reply{http::status::ok, json::object{{"apiVersion", "serving.knative.dev/v1"},
                                                   {"kind", "RevisionList"},
                                                   {"items", std::move(items)}}};
  }

  // Changes to one service are made one at a time; a concurrent one is refused, not merged.
  class ServiceLock {
   public:
    ServiceLock(std::set<std::string>& busy, std::string key) : busy_(busy), key_(std::move(key)) {
      held_ = busy_.insert(key_).second;
    }
    ~ServiceLock() {
      if (held_) busy_.erase(key_);
    }
    ServiceLock(const ServiceLock&) = delete;
    ServiceLock& operator=(const ServiceLock&) = delete;
    bool held() const { return held_; }

   private:
    std::set<std::string>& busy_;
    std::string key_;
    bool held_ = false;
  };

  static Error busy_error(const std::string& ns, const std::string& name) {
    return Error::unavailable(
        fmt::format("another change to service \"{}\" in namespace \"{}\" is in progress; retry "
                    "when it is done",
                    name, ns));
  }

  // Parses a Service body for the namespace of the request path.
  static Result<Service> parse_service(const std::string& ns, const std::string& body) {
    auto v = parse_body(body);
    if (!v) return v.error();
    auto parsed = service_from_json(*v, ns);
    if (!parsed) return parsed.error();
    if (auto scaling = autoscaling_spec(parsed->spec, AutoscalingDefaults{}); !scaling)
      return scaling.error();
    if (parsed->meta.namespace_ != ns)
      return Error::invalid(fmt::format(
          "metadata.namespace \"{}\" does not match the namespace \"{}\" of the request path",
          parsed->meta.namespace_, ns));
    return parsed;
  }

  // Resolves an image reference to a stored image (importing transports), for a revision to pin.
  awaitable<Result<ImageRecord>> resolve_image(std::string reference) {
    if (looks_like_transport(reference)) co_return co_await import(reference, "");
    auto image =
        co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, reference);
    if (!image && image.error().code == ErrorCode::kNotFound) {
      std::string message = fmt::format(
          "spec.template.spec.containers[0].image: image \"{}\" is not in the image store; give a "
          "reference such "
          "as oci:DIR:TAG, oci-archive:FILE or docker-archive:FILE, or import it first with "
          "'elafros image import'",
          reference);
      // Not a local name: a registry reference, as Docker reads it. One pulled before is used
      // as it is (Docker's "missing" pull policy; 'elafros image pull' refreshes it).
      if (auto registry = parse_registry_reference(reference)) {
        std::string canonical = registry->str();
        auto stored =
            co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, canonical);
        if (stored) co_return stored;
        std::string pull_ref = "docker://" + canonical;
        auto pulled = co_await import(pull_ref, "");
        if (pulled) co_return pulled;
        co_return Error{pulled.error().code,
                        fmt::format("ImagePullFailed: image \"{}\" is not in the image store, and "
                                    "pulling it failed: {}",
                                    reference, pulled.error().message)};
      }
      co_return Error::invalid(message);
    }
    co_return image;
  }

  static Revision new_revision(const Service& s, std::string name, std::string digest,
                               std::int64_t now) {
    Revision rev;
    rev.meta.name = std::move(name);
    rev.meta.namespace_ = s.meta.namespace_;
    rev.meta.uid = new_uid();
    rev.meta.generation = s.config_generation;
    rev.meta.created_unix = now;
    rev.meta.labels = {{"serving.knative.dev/service", s.meta.name},
                       {"serving.knative.dev/configuration", s.meta.name}};
    rev.service = s.meta.name;
    rev.spec = s.spec;
    rev.image_digest = std::move(digest);
    return rev;
  }

  static std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  awaitable<Reply> create_service(const std::string& ns, const std::string& body) {
    auto parsed = parse_service(ns, body);
    if (!parsed) co_return error_reply(parsed.error());
    ServiceLock lock(busy_, key_of(ns, parsed->meta.name));
    if (!lock.held()) co_return error_reply(busy_error(ns, parsed->meta.name));
    co_return co_await create(std::move(parsed.value()));
  }

  awaitable<Reply> create(Service s) {
    const std::string ns = s.meta.namespace_;
    auto existing = co_await offload(store_thread_.get_executor(), &Store::get_service, &store_, ns,
                                     s.meta.name);
    if (existing)
      co_return error_reply(
          Error::exists(fmt::format("service \"{}\" already exists in namespace \"{}\"; change it "
                                    "with 'elafros service update {}' or "
                                    "'elafros apply', or delete it first",
                                    s.meta.name, ns, s.meta.name)));
    std::string rev_name = s.spec.name.empty() ? revision_name(s.meta.name, 1) : s.spec.name;
    if (auto r = validate_traffic(s.traffic, s.meta.name, {rev_name}); !r)
      co_return error_reply(r.error());
    // Resolve the image to a digest now: the revision pins it.
    auto image = co_await resolve_image(s.spec.container.image);
    if (!image) co_return error_reply(image.error());

    auto now = unix_now();
    s.meta.uid = new_uid();
    s.meta.generation = 1;
    s.meta.created_unix = now;
    s.config_generation = 1;
    Revision rev = new_revision(s, rev_name, image->digest, now);
    auto created =
        co_await offload(store_thread_.get_executor(), &Store::create_service, &store_, s, rev);
    if (!created) co_return error_reply(created.error());
    spdlog::info("created service {}/{} with revision {} (image {})", ns, s.meta.name,
                 rev.meta.name, image->digest);
    reconciler_.service_created(s, rev);
    co_return Reply{http::status::created, service_json(s)};
  }

  // PUT: replaces the service's spec (creating the service when it does not exist, as
  // 'kubectl apply' does). A changed template makes a new revision; an unchanged one does not.
  awaitable<Reply> replace_service(const std::string& ns, const std::string& name,
                                   const std::string& body) {
    auto parsed = parse_service(ns, body);
    if (!parsed) co_return error_reply(parsed.error());
    Service s = std::move(parsed.value());
    if (s.meta.name != name)
      co_return error_reply(Error::invalid(
          fmt::format("metadata.name \"{}\" does not match the service \"{}\" of the request path",
                      s.meta.name, name)));
    ServiceLock lock(busy_, key_of(ns, name));
    if (!lock.held()) co_return error_reply(busy_error(ns, name));
    auto existing =
        co_await offload(store_thread_.get_executor(), &Store::get_service, &store_, ns, name);
    if (!existing && existing.error().code == ErrorCode::kNotFound)
      co_return co_await create(std::move(s));
    if (!existing) co_return error_reply(existing.error());
    const Service& old = existing.value();
    auto revisions =
        co_await offload(store_thread_.get_executor(), &Store::list_revisions, &store_, ns, name);
    if (!revisions) co_return error_reply(revisions.error());
    std::vector<std::string> names;
    for (const auto& r : *revisions) names.push_back(r.meta.name);

    bool template_changed = !(s.spec == old.spec);
    s.meta.uid = old.meta.uid;
    s.meta.created_unix = old.meta.created_unix;
    s.meta.generation = old.meta.generation;
    s.config_generation = old.config_generation;
    std::optional<Revision> rev;
    std::string rev_name;
    if (template_changed) {
      s.config_generation = old.config_generation + 1;
      rev_name = s.spec.name.empty() ? revision_name(name, static_cast<int>(s.config_generation))
                                     : s.spec.name;
      if (std::find(names.begin(), names.end(), rev_name) != names.end())
        co_return error_reply(
            Error::exists(fmt::format("revision \"{}\" already exists; a changed template needs a "
                                      "new revision name (spec.template.metadata.name "
                                      "or --revision-name), or leave the name out",
                                      rev_name)));
      names.push_back(rev_name);
    }
    if (auto r = validate_traffic(s.traffic, name, names); !r) co_return error_reply(r.error());
    bool changed = template_changed || !(s.traffic == old.traffic) ||
                   s.meta.labels != old.meta.labels || s.meta.annotations != old.meta.annotations;
    if (!changed) co_return Reply{http::status::ok, service_json(old)};
    if (template_changed) {
      auto image = co_await resolve_image(s.spec.container.image);
      if (!image) co_return error_reply(image.error());
      rev = new_revision(s, rev_name, image->digest, unix_now());
    }
    s.meta.generation = old.meta.generation + 1;
    const Revision* created = rev ? &*rev : nullptr;
    auto updated = co_await offload(store_thread_.get_executor(), &Store::update_service, &store_,
                                    s, rev ? &*rev : static_cast<const Revision*>(nullptr));
    if (!updated) co_return error_reply(updated.error());
    spdlog::info(
        "updated service {}/{} to generation {}{}", ns, name, s.meta.generation,
        rev ? fmt::format(" with revision {} (image {})", rev->meta.name, rev->image_digest) : "");
    reconciler_.service_updated(s, created);
    co_return Reply{http::status::ok, service_json(s)};
  }

  awaitable<Reply> get_revision(const std::string& ns, const std::string& name) {
    auto r =
        co_await offload(store_thread_.get_executor(), &Store::get_revision, &store_, ns, name);
    if (!r) co_return error_reply(r.error());
    RevisionStatus st = reconciler_.revision_status(ns, name);
    co_return Reply{http::status::ok, revision_to_json(*r, &st)};
  }

  // Refuses to delete a revision that serves traffic, carries a tag, or is the latest.
  awaitable<Reply> delete_revision(const std::string& ns, const std::string& name) {
    auto rev =
        co_await offload(store_thread_.get_executor(), &Store::get_revision, &store_, ns, name);
    if (!rev) co_return error_reply(rev.error());
    const std::string service = rev->service;
    ServiceLock lock(busy_, key_of(ns, service));
    if (!lock.held()) co_return error_reply(busy_error(ns, service));
    auto svc =
        co_await offload(store_thread_.get_executor(), &Store::get_service, &store_, ns, service);
    if (!svc) co_return error_reply(svc.error());
    ServiceStatus st = reconciler_.service_status(*svc);
    std::string holder;
    for (const auto& t : svc->traffic)
      if (t.revision_name == name && (t.percent > 0 || !t.tag.empty()))
        holder = t.tag.empty()
                     ? fmt::format("{}% of its traffic", t.percent)
                     : fmt::format("{}% of its traffic and the tag \"{}\"", t.percent, t.tag);
    for (const auto& t : st.traffic)
      if (holder.empty() && t.revision_name == name && (t.percent > 0 || !t.tag.empty()))
        holder =
            fmt::format("{}% of its traffic{}", t.percent, t.latest_revision ? " as @latest" : "");
    if (!holder.empty())
      co_return error_reply(
          Error::precondition(fmt::format("revision \"{}\" is routed by service \"{}\" ({}); move "
                                          "that traffic first, e.g. 'elafros service update {} "
                                          "--traffic @latest=100' (and --untag for its tag)",
                                          name, service, holder, service)));
    if (st.latest_created_revision == name)
      co_return error_reply(
          Error::precondition(fmt::format("revision \"{}\" is the latest revision of service "
                                          "\"{}\"; update the service to a new revision first, or "
                                          "delete the service",
                                          name, service)));
    auto d =
        co_await offload(store_thread_.get_executor(), &Store::delete_revision, &store_, ns, name);
    if (!d) co_return error_reply(d.error());
    reconciler_.revision_deleted(ns, name);
    logs_.remove(ns, service, name);
    spdlog::info("deleted revision {}/{}", ns, name);
    co_return Reply{
        http::status::ok,
        json::object{
            {"status", "Success"},
            {"details", json::object{{"name", name}, {"namespace", ns}, {"kind", "revisions"}}}}};
  }

  static std::string key_of(const std::string& ns, const std::string& name) {
    return ns + "/" + name;
  }

  awaitable<Reply> delete_service(const std::string& ns, const std::string& name) {
    ServiceLock lock(busy_, key_of(ns, name));
    if (!lock.held()) co_return error_reply(busy_error(ns, name));
    auto d =
        co_await offload(store_thread_.get_executor(), &Store::delete_service, &store_, ns, name);
    if (!d) co_return error_reply(d.error());
    // Wait until its instances are drained and removed, as 'kn service delete' waits.
    asio::steady_timer done(control_, asio::steady_timer::time_point::max());
    bool finished = false;
    reconciler_.service_deleted(ns, name, [&done, &finished] {
      finished = true;
      done.cancel();
    });
    if (!finished) co_await done.async_wait(kAwait);
    // Its logs go too, before the answer (a new service of that name starts afresh).
    asio::steady_timer logs_gone(control_, asio::steady_timer::time_point::max());
    auto ex = control_.get_executor();
    logs_.remove(ns, name, "",
                 [ex, &logs_gone] { asio::post(ex, [&logs_gone] { logs_gone.cancel(); }); });
    co_await logs_gone.async_wait(kAwait);
    spdlog::info("deleted service {}/{}", ns, name);
    co_return Reply{
        http::status::ok,
        json::object{
            {"status", "Success"},
            {"details", json::object{{"name", name}, {"namespace", ns}, {"kind", "services"}}}}};
  }

  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  asio::thread_pool& blocking_;
  Store& store_;
  ImageStore& images_;
  RegistryClient& registry_;
  CredentialStore& credentials_;
  LogCollector& logs_;
  Reconciler& reconciler_;
  ApiInfo info_;
  stream_protocol::acceptor acceptor_;
  asio::ip::tcp::acceptor metrics_acceptor_;
  // Pulls, imports and prunes run here, not on the blocking pool that starts instances: a long
  // download never delays a cold start.
  asio::thread_pool image_work_{2};
  std::chrono::steady_clock::time_point started_;
  std::set<std::string> busy_;                                 // services with a change in progress
  std::map<std::string, std::shared_ptr<ImportJob>> imports_;  // in progress, by reference+name
};

ApiServer::ApiServer(asio::io_context& control, asio::thread_pool& store_thread,
                     asio::thread_pool& blocking, Store& store, ImageStore& images,
                     RegistryClient& registry, CredentialStore& credentials, LogCollector& logs,
                     Reconciler& reconciler, ApiInfo info)
    : impl_(std::make_shared<Impl>(control, store_thread, blocking, store, images, registry,
                                   credentials, logs, reconciler, std::move(info))) {}
ApiServer::~ApiServer() = default;
Result<void> ApiServer::listen(const std::string& socket_path) {
  return impl_->listen(socket_path);
}
Result<void> ApiServer::listen_metrics(const std::string& address, unsigned short port) {
  return impl_->listen_metrics(address, port);
}
void ApiServer::start() {
  impl_->start();
}
void ApiServer::join() {
  impl_->image_work_.join();
}
void ApiServer::stop() {
  impl_->stop();
}

}  // namespace elafros
