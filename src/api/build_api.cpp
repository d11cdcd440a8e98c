// Builds in the API: admission against what a Build names, source uploads, and build logs.

#include "api/build_api.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <filesystem>
#include <random>

#include "api/log_follow.hpp"
#include "elafros/build.hpp"
#include "elafros/errno_text.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "log_collector.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace elafros::api {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

bool is_commit(const std::string& rev) {
  return rev.size() >= 7 && rev.size() <= 40 &&
         rev.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The uploaded body into a file, which the source store checks and keeps.
Result<std::string> store_upload(SourceArchives* sources, std::string dir, std::string body) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::random_device rd;
  std::string path = fmt::format("{}/upload-{:08x}.tar", dir, rd());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::internal(fmt::format("cannot write {}: {}", path, errno_text(errno)));
  const char* p = body.data();
  std::size_t left = body.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      fs::remove(path, ec);
      return Error::internal(fmt::format("cannot write {}: {}", path, errno_text(err)));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::close(fd);
  auto digest = sources->add(path);
  fs::remove(path, ec);
  return digest;
}

bool build_done(const json::object& o) {
  json::value s = json_path_value(o, ".status.conditions[?(@.type=='Succeeded')].status");
  return s.is_string() && (s.get_string() == "True" || s.get_string() == "False");
}

std::vector<std::string> step_names(const json::object& o) {
  std::vector<std::string> names;
  json::value steps = json_path_value(o, ".status.resolvedSteps");
  if (steps.is_array())
    for (const auto& s : steps.get_array())
      if (const json::object* so = s.if_object())
        if (const json::value* n = so->if_contains("name"); n && n->is_string())
          names.emplace_back(n->get_string());
  return names;
}

// The step index of a step container's id, <build>-<uid8>s<index>.
std::optional<std::size_t> step_index(const std::string& instance) {
  auto s = instance.rfind('s');
  if (s == std::string::npos) return std::nullopt;
  std::size_t index = 0;
  auto [end, ec] =
      std::from_chars(instance.data() + s + 1, instance.data() + instance.size(), index);
  if (ec != std::errc() || end != instance.data() + instance.size()) return std::nullopt;
  return index;
}

class BuildApi : public std::enable_shared_from_this<BuildApi> {
 public:
  BuildApi(asio::io_context& control, asio::thread_pool& store_thread, asio::thread_pool& blocking,
           Store& store, BuildApiParts parts)
      : control_(control),
        store_thread_(store_thread),
        blocking_(blocking),
        store_(store),
        parts_(std::move(parts)) {}

  awaitable<bool> upload(ApiRequest& req, Responder& r) {
    if (req.body.empty())
      co_return co_await r.send_error(Error::bad_request(
          "the body must be a tar archive of the source directory (Content-Type: "
          "application/x-tar); 'elafros build create --source DIR' sends one"));
    std::string body = std::move(req.body);
    std::string dir = parts_.scratch_dir;
    auto digest =
        co_await offload(blocking_.get_executor(), &store_upload, parts_.sources, dir, body);
    if (!digest) co_return co_await r.send_error(digest.error());
    json::value answer = json::object{{"digest", *digest}};
    co_return co_await r.send_json(201, answer);
  }

  awaitable<Result<json::object>> get_build(const std::string& ns, const std::string& name) {
    ObjectKey key{kBuildGroup, "Build", ns, name};
    auto o = co_await offload(store_thread_.get_executor(), &ObjectStore::get_object,
                              static_cast<ObjectStore*>(&store_), key);
    if (!o && o.error().code == ErrorCode::kNotFound)
      co_return Error::not_found(fmt::format(
          "build \"{}\" not found in namespace \"{}\"; 'elafros build list' shows the builds "
          "there",
          name, ns));
    co_return o;
  }

  // The logs of a Build as JSON lines (application/x-ndjson), each with its "step"; with
  // follow=true, live until the Build is over. Query: step, follow, tailLines.
  awaitable<bool> logs(ApiRequest& req, Responder& r) {
    std::string ns = req.param("namespace");
    std::string name = req.param("name");
    auto build = co_await get_build(ns, name);
    if (!build) co_return co_await r.send_error(build.error());
    auto follow_asked = req.query_flag("follow");
    if (!follow_asked) co_return co_await r.send_error(follow_asked.error());
    bool follow = *follow_asked && !build_done(*build);
    LogQuery query;
    query.namespace_ = ns;
    query.service = name;
    query.revision = name;
    if (auto t = req.query_value("tailLines"); t && !t->empty()) {
      std::size_t n = 0;
      auto [end, ec] = std::from_chars(t->data(), t->data() + t->size(), n);
      if (ec != std::errc() || end != t->data() + t->size())
        co_return co_await r.send_error(Error::bad_request(
            fmt::format("tailLines must be a whole number of at least 0, not \"{}\"", *t)));
      query.tail = n;
    }
    std::string uid = meta_string(*build, "uid");
    std::vector<std::string> names = step_names(*build);
    std::string step = req.query_value("step").value_or("");
    if (!step.empty()) {
      auto it = std::find(names.begin(), names.end(), step);
      if (it == names.end()) {
        std::string known;
        for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
        co_return co_await r.send_error(
            Error::not_found(fmt::format("build \"{}\" has no step \"{}\" (its steps: {})", name,
                                         step, known.empty() ? "none yet" : known)));
      }
      query.instance =
          build_step_container_id(name, uid, static_cast<std::size_t>(it - names.begin()));
    }
    auto ex = control_.get_executor();
    auto state = open_log_follow(*parts_.logs, query, follow, ex);
    while (!state->opened) co_await state->wake.async_wait(kAwait);
    if (!state->error.empty()) co_return co_await r.send_error(Error::precondition(state->error));
    if (follow) {
      // Over between the first read and the follow's start: the backlog has it all.
      auto again = co_await get_build(ns, name);
      if (!again || build_done(*again)) state->ended = true;
    }
    bool ok = co_await r.begin_stream(200, "application/x-ndjson");
    if (ok && follow)
      r.notify_close([state] {
        state->closed = true;
        state->wake.cancel();
      });
    while (ok) {
      std::string text;
      // Taken out first: lines that arrive while this coroutine waits go to the next batch.
      std::vector<LogLine> batch = state->take();
      bool unnamed = false;
      for (const auto& l : batch) {
        auto index = step_index(l.instance);
        unnamed = unnamed || (index && *index >= names.size());
      }
      if (unnamed) {  // a step the status read before did not list yet
        auto fresh = co_await get_build(ns, name);
        if (fresh) names = step_names(*fresh);
      }
      for (const auto& l : batch) {
        auto index = step_index(l.instance);
        json::object line = log_line_json(l);
        line["step"] = index && *index < names.size() ? names[*index] : l.instance;
        line.erase("service");
        line.erase("revision");
        line["build"] = name;
        text += json::serialize(line);
        text += '\n';
      }
      if (!text.empty()) ok = co_await r.send_chunk(std::move(text));
      if (!ok || !follow || state->closed || state->ended) break;
      // Lines that arrived while the chunk was sent woke no one: send them before waiting.
      if (!state->lines.empty()) continue;
      co_await state->wake.async_wait(kAwait);
    }
    if (state->id != 0) parts_.logs->close(state->id);
    if (!ok || state->closed) co_return false;
    bool ended = co_await r.end_stream();
    co_return ended;
  }

  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  asio::thread_pool& blocking_;
  Store& store_;
  BuildApiParts parts_;
};

}  // namespace

BuildHooks::BuildHooks(asio::thread_pool& store_thread, asio::thread_pool& blocking, Store& store,
                       BuildApiParts parts)
    : store_thread_(store_thread), blocking_(blocking), store_(store), parts_(std::move(parts)) {}

awaitable<Result<void>> BuildHooks::check_git(std::string url, std::string revision) {
  ProcessOptions po;
  po.timeout = std::chrono::seconds(20);
  std::vector<std::string> argv{"env", "GIT_TERMINAL_PROMPT=0", parts_.git, "ls-remote", "--", url};
  auto r = co_await offload(blocking_.get_executor(), &ProcessRunner::run, parts_.runner, argv, po);
  if (!r)
    co_return Error::invalid(fmt::format(
        "spec.source.git.url: cannot reach the repository \"{}\": {}", url, r.error().message));
  if (r->exit_code != 0) {
    std::string why = r->err;
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    if (auto nl = why.rfind('\n'); nl != std::string::npos && nl + 1 < why.size())
      why = why.substr(nl + 1);
    co_return Error::invalid(fmt::format(
        "spec.source.git.url: \"{}\" is not a git repository elafrosd can read: {}", url,
        why.empty() ? fmt::format("git ls-remote exited with {}", r->exit_code) : why));
  }
  if (revision.empty() || is_commit(revision)) co_return Result<void>{};
  const std::vector<std::string> refs{revision, "refs/heads/" + revision, "refs/tags/" + revision};
  bool found = false;
  for (const auto& ref : refs) found = found || r->out.find("\t" + ref + "\n") != std::string::npos;
  if (found) co_return Result<void>{};
  co_return Error::invalid(fmt::format(
      "spec.source.git.revision: \"{}\" has no branch or tag \"{}\"; give a branch, a tag or a "
      "commit",
      url, revision));
}

awaitable<Result<void>> BuildHooks::before_write(const KindInfo& kind, const json::object* old,
                                                 json::object& object, std::vector<ObjectWrite>&,
                                                 bool) {
  if (kind.kind != "Build" || old) co_return Result<void>{};
  auto b = build_from_object(object);
  if (!b) co_return b.error();
  std::optional<BuildTemplate> tmpl;
  if (b->template_) {
    bool cluster = b->template_->kind == "ClusterBuildTemplate";
    ObjectKey key{kBuildGroup, b->template_->kind, cluster ? "" : b->namespace_,
                  b->template_->name};
    auto o = co_await offload(store_thread_.get_executor(), &ObjectStore::get_object,
                              static_cast<ObjectStore*>(&store_), key);
    if (!o && o.error().code == ErrorCode::kNotFound)
      co_return Error::invalid(fmt::format(
          "spec.template.name: {} \"{}\" does not exist{}; 'elafros buildtemplate list' shows "
          "the templates",
          b->template_->kind, b->template_->name,
          cluster ? std::string() : fmt::format(" in namespace \"{}\"", b->namespace_)));
    if (!o) co_return o.error();
    auto t = build_template_from_object(*o);
    if (!t) co_return t.error();
    tmpl = std::move(*t);
  }
  auto steps = resolve_build_steps(*b, tmpl ? &*tmpl : nullptr);
  if (!steps) co_return steps.error();
  for (const auto& s : *steps) {
    auto image =
        co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, s.image);
    if (!image && s.image.find(':') == std::string::npos) {
      std::string latest = s.image + ":latest";
      image = co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, latest);
    }
    if (!image)
      co_return Error::invalid(fmt::format(
          "step \"{}\": image \"{}\" is not in the local image store; steps run local images "
          "only: import it first ('elafros image import REFERENCE --name {}')",
          s.name, s.image, s.image));
  }
  if (b->source.kind == BuildSource::Kind::kLocal && !parts_.sources->has(b->source.local_digest))
    co_return Error::invalid(fmt::format(
        "spec.source.local.digest: no source archive {} was uploaded; 'elafros build create "
        "--source DIR' uploads one",
        b->source.local_digest));
  if (b->source.kind == BuildSource::Kind::kGit) {
    std::string url = b->source.git_url, rev = b->source.git_revision;
    if (auto g = co_await check_git(url, rev); !g) co_return g.error();
  }
  co_return Result<void>{};
}

void add_build_routes(Router& router, asio::io_context& control, asio::thread_pool& store_thread,
                      asio::thread_pool& blocking, Store& store, WatchSource& /*watches*/,
                      BuildApiParts parts) {
  auto api = std::make_shared<BuildApi>(control, store_thread, blocking, store, std::move(parts));
  auto bind = [api](awaitable<bool> (BuildApi::*fn)(ApiRequest&, Responder&)) {
    return [api, fn](ApiRequest& req, Responder& r) { return (api.get()->*fn)(req, r); };
  };
  router.add("POST", "/apis/elafros.dev/v1/namespaces/{namespace}/buildsources",
             bind(&BuildApi::upload));
  router.add("GET", "/apis/elafros.dev/v1/namespaces/{namespace}/builds/{name}/logs",
             bind(&BuildApi::logs));
}

}  // namespace elafros::api
