#include "elafros/label_selector.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace elafros {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool valid_token(std::string_view s) {
  if (s.empty() || s.size() > 316) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
}

// Splits on commas outside parentheses.
std::vector<std::string_view> split_requirements(std::string_view text) {
  std::vector<std::string_view> out;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] == '(') depth++;
    if (i < text.size() && text[i] == ')') depth--;
    if (i == text.size() || (text[i] == ',' && depth == 0)) {
      out.push_back(trim(text.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

}  // namespace

Result<LabelSelector> LabelSelector::parse(std::string_view text) {
  LabelSelector sel;
  if (trim(text).empty()) return sel;
  for (std::string_view req : split_requirements(text)) {
    auto bad = [&](const char* why) {
      return Error::bad_request(fmt::format(
          "labelSelector: cannot read \"{}\": {} (write KEY=VALUE, KEY!=VALUE, KEY in (A,B), "
          "KEY notin (A,B), KEY or !KEY, separated by commas)",
          req, why));
    };
    Requirement r;
    if (req.empty()) return bad("an empty requirement");
    if (auto p = req.find(" in ");
        p != std::string_view::npos || req.find(" notin ") != std::string_view::npos) {
      bool notin = req.find(" notin ") != std::string_view::npos;
      p = notin ? req.find(" notin ") : p;
      r.key = std::string(trim(req.substr(0, p)));
      std::string_view rest = trim(req.substr(p + (notin ? 7 : 4)));
      if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')')
        return bad("the values must be in parentheses");
      rest = rest.substr(1, rest.size() - 2);
      std::size_t start = 0;
      for (std::size_t i = 0; i <= rest.size(); ++i)
        if (i == rest.size() || rest[i] == ',') {
          std::string_view v = trim(rest.substr(start, i - start));
          if (!v.empty() && !valid_token(v))
            return bad("a value has characters labels cannot hold");
          r.values.emplace_back(v);
          start = i + 1;
        }
      r.op = notin ? Requirement::Op::kNotIn : Requirement::Op::kIn;
    } else if (auto ne = req.find("!="); ne != std::string_view::npos) {
      r.key = std::string(trim(req.substr(0, ne)));
      r.values.emplace_back(trim(req.substr(ne + 2)));
      r.op = Requirement::Op::kNotIn;
    } else if (auto eq = req.find('='); eq != std::string_view::npos) {
      std::size_t skip = (eq + 1 < req.size() && req[eq + 1] == '=') ? 2 : 1;
      r.key = std::string(trim(req.substr(0, eq)));
      r.values.emplace_back(trim(req.substr(eq + skip)));
      r.op = Requirement::Op::kIn;
    } else if (req.front() == '!') {
      r.key = std::string(trim(req.substr(1)));
      r.op = Requirement::Op::kNotExists;
    } else {
      r.key = std::string(req);
      r.op = Requirement::Op::kExists;
    }
    if (!valid_token(r.key)) return bad("the key is not a valid label key");
    for (const auto& v : r.values)
      if (!v.empty() && !valid_token(v)) return bad("the value is not a valid label value");
    sel.requirements_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& r : requirements_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    bool in = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    switch (r.op) {
      case Requirement::Op::kIn:
        if (!in) return false;
        break;
      case Requirement::Op::kNotIn:
        if (in) return false;
        break;
      case Requirement::Op::kExists:
        if (!has) return false;
        break;
      case Requirement::Op::kNotExists:
        if (has) return false;
        break;
    }
  }
  return true;
}

}  // namespace elafros
