#pragma once
// What a Trigger lets through (docs/architecture.md, "Events"): spec.filter.attributes (exact
// match; "" means any non-empty value) or, when non-empty, spec.filters, an AND of the dialects
// exact, prefix, suffix, all, any, not and cesql (CloudEvents SQL 1.0, parsed when the Trigger
// is written). Matching never fails: a CESQL runtime error (a missing attribute, a failed cast)
// makes the expression false, as Knative does.

#include <boost/json/fwd.hpp>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "elafros/cloudevent.hpp"
#include "elafros/result.hpp"

namespace elafros {

struct CesqlExpression;  // a parsed CESQL expression

struct EventFilter {
  enum class Dialect { kAttributes, kExact, kPrefix, kSuffix, kAll, kAny, kNot, kCesql };
  Dialect dialect = Dialect::kAll;                // an empty kAll matches everything
  std::map<std::string, std::string> attributes;  // attributes, exact, prefix, suffix
  std::vector<EventFilter> children;              // all, any, not (one)
  std::shared_ptr<const CesqlExpression> cesql;
  std::string cesql_text;
};

// The filter of a Trigger's spec (spec.filter and spec.filters), or kInvalidArgument naming the
// field: more than one dialect in an element, a key not matching ^[a-z][a-z0-9]*$, an empty
// value, or CESQL that does not parse (with the position).
Result<EventFilter> trigger_filter(const boost::json::object& spec);
bool filter_matches(const EventFilter& filter, const CloudEvent& event);

// CESQL 1.0: literals (32-bit integers, TRUE/FALSE, '…' and "…" strings), attribute names,
// NOT, unary -, * / %, + -, = != <> < <= > >=, [NOT] LIKE, [NOT] IN (…), EXISTS, AND, OR, XOR
// (one level, left to right, as the reference grammar has them), and the built-in functions
// LENGTH, CONCAT, CONCAT_WS, LOWER, UPPER, TRIM, LEFT, RIGHT, SUBSTRING, ABS, INT, BOOL,
// STRING, IS_INT, IS_BOOL. Errors say where: "at 12: expected ')'".
Result<std::shared_ptr<const CesqlExpression>> parse_cesql(std::string_view text);
// True when it evaluates to true (a non-Boolean result is cast to Boolean); false on any error.
bool cesql_matches(const CesqlExpression& expression, const CloudEvent& event);

}  // namespace elafros
