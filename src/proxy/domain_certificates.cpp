#include "proxy/domain_certificates.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>

#include "elafros/base64.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/object_store.hpp"
#include "elafros/resource_json.hpp"
#include "offload.hpp"
#include "proxy/proxy_tls.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros {
namespace {

std::string tls_secret_of(const json::object& mapping) {
  json::value v = json_path_value(mapping, ".spec.tls.secretName");
  return v.is_string() ? std::string(v.get_string()) : "";
}

}  // namespace

class DomainCertificates::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, ObjectStore& store,
       WatchSource& watches, ProxyCertificates& certificates)
      : control_(control),
        store_thread_(store_thread),
        store_(store),
        watches_(watches),
        certificates_(certificates) {}

  void start() {
    std::weak_ptr<Impl> weak = shared_from_this();
    auto id = watches_.watch(0, [weak, this_ctl = &control_](const ObjectEvent& e) {
      bool relevant = e.kind == "DomainMapping" || (e.group.empty() && e.kind == "Secret");
      if (!relevant) return;
      asio::post(*this_ctl, [weak] {
        if (auto self = weak.lock()) self->changed();
      });
    });
    if (id) watch_id_ = *id;
    asio::post(control_, [self = shared_from_this()] { self->changed(); });
  }

  void stop() {
    stopped_ = true;
    if (watch_id_) watches_.unwatch(watch_id_);
    watch_id_ = 0;
  }

  // Something changed: load again, once at a time; a change meanwhile loads once more after.
  void changed() {
    if (stopped_) return;
    if (loading_) {
      again_ = true;
      return;
    }
    loading_ = true;
    asio::co_spawn(control_, load(shared_from_this()), asio::detached);
  }

  asio::awaitable<void> load(std::shared_ptr<Impl> /*keeps this alive*/) {
    do {
      again_ = false;
      ObjectQuery q;
      q.group = kServingGroup;
      q.kind = "DomainMapping";
      auto mappings =
          co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
      if (!mappings) {
        spdlog::warn("the DomainMappings' certificates cannot be read: {}",
                     mappings.error().message);
        break;
      }
      // Who holds each name: the oldest mapping, then the first namespace (the reconciler's
      // rule).
      std::map<std::string, std::pair<std::string, std::string>> holder;  // host → (time, ns)
      for (const auto& o : mappings->items) {
        auto key = std::make_pair(meta_string(o, "creationTimestamp"), meta_string(o, "namespace"));
        auto [it, fresh] = holder.emplace(meta_string(o, "name"), key);
        if (!fresh && key < it->second) it->second = key;
      }
      auto mapped = std::make_shared<MappedCertificates>();
      std::map<std::string, Status> statuses;
      for (const auto& o : mappings->items) {
        const std::string ns = meta_string(o, "namespace");
        const std::string host = meta_string(o, "name");
        const std::string secret = tls_secret_of(o);
        if (secret.empty()) continue;
        Status& st = statuses[ns + "/" + host];
        if (holder[host].second != ns) {
          st.message = fmt::format("the domain is mapped in namespace \"{}\"", holder[host].second);
          continue;
        }
        ObjectKey key{"", "Secret", ns, secret};
        auto s =
            co_await offload(store_thread_.get_executor(), &ObjectStore::get_object, &store_, key);
        if (!s) {
          st.message = s.error().code == ErrorCode::kNotFound
                           ? fmt::format(
                                 "secret \"{}\" not found in namespace \"{}\"; create it ('elafros "
                                 "secret create tls {} --cert FILE --key FILE')",
                                 secret, ns, secret)
                           : s.error().message;
          continue;
        }
        auto data = [&s](const char* k) -> std::string {
          json::value v = json_path_value(*s, std::string(".data['") + k + "']");
          if (!v.is_string()) return "";
          return base64_decode(v.get_string()).value_or("");
        };
        PemPair pair{data("tls.crt"), data("tls.key")};
        std::string problem = ProxyCertificates::problem(pair);
        if (!problem.empty()) {
          st.message = fmt::format("secret \"{}\": {}", secret, problem);
          continue;
        }
        st.served = true;
        (*mapped)[host] = std::move(pair);
      }
      statuses_ = std::move(statuses);
      certificates_.publish_mapped(std::move(mapped));
    } while (again_ && !stopped_);
    loading_ = false;
  }

  Status status(const std::string& ns, const std::string& name) const {
    auto it = statuses_.find(ns + "/" + name);
    return it == statuses_.end() ? Status{} : it->second;
  }

 private:
  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  ObjectStore& store_;
  WatchSource& watches_;
  ProxyCertificates& certificates_;
  std::uint64_t watch_id_ = 0;
  bool loading_ = false, again_ = false, stopped_ = false;
  std::map<std::string, Status> statuses_;  // "ns/name"
};

DomainCertificates::DomainCertificates(asio::io_context& control, asio::thread_pool& store_thread,
                                       ObjectStore& store, WatchSource& watches,
                                       ProxyCertificates& certificates)
    : impl_(std::make_shared<Impl>(control, store_thread, store, watches, certificates)) {}
DomainCertificates::~DomainCertificates() {
  impl_->stop();
}
void DomainCertificates::start() {
  impl_->start();
}
void DomainCertificates::stop() {
  impl_->stop();
}
DomainCertificates::Status DomainCertificates::status(const std::string& ns,
                                                      const std::string& name) const {
  return impl_->status(ns, name);
}

}  // namespace elafros
