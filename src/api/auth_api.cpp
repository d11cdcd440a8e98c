#include "api/auth_api.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <map>

#include "api/api_tokens.hpp"
#include "api/kube_protobuf.hpp"
#include "elafros/eventing.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros::api {
namespace {

std::string text(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

const json::object* object_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v ? v->if_object() : nullptr;
}

std::string time_or_null(std::int64_t t) {
  return t ? format_rfc3339(t) : std::string();
}

// Kubernetes' words for a denial, plus what to do.
Error forbidden(const Identity& who, const RequestAttributes& a) {
  std::string subject = who.token.empty()
                            ? fmt::format("User \"{}\"", who.user)
                            : fmt::format("User \"{}\" (token {})", who.user, who.token);
  std::string hint = fmt::format(
      "; ask an administrator for a role that allows it (check with 'elafros auth can-i {} {}{}')",
      a.verb, a.resource_request ? a.resource_path() : a.path, a.ns.empty() ? "" : " -n " + a.ns);
  if (!a.resource_request)
    return Error{ErrorCode::kForbidden, fmt::format("forbidden: {} cannot {} path \"{}\"{}",
                                                    subject, a.verb, a.path, hint)};
  std::string what = a.api_group.empty() ? a.resource : a.resource + "." + a.api_group;
  std::string head = a.name.empty() ? fmt::format("{} is forbidden", what)
                                    : fmt::format("{} \"{}\" is forbidden", what, a.name);
  std::string where = a.ns.empty() ? std::string(" at the cluster scope")
                                   : fmt::format(" in the namespace \"{}\"", a.ns);
  return Error{ErrorCode::kForbidden,
               fmt::format("{}: {} cannot {} resource \"{}\" in API group \"{}\"{}{}", head,
                           subject, a.verb, a.resource_path(), a.api_group, where, hint)};
}

Result<json::object> review_body(const ApiRequest& req) {
  std::string type = req.content_type.substr(0, req.content_type.find(';'));
  auto v = type == kProtobufType ? kube_protobuf_to_json(req.body) : parse_json_body(req.body);
  if (!v) return v.error();
  if (!v->is_object()) return Error::bad_request("the request body must be a JSON object");
  return std::move(v->get_object());
}

}  // namespace

class Auth::Impl : public std::enable_shared_from_this<Auth::Impl> {
 public:
  explicit Impl(AuthParts parts) : p_(std::move(parts)), flush_timer_(p_.control) {}

  bool in_socket_group(const Peer& peer) const {
    if (!p_.socket_gid) return false;
    if (peer.gid == *p_.socket_gid) return true;
    auto now = std::chrono::steady_clock::now();
    auto cached = group_cache_.find(peer.uid);
    if (cached != group_cache_.end() && now - cached->second.second < std::chrono::seconds(30))
      return cached->second.first;
    bool member = false;
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(peer.uid, &pw, buf.data(), buf.size(), &found) == 0 && found) {
      std::vector<gid_t> groups(256);
      int n = static_cast<int>(groups.size());
      if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) >= 0)
        for (int i = 0; i < n; ++i)
          member = member || groups[static_cast<std::size_t>(i)] == *p_.socket_gid;
    }
    group_cache_[peer.uid] = {member, now};
    return member;
  }

  Result<Identity> authenticate(const Peer& peer, std::string_view authorization,
                                const ApiRequest& request, bool anonymous) const {
    if (!authorization.empty()) {
      auto who = p_.tokens.authenticate(authorization);
      if (who) who->via = peer.address;
      return who;
    }
    if (std::string id = cookie_value(request.cookie, kUiCookie); !id.empty())
      return from_session(id, request, peer);
    if (peer.local) {
      Identity who;
      who.user = fmt::format("uid:{}", peer.uid);
      who.via = peer.address;
      if (peer.uid == 0 || in_socket_group(peer)) who.groups.emplace_back(kMastersGroup);
      who.groups.emplace_back(kAuthenticatedGroup);
      return who;
    }
    if (anonymous) return Identity{kAnonymousUser, {kUnauthenticatedGroup}, "", peer.address};
    return p_.tokens.authenticate(authorization);  // says what to send
  }

  Decision decide(const Identity& who, const RequestAttributes& a) const {
    if (p_.metrics_anonymous && !a.resource_request && a.path == "/metrics" && a.verb == "get")
      return {true, "allowed: metrics-anonymous lets anyone read /metrics"};
    if (!a.resource_request && a.path == "/ui/session")
      return {true, "allowed: whoever signed in may see and end their own dashboard session"};
    if (!p_.authorize) return {true, "allowed: no authorizer"};
    return p_.authorize(who, a);
  }

  std::vector<PolicyRule> rules(const Identity& who, const std::string& ns) const {
    if (!p_.rules_for) return {{{"*"}, {"*"}, {"*"}, {}, {}}, {{"*"}, {}, {}, {}, {"*"}}};
    return p_.rules_for(who, ns);
  }

  awaitable<Result<void>> check_grant(const Identity* who, const KindInfo& k,
                                      const json::object& obj) {
    if (k.group == kEventingGroup && k.kind == "Trigger") co_return check_bind(who, obj);
    if (k.group != kRbacGroup) co_return Result<void>{};
    std::string ns = meta_string(obj, "namespace");
    std::string name = meta_string(obj, "name");
    if (k.kind == "Role" || k.kind == "ClusterRole") {
      if (!who) co_return Result<void>{};
      RequestAttributes escalate{"escalate", true, kRbacGroup, k.plural, "", ns, name, ""};
      if (decide(*who, escalate).allowed) co_return Result<void>{};
      if (auto missing = uncovered(rules(*who, ns), rules_of(obj)))
        co_return Error{
            ErrorCode::kForbidden,
            fmt::format("{} \"{}\" is forbidden: user \"{}\" is attempting to grant "
                        "RBAC permissions not currently held: {}; only someone who "
                        "holds them (or may escalate {}) can",
                        k.plural + "." + kRbacGroup, name, who->user, *missing, k.plural)};
      co_return Result<void>{};
    }
    RoleRef ref = role_ref_of(obj);
    ObjectKey key{kRbacGroup, ref.kind, ref.kind == "Role" ? ns : "", ref.name};
    auto role =
        co_await offload(p_.store_thread.get_executor(), &ObjectStore::get_object, &p_.store, key);
    if (!role && role.error().code == ErrorCode::kNotFound)
      co_return Error::invalid(fmt::format(
          "roleRef.name: {} \"{}\" not found{}; create it first, or name an existing one "
          "('kubectl get {}')",
          ref.kind, ref.name, ref.kind == "Role" ? fmt::format(" in namespace \"{}\"", ns) : "",
          ref.kind == "Role" ? "roles -n " + ns : std::string("clusterroles")));
    if (!role) co_return role.error();
    if (!who) co_return Result<void>{};
    RequestAttributes bind{"bind", true, kRbacGroup, ref.kind == "Role" ? "roles" : "clusterroles",
                           "",     ns,   ref.name,   ""};
    if (decide(*who, bind).allowed) co_return Result<void>{};
    if (auto missing = uncovered(rules(*who, ns), rules_of(*role)))
      co_return Error{ErrorCode::kForbidden,
                      fmt::format("{} \"{}\" is forbidden: user \"{}\" may not grant {} \"{}\": it "
                                  "allows {}, which the user does not hold{}",
                                  k.plural + "." + kRbacGroup, name, who->user, ref.kind, ref.name,
                                  *missing, ns.empty() ? "" : " in namespace \"" + ns + "\"")};
    co_return Result<void>{};
  }

  // A Trigger on a broker of another namespace (spec.brokerRef) needs triggers/bind there.
  Result<void> check_bind(const Identity* who, const json::object& obj) const {
    auto t = trigger_from_object(obj);
    if (!who || !t || t->broker_namespace == t->namespace_) return {};
    RequestAttributes bind{"create",  true, kEventingGroup, "triggers", "bind", t->broker_namespace,
                           t->broker, ""};
    if (decide(*who, bind).allowed) return {};
    return Error{
        ErrorCode::kForbidden,
        fmt::format("triggers.eventing.knative.dev \"{}\" is forbidden: user \"{}\" cannot "
                    "create triggers/bind in namespace \"{}\", which binding to broker "
                    "\"{}\" there needs; ask for a Role there that grants it (edit and "
                    "admin do)",
                    t->name, who->user, t->broker_namespace, t->broker)};
  }

  TokenPublisher publisher(const std::string& authorization, const std::string& ns,
                           const std::string& broker) const {
    using Outcome = PublishVerdict::Outcome;
    TokenPublisher out;
    auto who = p_.tokens.authenticate(authorization);
    if (!who) {
      out.verdict = {Outcome::kUnauthenticated, who.error().message};
      return out;
    }
    RequestAttributes publish{"create", true, kEventingGroup, "brokers", "publish", ns, broker, ""};
    if (Decision d = decide(*who, publish); !d.allowed) {
      out.verdict = {Outcome::kForbidden,
                     fmt::format("user \"{}\" (token {}) cannot create brokers/publish in "
                                 "namespace \"{}\", which publishing to broker \"{}\" needs; "
                                 "bind the user to a role there that grants it (edit does)",
                                 who->user, who->token, ns, broker)};
      return out;
    }
    out.who.subject = who->user;
    out.who.ns = ns;  // RBAC lets it publish here: it is of this namespace
    return out;
  }

  // POST …/selfsubjectaccessreviews: may I?
  awaitable<bool> access_review(ApiRequest& req, Responder& r) {
    auto body = review_body(req);
    if (!body) co_return co_await r.send_error(body.error());
    const json::object* spec = object_at(*body, "spec");
    const json::object* ra = spec ? object_at(*spec, "resourceAttributes") : nullptr;
    const json::object* nra = spec ? object_at(*spec, "nonResourceAttributes") : nullptr;
    if (!ra == !nra)
      co_return co_await r.send_error(
          Error::invalid("spec: give exactly one of resourceAttributes and nonResourceAttributes"));
    RequestAttributes a;
    if (ra) {
      a.verb = text(*ra, "verb");
      a.api_group = text(*ra, "group");
      a.resource = text(*ra, "resource");
      a.subresource = text(*ra, "subresource");
      a.ns = text(*ra, "namespace");
      a.name = text(*ra, "name");
    } else {
      a.resource_request = false;
      a.verb = text(*nra, "verb");
      a.path = text(*nra, "path");
    }
    if (a.verb.empty())
      co_return co_await r.send_error(
          Error::invalid(fmt::format("spec.{}.verb: required (get, list, create, …)",
                                     ra ? "resourceAttributes" : "nonResourceAttributes")));
    Decision d = decide(req.who, a);
    json::object status{{"allowed", d.allowed}};
    if (!d.reason.empty()) status["reason"] = d.reason;
    json::object out{{"apiVersion", "authorization.k8s.io/v1"},
                     {"kind", "SelfSubjectAccessReview"},
                     {"metadata", json::object{{"creationTimestamp", nullptr}}},
                     {"spec", *spec},
                     {"status", std::move(status)}};
    co_return co_await r.send_json(201, out);
  }

  // POST …/selfsubjectrulesreviews: what may I do in this namespace?
  awaitable<bool> rules_review(ApiRequest& req, Responder& r) {
    auto body = review_body(req);
    if (!body) co_return co_await r.send_error(body.error());
    const json::object* spec = object_at(*body, "spec");
    std::string ns = spec ? text(*spec, "namespace") : "";
    json::array resource_rules, url_rules;
    for (const auto& rule : rules(req.who, ns)) {
      json::object o = rule_json(rule);
      if (rule.non_resource_urls.empty()) {
        if (!o.contains("apiGroups")) o["apiGroups"] = json::array{};
        if (!o.contains("resources")) o["resources"] = json::array{};
        resource_rules.push_back(std::move(o));
      } else {
        url_rules.push_back(std::move(o));
      }
    }
    json::object out{{"apiVersion", "authorization.k8s.io/v1"},
                     {"kind", "SelfSubjectRulesReview"},
                     {"metadata", json::object{{"creationTimestamp", nullptr}}},
                     {"spec", json::object{{"namespace", ns}}},
                     {"status", json::object{{"resourceRules", std::move(resource_rules)},
                                             {"nonResourceRules", std::move(url_rules)},
                                             {"incomplete", false}}}};
    co_return co_await r.send_json(201, out);
  }

  // --- the dashboard's sessions ---------------------------------------------------------------
  // A session is a random id in an HttpOnly, SameSite=Strict cookie, standing for the token it
  // was opened with, which is checked again on every request (a revoked or expired token ends
  // it). Changes must carry its CSRF token. Sessions live in memory: a restart signs everyone out.

  struct UiSession {
    std::string token;
    std::string csrf;
    std::chrono::steady_clock::time_point last_used;
  };
  static constexpr std::string_view kUiCookie = "elafros_session";
  static constexpr auto kUiIdle = std::chrono::hours(12);
  static constexpr std::size_t kUiSessionsKept = 10000;

  static std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> buf(bytes);
    RAND_bytes(buf.data(), static_cast<int>(buf.size()));
    std::string out;
    for (unsigned char c : buf) out += fmt::format("{:02x}", c);
    return out;
  }

  // NAME's value in a Cookie field ("a=1; b=2"), or empty.
  static std::string cookie_value(std::string_view header, std::string_view name) {
    while (!header.empty()) {
      auto semi = header.find(';');
      std::string_view part = header.substr(0, semi);
      header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      if (part.size() > name.size() && part.substr(0, name.size()) == name &&
          part[name.size()] == '=')
        return std::string(part.substr(name.size() + 1));
    }
    return {};
  }

  Result<Identity> from_session(const std::string& id, const ApiRequest& request,
                                const Peer& peer) const {
    auto now = std::chrono::steady_clock::now();
    auto it = ui_sessions_.find(id);
    if (it == ui_sessions_.end() || now - it->second.last_used > kUiIdle) {
      if (it != ui_sessions_.end()) ui_sessions_.erase(it);
      return Error{ErrorCode::kUnauthorized,
                   "the dashboard session has ended (signed out, idle for 12 hours, or elafrosd "
                   "restarted): sign in again at /ui/"};
    }
    auto who = p_.tokens.authenticate("Bearer " + it->second.token);
    if (!who) {
      ui_sessions_.erase(it);
      return who.error();
    }
    bool safe = request.method == "GET" || request.method == "HEAD" || request.method == "OPTIONS";
    if (!safe && request.csrf_token != it->second.csrf)
      return Error{ErrorCode::kForbidden,
                   "forbidden: a change made with the dashboard's session cookie must carry the "
                   "session's X-CSRF-Token (GET /ui/session gives it); this request has none or "
                   "another"};
    it->second.last_used = now;
    who->via = peer.address;
    return who;
  }

  static std::string session_cookie(const std::string& id, bool end) {
    return fmt::format("{}={}; Path=/; HttpOnly; Secure; SameSite=Strict{}", kUiCookie, id,
                       end ? "; Max-Age=0" : "");
  }

  json::object session_json(const Identity& who, const std::string& csrf) const {
    json::array groups;
    for (const auto& g : who.groups) groups.emplace_back(g);
    return json::object{{"user", who.user}, {"groups", std::move(groups)}, {"csrfToken", csrf}};
  }

  // POST /ui/session {"token": "elf_…"}: signs in.
  awaitable<bool> sign_in(ApiRequest& req, Responder& r) {
    // JSON only: a form on another site cannot send it without a CORS preflight, which this
    // server never grants, so nobody can be signed in as someone else from elsewhere.
    if (req.content_type.find("application/json") == std::string::npos) {
      Error wrong = Error::bad_request(
          "sign in with Content-Type: application/json and a body {\"token\": \"elf_…\"}");
      co_return co_await r.send_error(wrong);
    }
    auto body = parse_json_body(req.body);
    std::string token;
    if (body && body->is_object()) token = text(body->get_object(), "token");
    if (token.empty())
      co_return co_await r.send_error(Error::bad_request(
          "sign in with a JSON body {\"token\": \"elf_…\"} ('elafros token create NAME' "
          "prints a token)"));
    auto who = p_.tokens.authenticate("Bearer " + token);
    if (!who) co_return co_await r.send_error(who.error());
    auto now = std::chrono::steady_clock::now();
    if (ui_sessions_.size() >= kUiSessionsKept) {  // the least recently used goes
      auto oldest = ui_sessions_.begin();
      for (auto it = ui_sessions_.begin(); it != ui_sessions_.end(); ++it)
        if (it->second.last_used < oldest->second.last_used) oldest = it;
      ui_sessions_.erase(oldest);
    }
    std::string id = random_hex(32);
    std::string csrf = random_hex(32);
    ui_sessions_[id] = {token, csrf, now};
    spdlog::info("dashboard: {} signed in (token {}) from {}", who->user, who->token, req.who.via);
    // (No braced lists in coroutines: GCC 12 miscompiles them, scheduler/offload.hpp.)
    r.headers.emplace_back("Set-Cookie", session_cookie(id, false));
    r.headers.emplace_back("Cache-Control", "no-store");
    json::value out = session_json(*who, csrf);
    co_return co_await r.send_json(200, out);
  }

  // GET /ui/session: who the cookie's session is, and its CSRF token (a page being reloaded).
  awaitable<bool> session_info(ApiRequest& req, Responder& r) {
    auto it = ui_sessions_.find(cookie_value(req.cookie, kUiCookie));
    if (it == ui_sessions_.end()) {
      Error none{ErrorCode::kUnauthorized, "no dashboard session: sign in at /ui/"};
      co_return co_await r.send_error(none);
    }
    r.headers.emplace_back("Cache-Control", "no-store");
    json::value out = session_json(req.who, it->second.csrf);
    co_return co_await r.send_json(200, out);
  }

  // DELETE /ui/session: signs out (with the CSRF token, as any change).
  awaitable<bool> sign_out(ApiRequest& req, Responder& r) {
    ui_sessions_.erase(cookie_value(req.cookie, kUiCookie));
    r.headers.emplace_back("Set-Cookie", session_cookie("", true));
    json::value out = json::object{{"signedOut", true}};
    co_return co_await r.send_json(200, out);
  }

  // POST …/selfsubjectreviews: who am I?
  awaitable<bool> whoami(ApiRequest& req, Responder& r) {
    json::array groups;
    for (const auto& g : req.who.groups) groups.emplace_back(g);
    json::object user{{"username", req.who.user}, {"groups", std::move(groups)}};
    if (!req.who.token.empty())
      user["extra"] = json::object{{"elafros.dev/token", json::array{json::value(req.who.token)}},
                                   {"elafros.dev/via", json::array{json::value(req.who.via)}}};
    else
      user["extra"] = json::object{{"elafros.dev/via", json::array{json::value(req.who.via)}}};
    json::object out{{"apiVersion", "authentication.k8s.io/v1"},
                     {"kind", "SelfSubjectReview"},
                     {"metadata", json::object{{"creationTimestamp", nullptr}}},
                     {"status", json::object{{"userInfo", std::move(user)}}}};
    co_return co_await r.send_json(201, out);
  }

  static json::object token_json(const TokenInfo& t) {
    json::array groups;
    for (const auto& g : t.groups) groups.emplace_back(g);
    json::object o{{"name", t.name},
                   {"accessor", token_accessor_label(t.accessor)},
                   {"user", t.user},
                   {"groups", std::move(groups)},
                   {"created", time_or_null(t.created)},
                   {"expires", time_or_null(t.expires)},
                   {"lastUsed", time_or_null(t.last_used)},
                   {"revoked", time_or_null(t.revoked)}};
    return o;
  }

  awaitable<bool> list_tokens(ApiRequest&, Responder& r) {
    json::array items;
    for (const auto& t : p_.tokens.list()) items.push_back(token_json(t));
    json::object out{
        {"apiVersion", "elafros.dev/v1"}, {"kind", "TokenList"}, {"items", std::move(items)}};
    co_return co_await r.send_json(200, out);
  }

  // POST …/tokens {"name", "user", "ttlSeconds"}: a new token, shown once.
  awaitable<bool> create_token(ApiRequest& req, Responder& r) {
    auto body = parse_json_body(req.body);
    if (!body) co_return co_await r.send_error(body.error());
    const json::object* o = body->if_object();
    if (!o) co_return co_await r.send_error(Error::bad_request("the body must be a JSON object"));
    std::string name = text(*o, "name");
    if (auto problem = dns1035_problem(name))
      co_return co_await r.send_error(Error::invalid(fmt::format("name: {}", *problem)));
    std::string user = text(*o, "user");
    if (user.empty()) user = name;
    if (user.find_first_of(" \t\r\n") != std::string::npos || user.rfind("system:", 0) == 0)
      co_return co_await r.send_error(Error::invalid(
          fmt::format("user: \"{}\" may not contain spaces or start with \"system:\"", user)));
    std::int64_t ttl = 0;
    if (const json::value* t = o->if_contains("ttlSeconds")) {
      if (!t->is_int64() || t->get_int64() < 0)
        co_return co_await r.send_error(
            Error::invalid("ttlSeconds: must be a whole number of seconds, 0 for no expiry"));
      ttl = t->get_int64();
    }
    auto token = co_await offload(p_.blocking.get_executor(), &ApiTokens::issue, &p_.tokens, name,
                                  user, std::chrono::seconds(ttl));
    if (!token) co_return co_await r.send_error(token.error());
    std::string accessor = token->substr(0, 4 + 16);
    spdlog::info("{} created token \"{}\" ({}) for user {}", req.who.user, name, accessor, user);
    json::object answer{{"name", name}, {"accessor", accessor}, {"user", user}, {"token", *token}};
    co_return co_await r.send_json(201, answer);
  }

  awaitable<bool> revoke_token(ApiRequest& req, Responder& r) {
    std::string name = req.param("name");
    auto revoked =
        co_await offload(p_.blocking.get_executor(), &ApiTokens::revoke, &p_.tokens, name);
    if (!revoked) co_return co_await r.send_error(revoked.error());
    spdlog::info("{} revoked token \"{}\" ({})", req.who.user, revoked->name,
                 token_accessor_label(revoked->accessor));
    co_return co_await r.send_json(200, token_json(*revoked));
  }

  static std::optional<std::string> dns1035_problem(const std::string& name) {
    if (name.empty()) return "required: the token's name, e.g. ci-deploy";
    if (name.size() > 63) return "must be at most 63 characters";
    for (char c : name)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
        return fmt::format("\"{}\" may hold only lowercase letters, digits and '-'", name);
    return std::nullopt;
  }

  void schedule_flush() {
    flush_timer_.expires_after(std::chrono::seconds(60));
    std::weak_ptr<Impl> weak = weak_from_this();
    flush_timer_.async_wait([weak](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      asio::post(self->p_.blocking, [self] {
        if (auto r = self->p_.tokens.flush(); !r)
          spdlog::warn("cannot write the tokens' lastUsed: {}", r.error().message);
      });
      self->schedule_flush();
    });
  }

  AuthParts p_;
  asio::steady_timer flush_timer_;
  mutable std::map<unsigned, std::pair<bool, std::chrono::steady_clock::time_point>> group_cache_;
  mutable std::map<std::string, UiSession> ui_sessions_;  // by id (the cookie's value)
};

Auth::Auth(AuthParts parts) : impl_(std::make_shared<Impl>(std::move(parts))) {}
Auth::~Auth() = default;

Result<Identity> Auth::authenticate(const Peer& peer, std::string_view authorization,
                                    const ApiRequest& request, bool anonymous) const {
  return impl_->authenticate(peer, authorization, request, anonymous);
}

TokenPublisher Auth::publisher(const std::string& authorization, const std::string& ns,
                               const std::string& broker) const {
  return impl_->publisher(authorization, ns, broker);
}

Decision Auth::decide(const Identity& who, const RequestAttributes& request) const {
  return impl_->decide(who, request);
}

Result<void> Auth::authorize(ApiRequest& request) const {
  request.decision = impl_->decide(request.who, request.attributes);
  if (request.decision.allowed) return {};
  return forbidden(request.who, request.attributes);
}

awaitable<Result<void>> Auth::check_grant(const Identity* who, const KindInfo& kind,
                                          const json::object& object) {
  return impl_->check_grant(who, kind, object);
}

void Auth::add_routes(Router& router) {
  auto bind = [impl = impl_](awaitable<bool> (Impl::*fn)(ApiRequest&, Responder&)) -> Handler {
    return [impl, fn](ApiRequest& req, Responder& r) { return (impl.get()->*fn)(req, r); };
  };
  router.add("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
             bind(&Impl::access_review));
  router.add("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
             bind(&Impl::rules_review));
  router.add("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", bind(&Impl::whoami));
  router.add("GET", "/apis/elafros.dev/v1/tokens", bind(&Impl::list_tokens));
  router.add("POST", "/apis/elafros.dev/v1/tokens", bind(&Impl::create_token));
  router.add("DELETE", "/apis/elafros.dev/v1/tokens/{name}", bind(&Impl::revoke_token));
  router.add("GET", "/ui/session", bind(&Impl::session_info));
  router.add("POST", "/ui/session", bind(&Impl::sign_in));
  router.add("DELETE", "/ui/session", bind(&Impl::sign_out));
}

void Auth::start() {
  impl_->schedule_flush();
}

void Auth::stop() {
  impl_->flush_timer_.cancel();
  (void)impl_->p_.tokens.flush();
}

}  // namespace elafros::api
