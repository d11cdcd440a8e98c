#include "api/audit_log.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "elafros/errno_text.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "offload.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;

namespace elafros::api {
namespace {

constexpr std::string_view kHashKey = ",\"hash\":\"";

std::string sha256_hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  std::string out;
  for (unsigned char c : md) out += fmt::format("{:02x}", c);
  return out;
}

std::string hash_of(const std::string& prev, std::string_view record) {
  std::string input = prev;
  input += '\n';
  input.append(record);
  return sha256_hex(input);
}

// RFC 3339 with microseconds (Kubernetes' MicroTime).
std::string micro_time(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us % 1'000'000);
}

bool is_mutation(const std::string& verb) {
  return verb == "create" || verb == "update" || verb == "patch" || verb == "delete" ||
         verb == "deletecollection";
}

bool listed(const std::vector<std::string>& list, const std::string& value) {
  if (list.empty()) return true;
  for (const auto& v : list)
    if (v == "*" || v == value) return true;
  return false;
}

// A record split into its hashed part and its hash; false when the line is no record.
bool split_record(const std::string& line, std::string& body, std::string& hash) {
  auto at = line.rfind(kHashKey);
  if (at == std::string::npos || line.size() != at + kHashKey.size() + 64 + 2 ||
      line.compare(line.size() - 2, 2, "\"}") != 0)
    return false;
  body = line.substr(0, at) + "}";
  hash = line.substr(at + kHashKey.size(), 64);
  return true;
}

// The files kept, oldest first: audit.log.N … audit.log.1, audit.log.
std::vector<std::string> chain_files(const std::string& dir) {
  std::vector<std::string> out;
  int n = 1;
  while (fs::exists(fmt::format("{}/audit.log.{}", dir, n))) ++n;
  for (int i = n - 1; i >= 1; --i) out.push_back(fmt::format("{}/audit.log.{}", dir, i));
  if (fs::exists(dir + "/audit.log")) out.push_back(dir + "/audit.log");
  return out;
}

std::string last_line(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

std::vector<std::string> strings(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  if (const json::value* v = o.if_contains(key); v && v->is_array())
    for (const auto& s : v->get_array())
      if (s.is_string()) out.emplace_back(s.get_string());
  return out;
}

}  // namespace

AuditPolicy AuditPolicy::defaults() {
  AuditPolicy p;
  AuditRule mutations;
  mutations.level = "Metadata";
  mutations.verbs = {"create", "update", "patch", "delete", "deletecollection"};
  p.rules.push_back(std::move(mutations));
  return p;
}

Result<AuditPolicy> AuditPolicy::parse(const json::value& policy) {
  const json::object* o = policy.if_object();
  if (!o) return Error::invalid("audit-policy: must be an audit.k8s.io/v1 Policy object");
  AuditPolicy p;
  const json::value* rules = o->if_contains("rules");
  if (!rules || !rules->is_array() || rules->get_array().empty())
    return Error::invalid("audit-policy: rules: needs at least one rule");
  for (std::size_t i = 0; i < rules->get_array().size(); ++i) {
    const json::object* r = rules->get_array()[i].if_object();
    std::string path = fmt::format("audit-policy: rules[{}]", i);
    if (!r) return Error::invalid(path + ": must be an object");
    for (const auto& kv : *r)
      if (kv.key() != "level" && kv.key() != "verbs" && kv.key() != "users" &&
          kv.key() != "userGroups" && kv.key() != "namespaces" && kv.key() != "resources" &&
          kv.key() != "nonResourceURLs" && kv.key() != "omitStages")
        return Error::invalid(
            fmt::format("{}.{}: unknown field (known: level, verbs, users, userGroups, namespaces, "
                        "resources, nonResourceURLs, omitStages)",
                        path, std::string_view(kv.key())));
    AuditRule rule;
    const json::value* level = r->if_contains("level");
    rule.level = level && level->is_string() ? std::string(level->get_string()) : "";
    if (rule.level != "None" && rule.level != "Metadata" && rule.level != "Request" &&
        rule.level != "RequestResponse")
      return Error::invalid(
          fmt::format("{}.level: \"{}\" is not a level: None, Metadata, Request or RequestResponse",
                      path, rule.level));
    rule.verbs = strings(*r, "verbs");
    rule.users = strings(*r, "users");
    rule.groups = strings(*r, "userGroups");
    rule.namespaces = strings(*r, "namespaces");
    rule.non_resource_urls = strings(*r, "nonResourceURLs");
    if (const json::value* res = r->if_contains("resources"); res && res->is_array())
      for (const auto& g : res->get_array())
        if (const json::object* go = g.if_object()) {
          const json::value* group = go->if_contains("group");
          rule.resources.push_back(
              {group && group->is_string() ? std::string(group->get_string()) : "",
               strings(*go, "resources")});
        }
    p.rules.push_back(std::move(rule));
  }
  return p;
}

std::string AuditPolicy::level(const ApiRequest& request, int status) const {
  const RequestAttributes& a = request.attributes;
  for (const auto& rule : rules) {
    if (!listed(rule.verbs, a.verb) || !listed(rule.users, request.who.user)) continue;
    if (!rule.groups.empty()) {
      bool any = false;
      for (const auto& g : request.who.groups) any = any || listed(rule.groups, g);
      if (!any) continue;
    }
    if (!rule.namespaces.empty() && (!a.resource_request || !listed(rule.namespaces, a.ns)))
      continue;
    if (!rule.resources.empty()) {
      if (!a.resource_request) continue;
      bool any = false;
      for (const auto& r : rule.resources)
        any = any ||
              (r.group == a.api_group && (r.resources.empty() || listed(r.resources, a.resource) ||
                                          listed(r.resources, a.resource_path())));
      if (!any) continue;
    }
    if (!rule.non_resource_urls.empty()) {
      if (a.resource_request) continue;
      bool any = false;
      for (const auto& u : rule.non_resource_urls)
        any = any || u == a.path ||
              (!u.empty() && u.back() == '*' &&
               a.path.compare(0, u.size() - 1, u, 0, u.size() - 1) == 0);
      if (!any) continue;
    }
    if (rule.level != "None" || (status != 401 && status != 403)) return rule.level;
    break;
  }
  // Every denial is recorded, whatever the policy says of its verb.
  return status == 401 || status == 403 ? "Metadata" : "None";
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(AuditOptions options) {
  std::unique_ptr<AuditLog> log(new AuditLog());
  log->options_ = std::move(options);
  std::error_code ec;
  fs::create_directories(log->options_.dir, ec);
  ::chmod(log->options_.dir.c_str(), 0700);
  std::string path = log->options_.dir + "/audit.log";
  log->fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log->fd_ < 0)
    return Error::unavailable(
        fmt::format("cannot open the audit log {}: {}", path, errno_text(errno)));
  struct stat st {};
  if (::fstat(log->fd_, &st) == 0) log->size_ = static_cast<std::uint64_t>(st.st_size);
  // The chain goes on from the newest record kept.
  auto files = chain_files(log->options_.dir);
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    std::string last = last_line(*it);
    if (last.empty()) continue;
    std::string body, hash;
    if (split_record(last, body, hash))
      log->head_ = hash;
    else
      spdlog::warn(
          "the audit log's last record ({}) is not whole; the chain goes on from "
          "nothing, and 'elafros audit verify' will show where",
          *it);
    break;
  }
  return log;
}

AuditLog::~AuditLog() {
  *alive_ = false;
  if (fd_ >= 0) ::close(fd_);
}

void AuditLog::rotate() {
  ::close(fd_);
  fd_ = -1;
  std::string base = options_.dir + "/audit.log";
  std::error_code ec;
  fs::remove(fmt::format("{}.{}", base, options_.max_files), ec);
  for (int i = options_.max_files - 1; i >= 1; --i)
    if (fs::exists(fmt::format("{}.{}", base, i)))
      fs::rename(fmt::format("{}.{}", base, i), fmt::format("{}.{}", base, i + 1), ec);
  fs::rename(base, base + ".1", ec);
  fd_ = ::open(base.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  size_ = 0;
}

Result<void> AuditLog::append(const std::string& line) {
  if (size_ > 0 && size_ + line.size() > options_.max_file_bytes) rotate();
  if (fd_ < 0) return Error::unavailable("the audit log is not open");
  ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size()))
    return Error::unavailable(fmt::format("writing the audit log failed: {}",
                                          n < 0 ? errno_text(errno) : "a short write"));
  size_ += line.size();
  return {};
}

void AuditLog::record(const ApiRequest& request, int status, const std::string& reason,
                      const std::string& message, std::chrono::system_clock::time_point received) {
  std::string level = options_.policy.level(request, status);
  if (level == "None") return;
  const RequestAttributes& a = request.attributes;
  json::array groups;
  for (const auto& g : request.who.groups) groups.emplace_back(g);
  json::object user{{"username", request.who.user}, {"groups", std::move(groups)}};
  if (!request.who.token.empty())
    user["extra"] =
        json::object{{"elafros.dev/token", json::array{json::value(request.who.token)}}};
  json::object ev{{"kind", "Event"},
                  {"apiVersion", "audit.k8s.io/v1"},
                  {"level", level},
                  {"auditID", new_uid()},
                  {"stage", "ResponseComplete"},
                  {"requestURI", request.target},
                  {"verb", a.verb},
                  {"user", std::move(user)},
                  {"sourceIPs", json::array{json::value(request.who.via)}},
                  {"userAgent", request.user_agent}};
  // The body, when JSON: a create's object names itself there.
  json::value body_json;
  if (!request.body.empty() && request.body.size() <= (64u << 10) &&
      request.content_type.find("json") != std::string::npos) {
    boost::system::error_code ec;
    body_json = json::parse(request.body, ec);
    if (ec) body_json = nullptr;
  }
  if (a.resource_request) {
    json::object ref{{"resource", a.resource}};
    if (!a.ns.empty()) ref["namespace"] = a.ns;
    std::string name = a.name;
    if (name.empty() && a.verb == "create" && body_json.is_object())
      name = meta_string(body_json.get_object(), "name");
    if (!name.empty()) ref["name"] = name;
    ref["apiGroup"] = a.api_group;
    if (!a.subresource.empty()) ref["subresource"] = a.subresource;
    ev["objectRef"] = std::move(ref);
  }
  json::object rs{{"metadata", json::object{}}, {"code", status}};
  if (status >= 400) {
    rs["status"] = "Failure";
    if (!reason.empty()) rs["reason"] = reason;
    if (!message.empty()) rs["message"] = message;
  }
  ev["responseStatus"] = std::move(rs);
  // The request body, at Request level, for kinds that hold no secret.
  bool secret = (a.api_group.empty() && a.resource == "secrets") || a.resource == "tokens" ||
                a.resource == "registries" || (!a.resource_request && a.path == "/ui/session");
  if ((level == "Request" || level == "RequestResponse") && !secret && !body_json.is_null())
    ev["requestObject"] = std::move(body_json);
  ev["requestReceivedTimestamp"] = micro_time(received);
  ev["stageTimestamp"] = micro_time(std::chrono::system_clock::now());
  json::object annotations;
  if (!request.decision.reason.empty() || status == 403) {
    annotations["authorization.k8s.io/decision"] = request.decision.allowed ? "allow" : "forbid";
    annotations["authorization.k8s.io/reason"] = request.decision.reason;
  }
  ev["annotations"] = std::move(annotations);
  ev["prevHash"] = head_;
  std::string body = json::serialize(ev);
  std::string hash = hash_of(head_, body);
  std::string line = body.substr(0, body.size() - 1);
  line += kHashKey;
  line += hash;
  line += "\"}\n";
  if (auto r = append(line); !r) {
    spdlog::error("audit: {}; the record of {} {} by {} is lost", r.error().message, a.verb,
                  request.target, request.who.user);
    return;
  }
  head_ = hash;
  ++written_;
}

void AuditLog::start(boost::asio::io_context& io) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io);
  auto alive = alive_;
  auto tick = std::make_shared<std::function<void()>>();
  *tick = [this, timer, alive, tick] {
    timer->expires_after(std::chrono::minutes(1));
    timer->async_wait([this, alive, tick](boost::system::error_code ec) {
      if (ec || !*alive) return;
      spdlog::info("audit log head: {} ({} records written since start)",
                   head_.empty() ? "none" : head_, written_);
      (*tick)();
    });
  };
  spdlog::info("audit log {}/audit.log, head {}", options_.dir, head_.empty() ? "none" : head_);
  (*tick)();
}

AuditVerification AuditLog::verify(const std::string& dir, const std::string& head) {
  AuditVerification v;
  std::string prev;
  bool first = true;
  std::string last_where;
  for (const auto& file : chain_files(dir)) {
    std::ifstream in(file, std::ios::binary);
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      std::string where = fmt::format("{} line {}", fs::path(file).filename().string(), number);
      std::string body, hash;
      json::value parsed;
      boost::system::error_code ec;
      if (split_record(line, body, hash)) parsed = json::parse(body, ec);
      if (body.empty() || ec || !parsed.is_object()) {
        v.ok = false;
        v.problem = fmt::format("{} is not an audit record: it was altered, or inserted", where);
        return v;
      }
      const json::object& o = parsed.get_object();
      auto text = [&o](const char* key) {
        const json::value* f = o.if_contains(key);
        return f && f->is_string() ? std::string(f->get_string()) : std::string();
      };
      where += fmt::format(" (auditID {})", text("auditID"));
      std::string claimed = text("prevHash");
      if (!first && claimed != prev) {
        v.ok = false;
        v.problem = fmt::format(
            "{} does not follow the record before it (its prevHash is not that record's "
            "hash): a record was removed, inserted or altered just before it",
            where);
        return v;
      }
      if (hash_of(claimed, body) != hash) {
        v.ok = false;
        v.problem = fmt::format("{} was altered: its hash does not match what it records", where);
        return v;
      }
      first = false;
      prev = hash;
      last_where = where;
      ++v.records;
    }
  }
  v.head = prev;
  if (!head.empty() && prev != head) {
    v.ok = false;
    v.problem = fmt::format(
        "the log ends at {}, but the daemon's last record has hash {}: records were removed "
        "from the end",
        last_where.empty() ? "its start" : last_where, head);
  }
  return v;
}

std::vector<json::object> AuditLog::read(const std::string& dir,
                                         const std::function<bool(const json::object&)>& keep) {
  std::vector<json::object> out;
  for (const auto& file : chain_files(dir)) {
    std::ifstream in(file, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      boost::system::error_code ec;
      json::value v = json::parse(line, ec);
      if (!ec && v.is_object() && keep(v.get_object())) out.push_back(std::move(v.get_object()));
    }
  }
  return out;
}

namespace {

struct AuditQuery {
  std::string dir, user, verb;
  std::int64_t since = 0;
};

std::vector<json::object> query(const AuditQuery& q) {
  return AuditLog::read(q.dir, [&q](const json::object& o) {
    if (!q.user.empty() && json_path_value(o, ".user.username") != json::value(q.user))
      return false;
    if (!q.verb.empty() && json_path_value(o, ".verb") != json::value(q.verb)) return false;
    if (q.since) {
      json::value t = json_path_value(o, ".requestReceivedTimestamp");
      auto secs = t.is_string() ? parse_rfc3339(std::string(t.get_string()).substr(0, 19) + "Z")
                                : std::nullopt;
      if (!secs || *secs < q.since) return false;
    }
    return true;
  });
}

}  // namespace

void add_audit_routes(Router& router, AuditLog& log, boost::asio::thread_pool& blocking) {
  router.add(
      "GET", "/apis/elafros.dev/v1/audit",
      [&log, &blocking](ApiRequest& req, Responder& r) -> awaitable<bool> {
        AuditQuery q{log.dir(), req.query_value("user").value_or(""),
                     req.query_value("verb").value_or(""), 0};
        auto since = time_or_ago(req.query_value("since").value_or(""), 0);
        if (!since)
          co_return co_await r.send_error(
              Error::bad_request("since: give an RFC 3339 time or a duration such as 24h or 30m"));
        q.since = *since;
        auto items = co_await offload(blocking.get_executor(), &query, q);
        json::array a;
        for (auto& o : items) a.emplace_back(std::move(o));
        json::object out{
            {"apiVersion", "audit.k8s.io/v1"}, {"kind", "EventList"}, {"items", std::move(a)}};
        co_return co_await r.send_json(200, out);
      });
  router.add("GET", "/apis/elafros.dev/v1/audit/verify",
             [&log, &blocking](ApiRequest&, Responder& r) -> awaitable<bool> {
               std::string dir = log.dir(), head = log.head();
               auto v = co_await offload(blocking.get_executor(), &AuditLog::verify, dir, head);
               json::object out{
                   {"ok", v.ok}, {"records", v.records}, {"head", v.head}, {"problem", v.problem}};
               co_return co_await r.send_json(200, out);
             });
}

}  // namespace elafros::api
