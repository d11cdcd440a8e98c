#pragma once

#include <memory>
#include <string>

#include "elafros/store.hpp"

struct sqlite3;

namespace elafros {

// Store on SQLite: WAL, synchronous=FULL, foreign keys on, BEGIN IMMEDIATE for writes
// (DESIGN.md §7). Not thread-safe: the daemon calls it from one thread.
class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) the database and migrates it to the current schema.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  static constexpr int kSchemaVersion = 2;
  int schema_version();

  // Store
  Result<void> create_service(const Service& service, const Revision& first_revision) override;
  Result<Service> get_service(const std::string& ns, const std::string& name) override;
  Result<std::vector<Service>> list_services(const std::string& ns) override;
  Result<void> delete_service(const std::string& ns, const std::string& name) override;
  Result<void> update_service(const Service& service, const Revision* new_revision) override;
  Result<std::vector<Revision>> list_revisions(const std::string& ns,
                                               const std::string& service) override;
  Result<Revision> get_revision(const std::string& ns, const std::string& name) override;
  Result<void> delete_revision(const std::string& ns, const std::string& name) override;
  Result<void> mark_revision_ready(const std::string& ns, const std::string& name) override;
  Result<void> put_instance(const InstanceRecord& instance) override;
  Result<void> delete_instance(const std::string& id) override;
  Result<std::vector<InstanceRecord>> list_instances() override;
  Result<void> put_image(const ImageRecord& image) override;
  Result<ImageRecord> get_image(const std::string& name) override;
  Result<std::vector<ImageRecord>> list_images() override;
  Result<void> delete_image(const std::string& name) override;
  Result<std::vector<std::pair<std::string, std::string>>> revision_image_digests() override;

 private:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  Result<void> migrate();
  Result<void> exec(const char* sql);

  sqlite3* db_;
};

}  // namespace elafros
