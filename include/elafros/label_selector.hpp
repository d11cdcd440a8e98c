#pragma once
// Kubernetes label selectors ("app=web,tier!=db,env in (a,b),!legacy"), as ?labelSelector= takes.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "elafros/result.hpp"

namespace elafros {

class LabelSelector {
 public:
  // kBadRequest saying which requirement cannot be read.
  static Result<LabelSelector> parse(std::string_view text);
  bool matches(const std::map<std::string, std::string>& labels) const;
  bool empty() const { return requirements_.empty(); }

 private:
  struct Requirement {
    enum class Op { kIn, kNotIn, kExists, kNotExists } op;
    std::string key;
    std::vector<std::string> values;
  };
  std::vector<Requirement> requirements_;
};

}  // namespace elafros
