#include "api/table.hpp"

#include <boost/json.hpp>

#include "elafros/object_meta.hpp"

namespace json = boost::json;

namespace elafros::api {
namespace {

json::array column_definitions(const KindInfo& kind) {
  json::array cols;
  cols.push_back(json::object{{"name", "Name"},
                              {"type", "string"},
                              {"format", "name"},
                              {"description", "Name of the object"},
                              {"priority", 0}});
  for (const auto& c : kind.columns)
    cols.push_back(json::object{{"name", c.name},
                                {"type", c.type},
                                {"format", ""},
                                {"description", c.description},
                                {"priority", c.priority}});
  return cols;
}

json::object table_row(const KindInfo& kind, const json::object& object) {
  json::array cells;
  cells.emplace_back(meta_string(object, "name"));
  for (const auto& c : kind.columns) {
    json::value v = json_path_value(object, c.json_path);
    cells.push_back(v.is_null() ? json::value("") : v);
  }
  json::object partial{{"kind", "PartialObjectMetadata"},
                       {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", object.at("metadata")}};
  return json::object{{"cells", std::move(cells)}, {"object", std::move(partial)}};
}

}  // namespace

json::object table(const KindInfo& kind, const std::vector<json::object>& objects,
                   const std::string& rv, const std::string& cont) {
  json::array rows;
  for (const auto& o : objects) rows.push_back(table_row(kind, o));
  json::object md{{"resourceVersion", rv}};
  if (!cont.empty()) md["continue"] = cont;
  return json::object{{"kind", "Table"},
                      {"apiVersion", "meta.k8s.io/v1"},
                      {"metadata", std::move(md)},
                      {"columnDefinitions", column_definitions(kind)},
                      {"rows", std::move(rows)}};
}

}  // namespace elafros::api
