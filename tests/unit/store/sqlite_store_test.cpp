#include "sqlite_store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "commit_queue.hpp"
#include "elafros/object_meta.hpp"
#include "fixtures/tar_builder.hpp"

using namespace elafros;
namespace json = boost::json;

namespace {

Service make_service(const std::string& name) {
  Service s;
  s.meta.name = name;
  s.meta.uid = "uid-" + name;
  s.meta.generation = 1;
  s.meta.created_unix = 1700000000;
  s.spec.container.image = "oci:/img:latest";
  s.spec.container.env = {{"A", "1"}};
  return s;
}

Revision make_revision(const Service& s, int n) {
  Revision r;
  r.meta.name = s.meta.name + "-0000" + std::to_string(n);
  r.meta.uid = "rev-uid-" + s.meta.name + "-" + std::to_string(n);
  r.meta.created_unix = 1700000000 + n;
  r.service = s.meta.name;
  r.spec = s.spec;
  r.image_digest = "sha256:" + std::string(64, 'a');
  return r;
}

// A service and its first revision, written in one group as the API writes them.
Result<std::vector<ObjectEvent>> create_service(Store& store, const Service& s, const Revision& r) {
  std::vector<std::vector<ObjectWrite>> groups(1);
  groups[0].push_back({ObjectWrite::Op::kCreate, kServingGroup, "Service", service_object(s), 0});
  groups[0].push_back(
      {ObjectWrite::Op::kCreate, kServingGroup, "Revision", revision_object(r, s.meta.uid), 0});
  return std::move(store.write_object_groups(std::move(groups))[0]);
}

Result<std::vector<ObjectEvent>> write_one(Store& store, ObjectWrite w) {
  std::vector<std::vector<ObjectWrite>> groups(1);
  groups[0].push_back(std::move(w));
  return std::move(store.write_object_groups(std::move(groups))[0]);
}

ObjectKey service_key(const std::string& name) {
  return {kServingGroup, "Service", "default", name};
}

// A fresh store in a test's temporary directory.
std::unique_ptr<SqliteStore> open_store(const test::TempDir& dir) {
  auto opened = SqliteStore::open(dir.path() + "/elafros.db");
  REQUIRE(opened.ok());
  return std::move(opened.value());
}

std::string pragma(const std::string& db, const char* sql) {
  sqlite3* h = nullptr;
  sqlite3_open(db.c_str(), &h);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(h, sql, -1, &st, nullptr);
  std::string out = sqlite3_step(st) == SQLITE_ROW
                        ? reinterpret_cast<const char*>(sqlite3_column_text(st, 0))
                        : "";
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

}  // namespace

TEST_CASE("a new database is migrated to the current schema, in WAL mode") {
  test::TempDir dir;
  std::string db = dir.path() + "/elafros.db";
  {
    auto store = SqliteStore::open(db);
    REQUIRE(store.ok());
    CHECK(store.value()->schema_version() == SqliteStore::kSchemaVersion);
  }
  CHECK(pragma(db, "PRAGMA journal_mode") == "wal");
  CHECK(pragma(db, "PRAGMA user_version") == std::to_string(SqliteStore::kSchemaVersion));
  // Opening again does not migrate twice.
  auto again = SqliteStore::open(db);
  REQUIRE(again.ok());
  CHECK(again.value()->schema_version() == SqliteStore::kSchemaVersion);
}

TEST_CASE("a database from a newer elafrosd is refused") {
  test::TempDir dir;
  std::string db = dir.path() + "/elafros.db";
  { REQUIRE(SqliteStore::open(db).ok()); }
  sqlite3* h = nullptr;
  sqlite3_open(db.c_str(), &h);
  sqlite3_exec(h, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(h);
  auto store = SqliteStore::open(db);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().message.find("newer") != std::string::npos);
}

TEST_CASE("a damaged database is refused with what to do, never reset") {
  test::TempDir dir;
  std::string db = dir.path() + "/elafros.db";
  {
    auto store = open_store(dir);
    for (int i = 0; i < 60; ++i) {
      Service s = make_service("svc" + std::to_string(i));
      s.spec.container.env = {{"PADDING", std::string(400, 'x')}};
      REQUIRE(create_service(*store, s, make_revision(s, 1)).ok());
    }
  }
  // Fold everything into the main file, then scribble over a b-tree page in its middle.
  sqlite3* h = nullptr;
  sqlite3_open(db.c_str(), &h);
  sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(h);
  auto size = std::filesystem::file_size(db);
  REQUIRE(size > 8 * 4096);
  {
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2 / 4096 * 4096));
    std::string junk(4096, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto before = std::filesystem::file_size(db);
  auto store = SqliteStore::open(db);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().message.find("is damaged") != std::string::npos);
  CHECK(store.error().message.find(".recover") != std::string::npos);
  CHECK(std::filesystem::file_size(db) == before);  // left as it was, for the operator

  std::ofstream(dir.path() + "/garbage.db") << std::string(8192, 'g');
  auto garbage = SqliteStore::open(dir.path() + "/garbage.db");
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.error().message.find("is damaged") != std::string::npos);
}

TEST_CASE("objects: create, get, list, update and delete, each with a new resourceVersion") {
  test::TempDir dir;
  auto store = open_store(dir);
  CHECK(store->current_resource_version() == 0);
  Service a = make_service("alpha"), b = make_service("beta");
  auto created = create_service(*store, a, make_revision(a, 1));
  REQUIRE(created.ok());
  REQUIRE(created->size() == 2);
  CHECK(created->at(0).type == WatchEventType::kAdded);
  CHECK(created->at(0).resource_version == 1);
  CHECK(created->at(1).resource_version == 2);
  REQUIRE(create_service(*store, b, make_revision(b, 1)).ok());
  CHECK(store->current_resource_version() == 4);

  auto got = store->get_object(service_key("alpha"));
  REQUIRE(got.ok());
  CHECK(meta_string(*got, "resourceVersion") == "1");
  CHECK(meta_string(*got, "uid") == "uid-alpha");
  auto decoded = service_from_object(*got);
  REQUIRE(decoded.ok());
  CHECK(decoded->spec == a.spec);

  auto listed = store->list_objects({kServingGroup, "Service", "default", "", 0, "", ""});
  REQUIRE(listed.ok());
  REQUIRE(listed->items.size() == 2);
  CHECK(meta_string(listed->items[0], "name") == "alpha");
  CHECK(listed->resource_version == 4);
  auto page = store->list_objects({kServingGroup, "Service", "", "", 1, "", ""});
  REQUIRE(page.ok());
  CHECK(page->items.size() == 1);
  CHECK(page->more);
  auto rest = store->list_objects({kServingGroup, "Service", "", "", 1, "default", "alpha"});
  REQUIRE(rest->items.size() == 1);
  CHECK(meta_string(rest->items[0], "name") == "beta");
  CHECK_FALSE(rest->more);
  auto named = store->list_objects({kServingGroup, "Service", "", "beta", 0, "", ""});
  CHECK(named->items.size() == 1);

  // An update based on the stored version commits; one based on an older version is refused.
  json::object changed = *got;
  metadata_of(changed)["labels"] = json::object{{"team", "a"}};
  auto updated =
      write_one(*store, {ObjectWrite::Op::kUpdate, kServingGroup, "Service", changed, 1});
  REQUIRE(updated.ok());
  CHECK(updated->at(0).type == WatchEventType::kModified);
  CHECK(updated->at(0).resource_version == 5);
  auto stale = write_one(*store, {ObjectWrite::Op::kUpdate, kServingGroup, "Service", changed, 1});
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.error().code == ErrorCode::kConflict);
  CHECK(store->current_resource_version() == 5);

  auto dup = create_service(*store, a, make_revision(a, 2));
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().code == ErrorCode::kAlreadyExists);
  // The failed group left nothing: its revision was not stored either.
  CHECK(store->get_object({kServingGroup, "Revision", "default", "alpha-00002"}).error().code ==
        ErrorCode::kNotFound);
  CHECK(store->current_resource_version() == 5);
}

TEST_CASE("deleting an object deletes what it owns, in the same transaction") {
  test::TempDir dir;
  auto store = open_store(dir);
  Service s = make_service("hello");
  REQUIRE(create_service(*store, s, make_revision(s, 1)).ok());
  Revision r2 = make_revision(s, 2);
  r2.meta.uid = "rev-uid-2";
  REQUIRE(write_one(*store, {ObjectWrite::Op::kCreate, kServingGroup, "Revision",
                             revision_object(r2, s.meta.uid), 0})
              .ok());
  auto stored = store->get_object(service_key("hello"));
  REQUIRE(stored.ok());
  auto deleted =
      write_one(*store, {ObjectWrite::Op::kDelete, kServingGroup, "Service", *stored, 0});
  REQUIRE(deleted.ok());
  REQUIRE(deleted->size() == 3);
  for (const auto& e : *deleted) CHECK(e.type == WatchEventType::kDeleted);
  CHECK(deleted->back().kind == "Service");
  auto revs = store->list_objects({kServingGroup, "Revision", "", "", 0, "", ""});
  CHECK(revs->items.empty());
  CHECK(write_one(*store, {ObjectWrite::Op::kDelete, kServingGroup, "Service", *stored, 0})
            .error()
            .code == ErrorCode::kNotFound);
}

TEST_CASE("removing the last finalizer of an object being deleted deletes it") {
  test::TempDir dir;
  auto store = open_store(dir);
  Service s = make_service("hello");
  REQUIRE(create_service(*store, s, make_revision(s, 1)).ok());
  json::object o = *store->get_object(service_key("hello"));
  metadata_of(o)["deletionTimestamp"] = "2026-12-01T00:00:00Z";
  REQUIRE(write_one(*store, {ObjectWrite::Op::kUpdate, kServingGroup, "Service", o, 0}).ok());
  json::object marked = *store->get_object(service_key("hello"));
  CHECK(meta_string(marked, "deletionTimestamp") == "2026-12-01T00:00:00Z");
  metadata_of(marked)["finalizers"] = json::array{};
  auto done = write_one(*store, {ObjectWrite::Op::kUpdate, kServingGroup, "Service", marked, 0});
  REQUIRE(done.ok());
  CHECK(done->back().type == WatchEventType::kDeleted);
  CHECK(store->get_object(service_key("hello")).error().code == ErrorCode::kNotFound);
}

TEST_CASE("a status write changes only the status, and nothing when nothing differs") {
  test::TempDir dir;
  auto store = open_store(dir);
  Service s = make_service("hello");
  REQUIRE(create_service(*store, s, make_revision(s, 1)).ok());
  json::object before = *store->get_object(service_key("hello"));
  const std::int64_t version = store->current_resource_version();
  json::object ready{
      {"metadata", json::object{{"name", "hello"}, {"namespace", "default"}}},
      {"spec", json::object{{"ignored", true}}},
      {"status", json::object{{"observedGeneration", 1},
                              {"conditions",
                               json::array{json::object{{"type", "Ready"}, {"status", "True"}}}}}}};
  auto written =
      write_one(*store, {ObjectWrite::Op::kUpdateStatus, kServingGroup, "Service", ready, 0});
  REQUIRE(written.ok());
  REQUIRE(written->size() == 1);
  CHECK(written->at(0).type == WatchEventType::kModified);
  json::object after = *store->get_object(service_key("hello"));
  CHECK(after.at("spec") == before.at("spec"));
  CHECK(meta_int(after, "generation") == meta_int(before, "generation"));
  CHECK(resource_version_of(after) == version + 1);
  // The stored keys the write does not name stay.
  CHECK(after.at("status").as_object().at("configurationGeneration") ==
        before.at("status").as_object().at("configurationGeneration"));
  CHECK(after.at("status").as_object().at("conditions").as_array().size() == 1);
  // The same status again: no commit, no event, no new version.
  auto again =
      write_one(*store, {ObjectWrite::Op::kUpdateStatus, kServingGroup, "Service", ready, 0});
  REQUIRE(again.ok());
  CHECK(again->empty());
  CHECK(store->current_resource_version() == resource_version_of(after));
  // Of an object that is gone: NotFound.
  metadata_of(ready)["name"] = "gone";
  CHECK(write_one(*store, {ObjectWrite::Op::kUpdateStatus, kServingGroup, "Service", ready, 0})
            .error()
            .code == ErrorCode::kNotFound);
}

TEST_CASE("data and the resourceVersion survive reopening the database") {
  test::TempDir dir;
  Service s = make_service("hello");
  s.traffic = {{"hello-00001", false, 100, "stable"}};
  {
    auto store = open_store(dir);
    REQUIRE(create_service(*store, s, make_revision(s, 1)).ok());
    REQUIRE(store->mark_revision_ready("default", "hello-00001").ok());
  }
  auto store = open_store(dir);
  CHECK(store->current_resource_version() == 2);
  auto got = service_from_object(*store->get_object(service_key("hello")));
  REQUIRE(got.ok());
  CHECK(got->traffic == s.traffic);
  auto rev = revision_from_object(
      *store->get_object({kServingGroup, "Revision", "default", "hello-00001"}));
  REQUIRE(rev.ok());
  CHECK(rev->ever_ready);
  CHECK(rev->service == "hello");
  CHECK(rev->image_digest == "sha256:" + std::string(64, 'a'));
  auto digests = store->revision_image_digests();
  REQUIRE(digests.ok());
  REQUIRE(digests->size() == 1);
  CHECK(digests->at(0).first == "default/hello-00001");
  Service t = make_service("two");
  t.meta.uid = "uid-two";
  Revision tr = make_revision(t, 1);
  tr.meta.uid = "rev-two";
  auto more = create_service(*store, t, tr);
  REQUIRE(more.ok());
  CHECK(more->front().resource_version == 3);
}

TEST_CASE("a database written by schema 2 upgrades with services, revisions, traffic and tags") {
  test::TempDir dir;
  std::string db = dir.path() + "/elafros.db";
  // What the previous release wrote: its two migrations, verbatim, and its rows.
  sqlite3* h = nullptr;
  sqlite3_open(db.c_str(), &h);
  const char* schema2 = R"sql(
CREATE TABLE services (namespace TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL,
  generation INTEGER NOT NULL, created INTEGER NOT NULL, labels TEXT NOT NULL,
  annotations TEXT NOT NULL, template TEXT NOT NULL, traffic TEXT NOT NULL,
  PRIMARY KEY (namespace, name));
CREATE TABLE revisions (namespace TEXT NOT NULL, name TEXT NOT NULL, service TEXT NOT NULL,
  uid TEXT NOT NULL, generation INTEGER NOT NULL, created INTEGER NOT NULL,
  template TEXT NOT NULL, image_digest TEXT NOT NULL, PRIMARY KEY (namespace, name),
  FOREIGN KEY (namespace, service) REFERENCES services (namespace, name) ON DELETE CASCADE);
CREATE INDEX revisions_by_service ON revisions (namespace, service);
CREATE TABLE instances (id TEXT PRIMARY KEY, namespace TEXT NOT NULL, service TEXT NOT NULL,
  revision TEXT NOT NULL, port INTEGER NOT NULL, pid INTEGER NOT NULL, state TEXT NOT NULL,
  created INTEGER NOT NULL);
CREATE TABLE images (name TEXT PRIMARY KEY, digest TEXT NOT NULL, config_digest TEXT NOT NULL,
  source TEXT NOT NULL, size INTEGER NOT NULL, created INTEGER NOT NULL);
ALTER TABLE services ADD COLUMN config_generation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE revisions ADD COLUMN ever_ready INTEGER NOT NULL DEFAULT 0;
INSERT INTO services VALUES ('default','hello','svc-uid',3,1700000000,'{"team":"a"}',
  '{"note":"x"}',
  '{"spec":{"containerConcurrency":0,"timeoutSeconds":300,"containers":[{"image":"hello-img","env":[{"name":"GREETING","value":"Hola"}]}]}}',
  '[{"revisionName":"hello-00001","latestRevision":false,"percent":30,"tag":"old"},{"revisionName":"","latestRevision":true,"percent":70,"tag":"current"}]',
  2);
INSERT INTO revisions VALUES ('default','hello-00001','hello','r1',1,1700000001,
  '{"spec":{"containerConcurrency":0,"timeoutSeconds":300,"containers":[{"image":"hello-img"}]}}',
  'sha256:1111111111111111111111111111111111111111111111111111111111111111',1);
INSERT INTO revisions VALUES ('default','hello-00002','hello','r2',2,1700000002,
  '{"metadata":{"annotations":{"autoscaling.knative.dev/min-scale":"1"}},"spec":{"containerConcurrency":0,"timeoutSeconds":300,"containers":[{"image":"hello-img","env":[{"name":"GREETING","value":"Hola"}]}]}}',
  'sha256:2222222222222222222222222222222222222222222222222222222222222222',0);
INSERT INTO images VALUES ('hello-img','sha256:2222','sha256:c','oci:/x',10,1700000000);
PRAGMA user_version=2;
)sql";
  REQUIRE(sqlite3_exec(h, schema2, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);

  auto store = open_store(dir);
  CHECK(store->schema_version() == SqliteStore::kSchemaVersion);
  CHECK(store->current_resource_version() == 3);
  auto svc = store->get_object(service_key("hello"));
  REQUIRE(svc.ok());
  auto s = service_from_object(*svc);
  REQUIRE(s.ok());
  CHECK(s->meta.uid == "svc-uid");
  CHECK(s->meta.generation == 3);
  CHECK(s->config_generation == 2);
  CHECK(s->meta.labels.at("team") == "a");
  CHECK(s->meta.annotations.at("note") == "x");
  CHECK(s->spec.container.env.at(0).value == "Hola");
  REQUIRE(s->traffic.size() == 2);
  CHECK(s->traffic[0].revision_name == "hello-00001");
  CHECK(s->traffic[0].percent == 30);
  CHECK(s->traffic[0].tag == "old");
  CHECK(s->traffic[1].latest_revision);
  CHECK(s->traffic[1].tag == "current");
  auto revs = store->list_objects({kServingGroup, "Revision", "default", "", 0, "", ""});
  REQUIRE(revs->items.size() == 2);
  auto r1 = revision_from_object(revs->items[0]);
  auto r2 = revision_from_object(revs->items[1]);
  REQUIRE(r1.ok());
  REQUIRE(r2.ok());
  CHECK(r1->ever_ready);
  CHECK_FALSE(r2->ever_ready);
  CHECK(r2->meta.generation == 2);
  CHECK(r2->spec.annotations.at("autoscaling.knative.dev/min-scale") == "1");
  CHECK(r2->image_digest.find("sha256:2222") == 0);
  // A service's revisions are found by their owner (schema 4's index), and only its own.
  ObjectQuery owned{kServingGroup, "Revision", "default", "", 0, "", "", "svc-uid"};
  CHECK(store->list_objects(owned)->items.size() == 2);
  owned.owner_uid = "another-uid";
  CHECK(store->list_objects(owned)->items.empty());
  sqlite3* ro = nullptr;
  REQUIRE(sqlite3_open((dir.path() + "/elafros.db").c_str(), &ro) == SQLITE_OK);
  sqlite3_stmt* plan = nullptr;
  REQUIRE(sqlite3_prepare_v2(ro,
                             "EXPLAIN QUERY PLAN SELECT name FROM objects WHERE api_group='a' AND "
                             "kind='b' AND namespace='c' AND "
                             "json_extract(owner_references, '$[0].uid') = 'd'",
                             -1, &plan, nullptr) == SQLITE_OK);
  std::string steps;
  while (sqlite3_step(plan) == SQLITE_ROW)
    steps += reinterpret_cast<const char*>(sqlite3_column_text(plan, 3));
  sqlite3_finalize(plan);
  sqlite3_close(ro);
  CHECK_THAT(steps, Catch::Contains("objects_by_owner"));
  // Revisions are owned by their service: deleting it deletes them.
  auto deleted = write_one(*store, {ObjectWrite::Op::kDelete, kServingGroup, "Service", *svc, 0});
  REQUIRE(deleted.ok());
  CHECK(deleted->size() == 3);
  CHECK(store->get_image("hello-img").ok());
}

TEST_CASE("a version 1 database migrates to the current schema and keeps its data") {
  test::TempDir dir;
  std::string db = dir.path() + "/elafros.db";
  sqlite3* h = nullptr;
  sqlite3_open(db.c_str(), &h);
  for (const char* sql :
       {"CREATE TABLE services (namespace TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL, "
        "generation INTEGER NOT NULL, created INTEGER NOT NULL, labels TEXT NOT NULL, annotations "
        "TEXT NOT NULL, template TEXT NOT NULL, traffic TEXT NOT NULL, PRIMARY KEY (namespace, "
        "name))",
        "CREATE TABLE revisions (namespace TEXT NOT NULL, name TEXT NOT NULL, service TEXT NOT "
        "NULL, uid TEXT NOT NULL, generation INTEGER NOT NULL, created INTEGER NOT NULL, "
        "template TEXT NOT NULL, image_digest TEXT NOT NULL, PRIMARY KEY (namespace, name))",
        "CREATE TABLE instances (id TEXT PRIMARY KEY, namespace TEXT NOT NULL, service TEXT NOT "
        "NULL, revision TEXT NOT NULL, port INTEGER NOT NULL, pid INTEGER NOT NULL, state TEXT "
        "NOT NULL, created INTEGER NOT NULL)",
        "CREATE TABLE images (name TEXT PRIMARY KEY, digest TEXT NOT NULL, config_digest TEXT "
        "NOT NULL, source TEXT NOT NULL, size INTEGER NOT NULL, created INTEGER NOT NULL)",
        "INSERT INTO services VALUES ('default','old','u',4,1,'{}','{}',"
        "'{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}','[]')",
        "PRAGMA user_version=1"})
    REQUIRE(sqlite3_exec(h, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);
  auto store = open_store(dir);
  CHECK(store->schema_version() == SqliteStore::kSchemaVersion);
  auto old = service_from_object(*store->get_object(service_key("old")));
  REQUIRE(old.ok());
  CHECK(old->meta.generation == 4);
  CHECK(old->config_generation == 1);
}

TEST_CASE(
    "concurrent commits are grouped into fewer transactions, and watchers see them in order") {
  test::TempDir dir;
  auto store = open_store(dir);
  boost::asio::thread_pool store_thread(1);
  WatchCache cache(store->current_resource_version(), 16);
  CommitQueue queue(*store, store_thread.get_executor(), cache);
  std::vector<std::int64_t> seen;
  std::mutex mu;
  auto id = cache.watch(0, [&](const ObjectEvent& e) {
    std::lock_guard lock(mu);
    seen.push_back(e.resource_version);
  });
  REQUIRE(id.ok());
  constexpr int kWriters = 8, kEach = 10;
  std::atomic<int> done{0}, failed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        Service s = make_service(fmt::format("s{}-{}", w, i));
        s.meta.uid = fmt::format("u{}-{}", w, i);
        queue.commit({{ObjectWrite::Op::kCreate, kServingGroup, "Service", service_object(s), 0}},
                     [&](Result<std::vector<ObjectEvent>> r) {
                       if (!r) failed++;
                       done++;
                     });
      }
    });
  for (auto& t : writers) t.join();
  store_thread.join();
  CHECK(done == kWriters * kEach);
  CHECK(failed == 0);
  CHECK(queue.stats().groups == kWriters * kEach);
  CHECK(queue.stats().transactions < static_cast<std::uint64_t>(kWriters * kEach));
  REQUIRE(seen.size() == kWriters * kEach);
  for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == static_cast<std::int64_t>(i + 1));
  // Only the last 16 changes are kept: an older version is gone (410), a recent one replays.
  CHECK(cache.watch(3, [](const ObjectEvent&) {}).error().code == ErrorCode::kGone);
  int replayed = 0;
  REQUIRE(cache.watch(75, [&](const ObjectEvent&) { replayed++; }).ok());
  CHECK(replayed == 5);
}

TEST_CASE("the event log commits an event with its deliveries, and hands out the due ones") {
  test::TempDir dir;
  auto store = std::move(SqliteStore::open(dir.path() + "/elafros.db").value());
  CloudEvent e;
  e.attributes = {{"id", "1"},
                  {"source", "/s"},
                  {"specversion", "1.0"},
                  {"type", "t"},
                  {"datacontenttype", "application/octet-stream"}};
  e.data = std::string("\x00\x01zz", 4);
  e.has_data = true;
  NewEvent first{"default", "default", e, 1000, {{"uid-a", "a"}, {"uid-b", "b"}}};
  NewEvent second{"default", "default", e, 2000, {}};
  second.event.attributes["id"] = "2";
  second.event.has_data = false;
  second.event.data.clear();
  auto seqs = store->append_events({first, second});
  REQUIRE(seqs);
  REQUIRE(seqs->size() == 2);

  auto due = store->due_deliveries(999, 10);
  REQUIRE(due);
  CHECK(due->empty());  // not before they were received
  due = store->due_deliveries(1000, 10);
  REQUIRE(due->size() == 2);
  CHECK(due->at(0).first.event.data == std::string("\x00\x01zz", 4));
  CHECK(due->at(0).first.event.get("datacontenttype") == "application/octet-stream");
  CHECK(due->at(0).second.trigger == "a");

  Delivery retry = due->at(0).second;
  retry.attempts = 1;
  retry.last_code = 503;
  retry.last_error = "503 Service Unavailable";
  retry.next_ms = 5000;
  REQUIRE(store->update_delivery(retry));
  Delivery done = due->at(1).second;
  done.attempts = 1;
  done.last_code = 202;
  done.state = DeliveryState::kDelivered;
  done.updated_ms = 3600 * 1000 * 5 + 1234;  // in the 05:00 hour
  REQUIRE(store->update_delivery(done));
  // Usage: the delivery counts once, in its broker's namespace, namespace-wide (service "").
  auto usage = store->usage_rows(0, 3600 * 24);
  REQUIRE(usage);
  REQUIRE(usage->size() == 1);
  CHECK(usage->front().ns == "default");
  CHECK(usage->front().service.empty());
  CHECK(usage->front().window_start == 3600 * 5);
  CHECK(usage->front().events_delivered == 1);
  REQUIRE(store->update_delivery(retry));  // a retry's update counts nothing
  CHECK(store->usage_rows(0, 3600 * 24)->front().events_delivered == 1);
  CHECK(store->due_deliveries(4999, 10)->empty());
  CHECK(store->next_due_ms().value() == 5000);
  auto later = store->due_deliveries(5000, 10);
  REQUIRE(later->size() == 1);
  CHECK(later->at(0).second.attempts == 1);
  CHECK(later->at(0).second.last_code == 503);

  auto recent = store->recent_events("default", "default", 10);
  REQUIRE(recent);
  REQUIRE(recent->size() == 2);
  CHECK(recent->at(0).first.event.get("id") == "2");  // newest first
  CHECK_FALSE(recent->at(0).first.event.has_data);
  CHECK(recent->at(1).second.size() == 2);
  CHECK(recent->at(1).second[1].state == DeliveryState::kDelivered);
}

TEST_CASE("event retention drops finished events by age, count and size, never pending ones") {
  test::TempDir dir;
  auto store = std::move(SqliteStore::open(dir.path() + "/elafros.db").value());
  std::vector<NewEvent> events;
  for (int i = 1; i <= 10; ++i) {
    CloudEvent e;
    e.attributes = {
        {"id", std::to_string(i)}, {"source", "/s"}, {"specversion", "1.0"}, {"type", "t"}};
    e.data = std::string(1000, 'x');
    e.has_data = true;
    // Event 1 still has a delivery pending; the others matched nothing (finished at once).
    std::vector<NewEvent::Target> targets;
    if (i == 1) targets.push_back({"uid-a", "a"});
    events.push_back({"default", "b", e, 1000 * i, targets});
  }
  REQUIRE(store->append_events(events));
  auto backlog = store->backlog();
  REQUIRE(backlog);
  CHECK(backlog->pending == 1);
  CHECK(backlog->by_trigger.at("uid-a").pending == 1);
  CHECK(backlog->by_trigger.at("uid-a").oldest_pending_ms == 1000);

  // No age or count bound, and the size well above what is kept: nothing goes.
  CHECK(store->prune_events(0, 1000, 1 << 20).value() == 0);
  // About 5 events' worth: the oldest finished ones go first, until it fits.
  auto dropped = store->prune_events(0, 1000, 5 * 1100);
  REQUIRE(dropped);
  auto kept = store->recent_events("default", "b", 100).value();
  std::vector<std::string> ids;
  for (const auto& [e, d] : kept) ids.push_back(e.event.get("id"));
  CHECK(*dropped == 5);
  CHECK(ids == std::vector<std::string>{"10", "9", "8", "7", "1"});  // 1 is pending: kept
  // By count: only the newest 2 finished events' seqs survive.
  CHECK(store->prune_events(0, 2, 0).value() == 2);
  // By age: everything finished before 9.5 s.
  CHECK(store->prune_events(9500, 1000, 0).value() == 1);
  kept = store->recent_events("default", "b", 100).value();
  ids.clear();
  for (const auto& [e, d] : kept) ids.push_back(e.event.get("id"));
  CHECK(ids == std::vector<std::string>{"10", "1"});
}

TEST_CASE("usage: each sample adds its share since the instance's mark, once, to its hour") {
  test::TempDir dir;
  auto store = open_store(dir);
  UsageSample u;
  u.instance = "web-00001-abc";
  u.ns = "team";
  u.service = "web";
  u.revision = "web-00001";
  u.started_ms = 3600 * 1000 * 10;  // 10:00:00
  u.cpu_limit_millis = 500;
  u.memory_limit_bytes = 64 << 20;
  u.t_ms = u.started_ms + 10'000;
  u.cpu_ns = 4'000'000'000;
  u.memory_bytes = 32 << 20;
  REQUIRE(store->record_usage({u}));
  u.t_ms += 10'000;
  u.cpu_ns = 9'000'000'000;
  u.final = true;
  REQUIRE(store->record_usage({u}));
  UsageSample requests;
  requests.ns = "team";
  requests.service = "web";
  requests.revision = "web-00001";
  requests.t_ms = u.t_ms;
  requests.requests = 7;
  requests.errors_5xx = 2;
  requests.active_ms = 1500;
  REQUIRE(store->record_usage({requests}));
  UsageSample build;  // a namespace's own row
  build.ns = "team";
  build.t_ms = u.t_ms;
  build.build_ms = 42'500;
  REQUIRE(store->record_usage({build}));
  REQUIRE(store->record_usage({requests}));  // a second pass adds to the hour
  auto rows = store->usage_rows(0, 3600 * 24);
  REQUIRE(rows);
  REQUIRE(rows->size() == 2);
  CHECK(rows->front().service.empty());  // ordered by service: the namespace's row first
  CHECK(rows->front().build_seconds == Approx(42.5));
  const UsageRow& r = rows->back();
  CHECK(r.window_start == 3600 * 10);
  CHECK(r.instance_seconds == Approx(20));
  CHECK(r.cpu_seconds_used == Approx(9));
  CHECK(r.vcpu_seconds_alloc == Approx(10));
  CHECK(r.gib_seconds_alloc == Approx(20.0 / 16));
  CHECK(r.requests == 14);
  CHECK(r.errors_5xx == 4);
  CHECK(r.active_seconds == Approx(3));
  CHECK(r.peak_memory_bytes == (32u << 20));
  // The mark went with the final sample: the same instance again counts from its start.
  CHECK(store->usage_rows(3600 * 11, 3600 * 12)->empty());
}

TEST_CASE("the watch cache keeps its history within its bytes, and replays it intact") {
  WatchCache cache(0, 100, 300);  // 100 changes, but at most 300 bytes of JSON
  std::vector<ObjectEvent> events;
  for (int v = 1; v <= 6; ++v) {
    ObjectEvent e;
    e.kind = "ConfigMap";
    e.object = boost::json::object{{"metadata", {{"name", fmt::format("cm{}", v)}}},
                                   {"data", {{"k", std::string(60, 'x')}}}};
    e.resource_version = v;
    events.push_back(std::move(e));
  }
  cache.publish(events);
  CHECK(cache.latest() == 6);
  // About 100 bytes each: the oldest went, so a watch from before them must list again.
  auto gone = cache.watch(1, [](const ObjectEvent&) {});
  REQUIRE(!gone);
  CHECK(gone.error().code == ErrorCode::kGone);
  std::vector<ObjectEvent> replayed;
  auto id = cache.watch(4, [&](const ObjectEvent& e) { replayed.push_back(e); });
  REQUIRE(id.ok());
  REQUIRE(replayed.size() == 2);
  CHECK(replayed[0].resource_version == 5);
  CHECK(replayed[0].kind == "ConfigMap");
  CHECK(replayed[0].object == events[4].object);
  CHECK(replayed[1].object == events[5].object);
  cache.unwatch(*id);
}
