#include "events/controller_support.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <chrono>

#include "elafros/resource_json.hpp"
#include "elafros/routing.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros {

std::pair<std::string, std::string> resolve_destination(const Destination& d, const std::string& ns,
                                                        const Addressables& where) {
  if (d.ref_kind.empty()) return {d.uri, ""};
  std::string ref_ns = d.ref_namespace.empty() ? ns : d.ref_namespace;
  std::string base;
  if (d.ref_kind == "Service") {
    if (!where.has_service(ref_ns, d.ref_name))
      return {"",
              fmt::format("service \"{}\" does not exist in namespace \"{}\"", d.ref_name, ref_ns)};
    base = fmt::format("http://{}:{}", service_host(d.ref_name, ref_ns, where.domain),
                       where.proxy_port);
  } else {
    if (!where.has_broker(ref_ns, d.ref_name))
      return {"",
              fmt::format("broker \"{}\" does not exist in namespace \"{}\"", d.ref_name, ref_ns)};
    base = fmt::format("{}/{}/{}", where.ingress_url, ref_ns, d.ref_name);
  }
  if (d.uri.empty()) return {base + (d.ref_kind == "Service" ? "/" : ""), ""};
  return {base + (d.uri.front() == '/' ? "" : "/") + d.uri, ""};
}

StatusWriter::StatusWriter(asio::io_context& control, ObjectCommitter& committer)
    : control_(control), committer_(committer) {}

Condition StatusWriter::condition(const std::string& object, const char* type, bool ok,
                                  std::string reason, std::string message) {
  Condition c{type};
  c.status = ok ? "True" : "False";
  if (!ok) {
    c.reason = std::move(reason);
    c.message = std::move(message);
  }
  auto& previous = transitions_[object + "/" + type];
  if (previous.first != c.status)
    previous = {c.status, std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count()};
  c.last_transition_unix = previous.second;
  return c;
}

void StatusWriter::write(const std::string& group, const std::string& kind, const std::string& ns,
                         const std::string& name, std::int64_t generation,
                         std::vector<Condition> parts, json::object status,
                         std::function<void(bool)> done) {
  const std::string object = kind + "/" + ns + "/" + name;
  Condition ready = condition(object, "Ready", true, "", "");
  for (const auto& c : parts)
    if (c.status != "True") {
      ready = condition(object, "Ready", false, c.reason, c.message);
      break;
    }
  std::vector<Condition> all{std::move(ready)};
  for (auto& c : parts) all.push_back(std::move(c));
  status["conditions"] = conditions_to_json(all);
  status["observedGeneration"] = generation;
  std::string text = json::serialize(status);
  auto [it, fresh] = written_.try_emplace(object, text);
  if (!fresh && it->second == text) {
    if (done) done(true);
    return;
  }
  it->second = text;
  json::object patch{{"metadata", json::object{{"name", name}, {"namespace", ns}}},
                     {"status", std::move(status)}};
  auto ex = control_.get_executor();
  committer_.commit(
      {{ObjectWrite::Op::kUpdateStatus, group, kind, std::move(patch), 0}},
      [this, alive = alive_, ex, object, text, done](Result<std::vector<ObjectEvent>> r) {
        asio::post(ex, [this, alive, object, text, done, r = std::move(r)] {
          if (!*alive) return;
          if (!r) {
            if (auto it = written_.find(object); it != written_.end() && it->second == text)
              written_.erase(it);
            if (r.error().code != ErrorCode::kNotFound)
              spdlog::warn("writing the status of {} failed: {}", object, r.error().message);
          }
          if (done) done(static_cast<bool>(r));
        });
      });
}

void StatusWriter::forget(const std::string& kind, const std::string& ns, const std::string& name) {
  written_.erase(kind + "/" + ns + "/" + name);
}

}  // namespace elafros
