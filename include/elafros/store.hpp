#pragma once
// The durable state of elafros. Every mutating call returns only after its transaction has
// committed, so a caller may acknowledge the write to its client. Calls block: run them off the
// io_context (the daemon gives the store a thread of its own).

#include <memory>
#include <string>
#include <vector>

#include "elafros/model.hpp"
#include "elafros/result.hpp"

namespace elafros {

class Store {
 public:
  virtual ~Store() = default;

  // Services and revisions. A service is created together with its first revision, atomically.
  virtual Result<void> create_service(const Service& service, const Revision& first_revision) = 0;
  virtual Result<Service> get_service(const std::string& ns, const std::string& name) = 0;
  // All services of one namespace, or of every namespace when ns is empty.
  virtual Result<std::vector<Service>> list_services(const std::string& ns) = 0;
  // Deletes the service and its revisions. kNotFound when it does not exist.
  virtual Result<void> delete_service(const std::string& ns, const std::string& name) = 0;
  // Replaces a service's spec and traffic (and generation counters), adding new_revision when
  // the template changed, atomically. kNotFound when the service does not exist.
  virtual Result<void> update_service(const Service& service, const Revision* new_revision) = 0;
  // Revisions of one service in creation order, or of the whole namespace when service is empty.
  virtual Result<std::vector<Revision>> list_revisions(const std::string& ns,
                                                       const std::string& service) = 0;
  virtual Result<Revision> get_revision(const std::string& ns, const std::string& name) = 0;
  virtual Result<void> delete_revision(const std::string& ns, const std::string& name) = 0;
  // Records that a revision became Ready once.
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
