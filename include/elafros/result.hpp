#pragma once
// Expected failures travel as values: a Result<T> holds either a T or an Error that says what
// happened and what the user can do about it. Exceptions are kept for startup and config parsing.

#include <string>
#include <utility>
#include <variant>

namespace elafros {

// Each code is one Kubernetes Status reason (metav1.StatusReason) with its HTTP code.
enum class ErrorCode {
  kInvalidArgument,     // a field is missing, of the wrong type or out of range: Invalid (422)
  kBadRequest,          // the request itself is malformed (not JSON, a bad patch): BadRequest (400)
  kUnauthorized,        // no or a bad credential: Unauthorized (401)
  kForbidden,           // the identity may not do this: Forbidden (403)
  kNotFound,            // the named resource does not exist: NotFound (404)
  kMethodNotAllowed,    // the verb is not served on this path: MethodNotAllowed (405)
  kAlreadyExists,       // a create collided with an existing resource: AlreadyExists (409)
  kConflict,            // a write based on a stale resourceVersion: Conflict (409)
  kFailedPrecondition,  // valid, but the system is not in a state to do it: Conflict (409)
  kGone,                // a watch from a resourceVersion too old to replay: Expired (410)
  kUnsupportedMediaType,  // a body in an encoding elafrosd does not read: UnsupportedMediaType
                          // (415)
  kTooManyRequests,       // over a limit; retry later: TooManyRequests (429)
  kUnavailable,           // transient: try again: ServiceUnavailable (503)
  kInternal,              // a bug or an environment failure: InternalError (500)
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  static Error invalid(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
  static Error bad_request(std::string m) { return {ErrorCode::kBadRequest, std::move(m)}; }
  static Error conflict(std::string m) { return {ErrorCode::kConflict, std::move(m)}; }
  static Error not_found(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Error exists(std::string m) { return {ErrorCode::kAlreadyExists, std::move(m)}; }
  static Error precondition(std::string m) {
    return {ErrorCode::kFailedPrecondition, std::move(m)};
  }
  static Error unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Error internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
};

// The Kubernetes Status reason ("NotFound", "Invalid", …) and the HTTP code of an error.
const char* to_string(ErrorCode code);
int http_status(ErrorCode code);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

inline Result<void> ok() {
  return {};
}

}  // namespace elafros
