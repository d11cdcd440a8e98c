#pragma once
// YAML ⇄ JSON for Kubernetes manifests (yaml-cpp). Plain scalars take YAML 1.2 core types
// (true/false, null, integers, floats); quoted scalars stay strings, as Kubernetes reads them.

#include <boost/json/value.hpp>
#include <string>
#include <vector>

namespace elafros::cli {

// Every document of a multi-document YAML text. Throws std::runtime_error with the line of a
// syntax error.
std::vector<boost::json::value> yaml_documents(const std::string& text);

std::string to_yaml(const boost::json::value& v);

}  // namespace elafros::cli
