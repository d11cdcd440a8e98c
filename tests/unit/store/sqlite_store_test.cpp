#include "sqlite_store.hpp"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fixtures/tar_builder.hpp"

using namespace elafros;

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
  r.meta.uid = "rev-uid";
  r.meta.created_unix = 1700000000 + n;
  r.service = s.meta.name;
  r.spec = s.spec;
  r.image_digest = "sha256:" + std::string(64, 'a');
  return r;
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
      REQUIRE(store->create_service(s, make_revision(s, 1)).ok());
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

TEST_CASE("services and revisions: create, get, list, delete") {
  test::TempDir dir;
  auto opened = open_store(dir);
  Store& store = *opened;

  Service hello = make_service("hello");
  REQUIRE(store.create_service(hello, make_revision(hello, 1)).ok());
  Service other = make_service("other");
  REQUIRE(store.create_service(other, make_revision(other, 1)).ok());

  auto got = store.get_service("default", "hello");
  REQUIRE(got.ok());
  CHECK(got->meta.uid == "uid-hello");
  CHECK(got->spec == hello.spec);

  auto list = store.list_services("default");
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].meta.name == "hello");
  CHECK(store.list_services("elsewhere")->empty());

  auto revs = store.list_revisions("default", "hello");
  REQUIRE(revs.ok());
  REQUIRE(revs->size() == 1);
  CHECK((*revs)[0].image_digest == "sha256:" + std::string(64, 'a'));
  CHECK((*revs)[0].spec == hello.spec);

  REQUIRE(store.delete_service("default", "hello").ok());
  CHECK(store.get_service("default", "hello").error().code == ErrorCode::kNotFound);
  CHECK(store.list_revisions("default", "hello")->empty());  // cascaded
  CHECK(store.delete_service("default", "hello").error().code == ErrorCode::kNotFound);
  CHECK(store.list_services("")->size() == 1);
}

TEST_CASE("a duplicate create is refused and changes nothing") {
  test::TempDir dir;
  auto opened = open_store(dir);
  Store& store = *opened;
  Service hello = make_service("hello");
  REQUIRE(store.create_service(hello, make_revision(hello, 1)).ok());
  Service changed = hello;
  changed.meta.uid = "another";
  auto dup = store.create_service(changed, make_revision(changed, 1));
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().code == ErrorCode::kAlreadyExists);
  CHECK(store.get_service("default", "hello")->meta.uid == "uid-hello");
}

TEST_CASE("a service whose revision cannot be stored is not stored either") {
  test::TempDir dir;
  auto opened = open_store(dir);
  Store& store = *opened;
  Service a = make_service("a");
  REQUIRE(store.create_service(a, make_revision(a, 1)).ok());
  // Service b's first revision collides with a's revision name: the whole create rolls back.
  Service b = make_service("b");
  Revision clash = make_revision(a, 1);
  clash.service = "b";
  auto r = store.create_service(b, clash);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kAlreadyExists);
  CHECK(store.get_service("default", "b").error().code == ErrorCode::kNotFound);
}

TEST_CASE("data survives reopening the database") {
  test::TempDir dir;
  std::string db = dir.path() + "/elafros.db";
  {
    auto store = SqliteStore::open(db);
    REQUIRE(store.ok());
    Service hello = make_service("hello");
    REQUIRE(store.value()->create_service(hello, make_revision(hello, 1)).ok());
    InstanceRecord i{"hello-00001-abc",       "default", "hello", "hello-00001", 40000, 1234,
                     InstanceState::kRunning, 1};
    REQUIRE(store.value()->put_instance(i).ok());
    REQUIRE(store.value()
                ->put_image({"hello:latest", "sha256:x", "sha256:y", "oci:/img", 123, 1})
                .ok());
  }
  auto store = SqliteStore::open(db);
  REQUIRE(store.ok());
  CHECK(store.value()->get_service("default", "hello").ok());
  auto instances = store.value()->list_instances();
  REQUIRE(instances->size() == 1);
  CHECK((*instances)[0].pid == 1234);
  CHECK((*instances)[0].state == InstanceState::kRunning);
  CHECK(store.value()->get_image("hello:latest")->size == 123);
  REQUIRE(store.value()->delete_instance("hello-00001-abc").ok());
  CHECK(store.value()->list_instances()->empty());
  CHECK(store.value()->get_image("nope").error().code == ErrorCode::kNotFound);
}

TEST_CASE("updating a service stores its spec, traffic and new revision atomically") {
  test::TempDir dir;
  auto opened = open_store(dir);
  Store& store = *opened;
  Service s = make_service("hello");
  REQUIRE(store.create_service(s, make_revision(s, 1)).ok());

  s.spec.container.env = {{"A", "2"}};
  s.meta.generation = 2;
  s.config_generation = 2;
  s.traffic = {{"hello-00001", false, 50, ""}, {"", true, 50, "latest"}};
  Revision r2 = make_revision(s, 2);
  REQUIRE(store.update_service(s, &r2).ok());
  auto got = store.get_service("default", "hello");
  REQUIRE(got.ok());
  CHECK(got->meta.generation == 2);
  CHECK(got->config_generation == 2);
  CHECK(got->spec.container.env == std::vector<EnvVar>{{"A", "2"}});
  CHECK(got->traffic == s.traffic);
  auto revs = store.list_revisions("default", "hello");
  REQUIRE(revs->size() == 2);
  CHECK((*revs)[1].meta.name == "hello-00002");  // creation order

  // A clashing revision name rolls the whole update back.
  Service again = s;
  again.meta.generation = 3;
  Revision clash = make_revision(s, 2);
  CHECK(store.update_service(again, &clash).error().code == ErrorCode::kAlreadyExists);
  CHECK(store.get_service("default", "hello")->meta.generation == 2);

  // Traffic-only updates add no revision.
  again.traffic = {};
  REQUIRE(store.update_service(again, nullptr).ok());
  CHECK(store.list_revisions("default", "hello")->size() == 2);
  Service ghost = make_service("ghost");
  CHECK(store.update_service(ghost, nullptr).error().code == ErrorCode::kNotFound);
}

TEST_CASE("revisions: get, mark ready, delete") {
  test::TempDir dir;
  auto opened = open_store(dir);
  Store& store = *opened;
  Service s = make_service("hello");
  REQUIRE(store.create_service(s, make_revision(s, 1)).ok());
  CHECK_FALSE(store.get_revision("default", "hello-00001")->ever_ready);
  REQUIRE(store.mark_revision_ready("default", "hello-00001").ok());
  CHECK(store.get_revision("default", "hello-00001")->ever_ready);
  REQUIRE(store.delete_revision("default", "hello-00001").ok());
  CHECK(store.get_revision("default", "hello-00001").error().code == ErrorCode::kNotFound);
  CHECK(store.delete_revision("default", "hello-00001").error().code == ErrorCode::kNotFound);
  CHECK(store.get_service("default", "hello").ok());
}

TEST_CASE("a version 1 database migrates to version 2 and keeps its data") {
  test::TempDir dir;
  std::string db = dir.path() + "/elafros.db";
  { REQUIRE(SqliteStore::open(db).ok()); }
  // Turn it back into what version 1 wrote, with one service in it.
  sqlite3* h = nullptr;
  sqlite3_open(db.c_str(), &h);
  for (const char* sql : {"ALTER TABLE services DROP COLUMN config_generation",
                          "ALTER TABLE revisions DROP COLUMN ever_ready",
                          "INSERT INTO services VALUES ('default','old','u',4,1,'{}','{}',"
                          "'{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}','[]')",
                          "PRAGMA user_version=1"})
    REQUIRE(sqlite3_exec(h, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);
  auto store = SqliteStore::open(db);
  REQUIRE(store.ok());
  CHECK(store.value()->schema_version() == 2);
  auto old = store.value()->get_service("default", "old");
  REQUIRE(old.ok());
  CHECK(old->meta.generation == 4);
  CHECK(old->config_generation == 1);
}
