#pragma once
// CloudEvents 1.0 and its HTTP binding (docs/architecture.md, "Events"): the event as the broker
// stores, matches and delivers it, parsed strictly from binary or structured mode and written
// back in either. Attribute values are kept in their canonical string form; `data` is bytes.

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "elafros/result.hpp"

namespace elafros {

struct CloudEvent {
  // Every context attribute but data: id, source, specversion, type, and the optional ones
  // (datacontenttype, dataschema, subject, time) and extensions.
  std::map<std::string, std::string> attributes;
  std::string data;  // the payload's bytes
  bool has_data = false;

  const std::string* attribute(std::string_view name) const;
  std::string get(std::string_view name) const;  // "" when absent
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;  // names lowercased

// Well-formed UTF-8: no overlong forms or surrogates.
bool valid_utf8(std::string_view s);

// Attribute and extension names: ^[a-z0-9]+$ (CloudEvents 1.0.2; longer than 20 is accepted).
bool valid_attribute_name(std::string_view name);

// Checks the required attributes (id, source, specversion 1.0, type), the names, and the types
// of the optional ones (time: RFC 3339; dataschema: a URI). kInvalidArgument says which.
Result<void> validate_cloudevent(const CloudEvent& event);

// An HTTP request's event: structured when Content-Type starts with application/cloudevents
// (case-insensitive), batched (refused) for application/cloudevents-batch, binary otherwise,
// where the ce-* headers are percent-decoded once (invalid UTF-8 is refused). Validated.
Result<CloudEvent> cloudevent_from_http(const HttpHeaders& headers, std::string body);

// Structured mode's JSON (application/cloudevents+json): data as JSON when the content type is
// JSON or absent and the bytes parse, as a string when they are UTF-8 text, else data_base64.
std::string cloudevent_to_json(const CloudEvent& event);
Result<CloudEvent> cloudevent_from_json(std::string_view text);

// Binary mode: Content-Type from datacontenttype, every other attribute a ce-* header
// (percent-encoded as the spec says), the body the data.
HttpHeaders cloudevent_binary_headers(const CloudEvent& event);

// The percent-encoding of binary mode's header values, both ways.
std::string ce_header_encode(std::string_view value);
Result<std::string> ce_header_decode(std::string_view value);

}  // namespace elafros
