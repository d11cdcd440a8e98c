#pragma once
// The API's route table: {method, path pattern, handler}. A pattern's segments are literals or
// {placeholders}; the first route whose pattern matches wins, and a path that matches only
// under other methods gets 405 MethodNotAllowed naming them.

#include <string>
#include <vector>

#include "api/api_request.hpp"

namespace elafros::api {

class Router {
 public:
  // pattern: "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}"
  void add(std::string method, const std::string& pattern, Handler handler);
  // Fills request.params and runs the handler, or answers 404/405.
  awaitable<bool> dispatch(ApiRequest& request, Responder& responder) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };
  static bool match(const Route& route, const std::vector<std::string>& parts,
                    std::map<std::string, std::string>& params);
  std::vector<Route> routes_;
};

std::vector<std::string> split_path(std::string_view path);
// Percent-decoding; nullopt when malformed. plus_is_space for query strings.
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space = false);

}  // namespace elafros::api
