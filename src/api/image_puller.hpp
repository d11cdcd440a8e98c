#pragma once
// Image imports and pulls, coalesced per reference, and the resolution of a revision's image
// reference to a stored image (docs/architecture.md, "Images"). Used by the image endpoints and
// by the serving hooks, which pin the digest in each new revision. Runs on the control thread;
// the work itself runs on a pool of its own, so a long download never delays a cold start.

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/api_request.hpp"
#include "elafros/store.hpp"
#include "registry_credentials.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros {

class ImageStore;

namespace api {

// An import or pull in progress. Requests for the same reference while it runs wait for it
// instead of starting another; each follows its progress events.
struct ImportJob {
  explicit ImportJob(const boost::asio::any_io_executor& ex)
      : wake(ex, std::chrono::steady_clock::time_point::max()) {}
  std::vector<std::string> events;  // progress, as JSON lines, in order
  std::optional<Result<ImageRecord>> result;
  boost::asio::steady_timer wake;  // cancelled on every event and at the end
};

class ImagePuller : public std::enable_shared_from_this<ImagePuller> {
 public:
  ImagePuller(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
              Store& store, ImageStore& images);

  // `login`: for a pull, used instead of the daemon's login (a revision's imagePullSecrets).
  std::shared_ptr<ImportJob> start_import(const std::string& reference, const std::string& name,
                                          std::optional<RegistryCredentials> login = {});
  awaitable<Result<ImageRecord>> import(std::string reference, std::string name,
                                        std::optional<RegistryCredentials> login = {});
  // A revision's image: a transport reference is imported, a stored name is used, a registry
  // reference is pulled as its imagePullPolicy says: unless it was pulled before ("" and
  // IfNotPresent), every time (Always), or never (Never).
  // `field` names the image in errors (spec.template.spec.containers[N].image).
  awaitable<Result<ImageRecord>> resolve(std::string reference, std::string pull_policy,
                                         std::optional<RegistryCredentials> login,
                                         std::string field);
  // Pulls, imports and prunes run here.
  boost::asio::thread_pool& pool() { return work_; }

 private:
  awaitable<void> run(std::shared_ptr<ImportJob> job, std::string key, std::string reference,
                      std::string name, std::optional<RegistryCredentials> login);

  boost::asio::io_context& control_;
  boost::asio::thread_pool& store_thread_;
  Store& store_;
  ImageStore& images_;
  boost::asio::thread_pool work_{2};
  std::map<std::string, std::shared_ptr<ImportJob>> imports_;  // in progress, by reference+name
};

}  // namespace api
}  // namespace elafros
