#pragma once
// The durable state of elafros. Every mutating call returns only after its transaction has
// committed, so a caller may acknowledge the write to its client. Calls block: run them off the
// io_context (the daemon gives the store a thread of its own).

#include <memory>
#include <string>
#include <vector>

#include "elafros/event_log.hpp"
#include "elafros/model.hpp"
#include "elafros/object_store.hpp"
#include "elafros/result.hpp"
#include "elafros/usage.hpp"

namespace elafros {

// API objects (services, revisions, and every later kind) live in the generic ObjectStore;
// what only the daemon reads stays in typed internal tables.
class Store : public ObjectStore, public EventLog {
 public:
  // Secrets at rest: a new key seals every Secret again, then the old keys are dropped. The new
  // key's id and how many Secrets were resealed.
  virtual Result<std::pair<std::string, std::size_t>> rotate_secret_key() = 0;

  // Usage: each sample's share since the instance's last one, added to its hour's bucket, in
  // one transaction with the instance's new mark (so a crash loses at most one interval and
  // never counts a span twice). Rows whose hour overlaps [from, to), in unix seconds.
  virtual Result<void> record_usage(const std::vector<UsageSample>& samples) = 0;
  virtual Result<std::vector<UsageRow>> usage_rows(std::int64_t from, std::int64_t to) = 0;

  // Records that a revision became Ready once (in its stored status; no new resourceVersion:
  // nothing a client sees changes).
  virtual Result<void> mark_revision_ready(const std::string& ns, const std::string& name) = 0;

  // Instances: what the daemon has started, so a restart can adopt or clean it up.
  virtual Result<void> put_instance(const InstanceRecord& instance) = 0;
  virtual Result<void> delete_instance(const std::string& id) = 0;
  virtual Result<std::vector<InstanceRecord>> list_instances() = 0;

  // Images: name → manifest digest. Putting an existing name repoints it.
  virtual Result<void> put_image(const ImageRecord& image) = 0;
  virtual Result<ImageRecord> get_image(const std::string& name) = 0;
  virtual Result<std::vector<ImageRecord>> list_images() = 0;
  // kNotFound when no image has that name.
  virtual Result<void> delete_image(const std::string& name) = 0;
  // The manifest digest every revision pins, in every namespace: "namespace/revision" → digest.
  virtual Result<std::vector<std::pair<std::string, std::string>>> revision_image_digests() = 0;
};

using StorePtr = std::unique_ptr<Store>;

}  // namespace elafros
