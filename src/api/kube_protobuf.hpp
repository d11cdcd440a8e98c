#pragma once
// Kubernetes' protobuf encoding of a few kinds, read into their JSON shape: kubectl's typed
// requests (auth can-i, auth whoami, create namespace) send it and do not fall back to JSON.
// The envelope is "k8s\0" + runtime.Unknown{typeMeta, raw}; raw is the kind's message, decoded
// by the field numbers of k8s.io/api's generated.proto. Unknown fields are skipped.

#include <boost/json/value.hpp>
#include <string_view>

#include "elafros/result.hpp"

namespace elafros::api {

inline constexpr const char* kProtobufType = "application/vnd.kubernetes.protobuf";

// The object as JSON (apiVersion and kind from the envelope), or kUnsupportedMediaType naming
// the kind when elafrosd does not read that kind's protobuf, or kBadRequest when it is corrupt.
Result<boost::json::value> kube_protobuf_to_json(std::string_view body);

}  // namespace elafros::api
