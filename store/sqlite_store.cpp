#include "sqlite_store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <boost/json.hpp>
#include <utility>

#include "elafros/resource_json.hpp"

namespace json = boost::json;

namespace elafros {
namespace {

// Schema migrations, applied in order; PRAGMA user_version records how many have run.
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

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool prepared() const { return rc_ == SQLITE_OK; }
  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  Error error(std::string_view what) const {
    int code = sqlite3_errcode(db_);
    std::string msg = fmt::format("{}: {} (sqlite error {})", what, sqlite3_errmsg(db_), code);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return Error::unavailable(msg + "; retry");
    if (code == SQLITE_FULL) return Error::unavailable(msg + "; free disk space and retry");
    return Error::internal(msg);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// BEGIN IMMEDIATE … COMMIT, rolled back unless commit() succeeds.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {
    began_ = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~Transaction() {
    if (began_ && !done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  bool began() const { return began_; }
  Result<void> commit() {
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
      return Error::internal(
          fmt::format("committing to the database failed: {}", sqlite3_errmsg(db_)));
    done_ = true;
    return {};
  }

 private:
  sqlite3* db_;
  bool began_ = false;
  bool done_ = false;
};

std::string map_to_text(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return json::serialize(o);
}

std::map<std::string, std::string> text_to_map(const std::string& s) {
  std::map<std::string, std::string> m;
  boost::system::error_code ec;
  json::value v = json::parse(s, ec);
  if (ec || !v.is_object()) return m;
  for (const auto& kv : v.get_object())
    if (kv.value().is_string()) m.emplace(kv.key(), kv.value().get_string());
  return m;
}

std::string traffic_to_text(const std::vector<TrafficTarget>& traffic) {
  json::array a;
  for (const auto& t : traffic)
    a.push_back(json::object{{"revisionName", t.revision_name},
                             {"latestRevision", t.latest_revision},
                             {"percent", t.percent},
                             {"tag", t.tag}});
  return json::serialize(a);
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
  }
  return "starting";
}

InstanceState text_state(const std::string& s) {
  if (s == "running") return InstanceState::kRunning;
  if (s == "stopping") return InstanceState::kStopping;
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
  // A damaged file is refused, never silently reset: the operator decides (DESIGN.md §7).
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
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (auto r = store->exec(pragma); !r) return r.error();
  }
  if (auto r = store->migrate(); !r) return r.error();
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
    if (auto r = exec(kMigrations[v]); !r) return r.error();
    if (auto r = exec(fmt::format("PRAGMA user_version={}", v + 1).c_str()); !r) return r.error();
    if (auto r = tx.commit(); !r) return r.error();
  }
  return {};
}

namespace {

Result<void> insert_revision(sqlite3* db, const Revision& rev) {
  Statement st(
      db,
      "INSERT INTO revisions (namespace, name, service, uid, generation, created, template, "
      "image_digest, ever_ready) VALUES (?,?,?,?,?,?,?,?,?)");
  st.bind(1, rev.meta.namespace_)
      .bind(2, rev.meta.name)
      .bind(3, rev.service)
      .bind(4, rev.meta.uid)
      .bind(5, rev.meta.generation)
      .bind(6, rev.meta.created_unix)
      .bind(7, json::serialize(template_to_json(rev.spec)))
      .bind(8, rev.image_digest)
      .bind(9, std::int64_t{rev.ever_ready ? 1 : 0});
  int rc = st.step();
  if (rc == SQLITE_CONSTRAINT)
    return Error::exists(fmt::format(
        "revision \"{}\" already exists in namespace \"{}\"; choose another revision name",
        rev.meta.name, rev.meta.namespace_));
  if (rc != SQLITE_DONE) return st.error("storing the revision failed");
  return {};
}

}  // namespace

Result<void> SqliteStore::create_service(const Service& s, const Revision& rev) {
  Transaction tx(db_);
  if (!tx.began()) return Error::unavailable("the database is busy; retry");
  {
    Statement st(
        db_,
        "INSERT INTO services (namespace, name, uid, generation, created, labels, annotations, "
        "template, traffic, config_generation) VALUES (?,?,?,?,?,?,?,?,?,?)");
    st.bind(1, s.meta.namespace_)
        .bind(2, s.meta.name)
        .bind(3, s.meta.uid)
        .bind(4, s.meta.generation)
        .bind(5, s.meta.created_unix)
        .bind(6, map_to_text(s.meta.labels))
        .bind(7, map_to_text(s.meta.annotations))
        .bind(8, json::serialize(template_to_json(s.spec)))
        .bind(9, traffic_to_text(s.traffic))
        .bind(10, s.config_generation);
    int rc = st.step();
    if (rc == SQLITE_CONSTRAINT)
      return Error::exists(
          fmt::format("service \"{}\" already exists in namespace \"{}\"; use 'elafros service "
                      "update' to change it or delete it first",
                      s.meta.name, s.meta.namespace_));
    if (rc != SQLITE_DONE) return st.error("storing the service failed");
  }
  if (auto r = insert_revision(db_, rev); !r) return r;
  return tx.commit();
}

namespace {

Result<Service> read_service(Statement& st) {
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
  return s;
}

}  // namespace

Result<Service> SqliteStore::get_service(const std::string& ns, const std::string& name) {
  Statement st(db_,
               "SELECT namespace, name, uid, generation, created, labels, annotations, template, "
               "traffic, config_generation FROM services WHERE namespace=? AND name=?");
  st.bind(1, ns).bind(2, name);
  int rc = st.step();
  if (rc == SQLITE_DONE)
    return Error::not_found(
        fmt::format("service \"{}\" not found in namespace \"{}\"; 'elafros service list' shows "
                    "the services there",
                    name, ns));
  if (rc != SQLITE_ROW) return st.error("reading the service failed");
  return read_service(st);
}

Result<std::vector<Service>> SqliteStore::list_services(const std::string& ns) {
  Statement st(
      db_, ns.empty()
               ? "SELECT namespace, name, uid, generation, created, labels, annotations, template, "
                 "traffic, config_generation FROM services ORDER BY namespace, name"
               : "SELECT namespace, name, uid, generation, created, labels, annotations, template, "
                 "traffic, config_generation FROM services WHERE namespace=? ORDER BY name");
  if (!ns.empty()) st.bind(1, ns);
  std::vector<Service> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    auto s = read_service(st);
    if (!s) return s.error();
    out.push_back(std::move(s.value()));
  }
  if (rc != SQLITE_DONE) return st.error("listing services failed");
  return out;
}

Result<void> SqliteStore::delete_service(const std::string& ns, const std::string& name) {
  Transaction tx(db_);
  if (!tx.began()) return Error::unavailable("the database is busy; retry");
  Statement st(db_, "DELETE FROM services WHERE namespace=? AND name=?");
  st.bind(1, ns).bind(2, name);
  if (st.step() != SQLITE_DONE) return st.error("deleting the service failed");
  if (sqlite3_changes(db_) == 0)
    return Error::not_found(fmt::format("service \"{}\" not found in namespace \"{}\"", name, ns));
  return tx.commit();
}

namespace {

constexpr const char* kRevisionColumns =
    "SELECT namespace, name, service, uid, generation, created, template, image_digest, ever_ready "
    "FROM revisions ";

Result<Revision> read_revision(Statement& st) {
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
  r.meta.labels = {{"serving.knative.dev/service", r.service},
                   {"serving.knative.dev/configuration", r.service}};
  return r;
}

}  // namespace

Result<void> SqliteStore::update_service(const Service& s, const Revision* new_revision) {
  Transaction tx(db_);
  if (!tx.began()) return Error::unavailable("the database is busy; retry");
  {
    Statement st(
        db_,
        "UPDATE services SET generation=?, labels=?, annotations=?, template=?, traffic=?, "
        "config_generation=? WHERE namespace=? AND name=?");
    st.bind(1, s.meta.generation)
        .bind(2, map_to_text(s.meta.labels))
        .bind(3, map_to_text(s.meta.annotations))
        .bind(4, json::serialize(template_to_json(s.spec)))
        .bind(5, traffic_to_text(s.traffic))
        .bind(6, s.config_generation)
        .bind(7, s.meta.namespace_)
        .bind(8, s.meta.name);
    if (st.step() != SQLITE_DONE) return st.error("updating the service failed");
    if (sqlite3_changes(db_) == 0)
      return Error::not_found(fmt::format("service \"{}\" not found in namespace \"{}\"",
                                          s.meta.name, s.meta.namespace_));
  }
  if (new_revision) {
    if (auto r = insert_revision(db_, *new_revision); !r) return r;
  }
  return tx.commit();
}

Result<std::vector<Revision>> SqliteStore::list_revisions(const std::string& ns,
                                                          const std::string& service) {
  std::string sql = std::string(kRevisionColumns) +
                    (service.empty() ? "WHERE namespace=? ORDER BY rowid"
                                     : "WHERE namespace=? AND service=? ORDER BY rowid");
  Statement st(db_, sql.c_str());
  st.bind(1, ns);
  if (!service.empty()) st.bind(2, service);
  std::vector<Revision> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    auto r = read_revision(st);
    if (!r) return r.error();
    out.push_back(std::move(r.value()));
  }
  if (rc != SQLITE_DONE) return st.error("listing revisions failed");
  return out;
}

Result<Revision> SqliteStore::get_revision(const std::string& ns, const std::string& name) {
  std::string sql = std::string(kRevisionColumns) + "WHERE namespace=? AND name=?";
  Statement st(db_, sql.c_str());
  st.bind(1, ns).bind(2, name);
  int rc = st.step();
  if (rc == SQLITE_DONE)
    return Error::not_found(
        fmt::format("revision \"{}\" not found in namespace \"{}\"; 'elafros revision list' shows "
                    "the revisions there",
                    name, ns));
  if (rc != SQLITE_ROW) return st.error("reading the revision failed");
  return read_revision(st);
}

Result<void> SqliteStore::delete_revision(const std::string& ns, const std::string& name) {
  Transaction tx(db_);
  if (!tx.began()) return Error::unavailable("the database is busy; retry");
  Statement st(db_, "DELETE FROM revisions WHERE namespace=? AND name=?");
  st.bind(1, ns).bind(2, name);
  if (st.step() != SQLITE_DONE) return st.error("deleting the revision failed");
  if (sqlite3_changes(db_) == 0)
    return Error::not_found(fmt::format("revision \"{}\" not found in namespace \"{}\"", name, ns));
  return tx.commit();
}

Result<void> SqliteStore::mark_revision_ready(const std::string& ns, const std::string& name) {
  Statement st(db_,
               "UPDATE revisions SET ever_ready=1 WHERE namespace=? AND name=? AND ever_ready=0");
  st.bind(1, ns).bind(2, name);
  if (st.step() != SQLITE_DONE) return st.error("recording the revision's readiness failed");
  return {};
}

Result<void> SqliteStore::put_instance(const InstanceRecord& i) {
  Statement st(db_, "INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?)");
  st.bind(1, i.id)
      .bind(2, i.namespace_)
      .bind(3, i.service)
      .bind(4, i.revision)
      .bind(5, std::int64_t{i.port})
      .bind(6, std::int64_t{i.pid})
      .bind(7, std::string(state_text(i.state)))
      .bind(8, i.created_unix);
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
  Statement st(
      db_,
      "SELECT namespace || '/' || name, image_digest FROM revisions ORDER BY namespace, rowid");
  std::vector<std::pair<std::string, std::string>> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.emplace_back(st.text(0), st.text(1));
  if (rc != SQLITE_DONE) return st.error("listing the revisions' images failed");
  return out;
}

}  // namespace elafros
