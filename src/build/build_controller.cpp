#include "build/build_controller.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "controller_start.hpp"
#include "elafros/build.hpp"
#include "elafros/errno_text.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/prometheus_text.hpp"
#include "elafros/resource_json.hpp"
#include "elafros/usage.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace elafros {
namespace {

using asio::awaitable;
using asio::use_awaitable;

std::string rfc3339(std::chrono::system_clock::time_point t) {
  return format_rfc3339(
      std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

std::string seconds_text(std::chrono::milliseconds d) {
  return fmt::format("{:.3f}s", static_cast<double>(d.count()) / 1000);
}

// The Succeeded condition of a stored Build: its status and reason ("" when it has none).
std::pair<std::string, std::string> succeeded_of(const json::object& o) {
  const json::value* st = o.if_contains("status");
  const json::value* conds =
      st && st->is_object() ? st->get_object().if_contains("conditions") : nullptr;
  if (conds && conds->is_array())
    for (const auto& c : conds->get_array())
      if (const json::object* co = c.if_object())
        if (const json::value* t = co->if_contains("type");
            t && t->is_string() && t->get_string() == kSucceeded) {
          auto str = [co](const char* k) {
            const json::value* v = co->if_contains(k);
            return v && v->is_string() ? std::string(v->get_string()) : std::string();
          };
          return {str("status"), str("reason")};
        }
  return {"", ""};
}

std::string status_string(const json::object& o, const char* key) {
  const json::value* st = o.if_contains("status");
  const json::value* v = st && st->is_object() ? st->get_object().if_contains(key) : nullptr;
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// --- blocking helpers, run on the work pool ----------------------------------------------------

struct Dirs {
  std::string root, workspace, home, scripts, volumes, cache;
};

Result<void> make_dirs(Dirs d) {
  std::error_code ec;
  fs::remove_all(d.root, ec);
  for (const auto& p : {d.workspace, d.home, d.scripts, d.volumes, d.cache}) {
    fs::create_directories(p, ec);
    if (ec) return Error::internal(fmt::format("cannot create {}: {}", p, errno_text(ec)));
  }
  ::chmod(d.workspace.c_str(), 0777);
  ::chmod(d.home.c_str(), 0777);
  ::chmod(d.cache.c_str(), 0777);
  return {};
}

Result<void> remove_dir(std::string dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return Error::internal(fmt::format("cannot remove {}: {}", dir, errno_text(ec)));
  return {};
}

Result<void> write_script(std::string path, std::string script) {
  if (script.rfind("#!", 0) != 0) script = "#!/bin/sh\nset -e\n" + script;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << script;
  out.close();
  if (!out) return Error::internal(fmt::format("cannot write the script {}", path));
  ::chmod(path.c_str(), 0755);
  return {};
}

Result<void> make_dir(std::string path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Error::internal(fmt::format("cannot create {}: {}", path, errno_text(ec)));
  ::chmod(path.c_str(), 0777);
  return {};
}

// The Procfile's web: process, and whether .profile.d holds scripts to run first.
struct Launch {
  std::string web;
  bool profile_d = false;
};

Launch read_launch(std::string dir) {
  Launch l;
  std::ifstream in(dir + "/Procfile");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("web:", 0) == 0) {
      l.web = line.substr(4);
      while (!l.web.empty() && l.web.front() == ' ') l.web.erase(0, 1);
      break;
    }
  }
  std::error_code ec;
  l.profile_d = fs::is_directory(dir + "/.profile.d", ec);
  return l;
}

using PushFn =
    std::function<Result<std::string>(const std::string& digest, const std::string& destination)>;
Result<std::string> push_image(PushFn push, std::string digest, std::string destination) {
  return push(digest, destination);
}

// The last `lines` lines of the text.
std::string last_lines(const std::string& text, std::size_t lines) {
  std::size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  std::size_t at = end;
  for (std::size_t n = 0; at > 0; --at)
    if (text[at - 1] == '\n' && ++n == lines) break;
  return text.substr(at, end - at);
}

}  // namespace

class BuildController::Impl : public std::enable_shared_from_this<BuildController::Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, asio::thread_pool& work,
       Store& store, WatchSource& watches, ObjectCommitter& committer, ContainerRuntime& runtime,
       ProcessRunner& runner, SourceArchives& sources, ImageExporter& exporter,
       BuildControllerOptions options)
      : control_(control),
        store_thread_(store_thread),
        work_(work),
        store_(store),
        watches_(watches),
        committer_(committer),
        runtime_(runtime),
        runner_(runner),
        sources_(sources),
        exporter_(exporter),
        options_(std::move(options)) {
    if (!options_.clock) options_.clock = std::make_shared<RealClock>();
    if (options_.max_concurrent < 1) options_.max_concurrent = 1;
  }

  // Counted on the control thread, read by /metrics from any thread.
  struct Counters {
    std::atomic<std::uint64_t> started{0};
    std::atomic<int> running{0}, queued{0};
    static constexpr const char* kReasons[] = {"Succeeded", "Failed", "BuildTimeout",
                                               "BuildCancelled", "DaemonRestarted"};
    std::atomic<std::uint64_t> finished[5] = {};
    void finish(const std::string& reason) {
      for (std::size_t i = 0; i < 5; ++i)
        if (reason == kReasons[i]) ++finished[i];
    }
  };
  Counters counters_;

  struct Run {
    Build build;
    std::vector<BuildStep> steps;  // what runs, the git clone (image "") first
    std::string key;               // ns/name
    Dirs dirs;
    json::array step_states;
    json::array completed;
    std::chrono::system_clock::time_point started;
    bool running = false;
    bool cancelled = false;
    bool deleted = false;
    bool timed_out = false;
    std::string container;  // the running step's, while one runs
    std::string tail;       // the last lines of the step that failed
    std::unique_ptr<asio::steady_timer> deadline;
  };
  using RunPtr = std::shared_ptr<Run>;

  // --- start and the feed -----------------------------------------------------------------------

  awaitable<Result<void>> load(std::int64_t from) {
    // Containers of builds a stop or crash interrupted: nothing resumes them.
    auto stale = co_await offload(work_.get_executor(), &ContainerRuntime::list, &runtime_);
    for (const auto& id : stale) {
      auto r = co_await offload(work_.get_executor(), &ContainerRuntime::remove, &runtime_, id);
      if (!r)
        spdlog::warn("removing the build container {} failed: {}", id, r.error().message);
      else
        spdlog::info("removed the container {} of a build the daemon restarted during", id);
    }
    std::string work_dir = options_.data_dir + "/work";
    (void)co_await offload(work_.get_executor(), &remove_dir, work_dir);
    ObjectQuery q;
    q.group = kBuildGroup;
    q.kind = "Build";
    auto list = co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects,
                                 static_cast<ObjectStore*>(&store_), q);
    if (!list) co_return list.error();
    for (auto& o : list->items) {
      auto [status, reason] = succeeded_of(o);
      if (status == "True" || status == "False") continue;
      auto b = build_from_object(o);
      if (!b) {
        spdlog::warn("build {}/{} cannot be read: {}", meta_string(o, "namespace"),
                     meta_string(o, "name"), b.error().message);
        continue;
      }
      if (!status_string(o, "startTime").empty()) {
        json::object st = base_status(o);
        counters_.finish("DaemonRestarted");
        finish_status(st, "DaemonRestarted",
                      "elafrosd stopped or restarted while this build ran; its containers were "
                      "removed. Builds are not resumed: delete it and create it again to rebuild",
                      false);
        write_status(*b, std::move(st));
        if (options_.logs_finished) options_.logs_finished(b->namespace_, b->name, [] {});
        continue;
      }
      enqueue(std::move(*b));
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    auto ex = control_.get_executor();
    auto id = watches_.watch(from, [weak, ex](const ObjectEvent& e) {
      if (e.group != kBuildGroup || e.kind != "Build") return;
      asio::post(ex, [weak, e] {
        if (auto self = weak.lock()) self->on_event(e);
      });
    });
    if (!id) co_return id.error();
    watch_id_ = *id;
    pump();
    co_return Result<void>{};
  }

  void on_event(const ObjectEvent& e) {
    if (stopped_) return;
    std::string key = meta_string(e.object, "namespace") + "/" + meta_string(e.object, "name");
    std::string uid = meta_string(e.object, "uid");
    if (e.type == WatchEventType::kDeleted) {
      bool queued = remove_queued(key);
      if (auto it = runs_.find(key); it != runs_.end() && it->second->build.uid == uid) {
        it->second->deleted = true;
        stop_step(it->second);
      } else if (options_.logs_removed) {
        options_.logs_removed(meta_string(e.object, "namespace"), meta_string(e.object, "name"));
      }
      (void)queued;
      return;
    }
    auto b = build_from_object(e.object);
    if (!b) return;
    auto [status, reason] = succeeded_of(e.object);
    if (e.type == WatchEventType::kAdded) {
      if (status.empty()) enqueue(std::move(*b));
      pump();
      return;
    }
    if (!b->cancelled || status == "True" || status == "False") return;
    if (auto it = runs_.find(key); it != runs_.end() && it->second->build.uid == uid) {
      if (!it->second->cancelled) {
        it->second->cancelled = true;
        stop_step(it->second);
      }
    } else if (remove_queued(key)) {
      json::object st = base_status(e.object);
      counters_.finish("BuildCancelled");
      finish_status(st, "BuildCancelled", "the build was cancelled before it started", false);
      write_status(*b, std::move(st));
      publish_queue();
    }
  }

  void enqueue(Build b) {
    // Listed at start and replayed by the feed: once is enough.
    for (const auto& q : queue_)
      if (q.uid == b.uid) return;
    for (const auto& [key, run] : runs_)
      if (run->build.uid == b.uid) return;
    // A Build created again under the name of one that still stops waits for it (pump()).
    if (b.cancelled) {
      json::object st;
      counters_.finish("BuildCancelled");
      finish_status(st, "BuildCancelled", "the build was cancelled before it started", false);
      write_status(b, std::move(st));
      return;
    }
    queue_.push_back(std::move(b));
    publish_queue();
  }

  bool remove_queued(const std::string& key) {
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
      if (it->namespace_ + "/" + it->name == key) {
        queue_.erase(it);
        return true;
      }
    return false;
  }

  // Every waiting Build's status says how many are ahead of it.
  void publish_queue() {
    int ahead = 0;
    for (const auto& b : queue_) {
      json::object st;
      json::array conds;
      Condition c{kSucceeded};
      c.status = "Unknown";
      c.reason = "Pending";
      c.message = fmt::format(
          "waiting for a build slot: {} build(s) run at once (build-max-concurrent), {} "
          "running, {} waiting ahead of this one",
          options_.max_concurrent, running_, ahead);
      c.last_transition_unix = unix_now();
      conds.push_back(condition_to_json(c));
      st["conditions"] = std::move(conds);
      st["queuePosition"] = ahead;
      write_status(b, std::move(st));
      ++ahead;
    }
    counters_.queued = static_cast<int>(queue_.size());
  }

  void pump() {
    bool started = false;
    while (!stopped_ && running_ < options_.max_concurrent && !queue_.empty()) {
      Build b = std::move(queue_.front());
      queue_.pop_front();
      std::string key = b.namespace_ + "/" + b.name;
      if (runs_.count(key)) {  // its namesake still stops: after it
        queue_.push_back(std::move(b));
        break;
      }
      auto run = std::make_shared<Run>();
      run->build = std::move(b);
      run->key = key;
      runs_[key] = run;
      ++running_;
      ++counters_.started;
      started = true;
      asio::co_spawn(control_, execute(shared_from_this(), run), asio::detached);
    }
    if (started) publish_queue();
    counters_.running = running_;
  }

  // --- one build ----------------------------------------------------------------------------

  awaitable<void> execute(std::shared_ptr<Impl> self, RunPtr run) {
    (void)self;
    const Build& b = run->build;
    run->started = options_.clock->wall();
    std::string outcome = "Failed";
    std::string message;
    auto resolved = co_await resolve_steps(b);
    if (!resolved) {
      message = resolved.error().message;
    } else {
      run->steps = std::move(*resolved);
      if (b.source.kind == BuildSource::Kind::kGit) {
        BuildStep git;
        git.name = "git-source";
        run->steps.insert(run->steps.begin(), std::move(git));
      }
      run->deadline = std::make_unique<asio::steady_timer>(control_);
      run->deadline->expires_after(b.timeout);
      std::weak_ptr<Run> weak_run = run;
      run->deadline->async_wait([this, weak_run](boost::system::error_code ec) {
        auto r = weak_run.lock();
        if (ec || !r || !r->running) return;
        r->timed_out = true;
        stop_step(r);
      });
      run->running = true;
      write_running(run);
      auto result = co_await run_steps(run);
      if (result) {
        outcome = "Succeeded";
        message = result.value();
      } else {
        message = result.error().message;
        if (run->deleted)
          outcome = "Deleted";
        else if (run->cancelled)
          outcome = "BuildCancelled";
        else if (run->timed_out)
          outcome = "BuildTimeout";
      }
      run->running = false;
      run->deadline->cancel();
    }
    (void)co_await offload(work_.get_executor(), &remove_dir, run->dirs.root);
    if (outcome != "Deleted") {
      counters_.finish(outcome);
      json::object st = running_status(*run);
      finish_status(st, outcome, message, outcome == "Succeeded");
      if (auto it = built_.find(run->key); it != built_.end()) {
        st["imageDigest"] = it->second.digest;
        st["image"] = it->second.name;
        built_.erase(it);
      }
      if (auto it = pushed_.find(run->key); it != pushed_.end()) {
        st["pushed"] = it->second;
        pushed_.erase(it);
      }
      write_status(b, std::move(st));
      record_build_usage(b.namespace_, run->started);
      spdlog::info("build {}: {}{}", run->key, outcome,
                   outcome == "Succeeded" ? "" : ": " + message);
    }
    std::string ns = b.namespace_, name = b.name;
    bool deleted = run->deleted;
    runs_.erase(run->key);
    --running_;
    counters_.running = running_;
    auto after = [weak = weak_from_this(), ns, name, deleted] {
      auto s = weak.lock();
      if (s && deleted && s->options_.logs_removed) s->options_.logs_removed(ns, name);
    };
    if (options_.logs_finished)
      options_.logs_finished(ns, name, after);
    else
      after();
    pump();
  }

  awaitable<Result<std::vector<BuildStep>>> resolve_steps(const Build& b) {
    if (!b.template_) co_return resolve_build_steps(b, nullptr);
    ObjectKey key{kBuildGroup, b.template_->kind,
                  b.template_->kind == "ClusterBuildTemplate" ? "" : b.namespace_,
                  b.template_->name};
    auto o = co_await offload(store_thread_.get_executor(), &ObjectStore::get_object,
                              static_cast<ObjectStore*>(&store_), key);
    if (!o)
      co_return Error::not_found(fmt::format("the {} \"{}\" does not exist (any more)",
                                             b.template_->kind, b.template_->name));
    auto t = build_template_from_object(*o);
    if (!t) co_return t.error();
    co_return resolve_build_steps(b, &*t);
  }

  // The steps in order; the output image once they all succeeded. The value is the message.
  awaitable<Result<std::string>> run_steps(const RunPtr& run) {
    const Build& b = run->build;
    std::string root = options_.data_dir + "/work/" + b.uid;
    run->dirs = Dirs{root,
                     root + "/workspace",
                     root + "/home",
                     root + "/scripts",
                     root + "/volumes",
                     fmt::format("{}/cache/{}/{}", options_.data_dir, b.namespace_,
                                 b.cache.empty() ? b.name : b.cache)};
    if (auto r = co_await offload(work_.get_executor(), &make_dirs, run->dirs); !r)
      co_return r.error();
    if (b.source.kind == BuildSource::Kind::kLocal) {
      auto r = co_await offload(work_.get_executor(), &SourceArchives::unpack, &sources_,
                                b.source.local_digest, run->dirs.workspace);
      if (!r)
        co_return Error::invalid(fmt::format("unpacking the source failed: {}", r.error().message));
    }
    std::string workspace = run->dirs.workspace;
    if (!b.source.sub_path.empty()) workspace += "/" + b.source.sub_path;
    for (std::size_t i = 0; i < run->steps.size(); ++i) {
      if (run->cancelled || run->timed_out || run->deleted) co_return stopped_error(*run, "");
      const BuildStep& step = run->steps[i];
      auto started = options_.clock->wall();
      json::object state{{"name", step.name},
                         {"running", json::object{{"startedAt", rfc3339(started)}}}};
      run->step_states.push_back(state);
      write_running(run);
      Result<int> exit = Error::internal("not run");
      if (step.image.empty())
        exit = co_await git_clone(run, i);
      else
        exit = co_await run_container(run, i, workspace);
      auto finished = options_.clock->wall();
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(finished - started);
      std::string tail;
      if (exit && *exit != 0) tail = run->tail;
      json::object terminated{{"exitCode", exit ? *exit : -1},
                              {"reason", exit && *exit == 0 ? "Completed" : "Error"},
                              {"startedAt", rfc3339(started)},
                              {"finishedAt", rfc3339(finished)}};
      run->step_states.back() = json::object{{"name", step.name},
                                             {"terminated", std::move(terminated)},
                                             {"duration", seconds_text(took)}};
      if (exit && *exit == 0) run->completed.emplace_back(step.name);
      write_running(run);
      if (run->cancelled || run->timed_out || run->deleted)
        co_return stopped_error(*run, step.name);
      if (!exit)
        co_return Error::internal(
            fmt::format("step \"{}\" could not run: {}", step.name, exit.error().message));
      if (*exit != 0) {
        std::string msg = fmt::format("step \"{}\" exited with code {}", step.name, *exit);
        if (!tail.empty())
          msg += fmt::format("; its last lines:\n{}\n", tail);
        else
          msg += "; ";
        msg += fmt::format("full logs: elafros build logs {} --step {}{}", b.name, step.name,
                           b.namespace_ == "default" ? "" : " -n " + b.namespace_);
        co_return Error::invalid(msg);
      }
    }
    if (b.output.image.empty()) co_return std::string("all steps succeeded");
    co_return co_await export_output(run, workspace);
  }

  static Error stopped_error(const Run& run, std::string_view step) {
    std::string during = step.empty() ? "" : fmt::format(" during step \"{}\"", step);
    if (run.deleted) return Error::invalid("the build was deleted" + during);
    if (run.cancelled) return Error::invalid("the build was cancelled" + during);
    return Error::invalid(fmt::format("the build ran past its timeout of {}{}",
                                      format_go_duration(run.build.timeout), during));
  }

  awaitable<Result<int>> git_clone(const RunPtr& run, std::size_t index) {
    const Build& b = run->build;
    std::string id = build_step_container_id(b.name, b.uid, index);
    ProcessOptions po;
    std::pair<int, int> fds{-1, -1};
    if (options_.open_step_log) fds = options_.open_step_log(b.namespace_, b.name, id);
    po.stdout_fd = fds.first;
    po.stderr_fd = fds.second;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        b.timeout - (options_.clock->wall() - run->started));
    po.timeout = std::max(left, std::chrono::milliseconds(1));
    std::vector<std::string> clone{
        "env", "GIT_TERMINAL_PROMPT=0", options_.git,       "clone", "--no-hardlinks",
        "--",  b.source.git_url,        run->dirs.workspace};
    auto r = co_await offload(work_.get_executor(), &ProcessRunner::run, &runner_, clone, po);
    if (r && r->exit_code == 0 && !b.source.git_revision.empty()) {
      std::vector<std::string> checkout{
          "env", "GIT_TERMINAL_PROMPT=0",     options_.git, "-C",      run->dirs.workspace,
          "-c",  "advice.detachedHead=false", "checkout",   "--quiet", b.source.git_revision};
      r = co_await offload(work_.get_executor(), &ProcessRunner::run, &runner_, checkout, po);
    }
    if (fds.first >= 0) ::close(fds.first);
    if (fds.second >= 0) ::close(fds.second);
    if (options_.close_step_log) options_.close_step_log(id);
    if (!r) {
      if (r.error().code == ErrorCode::kUnavailable) run->timed_out = true;
      co_return r.error();
    }
    if (r->exit_code != 0) run->tail = co_await tail_of(id);
    co_return r->exit_code;
  }

  awaitable<std::string> tail_of(const std::string& id) {
    std::string text = co_await offload(work_.get_executor(), &ContainerRuntime::tail_logs,
                                        &runtime_, id, std::size_t{10});
    co_return last_lines(text, 10);
  }

  awaitable<Result<int>> run_container(const RunPtr& run, std::size_t index,
                                       const std::string& workspace) {
    const Build& b = run->build;
    const BuildStep& step = run->steps[index];
    auto image =
        co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, step.image);
    if (!image && step.image.find(':') == std::string::npos) {
      std::string latest = step.image + ":latest";
      image = co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, latest);
    }
    if (!image)
      co_return Error::not_found(fmt::format(
          "image \"{}\" is not in the local image store; import it with 'elafros image import'",
          step.image));
    LaunchSpec spec;
    spec.container_id = build_step_container_id(b.name, b.uid, index);
    spec.namespace_ = b.namespace_;
    spec.service = b.name;
    spec.revision = step.name;
    spec.image_digest = image->digest;
    spec.build_step = true;
    ContainerSpec& c = spec.container;
    c.command = step.command;
    c.args = step.args;
    if (!step.script.empty()) {
      std::string path = fmt::format("{}/{}", run->dirs.scripts, index);
      if (auto w = co_await offload(work_.get_executor(), &write_script, path, step.script); !w)
        co_return w.error();
      c.command = {fmt::format("/builder/scripts/{}", index)};
    }
    c.env.push_back({"HOME", kBuilderHome});
    for (const auto& e : step.env) c.env.push_back(e);
    c.working_dir = step.working_dir.empty() ? kWorkspaceDir : step.working_dir;
    c.limits.cpu = options_.step_cpu;
    c.limits.memory = options_.step_memory;
    spec.binds = {{workspace, kWorkspaceDir, false},
                  {run->dirs.home, kBuilderHome, false},
                  {run->dirs.cache, kCacheDir, false},
                  {run->dirs.scripts, "/builder/scripts", true}};
    for (const auto& m : step.volume_mounts) {
      std::string dir = run->dirs.volumes + "/" + m.name;
      if (auto r = co_await offload(work_.get_executor(), &make_dir, dir); !r) co_return r.error();
      spec.binds.push_back({dir, m.mount_path, false});
    }
    run->container = spec.container_id;
    auto pid = co_await offload(work_.get_executor(), &ContainerRuntime::start, &runtime_, spec);
    if (!pid) {
      run->container.clear();
      (void)co_await offload(work_.get_executor(), &ContainerRuntime::remove, &runtime_,
                             spec.container_id);
      co_return pid.error();
    }
    int code = co_await wait_exit(run, *pid);
    if (code != 0) run->tail = co_await tail_of(spec.container_id);
    auto removed = co_await offload(work_.get_executor(), &ContainerRuntime::remove, &runtime_,
                                    spec.container_id);
    for (int attempt = 0; !removed && attempt < 5; ++attempt) {
      asio::steady_timer pause(control_);
      pause.expires_after(std::chrono::milliseconds(200));
      boost::system::error_code ec;
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      removed = co_await offload(work_.get_executor(), &ContainerRuntime::remove, &runtime_,
                                 spec.container_id);
    }
    if (!removed)
      spdlog::error("build {}: removing the container {} failed: {}", run->key, spec.container_id,
                    removed.error().message);
    run->container.clear();
    co_return code;
  }

  // The exit code of the step's init process (128+N when killed by signal N), watched through
  // a pidfd; it is our child (the daemon is a subreaper), so it is reaped here.
  awaitable<int> wait_exit(const RunPtr& run, int pid) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) co_return -1;  // already gone and reaped
    if (run->cancelled || run->timed_out || run->deleted) stop_step(run);
    asio::posix::stream_descriptor pidfd(control_, fd);
    boost::system::error_code ec;
    co_await pidfd.async_wait(asio::posix::stream_descriptor::wait_read,
                              asio::redirect_error(use_awaitable, ec));
    siginfo_t info{};
    int code = -1;
    if (::waitid(P_PIDFD, static_cast<id_t>(fd), &info, WEXITED | WNOHANG) == 0 && info.si_pid != 0)
      code = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
    co_return code;
  }

  // Kills the running step's container (its exit then ends the wait).
  void stop_step(const RunPtr& run) {
    if (run->container.empty()) return;
    asio::post(work_, [this, id = run->container] { (void)runtime_.kill(id, SIGKILL); });
  }

  awaitable<Result<std::string>> export_output(const RunPtr& run, const std::string& workspace) {
    const Build& b = run->build;
    const BuildOutput& out = b.output;
    std::string rel = out.path.substr(std::string_view(kWorkspaceDir).size());
    if (out.path.rfind(kWorkspaceDir, 0) != 0 || (!rel.empty() && rel[0] != '/'))
      co_return Error::invalid(fmt::format(
          "spec.output.path \"{}\" is not under /workspace, where the steps' results are kept",
          out.path));
    std::string base_name = out.base;
    if (base_name.empty())
      for (auto it = run->steps.rbegin(); it != run->steps.rend() && base_name.empty(); ++it)
        base_name = it->image;
    auto base =
        co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, base_name);
    if (!base && base_name.find(':') == std::string::npos) {
      std::string latest = base_name + ":latest";
      base = co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, latest);
    }
    if (!base)
      co_return Error::not_found(fmt::format(
          "the base image \"{}\" is not in the local image store; import it first", base_name));
    ImageExport spec;
    spec.base_digest = base->digest;
    spec.source_dir = workspace + rel;
    spec.image_path = out.path;
    spec.name = out.image;
    // What made the layer, not which Build: the same inputs give the same image.
    spec.history = b.template_
                       ? fmt::format("elafros build: {} {}", b.template_->kind, b.template_->name)
                       : fmt::format("elafros build: {} step(s)", run->steps.size());
    spec.entrypoint = out.entrypoint;
    spec.cmd = out.cmd;
    spec.env = out.env;
    spec.working_dir = out.working_dir;
    spec.user = out.user;
    if (!out.entrypoint && !out.cmd) {
      Launch launch = co_await offload(work_.get_executor(), &read_launch, spec.source_dir);
      if (!launch.web.empty()) {
        std::string profile =
            launch.profile_d
                ? fmt::format("for f in {}/.profile.d/*.sh; do [ -r \"$f\" ] && . \"$f\"; done; ",
                              out.path)
                : "";
        spec.entrypoint = std::vector<std::string>{"/bin/sh", "-c", profile + "exec " + launch.web};
        spec.cmd = std::vector<std::string>{};
        if (spec.working_dir.empty()) spec.working_dir = out.path;
      }
    }
    auto exported =
        co_await offload(work_.get_executor(), &ImageExporter::export_image, &exporter_, spec);
    if (!exported)
      co_return Error{exported.error().code,
                      fmt::format("exporting the image failed: {}", exported.error().message)};
    if (auto put = co_await offload(store_thread_.get_executor(), &Store::put_image, &store_,
                                    exported->record);
        !put)
      co_return put.error();
    built_[run->key] = exported->record;
    if (options_.built) options_.built(b.namespace_, b.name, exported->record);
    std::string pushed;
    if (!out.push.empty()) {
      if (!options_.push) co_return Error::precondition("this daemon cannot push images");
      auto r = co_await offload(work_.get_executor(), &push_image, options_.push,
                                exported->record.digest, out.push);
      if (!r)
        co_return Error{r.error().code, fmt::format("the image was stored as {}, but {}",
                                                    exported->record.name, r.error().message)};
      pushed = fmt::format("; pushed to {} ({})", out.push, *r);
      pushed_[run->key] = out.push;
    }
    co_return fmt::format("stored image {} ({}){}{}", exported->record.name,
                          exported->record.digest,
                          exported->layer_existed ? "; its layer was stored already" : "", pushed);
  }

  // --- status -------------------------------------------------------------------------------

  std::int64_t unix_now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(
               options_.clock->wall().time_since_epoch())
        .count();
  }

  // What a status rewrite keeps of the stored one.
  static json::object base_status(const json::object& o) {
    const json::value* st = o.if_contains("status");
    return st && st->is_object() ? st->get_object() : json::object{};
  }

  json::object running_status(const Run& run) {
    json::object st;
    st["startTime"] = rfc3339(run.started);
    json::array steps;
    for (const auto& s : run.steps)
      steps.push_back(
          s.image.empty()
              ? json::object{{"name", s.name},
                             {"git", json::object{{"url", run.build.source.git_url},
                                                  {"revision", run.build.source.git_revision}}}}
              : build_step_to_json(s));
    st["resolvedSteps"] = std::move(steps);
    st["stepStates"] = run.step_states;
    st["stepsCompleted"] = run.completed;
    st["queuePosition"] = nullptr;
    return st;
  }

  void write_running(const RunPtr& run) {
    json::object st = running_status(*run);
    Condition c{kSucceeded};
    c.status = "Unknown";
    c.reason = "Running";
    std::string step = run->step_states.empty()
                           ? std::string("preparing the workspace")
                           : fmt::format("step {}/{}", run->step_states.size(), run->steps.size());
    c.message = fmt::format("running {}", step);
    c.last_transition_unix =
        std::chrono::duration_cast<std::chrono::seconds>(run->started.time_since_epoch()).count();
    st["conditions"] = json::array{condition_to_json(c)};
    write_status(run->build, std::move(st));
  }

  void finish_status(json::object& st, const std::string& reason, const std::string& message,
                     bool ok) {
    Condition c{kSucceeded};
    c.status = ok ? "True" : "False";
    c.reason = reason;
    c.message = message;
    c.last_transition_unix = unix_now();
    st["conditions"] = json::array{condition_to_json(c)};
    st["completionTime"] = rfc3339(options_.clock->wall());
    st["queuePosition"] = nullptr;
  }

  // Usage: the build's run, charged to its namespace (docs/architecture.md, "Usage").
  void record_build_usage(const std::string& ns, std::chrono::system_clock::time_point started) {
    auto now = options_.clock->wall();
    UsageSample u;
    u.ns = ns;
    u.t_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    u.build_ms = std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(now - started).count());
    asio::post(store_thread_, [this, u] {
      if (auto r = store_.record_usage({u}); !r)
        spdlog::warn("recording the usage of a build failed: {}", r.error().message);
    });
  }

  void write_status(const Build& b, json::object status) {
    status["observedGeneration"] = b.generation;
    json::object patch{{"metadata", json::object{{"name", b.name}, {"namespace", b.namespace_}}},
                       {"status", std::move(status)}};
    std::string what = b.namespace_ + "/" + b.name;
    committer_.commit({{ObjectWrite::Op::kUpdateStatus, kBuildGroup, "Build", std::move(patch), 0}},
                      [what](Result<std::vector<ObjectEvent>> r) {
                        if (!r && r.error().code != ErrorCode::kNotFound)
                          spdlog::warn("writing the status of build {} failed: {}", what,
                                       r.error().message);
                      });
  }

  void stop() {
    stopped_ = true;
    if (watch_id_) watches_.unwatch(watch_id_);
    watch_id_ = 0;
    for (auto& [k, run] : runs_)
      if (run->deadline) run->deadline->cancel();
  }

  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  asio::thread_pool& work_;
  Store& store_;
  WatchSource& watches_;
  ObjectCommitter& committer_;
  ContainerRuntime& runtime_;
  ProcessRunner& runner_;
  SourceArchives& sources_;
  ImageExporter& exporter_;
  BuildControllerOptions options_;
  std::deque<Build> queue_;
  std::map<std::string, RunPtr> runs_;
  std::map<std::string, ImageRecord> built_;
  std::map<std::string, std::string> pushed_;  // where a build's image was pushed
  int running_ = 0;
  bool stopped_ = false;
  std::uint64_t watch_id_ = 0;
};

BuildController::BuildController(asio::io_context& control, asio::thread_pool& store_thread,
                                 asio::thread_pool& work, Store& store, WatchSource& watches,
                                 ObjectCommitter& committer, ContainerRuntime& runtime,
                                 ProcessRunner& runner, SourceArchives& sources,
                                 ImageExporter& exporter, BuildControllerOptions options)
    : impl_(std::make_shared<Impl>(control, store_thread, work, store, watches, committer, runtime,
                                   runner, sources, exporter, std::move(options))) {}

BuildController::~BuildController() {
  impl_->stop();
}

void BuildController::start(std::int64_t from, std::function<void(Result<void>)> done) {
  spawn_load(impl_->control_, impl_, from, std::move(done));
}

void BuildController::stop() {
  impl_->stop();
}

std::string BuildController::metrics() const {
  const auto& c = impl_->counters_;
  PrometheusText t;
  t.family("elafros_builds_started_total", "counter", "Builds that started running.");
  t.sample("elafros_builds_started_total", "", static_cast<double>(c.started.load()));
  t.family("elafros_builds_finished_total", "counter",
           "Builds that ended, by the reason of their Succeeded condition.");
  for (std::size_t i = 0; i < 5; ++i)
    t.sample("elafros_builds_finished_total",
             fmt::format("reason=\"{}\"", Impl::Counters::kReasons[i]),
             static_cast<double>(c.finished[i].load()));
  t.family("elafros_builds_running", "gauge", "Builds running now.");
  t.sample("elafros_builds_running", "", c.running.load());
  t.family("elafros_builds_queued", "gauge", "Builds waiting for a slot (build-max-concurrent).");
  t.sample("elafros_builds_queued", "", c.queued.load());
  return t.take();
}

}  // namespace elafros
