#include "api_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <optional>
#include <random>

#include "elafros/naming.hpp"
#include "elafros/resource_json.hpp"
#include "image_store.hpp"
#include "offload.hpp"
#include "reconciler.hpp"

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

bool looks_like_transport(const std::string& ref) {
  auto colon = ref.find(':');
  if (colon == std::string::npos) return false;
  std::string t = ref.substr(0, colon);
  return t == "oci" || t == "oci-archive" || t == "docker-archive" || t == "docker" || t == "dir" ||
         t == "containers-storage";
}

}  // namespace

class ApiServer::Impl : public std::enable_shared_from_this<ApiServer::Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, asio::thread_pool& blocking,
       Store& store, ImageStore& images, Reconciler& reconciler, ApiInfo info)
      : control_(control),
        store_thread_(store_thread),
        blocking_(blocking),
        store_(store),
        images_(images),
        reconciler_(reconciler),
        info_(std::move(info)),
        acceptor_(control),
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

  void start() { asio::co_spawn(control_, accept_loop(shared_from_this()), asio::detached); }

  void stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
  }

  awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kAwait);
      if (!acceptor_.is_open()) co_return;
      if (ec) continue;
      asio::co_spawn(control_, session(self, std::move(socket)), asio::detached);
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
        reply = co_await handle(req);
      }
      http::response<http::string_body> res{reply.status, version};
      res.set(http::field::content_type, "application/json");
      res.set(http::field::server, "elafrosd");
      res.keep_alive(keep);
      res.body() = json::serialize(reply.body);
      res.body() += "\n";
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, kAwait);
      if (wec || !keep) break;
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
        if (method == http::verb::delete_) co_return co_await delete_service(ns, name);
        co_return method_not_allowed("GET or DELETE");
      }
      if (kind == "revisions" && parts.size() == 6) {
        if (method == http::verb::get)
          co_return co_await list_revisions(ns, query_param(target, "service"));
        co_return method_not_allowed("GET");
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
                   {"uptimeSeconds", std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::steady_clock::now() - started_)
                                         .count()}};
    co_return Reply{http::status::ok, std::move(o)};
  }

  awaitable<Reply> list_images() {
    auto images = co_await offload(store_thread_.get_executor(), &Store::list_images, &store_);
    if (!images) co_return error_reply(images.error());
    json::array items;
    for (const auto& i : *images) items.push_back(image_to_json(i));
    co_return Reply{http::status::ok, json::object{{"items", std::move(items)}}};
  }

  awaitable<Result<ImageRecord>> import(std::string reference, std::string name) {
    auto rec =
        co_await offload(blocking_.get_executor(), &ImageStore::import, &images_, reference, name);
    if (!rec) co_return rec;
    auto put = co_await offload(store_thread_.get_executor(), &Store::put_image, &store_, *rec);
    if (!put) co_return put.error();
    spdlog::info("imported image {} ({}) from {}", rec->name, rec->digest, reference);
    co_return rec;
  }

  awaitable<Reply> import_image(const std::string& body) {
    auto v = parse_body(body);
    if (!v) co_return error_reply(v.error());
    const json::object* o = v->if_object();
    const json::value* ref = o ? o->if_contains("reference") : nullptr;
    if (!ref || !ref->is_string() || ref->get_string().empty())
      co_return error_reply(Error::invalid(
          "the body needs \"reference\": a string such as \"oci:/path/to/layout:tag\""));
    std::string name;
    if (const json::value* n = o->if_contains("name"); n && !n->is_null()) {
      if (!n->is_string()) co_return error_reply(Error::invalid("\"name\" must be a string"));
      name = std::string(n->get_string());
    }
    for (const auto& kv : *o)
      if (kv.key() != "reference" && kv.key() != "name")
        co_return error_reply(Error::invalid(fmt::format(
            "unknown field \"{}\" (known fields: reference, name)", std::string_view(kv.key()))));
    auto rec = co_await import(std::string(ref->get_string()), name);
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

  awaitable<Reply> create_service(const std::string& ns, const std::string& body) {
    auto v = parse_body(body);
    if (!v) co_return error_reply(v.error());
    auto parsed = service_from_json(*v, ns);
    if (!parsed) co_return error_reply(parsed.error());
    Service s = std::move(parsed.value());
    if (s.meta.namespace_ != ns)
      co_return error_reply(Error::invalid(fmt::format(
          "metadata.namespace \"{}\" does not match the namespace \"{}\" of the request path",
          s.meta.namespace_, ns)));
    if (!s.traffic.empty()) {
      for (const auto& t : s.traffic)
        if (!t.latest_revision || !t.tag.empty())
          co_return error_reply(
              Error::invalid("spec.traffic: a new service can only route to its latest revision "
                             "(latestRevision: true, no tag)"));
    }
    auto existing = co_await offload(store_thread_.get_executor(), &Store::get_service, &store_, ns,
                                     s.meta.name);
    if (existing)
      co_return error_reply(
          Error::exists(fmt::format("service \"{}\" already exists in namespace \"{}\"; delete it "
                                    "first ('elafros service delete {}')",
                                    s.meta.name, ns, s.meta.name)));

    // Resolve the image to a digest now: the revision pins it.
    const std::string& reference = s.spec.container.image;
    Result<ImageRecord> image = Error::internal("unresolved");
    if (looks_like_transport(reference)) {
      image = co_await import(reference, "");
    } else {
      image = co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, reference);
      if (!image && image.error().code == ErrorCode::kNotFound)
        image = Error::invalid(fmt::format(
            "spec.template.spec.containers[0].image: image \"{}\" is not in the image store; give "
            "a reference such as oci:DIR:TAG, or import it first with 'elafros image import'",
            reference));
    }
    if (!image) co_return error_reply(image.error());

    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    s.meta.uid = new_uid();
    s.meta.generation = 1;
    s.meta.created_unix = now;
    Revision rev;
    rev.meta.name = s.spec.name.empty() ? revision_name(s.meta.name, 1) : s.spec.name;
    rev.meta.namespace_ = ns;
    rev.meta.uid = new_uid();
    rev.meta.generation = 1;
    rev.meta.created_unix = now;
    rev.meta.labels = {{"serving.knative.dev/service", s.meta.name},
                       {"serving.knative.dev/configuration", s.meta.name}};
    rev.service = s.meta.name;
    rev.spec = s.spec;
    rev.image_digest = image->digest;
    auto created =
        co_await offload(store_thread_.get_executor(), &Store::create_service, &store_, s, rev);
    if (!created) co_return error_reply(created.error());
    spdlog::info("created service {}/{} with revision {} (image {})", ns, s.meta.name,
                 rev.meta.name, image->digest);
    reconciler_.service_created(s, rev);
    co_return Reply{http::status::created, service_json(s)};
  }

  awaitable<Reply> delete_service(const std::string& ns, const std::string& name) {
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
  Reconciler& reconciler_;
  ApiInfo info_;
  stream_protocol::acceptor acceptor_;
  std::chrono::steady_clock::time_point started_;
};

ApiServer::ApiServer(asio::io_context& control, asio::thread_pool& store_thread,
                     asio::thread_pool& blocking, Store& store, ImageStore& images,
                     Reconciler& reconciler, ApiInfo info)
    : impl_(std::make_shared<Impl>(control, store_thread, blocking, store, images, reconciler,
                                   std::move(info))) {}
ApiServer::~ApiServer() = default;
Result<void> ApiServer::listen(const std::string& socket_path) {
  return impl_->listen(socket_path);
}
void ApiServer::start() {
  impl_->start();
}
void ApiServer::stop() {
  impl_->stop();
}

}  // namespace elafros
