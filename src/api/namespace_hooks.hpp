#pragma once
// Namespaces in the generic verbs: `default` may not be deleted (Kubernetes refuses it too).

#include <fmt/format.h>

#include "api/resource_api.hpp"
#include "elafros/model.hpp"
#include "elafros/object_meta.hpp"

namespace elafros::api {

class NamespaceHooks final : public KindHooks {
 public:
  // KindHooks
  awaitable<Result<void>> before_write(const KindInfo&, const boost::json::object*,
                                       boost::json::object&, std::vector<ObjectWrite>&,
                                       bool) override {
    co_return Result<void>{};
  }
  awaitable<Result<void>> before_delete(const KindInfo&,
                                        const boost::json::object& current) override {
    if (meta_string(current, "name") == kDefaultNamespace)
      co_return Error{ErrorCode::kForbidden,
                      "namespaces \"default\" is forbidden: this namespace may not be deleted"};
    co_return Result<void>{};
  }
  void present(const KindInfo&, boost::json::object&) override {}
};

}  // namespace elafros::api
