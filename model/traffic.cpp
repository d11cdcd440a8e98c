#include "elafros/traffic.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "elafros/naming.hpp"

namespace elafros {

Result<void> validate_traffic(const std::vector<TrafficTarget>& traffic, std::string_view service,
                              const std::vector<std::string>& revisions) {
  if (traffic.empty()) return {};
  int sum = 0;
  std::set<std::string> tags;
  for (std::size_t i = 0; i < traffic.size(); ++i) {
    const TrafficTarget& t = traffic[i];
    std::string where = fmt::format("spec.traffic[{}]", i);
    if (t.latest_revision == !t.revision_name.empty())
      return Error::invalid(
          fmt::format("{}: give either revisionName or latestRevision: true", where));
    if (t.percent < 0 || t.percent > 100)
      return Error::invalid(
          fmt::format("{}.percent: must be between 0 and 100 (got {})", where, t.percent));
    if (!t.revision_name.empty() &&
        std::find(revisions.begin(), revisions.end(), t.revision_name) == revisions.end()) {
      std::string known;
      for (const auto& r : revisions) known += (known.empty() ? "" : ", ") + r;
      return Error::invalid(
          fmt::format("{}: revision \"{}\" does not exist in service \"{}\" (its revisions: {})",
                      where, t.revision_name, service, known.empty() ? "none" : known));
    }
    if (!t.tag.empty()) {
      if (auto problem = dns1035_label_problem(t.tag))
        return Error::invalid(fmt::format("{}.tag: \"{}\" {} (tags become part of a host name)",
                                          where, t.tag, *problem));
      if (t.tag.size() + 1 + service.size() > 63)
        return Error::invalid(
            fmt::format("{}.tag: \"{}-{}\" would be longer than 63 characters; use a shorter tag",
                        where, t.tag, service));
      if (!tags.insert(t.tag).second)
        return Error::invalid(fmt::format(
            "{}.tag: tag \"{}\" is used twice; each tag names one target", where, t.tag));
    }
    sum += t.percent;
  }
  if (sum != 100)
    return Error::invalid(
        fmt::format("spec.traffic: percents must sum to 100 (they sum to {})", sum));
  return {};
}

std::vector<ResolvedTrafficTarget> resolve_traffic(const std::vector<TrafficTarget>& traffic,
                                                   const std::string& latest_ready) {
  std::vector<ResolvedTrafficTarget> out;
  if (traffic.empty()) {
    if (!latest_ready.empty()) out.push_back({latest_ready, true, 100, "", ""});
    return out;
  }
  for (const auto& t : traffic) {
    std::string name = t.latest_revision ? latest_ready : t.revision_name;
    if (name.empty()) continue;
    out.push_back({name, t.latest_revision, t.percent, t.tag, ""});
  }
  return out;
}

std::string tag_host(std::string_view tag, std::string_view name, std::string_view ns,
                     std::string_view domain) {
  return fmt::format("{}-{}.{}.{}", tag, name, ns, domain);
}

std::size_t pick_by_percent(const std::vector<int>& percents, unsigned roll) {
  int r = static_cast<int>(roll % 100);
  std::size_t last = 0;
  for (std::size_t i = 0; i < percents.size(); ++i) {
    if (percents[i] <= 0) continue;
    last = i;
    if (r < percents[i]) return i;
    r -= percents[i];
  }
  return last;
}

}  // namespace elafros
