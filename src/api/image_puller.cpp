#include "api/image_puller.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "elafros/registry_reference.hpp"
#include "image_store.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros::api {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

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

}  // namespace

ImagePuller::ImagePuller(asio::io_context& control, asio::thread_pool& store_thread, Store& store,
                         ImageStore& images)
    : control_(control), store_thread_(store_thread), store_(store), images_(images) {}

std::shared_ptr<ImportJob> ImagePuller::start_import(const std::string& reference,
                                                     const std::string& name,
                                                     std::optional<RegistryCredentials> login) {
  // A pull with a login of its own is not joined to one with another (or none).
  std::string key = reference + "\n" + name + (login ? "\n" + login->username : "");
  if (auto it = imports_.find(key); it != imports_.end()) {
    spdlog::info("joining the import of {} already in progress", reference);
    return it->second;
  }
  auto job = std::make_shared<ImportJob>(control_.get_executor());
  imports_[key] = job;
  asio::co_spawn(control_, run(job, key, reference, name, std::move(login)), asio::detached);
  return job;
}

awaitable<void> ImagePuller::run(std::shared_ptr<ImportJob> job, std::string key,
                                 std::string reference, std::string name,
                                 std::optional<RegistryCredentials> login) {
  auto self = shared_from_this();
  // Progress comes from a worker thread; events are appended on the control thread.
  auto ex = control_.get_executor();
  PullProgressFn progress = [job, ex](const PullProgress& p) {
    asio::post(ex, [job, line = json::serialize(progress_json(p))] {
      job->events.push_back(line);
      job->wake.cancel();
    });
  };
  auto rec = co_await offload(work_.get_executor(), &ImageStore::import, &images_, reference, name,
                              progress, login);
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

awaitable<Result<ImageRecord>> ImagePuller::import(std::string reference, std::string name,
                                                   std::optional<RegistryCredentials> login) {
  auto job = start_import(reference, name, std::move(login));
  while (!job->result) co_await job->wake.async_wait(kAwait);
  co_return *job->result;
}

awaitable<Result<ImageRecord>> ImagePuller::resolve(std::string reference, std::string pull_policy,
                                                    std::optional<RegistryCredentials> login,
                                                    std::string field) {
  if (is_transport_reference(reference)) co_return co_await import(reference, "");
  auto image =
      co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, reference);
  // NAME@sha256:…, as a build's result is deployed: the stored image with that digest, under
  // that name or any other. Not stored: a registry reference pinned by digest, pulled below.
  if (auto at = reference.rfind("@sha256:"); !image && at != std::string::npos) {
    std::string name = reference.substr(0, at), digest = reference.substr(at + 1);
    auto named = co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, name);
    if (named && named->digest == digest) co_return named;
    auto all = co_await offload(store_thread_.get_executor(), &Store::list_images, &store_);
    if (all)
      for (auto& rec : *all)
        if (rec.digest == digest) co_return rec;
  }
  const bool always = pull_policy == "Always";
  auto registry = parse_registry_reference(reference);
  if (image && always && registry && image->source.rfind("docker://", 0) == 0) {
    // A pulled image named by its reference: pull it again, as Kubernetes' Always does.
    auto pulled = co_await import("docker://" + registry->str(), "", login);
    if (!pulled)
      co_return Error{pulled.error().code,
                      fmt::format("ImagePullFailed: imagePullPolicy is Always, and pulling \"{}\" "
                                  "failed: {}",
                                  reference, pulled.error().message)};
    co_return pulled;
  }
  if (!image && image.error().code == ErrorCode::kNotFound) {
    std::string message = fmt::format(
        "{}: image \"{}\" is not in the image store; give a reference such as oci:DIR:TAG, "
        "oci-archive:FILE or docker-archive:FILE, or import it first with 'elafros image import'",
        field, reference);
    // Not a local name: a registry reference, as Docker reads it. One pulled before is used
    // as it is (Docker's "missing" pull policy; 'elafros image pull' refreshes it).
    if (registry) {
      std::string canonical = registry->str();
      auto stored =
          co_await offload(store_thread_.get_executor(), &Store::get_image, &store_, canonical);
      if (stored && !always) co_return stored;
      if (pull_policy == "Never")
        co_return Error::invalid(fmt::format(
            "{}: image \"{}\" is not in the image store, and imagePullPolicy is Never; pull it "
            "first ('elafros image pull {}') or use another pull policy",
            field, reference, reference));
      std::string pull_ref = "docker://" + canonical;
      auto pulled = co_await import(pull_ref, "", login);
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

}  // namespace elafros::api
