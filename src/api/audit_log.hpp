#pragma once
// The audit log (docs/architecture.md, "Audit"): one JSON line per audited request, in
// Kubernetes' audit.k8s.io/v1 Event shape, written when the response is complete. A policy
// chooses each request's level (None, Metadata, Request); by default every mutation and every
// denial is recorded at Metadata and reads are not. Records never hold secret values or tokens
// (only a token's accessor). The file (<data-dir>/audit/audit.log, O_APPEND, 0600) is rotated by
// size; every record carries prevHash and hash = SHA-256(prevHash "\n" record-without-hash), and
// the chain carries across rotation, so verify() finds the first altered, inserted or removed
// record. The head hash goes to the daemon's log every minute, against truncation.

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/api_request.hpp"
#include "api/router.hpp"
#include "elafros/result.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros::api {

struct AuditRule {
  std::string level;  // None, Metadata, Request, RequestResponse
  std::vector<std::string> verbs, users, groups, namespaces, non_resource_urls;
  struct Resources {
    std::string group;
    std::vector<std::string> resources;  // empty: all in the group
  };
  std::vector<Resources> resources;
};

// Kubernetes' audit Policy: the first rule that matches decides; no match is None.
struct AuditPolicy {
  std::vector<AuditRule> rules;
  // Every mutation and every denial at Metadata; reads at None.
  static AuditPolicy defaults();
  // An audit.k8s.io/v1 Policy document (JSON; the daemon reads YAML into it), or kInvalid naming
  // the field.
  static Result<AuditPolicy> parse(const boost::json::value& policy);
  std::string level(const ApiRequest& request, int status) const;
};

struct AuditOptions {
  std::string dir;                            // <data-dir>/audit
  std::uint64_t max_file_bytes = 100u << 20;  // then audit.log becomes audit.log.1, …
  int max_files = 10;                         // rotated files kept
  AuditPolicy policy = AuditPolicy::defaults();
};

struct AuditVerification {
  bool ok = true;
  std::size_t records = 0;
  std::string head;     // the last record's hash
  std::string problem;  // where the chain breaks, naming the file, line and auditID
};

class AuditLog {
 public:
  // Opens (creating) the directory and the log, and reads the chain's head from it.
  static Result<std::unique_ptr<AuditLog>> open(AuditOptions options);
  ~AuditLog();

  // On the control thread, once the response is complete.
  void record(const ApiRequest& request, int status, const std::string& reason,
              const std::string& message, std::chrono::system_clock::time_point received);
  // Logs the head hash every minute (and stops with the io_context).
  void start(boost::asio::io_context& io);
  std::string head() const { return head_; }
  std::uint64_t records() const { return written_; }
  const std::string& dir() const { return options_.dir; }

  // Reads every kept file, oldest first, and checks the chain (and, when `head` is given, that
  // the log ends at it: nothing was cut from the end). Blocking.
  static AuditVerification verify(const std::string& dir, const std::string& head = "");
  // The kept records, oldest first, that pass `keep` (blocking).
  static std::vector<boost::json::object> read(
      const std::string& dir, const std::function<bool(const boost::json::object&)>& keep);

 private:
  AuditLog() = default;
  Result<void> append(const std::string& line);
  void rotate();

  AuditOptions options_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::string head_;
  std::uint64_t written_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// GET /apis/elafros.dev/v1/audit?user=&verb=&since= (the records, oldest first) and
// GET …/audit/verify (the chain's check against the daemon's head).
void add_audit_routes(Router& router, AuditLog& log, boost::asio::thread_pool& blocking);

}  // namespace elafros::api
