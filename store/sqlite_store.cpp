#include "sqlite_store.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <boost/json.hpp>
#include <map>
#include <utility>

#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "secret_cipher.hpp"
#include "sqlite_statement.hpp"

namespace json = boost::json;

namespace elafros {
using sqlite::Statement;
using sqlite::Transaction;
namespace {

// Schema 4: an object's controller (its first ownerReference) is found by index, so that a
// service's revisions are listed without reading every revision.
constexpr const char* kOwnerIndex =
    "CREATE INDEX objects_by_owner ON objects (api_group, kind, namespace, "
    "json_extract(owner_references, '$[0].uid'))";

// Schema migrations, applied in order; PRAGMA user_version records how many have run.
// Schema 5: the brokers' queue. An event and its deliveries (one per matching Trigger) commit
// together; a delivery is pending until delivered, dead-lettered or failed for good.
constexpr const char* kEventTables = R"sql(
CREATE TABLE events (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace  TEXT NOT NULL,
  broker     TEXT NOT NULL,
  attributes TEXT NOT NULL,
  data       BLOB,
  received   INTEGER NOT NULL
);
CREATE INDEX events_by_broker ON events (namespace, broker, seq);
CREATE TABLE deliveries (
  event_seq   INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
  trigger_uid TEXT NOT NULL,
  trigger     TEXT NOT NULL,
  state       TEXT NOT NULL,
  attempts    INTEGER NOT NULL,
  dl_attempts INTEGER NOT NULL,
  next_at     INTEGER NOT NULL,
  last_code   INTEGER NOT NULL,
  last_error  TEXT NOT NULL,
  last_body   BLOB,
  updated     INTEGER NOT NULL,
  PRIMARY KEY (event_seq, trigger_uid)
);
CREATE INDEX deliveries_due ON deliveries (state, next_at);
CREATE INDEX deliveries_due_by_trigger ON deliveries (trigger_uid, state, next_at);
)sql";

constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE services (
  namespace   TEXT NOT NULL,
  name        TEXT NOT NULL,
  uid         TEXT NOT NULL,
  generation  INTEGER NOT NULL,
  created     INTEGER NOT NULL,
  labels      TEXT NOT NULL,
  annotations TEXT NOT NULL,
  template    TEXT NOT NULL,
  traffic     TEXT NOT NULL,
  PRIMARY KEY (namespace, name)
);
CREATE TABLE revisions (
  namespace    TEXT NOT NULL,
  name         TEXT NOT NULL,
  service      TEXT NOT NULL,
  uid          TEXT NOT NULL,
  generation   INTEGER NOT NULL,
  created      INTEGER NOT NULL,
  template     TEXT NOT NULL,
  image_digest TEXT NOT NULL,
  PRIMARY KEY (namespace, name),
  FOREIGN KEY (namespace, service) REFERENCES services (namespace, name) ON DELETE CASCADE
);
CREATE INDEX revisions_by_service ON revisions (namespace, service);
CREATE TABLE instances (
  id        TEXT PRIMARY KEY,
  namespace TEXT NOT NULL,
  service   TEXT NOT NULL,
  revision  TEXT NOT NULL,
  port      INTEGER NOT NULL,
  pid       INTEGER NOT NULL,
  state     TEXT NOT NULL,
  created   INTEGER NOT NULL
);
CREATE TABLE images (
  name          TEXT PRIMARY KEY,
  digest        TEXT NOT NULL,
  config_digest TEXT NOT NULL,
  source        TEXT NOT NULL,
  size          INTEGER NOT NULL,
  created       INTEGER NOT NULL
);
)sql",
    // 2: revision names count template changes; revisions remember having been Ready.
    R"sql(
ALTER TABLE services ADD COLUMN config_generation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE revisions ADD COLUMN ever_ready INTEGER NOT NULL DEFAULT 0;
)sql",
};

std::map<std::string, std::string> text_to_map(const std::string& s) {
  std::map<std::string, std::string> m;
  boost::system::error_code ec;
  json::value v = json::parse(s, ec);
  if (ec || !v.is_object()) return m;
  for (const auto& kv : v.get_object())
    if (kv.value().is_string()) m.emplace(kv.key(), kv.value().get_string());
  return m;
}

std::vector<TrafficTarget> text_to_traffic(const std::string& s) {
  std::vector<TrafficTarget> out;
  boost::system::error_code ec;
  json::value v = json::parse(s, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& e : v.get_array()) {
    const auto& o = e.get_object();
    out.push_back({std::string(o.at("revisionName").get_string()),
                   o.at("latestRevision").get_bool(),
                   static_cast<int>(o.at("percent").to_number<std::int64_t>()),
                   std::string(o.at("tag").get_string())});
  }
  return out;
}

Result<RevisionTemplate> text_to_template(const std::string& s) {
  boost::system::error_code ec;
  json::value v = json::parse(s, ec);
  if (ec) return Error::internal(fmt::format("stored template is not JSON: {}", ec.message()));
  return template_from_json(v);
}

const char* state_text(InstanceState s) {
  switch (s) {
    case InstanceState::kStarting:
      return "starting";
    case InstanceState::kRunning:
      return "running";
    case InstanceState::kStopping:
      return "stopping";
    case InstanceState::kStandby:
      return "standby";
  }
  return "starting";
}

InstanceState text_state(const std::string& s) {
  if (s == "running") return InstanceState::kRunning;
  if (s == "stopping") return InstanceState::kStopping;
  if (s == "standby") return InstanceState::kStandby;
  return InstanceState::kStarting;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Error::internal(fmt::format(
        "cannot open the database {}: {} (check that the data directory exists and is writable)",
        path, msg));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db));
  sqlite3_busy_timeout(db, 5000);
  // A damaged file is refused, never silently reset: the operator decides (docs/architecture.md).
  auto corrupt = [&](const std::string& what) {
    return Error::precondition(fmt::format(
        "the database {} is damaged ({}); elafrosd will not start on it. Keep a copy, then "
        "repair it (sqlite3 {} \".recover\" | sqlite3 repaired.db) or restore a backup; running "
        "containers are untouched",
        path, what, path));
  };
  {
    Statement check(db, "PRAGMA quick_check");
    if (!check.prepared()) return corrupt(sqlite3_errmsg(db));
    int step = check.step();
    if (step != SQLITE_ROW) return corrupt(sqlite3_errmsg(db));
    std::string verdict = check.text(0);
    if (verdict != "ok") return corrupt(verdict);
  }
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON",
        "PRAGMA cache_size=-16384"}) {  // 16 MiB of pages, not SQLite's 2 MiB
    if (auto r = store->exec(pragma); !r) return r.error();
  }
  if (auto r = store->migrate(); !r) return r.error();
  Statement rv(db, "SELECT value FROM counters WHERE name='resource_version'");
  if (rv.step() != SQLITE_ROW) return rv.error("reading the resourceVersion failed");
  store->resource_version_ = rv.integer(0);
  return store;
}

SqliteStore::~SqliteStore() {
  sqlite3_close(db_);
}

Result<void> SqliteStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Error::internal(fmt::format("database statement failed: {}", msg));
  }
  return {};
}

int SqliteStore::schema_version() {
  Statement st(db_, "PRAGMA user_version");
  return st.step() == SQLITE_ROW ? static_cast<int>(st.integer(0)) : -1;
}

namespace {
constexpr const char* kUsageTables = R"sql(
CREATE TABLE usage (
  window_start      INTEGER NOT NULL,
  namespace         TEXT NOT NULL,
  service           TEXT NOT NULL,
  revision          TEXT NOT NULL,
  requests          INTEGER NOT NULL DEFAULT 0,
  errors_5xx        INTEGER NOT NULL DEFAULT 0,
  cold_starts       INTEGER NOT NULL DEFAULT 0,
  instance_ms       INTEGER NOT NULL DEFAULT 0,
  cpu_ns            INTEGER NOT NULL DEFAULT 0,
  vcpu_milli_ms     INTEGER NOT NULL DEFAULT 0,
  mem_byte_ms       REAL NOT NULL DEFAULT 0,
  mem_alloc_byte_ms REAL NOT NULL DEFAULT 0,
  peak_memory       INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (window_start, namespace, service, revision)
);
CREATE TABLE usage_marks (instance TEXT PRIMARY KEY, t_ms INTEGER NOT NULL, cpu_ns INTEGER NOT NULL);
)sql";
// Schema 7: the time a revision had a request in flight; a namespace's builds and deliveries.
constexpr const char* kActiveColumn = R"sql(
ALTER TABLE usage ADD COLUMN active_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN build_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN events_delivered INTEGER NOT NULL DEFAULT 0;
)sql";
}  // namespace

Result<void> SqliteStore::record_usage(const std::vector<UsageSample>& samples) {
  Transaction tx(db_);
  if (!tx.began()) return Error::unavailable("cannot lock the database to record usage");
  for (const auto& u : samples) {
    std::int64_t dt = 0;
    std::uint64_t cpu = 0;
    if (!u.instance.empty()) {
      Statement mark(db_, "SELECT t_ms, cpu_ns FROM usage_marks WHERE instance=?");
      mark.bind(1, u.instance);
      std::int64_t from_t = u.started_ms;
      std::uint64_t from_cpu = 0;
      if (mark.step() == SQLITE_ROW) {
        from_t = mark.integer(0);
        from_cpu = static_cast<std::uint64_t>(mark.integer(1));
      }
      dt = std::max<std::int64_t>(0, u.t_ms - from_t);
      cpu = u.cpu_ns >= from_cpu ? u.cpu_ns - from_cpu : 0;
      Statement put(db_, u.final
                             ? "DELETE FROM usage_marks WHERE instance=?1"
                             : "INSERT INTO usage_marks VALUES (?1, ?2, ?3) ON CONFLICT(instance) "
                               "DO UPDATE SET t_ms=?2, cpu_ns=?3");
      put.bind(1, u.instance);
      if (!u.final) put.bind(2, u.t_ms).bind(3, static_cast<std::int64_t>(u.cpu_ns));
      if (put.step() != SQLITE_DONE) return put.error("recording a usage mark failed");
    }
    std::int64_t t_s = u.t_ms / 1000;
    Statement add(
        db_,
        "INSERT INTO usage (window_start, namespace, service, revision, requests, "
        "errors_5xx, cold_starts, instance_ms, cpu_ns, vcpu_milli_ms, mem_byte_ms, "
        "mem_alloc_byte_ms, peak_memory, active_ms, build_ms) VALUES "
        "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15) "
        "ON CONFLICT(window_start, namespace, service, revision) DO UPDATE SET "
        "requests=requests+?5, errors_5xx=errors_5xx+?6, cold_starts=cold_starts+?7, "
        "instance_ms=instance_ms+?8, cpu_ns=cpu_ns+?9, vcpu_milli_ms=vcpu_milli_ms+?10, "
        "mem_byte_ms=mem_byte_ms+?11, mem_alloc_byte_ms=mem_alloc_byte_ms+?12, "
        "peak_memory=max(peak_memory, ?13), active_ms=active_ms+?14, build_ms=build_ms+?15");
    add.bind(1, t_s - t_s % 3600)
        .bind(2, u.ns)
        .bind(3, u.service)
        .bind(4, u.revision)
        .bind(5, static_cast<std::int64_t>(u.requests))
        .bind(6, static_cast<std::int64_t>(u.errors_5xx))
        .bind(7, static_cast<std::int64_t>(u.cold_starts))
        .bind(8, dt)
        .bind(9, static_cast<std::int64_t>(cpu))
        .bind(10, u.cpu_limit_millis * dt)
        .bind(11, static_cast<double>(u.memory_bytes) * static_cast<double>(dt))
        .bind(12, static_cast<double>(u.memory_limit_bytes) * static_cast<double>(dt))
        .bind(13, static_cast<std::int64_t>(u.memory_bytes))
        .bind(14, u.active_ms)
        .bind(15, u.build_ms);
    if (add.step() != SQLITE_DONE) return add.error("recording usage failed");
  }
  return tx.commit();
}

Result<std::vector<UsageRow>> SqliteStore::usage_rows(std::int64_t from, std::int64_t to) {
  Statement st(
      db_,
      "SELECT window_start, namespace, service, revision, requests, errors_5xx, "
      "cold_starts, instance_ms, cpu_ns, vcpu_milli_ms, mem_byte_ms, mem_alloc_byte_ms, "
      "peak_memory, active_ms, build_ms, events_delivered FROM usage WHERE window_start + 3600 > "
      "? AND window_start < ? "
      "ORDER BY "
      "window_start, namespace, service, revision");
  st.bind(1, from).bind(2, to);
  std::vector<UsageRow> out;
  int rc;
  constexpr double kGiB = 1024.0 * 1024 * 1024;
  while ((rc = st.step()) == SQLITE_ROW) {
    UsageRow r;
    r.window_start = st.integer(0);
    r.ns = st.text(1);
    r.service = st.text(2);
    r.revision = st.text(3);
    r.requests = static_cast<std::uint64_t>(st.integer(4));
    r.errors_5xx = static_cast<std::uint64_t>(st.integer(5));
    r.cold_starts = static_cast<std::uint64_t>(st.integer(6));
    r.instance_seconds = static_cast<double>(st.integer(7)) / 1000;
    r.cpu_seconds_used = static_cast<double>(st.integer(8)) / 1e9;
    r.vcpu_seconds_alloc = static_cast<double>(st.integer(9)) / 1e6;
    r.gib_seconds_used = st.real(10) / 1000 / kGiB;
    r.gib_seconds_alloc = st.real(11) / 1000 / kGiB;
    r.peak_memory_bytes = static_cast<std::uint64_t>(st.integer(12));
    r.active_seconds = static_cast<double>(st.integer(13)) / 1000;
    r.build_seconds = static_cast<double>(st.integer(14)) / 1000;
    r.events_delivered = static_cast<std::uint64_t>(st.integer(15));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return st.error("reading usage failed");
  return out;
}

Result<void> SqliteStore::migrate() {
  int version = schema_version();
  if (version > kSchemaVersion)
    return Error::precondition(
        fmt::format("the database has schema version {}, newer than this elafrosd understands "
                    "({}); run a newer elafrosd",
                    version, kSchemaVersion));
  for (int v = version; v < kSchemaVersion; ++v) {
    Transaction tx(db_);
    if (!tx.began())
      return Error::unavailable(
          "cannot lock the database to migrate it; is another elafrosd running?");
    auto step = v < 2    ? exec(kMigrations[v])
                : v == 2 ? move_to_objects()
                : v == 3 ? exec(kOwnerIndex)
                : v == 4 ? exec(kEventTables)
                : v == 5 ? exec(kUsageTables)
                : v == 6
                    ? exec(kActiveColumn)
                    : exec("ALTER TABLE instances ADD COLUMN address TEXT NOT NULL DEFAULT ''");
    if (!step) return step.error();
    if (auto r = exec(fmt::format("PRAGMA user_version={}", v + 1).c_str()); !r) return r.error();
    if (auto r = tx.commit(); !r) return r.error();
  }
  return {};
}

namespace {
constexpr const char* kObjectsTable = R"sql(
CREATE TABLE objects (
  api_group        TEXT NOT NULL,
  api_version      TEXT NOT NULL,
  kind             TEXT NOT NULL,
  namespace        TEXT NOT NULL,
  name             TEXT NOT NULL,
  uid              TEXT NOT NULL UNIQUE,
  generation       INTEGER NOT NULL,
  resource_version INTEGER NOT NULL,
  labels           TEXT NOT NULL,
  annotations      TEXT NOT NULL,
  owner_references TEXT NOT NULL,
  finalizers       TEXT NOT NULL,
  spec             TEXT NOT NULL,
  data             TEXT NOT NULL,
  status           TEXT NOT NULL,
  created          INTEGER NOT NULL,
  deleted          INTEGER,
  PRIMARY KEY (api_group, kind, namespace, name)
);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters VALUES ('resource_version', 0);
)sql";

constexpr const char* kObjectColumns =
    "SELECT api_group, api_version, kind, namespace, name, uid, generation, resource_version, "
    "labels, annotations, owner_references, finalizers, spec, data, status, created, deleted "
    "FROM objects ";

json::value parse_or(const std::string& text, json::value fallback) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? fallback : v;
}

constexpr const char* kSealedKey = "elafros.dev/sealed";

bool is_secret(const std::string& group, const std::string& kind) {
  return group.empty() && kind == "Secret";
}

// A Secret's data and annotations (where kubectl apply copies the whole object) are sealed in
// their columns; everything else is plain JSON.
std::string seal_column(const SecretCipher* cipher, std::string text) {
  if (!cipher) return text;
  return json::serialize(json::object{{kSealedKey, cipher->seal(text)}});
}

std::string unseal_column(const SecretCipher* cipher, std::string text, const char* empty) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  const json::value* sealed =
      !ec && v.is_object() ? v.get_object().if_contains(kSealedKey) : nullptr;
  if (!sealed || !sealed->is_string()) return text;
  if (!cipher) return empty;
  auto plain = cipher->unseal(sealed->get_string());
  if (!plain) {
    spdlog::error("{}", plain.error().message);
    return empty;
  }
  return *plain;
}

json::object read_object(Statement& st, const SecretCipher* cipher) {
  std::string group = st.text(0);
  const SecretCipher* c = is_secret(group, st.text(2)) ? cipher : nullptr;
  json::object md;
  md["name"] = st.text(4);
  if (!st.text(3).empty()) md["namespace"] = st.text(3);
  md["uid"] = st.text(5);
  md["resourceVersion"] = std::to_string(st.integer(7));
  if (st.integer(6)) md["generation"] = st.integer(6);
  md["creationTimestamp"] = format_rfc3339(st.integer(15));
  if (!st.is_null(16)) md["deletionTimestamp"] = format_rfc3339(st.integer(16));
  auto put = [&md](const char* key, json::value v) {
    if ((v.is_object() && !v.get_object().empty()) || (v.is_array() && !v.get_array().empty()))
      md[key] = std::move(v);
  };
  put("labels", parse_or(st.text(8), json::object{}));
  put("annotations", parse_or(c ? unseal_column(c, st.text(9), "{}") : st.text(9), json::object{}));
  put("ownerReferences", parse_or(st.text(10), json::array{}));
  put("finalizers", parse_or(st.text(11), json::array{}));
  json::object o;
  o["apiVersion"] = group.empty() ? st.text(1) : group + "/" + st.text(1);
  o["kind"] = st.text(2);
  o["metadata"] = std::move(md);
  json::value data =
      parse_or(c ? unseal_column(c, st.text(13), "{}") : st.text(13), json::object{});
  if (data.is_object())
    for (auto& kv : data.get_object()) o[kv.key()] = kv.value();
  json::value spec = parse_or(st.text(12), nullptr);
  if (!spec.is_null()) o["spec"] = std::move(spec);
  json::value status = parse_or(st.text(14), json::object{});
  if (status.is_object() && !status.get_object().empty()) o["status"] = std::move(status);
  return o;
}

std::string meta_json_text(const json::object& o, std::string_view field, const char* empty) {
  const json::value* md = o.if_contains("metadata");
  const json::value* v = md && md->is_object() ? md->get_object().if_contains(field) : nullptr;
  return v && !v->is_null() ? json::serialize(*v) : std::string(empty);
}

std::string version_of(const json::object& o) {
  const json::value* v = o.if_contains("apiVersion");
  std::string av = v && v->is_string() ? std::string(v->get_string()) : "v1";
  auto slash = av.find('/');
  return slash == std::string::npos ? av : av.substr(slash + 1);
}

// Binds every column of an object row, in kObjectColumns' order, from index 1.
void bind_object(Statement& st, const std::string& group, const std::string& kind,
                 const json::object& o, std::int64_t rv, const SecretCipher* cipher) {
  const SecretCipher* c = is_secret(group, kind) ? cipher : nullptr;
  json::object data;
  for (const auto& kv : o)
    if (kv.key() != "apiVersion" && kv.key() != "kind" && kv.key() != "metadata" &&
        kv.key() != "spec" && kv.key() != "status")
      data[kv.key()] = kv.value();
  const json::value* spec = o.if_contains("spec");
  const json::value* status = o.if_contains("status");
  std::string deleted = meta_string(o, "deletionTimestamp");
  st.bind(1, group)
      .bind(2, version_of(o))
      .bind(3, kind)
      .bind(4, meta_string(o, "namespace"))
      .bind(5, meta_string(o, "name"))
      .bind(6, meta_string(o, "uid"))
      .bind(7, meta_int(o, "generation"))
      .bind(8, rv)
      .bind(9, meta_json_text(o, "labels", "{}"))
      .bind(10, seal_column(c, meta_json_text(o, "annotations", "{}")))
      .bind(11, meta_json_text(o, "ownerReferences", "[]"))
      .bind(12, meta_json_text(o, "finalizers", "[]"))
      .bind(13, spec ? json::serialize(*spec) : std::string("null"))
      .bind(14, seal_column(c, json::serialize(data)))
      .bind(15, status && status->is_object() ? json::serialize(*status) : std::string("{}"))
      .bind(16, parse_rfc3339(meta_string(o, "creationTimestamp")).value_or(0));
  if (deleted.empty())
    st.bind_null(17);
  else
    st.bind(17, parse_rfc3339(deleted).value_or(0));
}

constexpr const char* kInsertObject =
    "INSERT INTO objects (api_group, api_version, kind, namespace, name, uid, generation, "
    "resource_version, labels, annotations, owner_references, finalizers, spec, data, status, "
    "created, deleted) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

std::string describe(const ObjectKey& k) {
  return k.namespace_.empty()
             ? fmt::format("{} \"{}\"", k.kind, k.name)
             : fmt::format("{} \"{}\" in namespace \"{}\"", k.kind, k.name, k.namespace_);
}

ObjectKey key_of(const std::string& group, const std::string& kind, const json::object& o) {
  return {group, kind, meta_string(o, "namespace"), meta_string(o, "name")};
}

bool finalizers_empty(const json::object& o) {
  const json::value* md = o.if_contains("metadata");
  const json::value* f =
      md && md->is_object() ? md->get_object().if_contains("finalizers") : nullptr;
  return !f || !f->is_array() || f->get_array().empty();
}

}  // namespace

Result<std::pair<std::string, std::size_t>> SqliteStore::rotate_secret_key() {
  if (!cipher_) return Error::precondition("Secrets are not encrypted at rest on this store");
  auto id = cipher_->add_key();
  if (!id) return id.error();
  // Every Secret resealed with the new key, in one transaction; then the old keys go.
  std::vector<std::pair<json::object, std::int64_t>> secrets;
  {
    std::string sql = std::string(kObjectColumns) + "WHERE api_group='' AND kind='Secret'";
    Statement st(db_, sql.c_str());
    int rc;
    while ((rc = st.step()) == SQLITE_ROW)
      secrets.emplace_back(read_object(st, cipher_), st.integer(7));
    if (rc != SQLITE_DONE) return st.error("reading the Secrets to reseal failed");
  }
  Transaction tx(db_);
  if (!tx.began()) return Error::unavailable("cannot lock the database to reseal the Secrets");
  for (auto& [o, rv] : secrets) {
    Statement del(
        db_, "DELETE FROM objects WHERE api_group='' AND kind='Secret' AND namespace=? AND name=?");
    del.bind(1, meta_string(o, "namespace")).bind(2, meta_string(o, "name"));
    if (del.step() != SQLITE_DONE) return del.error("resealing a Secret failed");
    Statement st(db_, kInsertObject);
    bind_object(st, "", "Secret", o, rv, cipher_);
    if (st.step() != SQLITE_DONE) return st.error("resealing a Secret failed");
  }
  if (auto c = tx.commit(); !c) return c.error();
  if (auto d = cipher_->drop_old_keys(); !d) return d.error();
  return std::pair<std::string, std::size_t>{*id, secrets.size()};
}

Result<json::object> SqliteStore::get_object(const ObjectKey& key) {
  std::string sql =
      std::string(kObjectColumns) + "WHERE api_group=? AND kind=? AND namespace=? AND name=?";
  Statement st(db_, sql.c_str());
  st.bind(1, key.group).bind(2, key.kind).bind(3, key.namespace_).bind(4, key.name);
  int rc = st.step();
  if (rc == SQLITE_DONE) return Error::not_found(fmt::format("{} not found", describe(key)));
  if (rc != SQLITE_ROW) return st.error("reading the object failed");
  return read_object(st, cipher_);
}

Result<ObjectList> SqliteStore::list_objects(const ObjectQuery& q) {
  // The planner prefers the primary key (it orders by it); an owner's objects are few.
  std::string sql = std::string(kObjectColumns) +
                    (q.owner_uid.empty() ? "" : "INDEXED BY objects_by_owner ") +
                    "WHERE api_group=?1 AND kind=?2";
  if (!q.namespace_.empty()) sql += " AND namespace=?3";
  if (!q.name.empty()) sql += " AND name=?4";
  if (!q.after_name.empty()) sql += " AND (namespace, name) > (?5, ?6)";
  if (!q.owner_uid.empty()) sql += " AND json_extract(owner_references, '$[0].uid') = ?7";
  sql += " ORDER BY namespace, name";
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit + 1);
  Statement st(db_, sql.c_str());
  st.bind(1, q.group).bind(2, q.kind);
  if (!q.namespace_.empty()) st.bind(3, q.namespace_);
  if (!q.name.empty()) st.bind(4, q.name);
  if (!q.after_name.empty()) st.bind(5, q.after_namespace).bind(6, q.after_name);
  if (!q.owner_uid.empty()) st.bind(7, q.owner_uid);
  ObjectList out;
  out.resource_version = resource_version_;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    if (q.limit && out.items.size() == q.limit) {
      out.more = true;
      break;
    }
    out.items.push_back(read_object(st, cipher_));
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return st.error("listing objects failed");
  return out;
}

std::vector<Result<std::vector<ObjectEvent>>> SqliteStore::write_object_groups(
    std::vector<std::vector<ObjectWrite>> groups) {
  std::vector<Result<std::vector<ObjectEvent>>> results;
  Transaction tx(db_);
  if (!tx.began()) {
    for (std::size_t i = 0; i < groups.size(); ++i)
      results.emplace_back(Error::unavailable("the database is busy; retry"));
    return results;
  }
  const std::int64_t first = resource_version_;
  for (auto& group : groups) results.push_back(apply_group(group));
  Result<void> committed;
  if (resource_version_ != first) {
    Statement st(db_, "UPDATE counters SET value=? WHERE name='resource_version'");
    st.bind(1, resource_version_);
    if (st.step() != SQLITE_DONE) committed = st.error("recording the resourceVersion failed");
  }
  if (committed) committed = tx.commit();
  if (!committed) {
    resource_version_ = first;
    for (auto& r : results)
      if (r) r = committed.error();
  }
  return results;
}

Result<std::vector<ObjectEvent>> SqliteStore::apply_group(std::vector<ObjectWrite>& group) {
  const std::int64_t first = resource_version_;
  if (auto r = exec("SAVEPOINT object_group"); !r) return r.error();
  std::vector<ObjectEvent> events;
  Result<void> applied;
  for (auto& w : group) {
    applied = apply_write(w, events);
    if (!applied) break;
  }
  if (!applied) {
    (void)exec("ROLLBACK TO object_group");
    (void)exec("RELEASE object_group");
    resource_version_ = first;
    return applied.error();
  }
  if (auto r = exec("RELEASE object_group"); !r) return r.error();
  return events;
}

Result<void> SqliteStore::apply_write(ObjectWrite& w, std::vector<ObjectEvent>& events) {
  ObjectKey key = key_of(w.group, w.kind, w.object);
  if (key.name.empty())
    return Error::invalid("metadata.name: Required value: give the object a name");
  auto stored = get_object(key);
  if (w.op == ObjectWrite::Op::kCreate) {
    if (stored) return Error::exists(fmt::format("{} already exists", describe(key)));
    if (stored.error().code != ErrorCode::kNotFound) return stored.error();
    std::int64_t rv = resource_version_ + 1;
    Statement st(db_, kInsertObject);
    bind_object(st, w.group, w.kind, w.object, rv, cipher_);
    if (st.step() != SQLITE_DONE) return st.error(fmt::format("storing {} failed", describe(key)));
    resource_version_ = rv;
    metadata_of(w.object)["resourceVersion"] = std::to_string(rv);
    events.push_back({WatchEventType::kAdded, w.group, w.kind, w.object, rv});
    return {};
  }
  if (!stored) return stored.error();
  std::int64_t current = resource_version_of(*stored);
  if (w.expected_resource_version && w.expected_resource_version != current)
    return Error::conflict(fmt::format(
        "Operation cannot be fulfilled on {}: the object has been modified (resourceVersion {} "
        "is stored, the request was based on {}); read it again, apply your change to the "
        "latest version and retry",
        describe(key), current, w.expected_resource_version));
  const std::string uid = meta_string(*stored, "uid");
  if (w.op == ObjectWrite::Op::kUpdateStatus) {
    json::object next = *stored;
    json::value& st = next["status"];
    if (!st.is_object()) st.emplace_object();
    bool changed = false;
    if (const json::value* in = w.object.if_contains("status"); in && in->is_object())
      for (const auto& kv : in->get_object()) {
        json::value& slot = st.get_object()[kv.key()];
        if (slot != kv.value()) slot = kv.value(), changed = true;
      }
    if (!changed) return {};
    w.object = std::move(next);
  }
  // Removing the last finalizer of an object being deleted completes its deletion.
  bool finish_delete = w.op == ObjectWrite::Op::kUpdate &&
                       !meta_string(*stored, "deletionTimestamp").empty() &&
                       finalizers_empty(w.object);
  if (w.op == ObjectWrite::Op::kDelete || finish_delete)
    return delete_with_dependents(key, uid, events, 0);
  std::int64_t rv = resource_version_ + 1;
  {
    Statement del(db_,
                  "DELETE FROM objects WHERE api_group=? AND kind=? AND namespace=? AND name=?");
    del.bind(1, key.group).bind(2, key.kind).bind(3, key.namespace_).bind(4, key.name);
    if (del.step() != SQLITE_DONE) return del.error("updating the object failed");
    Statement st(db_, kInsertObject);
    bind_object(st, w.group, w.kind, w.object, rv, cipher_);
    if (st.step() != SQLITE_DONE) return st.error(fmt::format("updating {} failed", describe(key)));
  }
  resource_version_ = rv;
  metadata_of(w.object)["resourceVersion"] = std::to_string(rv);
  events.push_back({WatchEventType::kModified, w.group, w.kind, w.object, rv});
  return {};
}

// Deletes an object and, first, everything whose ownerReferences name it (Kubernetes' garbage
// collection, done at once in the same transaction).
Result<void> SqliteStore::delete_with_dependents(const ObjectKey& key, const std::string& uid,
                                                 std::vector<ObjectEvent>& events, int depth) {
  if (depth > 16) return Error::internal("ownerReferences nest deeper than 16 levels");
  std::vector<std::pair<ObjectKey, std::string>> dependents;
  {
    std::string sql = std::string(kObjectColumns) + "WHERE instr(owner_references, ?) > 0";
    Statement st(db_, sql.c_str());
    st.bind(1, uid);
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      json::object o = read_object(st, cipher_);
      const json::value* md = o.if_contains("metadata");
      const json::value* refs =
          md && md->is_object() ? md->get_object().if_contains("ownerReferences") : nullptr;
      bool owned = false;
      if (refs && refs->is_array())
        for (const auto& r : refs->get_array())
          if (r.is_object())
            if (const json::value* u = r.get_object().if_contains("uid"))
              owned = owned || (u->is_string() && u->get_string() == uid);
      if (owned)
        dependents.emplace_back(ObjectKey{st.text(0), st.text(2), st.text(3), st.text(4)},
                                st.text(5));
    }
    if (rc != SQLITE_DONE) return st.error("finding the objects it owns failed");
  }
  for (const auto& [dep, dep_uid] : dependents)
    if (auto r = delete_with_dependents(dep, dep_uid, events, depth + 1); !r) return r;
  auto stored = get_object(key);
  if (!stored) return stored.error();
  Statement del(db_, "DELETE FROM objects WHERE api_group=? AND kind=? AND namespace=? AND name=?");
  del.bind(1, key.group).bind(2, key.kind).bind(3, key.namespace_).bind(4, key.name);
  if (del.step() != SQLITE_DONE) return del.error(fmt::format("deleting {} failed", describe(key)));
  std::int64_t rv = ++resource_version_;
  metadata_of(*stored)["resourceVersion"] = std::to_string(rv);
  events.push_back({WatchEventType::kDeleted, key.group, key.kind, std::move(*stored), rv});
  return {};
}

// Schema 3: services and revisions move from their typed tables into the generic objects
// table, each with a resourceVersion, in their creation order.
Result<void> SqliteStore::move_to_objects() {
  if (auto r = exec(kObjectsTable); !r) return r;
  std::map<std::string, std::string> service_uids;  // namespace/name → uid
  std::vector<json::object> objects;
  std::vector<std::string> kinds;
  {
    Statement st(db_,
                 "SELECT namespace, name, uid, generation, created, labels, annotations, "
                 "template, traffic, config_generation FROM services ORDER BY rowid");
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      Service s;
      s.meta.namespace_ = st.text(0);
      s.meta.name = st.text(1);
      s.meta.uid = st.text(2);
      s.meta.generation = st.integer(3);
      s.meta.created_unix = st.integer(4);
      s.meta.labels = text_to_map(st.text(5));
      s.meta.annotations = text_to_map(st.text(6));
      auto t = text_to_template(st.text(7));
      if (!t) return t.error();
      s.spec = std::move(t.value());
      s.traffic = text_to_traffic(st.text(8));
      s.config_generation = st.integer(9);
      service_uids[s.meta.namespace_ + "/" + s.meta.name] = s.meta.uid;
      objects.push_back(service_object(s));
      kinds.emplace_back("Service");
    }
    if (rc != SQLITE_DONE) return st.error("reading the services to migrate failed");
  }
  {
    Statement st(db_,
                 "SELECT namespace, name, service, uid, generation, created, template, "
                 "image_digest, ever_ready FROM revisions ORDER BY rowid");
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      Revision r;
      r.meta.namespace_ = st.text(0);
      r.meta.name = st.text(1);
      r.service = st.text(2);
      r.meta.uid = st.text(3);
      r.meta.generation = st.integer(4);
      r.meta.created_unix = st.integer(5);
      auto t = text_to_template(st.text(6));
      if (!t) return t.error();
      r.spec = std::move(t.value());
      r.image_digest = st.text(7);
      r.ever_ready = st.integer(8) != 0;
      objects.push_back(revision_object(r, service_uids[r.meta.namespace_ + "/" + r.service]));
      kinds.emplace_back("Revision");
    }
    if (rc != SQLITE_DONE) return st.error("reading the revisions to migrate failed");
  }
  std::int64_t rv = 0;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    Statement st(db_, kInsertObject);
    bind_object(st, kServingGroup, kinds[i], objects[i], ++rv, nullptr);
    if (st.step() != SQLITE_DONE) return st.error("migrating an object failed");
  }
  Statement counter(db_, "UPDATE counters SET value=? WHERE name='resource_version'");
  counter.bind(1, rv);
  if (counter.step() != SQLITE_DONE) return counter.error("recording the resourceVersion failed");
  return exec("DROP TABLE revisions; DROP TABLE services;");
}

Result<void> SqliteStore::mark_revision_ready(const std::string& ns, const std::string& name) {
  Statement st(db_,
               "UPDATE objects SET status=json_set(status, '$.everReady', json('true')) WHERE "
               "api_group='serving.knative.dev' AND kind='Revision' AND namespace=? AND name=?");
  st.bind(1, ns).bind(2, name);
  if (st.step() != SQLITE_DONE) return st.error("recording the revision's readiness failed");
  return {};
}
Result<void> SqliteStore::put_instance(const InstanceRecord& i) {
  Statement st(db_, "INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?,?)");
  st.bind(1, i.id)
      .bind(2, i.namespace_)
      .bind(3, i.service)
      .bind(4, i.revision)
      .bind(5, std::int64_t{i.port})
      .bind(6, std::int64_t{i.pid})
      .bind(7, std::string(state_text(i.state)))
      .bind(8, i.created_unix)
      .bind(9, i.address);
  if (st.step() != SQLITE_DONE) return st.error("recording the instance failed");
  return {};
}

Result<void> SqliteStore::delete_instance(const std::string& id) {
  Statement st(db_, "DELETE FROM instances WHERE id=?");
  st.bind(1, id);
  if (st.step() != SQLITE_DONE) return st.error("forgetting the instance failed");
  return {};
}

Result<std::vector<InstanceRecord>> SqliteStore::list_instances() {
  Statement st(db_, "SELECT * FROM instances ORDER BY created, id");
  std::vector<InstanceRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    InstanceRecord i;
    i.id = st.text(0);
    i.namespace_ = st.text(1);
    i.service = st.text(2);
    i.revision = st.text(3);
    i.port = static_cast<int>(st.integer(4));
    i.pid = static_cast<int>(st.integer(5));
    i.state = text_state(st.text(6));
    i.created_unix = st.integer(7);
    i.address = st.text(8);  // schema 8
    out.push_back(std::move(i));
  }
  if (rc != SQLITE_DONE) return st.error("listing instances failed");
  return out;
}

Result<void> SqliteStore::put_image(const ImageRecord& i) {
  Statement st(db_, "INSERT OR REPLACE INTO images VALUES (?,?,?,?,?,?)");
  st.bind(1, i.name)
      .bind(2, i.digest)
      .bind(3, i.config_digest)
      .bind(4, i.source)
      .bind(5, i.size)
      .bind(6, i.created_unix);
  if (st.step() != SQLITE_DONE) return st.error("recording the image failed");
  return {};
}

namespace {
ImageRecord read_image(Statement& st) {
  return {st.text(0), st.text(1), st.text(2), st.text(3), st.integer(4), st.integer(5)};
}
}  // namespace

Result<ImageRecord> SqliteStore::get_image(const std::string& name) {
  Statement st(db_, "SELECT * FROM images WHERE name=?");
  st.bind(1, name);
  int rc = st.step();
  if (rc == SQLITE_DONE)
    return Error::not_found(
        fmt::format("image \"{}\" not found; 'elafros image list' shows the images, 'elafros image "
                    "import' adds one",
                    name));
  if (rc != SQLITE_ROW) return st.error("reading the image failed");
  return read_image(st);
}

Result<std::vector<ImageRecord>> SqliteStore::list_images() {
  Statement st(db_, "SELECT * FROM images ORDER BY name");
  std::vector<ImageRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(read_image(st));
  if (rc != SQLITE_DONE) return st.error("listing images failed");
  return out;
}

Result<void> SqliteStore::delete_image(const std::string& name) {
  Statement st(db_, "DELETE FROM images WHERE name=?");
  st.bind(1, name);
  if (st.step() != SQLITE_DONE) return st.error("deleting the image failed");
  if (sqlite3_changes(db_) == 0)
    return Error::not_found(
        fmt::format("image \"{}\" not found; 'elafros image list' shows the images", name));
  return {};
}

Result<std::vector<std::pair<std::string, std::string>>> SqliteStore::revision_image_digests() {
  // Every container's: the serving one, the sidecars and the init containers.
  Statement st(db_,
               "SELECT o.namespace || '/' || o.name, json_extract(c.value, '$.imageDigest') "
               "FROM objects o, json_each(o.status, '$.containerStatuses') c "
               "WHERE o.api_group='serving.knative.dev' AND o.kind='Revision' "
               "UNION SELECT o.namespace || '/' || o.name, "
               "json_extract(c.value, '$.imageDigest') "
               "FROM objects o, json_each(o.status, '$.initContainerStatuses') c "
               "WHERE o.api_group='serving.knative.dev' AND o.kind='Revision' "
               "ORDER BY 1");
  std::vector<std::pair<std::string, std::string>> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.emplace_back(st.text(0), st.text(1));
  if (rc != SQLITE_DONE) return st.error("listing the revisions' images failed");
  return out;
}

}  // namespace elafros
