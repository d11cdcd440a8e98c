#include "cli/yaml_json.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <regex>
#include <stdexcept>

namespace json = boost::json;

namespace elafros::cli {
namespace {

json::value scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return json::string(s);  // quoted: always a string
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat(
      "[-+]?([0-9]+\\.[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+");
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s == "null" || s == "Null" || s == "NULL" || s == "~" || s.empty()) return nullptr;
  if (std::regex_match(s, kInt)) {
    try {
      return std::stoll(s);
    } catch (const std::out_of_range&) {
      return json::string(s);
    }
  }
  if (std::regex_match(s, kFloat)) return std::stod(s);
  return json::string(s);
}

json::value convert(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar(n);
    case YAML::NodeType::Sequence: {
      json::array a;
      for (const auto& e : n) a.push_back(convert(e));
      return a;
    }
    case YAML::NodeType::Map: {
      json::object o;
      for (const auto& kv : n) {
        if (!kv.first.IsScalar())
          throw std::runtime_error(
              fmt::format("line {}: mapping keys must be plain strings", kv.first.Mark().line + 1));
        o[kv.first.Scalar()] = convert(kv.second);
      }
      return o;
    }
  }
  return nullptr;
}

// Strings YAML would read as another type ("true", "8080", "") must be quoted.
bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  YAML::Node probe;
  try {
    probe = YAML::Load(s);
  } catch (const YAML::Exception&) {
    return true;
  }
  if (!probe.IsScalar() || probe.Scalar() != s) return true;
  return !scalar(probe).is_string();
}

void emit(YAML::Emitter& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::object:
      out << YAML::BeginMap;
      for (const auto& kv : v.get_object()) {
        out << YAML::Key << std::string(kv.key()) << YAML::Value;
        emit(out, kv.value());
      }
      out << YAML::EndMap;
      break;
    case json::kind::array:
      out << YAML::BeginSeq;
      for (const auto& e : v.get_array()) emit(out, e);
      out << YAML::EndSeq;
      break;
    case json::kind::string: {
      std::string s(v.get_string());
      if (needs_quotes(s))
        out << YAML::DoubleQuoted << s;
      else
        out << s;
      break;
    }
    case json::kind::bool_:
      out << (v.get_bool() ? "true" : "false");
      break;
    case json::kind::int64:
      out << v.get_int64();
      break;
    case json::kind::uint64:
      out << v.get_uint64();
      break;
    case json::kind::double_:
      out << v.get_double();
      break;
    case json::kind::null:
      out << YAML::Null;
      break;
  }
}

}  // namespace

std::vector<json::value> yaml_documents(const std::string& text) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    throw std::runtime_error(
        fmt::format("line {}, column {}: {}", e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  std::vector<json::value> out;
  for (const auto& d : docs)
    if (!d.IsNull()) out.push_back(convert(d));
  return out;
}

std::string to_yaml(const json::value& v) {
  YAML::Emitter out;
  emit(out, v);
  return std::string(out.c_str()) + "\n";
}

}  // namespace elafros::cli
