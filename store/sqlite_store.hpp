#pragma once

#include <memory>
#include <string>

#include "elafros/store.hpp"

struct sqlite3;

namespace elafros {

class SecretCipher;

// Store on SQLite: WAL, synchronous=FULL, foreign keys on, BEGIN IMMEDIATE for writes
// (docs/architecture.md, "Store"). Not thread-safe: the daemon calls it from one thread.
class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) the database and migrates it to the current schema.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  static constexpr int kSchemaVersion = 8;
  // Seals Secrets' data and annotations from now on (docs/architecture.md, "Secrets"); the
  // cipher outlives the store.
  void set_secret_cipher(SecretCipher* cipher) { cipher_ = cipher; }
  int schema_version();

  // ObjectStore
  Result<boost::json::object> get_object(const ObjectKey& key) override;
  Result<ObjectList> list_objects(const ObjectQuery& query) override;
  std::vector<Result<std::vector<ObjectEvent>>> write_object_groups(
      std::vector<std::vector<ObjectWrite>> groups) override;
  std::int64_t current_resource_version() override { return resource_version_; }

  // Store
  Result<std::pair<std::string, std::size_t>> rotate_secret_key() override;
  Result<void> record_usage(const std::vector<UsageSample>& samples) override;
  Result<std::vector<UsageRow>> usage_rows(std::int64_t from, std::int64_t to) override;
  Result<void> mark_revision_ready(const std::string& ns, const std::string& name) override;
  Result<void> put_instance(const InstanceRecord& instance) override;
  Result<void> delete_instance(const std::string& id) override;
  Result<std::vector<InstanceRecord>> list_instances() override;
  Result<void> put_image(const ImageRecord& image) override;
  Result<ImageRecord> get_image(const std::string& name) override;
  Result<std::vector<ImageRecord>> list_images() override;
  Result<void> delete_image(const std::string& name) override;

  // EventLog (sqlite_event_log.cpp)
  Result<std::vector<std::int64_t>> append_events(const std::vector<NewEvent>& events) override;
  Result<std::vector<std::pair<StoredEvent, Delivery>>> due_deliveries(std::int64_t now_ms,
                                                                       std::size_t limit) override;
  Result<std::vector<std::pair<StoredEvent, Delivery>>> due_deliveries_of(
      const std::string& trigger_uid, std::int64_t now_ms, std::size_t limit) override;
  Result<std::int64_t> next_due_ms() override;
  Result<void> update_delivery(const Delivery& delivery) override;
  Result<void> update_deliveries(const std::vector<Delivery>& deliveries) override;
  Result<std::int64_t> prune_events(std::int64_t before_ms, std::int64_t keep,
                                    std::int64_t max_bytes) override;
  Result<Backlog> backlog() override;
  Result<std::vector<std::pair<StoredEvent, std::vector<Delivery>>>> recent_events(
      const std::string& ns, const std::string& broker, std::size_t limit) override;
  Result<std::vector<std::pair<std::string, std::string>>> revision_image_digests() override;

 private:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  Result<void> migrate();
  Result<void> move_to_objects();
  Result<void> exec(const char* sql);
  Result<std::vector<ObjectEvent>> apply_group(std::vector<ObjectWrite>& group);
  Result<void> apply_write(ObjectWrite& write, std::vector<ObjectEvent>& events);
  Result<void> delete_with_dependents(const ObjectKey& key, const std::string& uid,
                                      std::vector<ObjectEvent>& events, int depth);

  sqlite3* db_;
  SecretCipher* cipher_ = nullptr;
  std::int64_t resource_version_ = 0;  // the last one committed
};

}  // namespace elafros
