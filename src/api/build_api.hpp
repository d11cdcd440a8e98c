#pragma once
// Builds in the API (docs/architecture.md, "Builds"): a Build is checked against what it names
// when it is written (its template and required parameters, its step images, its uploaded
// source, its git repository), so that a bad one is refused and nothing is created; source
// archives are uploaded; a Build's logs are read and followed per step.

#include "api/resource_api.hpp"
#include "api/router.hpp"
#include "elafros/build_backend.hpp"
#include "elafros/process_runner.hpp"
#include "elafros/store.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {
class LogCollector;
namespace api {

struct BuildApiParts {
  SourceArchives* sources = nullptr;
  LogCollector* logs = nullptr;     // the builds' collector
  ProcessRunner* runner = nullptr;  // git ls-remote
  std::string scratch_dir;          // uploads are written here first
  std::string git = "git";
};

class BuildHooks final : public KindHooks {
 public:
  BuildHooks(boost::asio::thread_pool& store_thread, boost::asio::thread_pool& blocking,
             Store& store, BuildApiParts parts);

  // KindHooks
  awaitable<Result<void>> before_write(const KindInfo& kind, const boost::json::object* old,
                                       boost::json::object& object, std::vector<ObjectWrite>& also,
                                       bool dry_run) override;
  awaitable<Result<void>> before_delete(const KindInfo&, const boost::json::object&) override {
    co_return Result<void>{};
  }
  void present(const KindInfo&, boost::json::object&) override {}

 private:
  awaitable<Result<void>> check_git(std::string url, std::string revision);

  boost::asio::thread_pool& store_thread_;
  boost::asio::thread_pool& blocking_;
  Store& store_;
  BuildApiParts parts_;
};

// POST …/namespaces/{ns}/buildsources (a tar body) → {"digest"}; GET …/builds/{name}/logs.
void add_build_routes(Router& router, boost::asio::io_context& control,
                      boost::asio::thread_pool& store_thread, boost::asio::thread_pool& blocking,
                      Store& store, WatchSource& watches, BuildApiParts parts);

}  // namespace api
}  // namespace elafros
