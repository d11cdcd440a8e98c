#include "api/kube_protobuf.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "elafros/base64.hpp"

namespace json = boost::json;

namespace elafros::api {
namespace {

// One field of a message schema: its JSON name and how its value reads.
struct Message;
struct Field {
  const char* name;
  enum Type {
    kString,
    kBool,
    kMessage,
    kRepeatedMessage,
    kStringMap,
    kBytesMap,
    kQuantityMap,  // map<string, resource.Quantity{string = 1}>
    kRepeatedString
  } type;
  const Message* message = nullptr;
};
struct Message {
  std::map<std::uint32_t, Field> fields;
};

const Message kObjectMeta{{{1, {"name", Field::kString}},
                           {2, {"generateName", Field::kString}},
                           {3, {"namespace", Field::kString}},
                           {11, {"labels", Field::kStringMap}},
                           {12, {"annotations", Field::kStringMap}}}};
const Message kResourceAttributes{{{1, {"namespace", Field::kString}},
                                   {2, {"verb", Field::kString}},
                                   {3, {"group", Field::kString}},
                                   {4, {"version", Field::kString}},
                                   {5, {"resource", Field::kString}},
                                   {6, {"subresource", Field::kString}},
                                   {7, {"name", Field::kString}}}};
const Message kNonResourceAttributes{
    {{1, {"path", Field::kString}}, {2, {"verb", Field::kString}}}};
const Message kAccessReviewSpec{
    {{1, {"resourceAttributes", Field::kMessage, &kResourceAttributes}},
     {2, {"nonResourceAttributes", Field::kMessage, &kNonResourceAttributes}}}};
const Message kAccessReview{{{1, {"metadata", Field::kMessage, &kObjectMeta}},
                             {2, {"spec", Field::kMessage, &kAccessReviewSpec}}}};
const Message kRulesReviewSpec{{{1, {"namespace", Field::kString}}}};
const Message kRulesReview{{{1, {"metadata", Field::kMessage, &kObjectMeta}},
                            {2, {"spec", Field::kMessage, &kRulesReviewSpec}}}};
const Message kSubjectReview{{{1, {"metadata", Field::kMessage, &kObjectMeta}}}};
const Message kNamespaceSpec{{{1, {"finalizers", Field::kRepeatedString}}}};
const Message kNamespace{{{1, {"metadata", Field::kMessage, &kObjectMeta}},
                          {2, {"spec", Field::kMessage, &kNamespaceSpec}}}};

const Message kPolicyRule{{{1, {"verbs", Field::kRepeatedString}},
                           {2, {"apiGroups", Field::kRepeatedString}},
                           {3, {"resources", Field::kRepeatedString}},
                           {4, {"resourceNames", Field::kRepeatedString}},
                           {5, {"nonResourceURLs", Field::kRepeatedString}}}};
const Message kRole{{{1, {"metadata", Field::kMessage, &kObjectMeta}},
                     {2, {"rules", Field::kRepeatedMessage, &kPolicyRule}}}};
const Message kSubject{{{1, {"kind", Field::kString}},
                        {2, {"apiGroup", Field::kString}},
                        {3, {"name", Field::kString}},
                        {4, {"namespace", Field::kString}}}};
const Message kRoleRef{{{1, {"apiGroup", Field::kString}},
                        {2, {"kind", Field::kString}},
                        {3, {"name", Field::kString}}}};
const Message kBinding{{{1, {"metadata", Field::kMessage, &kObjectMeta}},
                        {2, {"subjects", Field::kRepeatedMessage, &kSubject}},
                        {3, {"roleRef", Field::kMessage, &kRoleRef}}}};

const Message kSecret{{{1, {"metadata", Field::kMessage, &kObjectMeta}},
                       {2, {"data", Field::kBytesMap}},
                       {3, {"type", Field::kString}},
                       {4, {"stringData", Field::kStringMap}},
                       {5, {"immutable", Field::kBool}}}};
const Message kConfigMap{{{1, {"metadata", Field::kMessage, &kObjectMeta}},
                          {2, {"data", Field::kStringMap}},
                          {3, {"binaryData", Field::kBytesMap}},
                          {4, {"immutable", Field::kBool}}}};

const Message kQuotaSpec{{{1, {"hard", Field::kQuantityMap}}}};
const Message kResourceQuota{{{1, {"metadata", Field::kMessage, &kObjectMeta}},
                              {2, {"spec", Field::kMessage, &kQuotaSpec}}}};

const std::map<std::string, const Message*>& kinds() {
  static const std::map<std::string, const Message*> k = {
      {"authorization.k8s.io/v1/SelfSubjectAccessReview", &kAccessReview},
      {"authorization.k8s.io/v1/SelfSubjectRulesReview", &kRulesReview},
      {"authentication.k8s.io/v1/SelfSubjectReview", &kSubjectReview},
      {"v1/Namespace", &kNamespace},
      {"v1/Secret", &kSecret},
      {"v1/ConfigMap", &kConfigMap},
      {"v1/ResourceQuota", &kResourceQuota},
      {"rbac.authorization.k8s.io/v1/Role", &kRole},
      {"rbac.authorization.k8s.io/v1/ClusterRole", &kRole},
      {"rbac.authorization.k8s.io/v1/RoleBinding", &kBinding},
      {"rbac.authorization.k8s.io/v1/ClusterRoleBinding", &kBinding},
  };
  return k;
}

// A cursor over protobuf wire format.
class Wire {
 public:
  explicit Wire(std::string_view data) : data_(data) {}
  bool done() const { return at_ >= data_.size(); }

  std::optional<std::uint64_t> varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64 && at_ < data_.size(); shift += 7) {
      auto b = static_cast<unsigned char>(data_[at_++]);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return std::nullopt;
  }

  std::optional<std::string_view> bytes() {
    auto n = varint();
    if (!n || *n > data_.size() - at_) return std::nullopt;
    std::string_view out = data_.substr(at_, *n);
    at_ += *n;
    return out;
  }

  // Skips a value of this wire type; false when it cannot.
  bool skip(std::uint32_t type) {
    switch (type) {
      case 0:
        return varint().has_value();
      case 1:
        return advance(8);
      case 2:
        return bytes().has_value();
      case 5:
        return advance(4);
      default:
        return false;
    }
  }

 private:
  bool advance(std::size_t n) {
    if (n > data_.size() - at_) return false;
    at_ += n;
    return true;
  }
  std::string_view data_;
  std::size_t at_ = 0;
};

Error corrupt(const std::string& what) {
  return Error::bad_request(
      fmt::format("the protobuf body is corrupt ({}); send the object as JSON (Content-Type: "
                  "application/json)",
                  what));
}

Result<json::object> decode(std::string_view data, const Message& m, const std::string& path) {
  json::object out;
  Wire w(data);
  while (!w.done()) {
    auto key = w.varint();
    if (!key) return corrupt("a truncated field key in " + path);
    auto number = static_cast<std::uint32_t>(*key >> 3);
    auto type = static_cast<std::uint32_t>(*key & 7);
    auto f = m.fields.find(number);
    if (f == m.fields.end()) {
      if (!w.skip(type)) return corrupt(fmt::format("field {} of {}", number, path));
      continue;
    }
    const Field& field = f->second;
    std::string where = path.empty() ? field.name : path + "." + field.name;
    if (field.type == Field::kBool) {
      auto v = type == 0 ? w.varint() : std::nullopt;
      if (!v) return corrupt(where);
      out[field.name] = *v != 0;
      continue;
    }
    auto bytes = type == 2 ? w.bytes() : std::nullopt;
    if (!bytes) return corrupt(where);
    switch (field.type) {
      case Field::kString:
        out[field.name] = json::string(*bytes);
        break;
      case Field::kRepeatedString: {
        json::value& a = out[field.name];
        if (!a.is_array()) a = json::array{};
        a.get_array().emplace_back(json::string(*bytes));
        break;
      }
      case Field::kMessage: {
        auto sub = decode(*bytes, *field.message, where);
        if (!sub) return sub.error();
        out[field.name] = std::move(*sub);
        break;
      }
      case Field::kRepeatedMessage: {
        json::value& a = out[field.name];
        if (!a.is_array()) a = json::array{};
        auto sub =
            decode(*bytes, *field.message, fmt::format("{}[{}]", where, a.get_array().size()));
        if (!sub) return sub.error();
        a.get_array().emplace_back(std::move(*sub));
        break;
      }
      case Field::kStringMap:
      case Field::kBytesMap:
      case Field::kQuantityMap: {
        static const Message kEntry{{{1, {"key", Field::kString}}, {2, {"value", Field::kString}}}};
        auto entry = decode(*bytes, kEntry, where);
        if (!entry) return entry.error();
        json::value& map = out[field.name];
        if (!map.is_object()) map = json::object{};
        const json::value* k = entry->if_contains("key");
        const json::value* v = entry->if_contains("value");
        json::value value = v ? *v : json::value("");
        if (field.type == Field::kBytesMap) value = json::string(base64_encode(value.get_string()));
        if (field.type == Field::kQuantityMap) {
          // The value is a Quantity message: its field 1 is the quantity as text.
          static const Message kQuantity{{{1, {"string", Field::kString}}}};
          auto q = decode(value.get_string(), kQuantity, where);
          if (!q) return q.error();
          const json::value* text = q->if_contains("string");
          value = text ? *text : json::value("");
        }
        map.get_object()[k ? k->get_string() : ""] = std::move(value);
        break;
      }
      case Field::kBool:
        break;
    }
  }
  return out;
}

}  // namespace

Result<json::value> kube_protobuf_to_json(std::string_view body) {
  constexpr std::string_view kMagic{"k8s\0", 4};
  if (body.substr(0, 4) != kMagic) return corrupt("no k8s envelope");
  Wire w(body.substr(4));
  std::string api_version, kind;
  std::optional<std::string_view> raw;
  while (!w.done()) {
    auto key = w.varint();
    if (!key) return corrupt("the envelope");
    auto number = *key >> 3;
    auto type = static_cast<std::uint32_t>(*key & 7);
    if ((number == 1 || number == 2) && type == 2) {
      auto bytes = w.bytes();
      if (!bytes) return corrupt("the envelope");
      if (number == 2) {
        raw = bytes;
        continue;
      }
      Wire tm(*bytes);
      while (!tm.done()) {
        auto k = tm.varint();
        auto v = k && (*k & 7) == 2 ? tm.bytes() : std::nullopt;
        if (!v) return corrupt("the envelope's type");
        if ((*k >> 3) == 1) api_version = std::string(*v);
        if ((*k >> 3) == 2) kind = std::string(*v);
      }
    } else if (!w.skip(type)) {
      return corrupt("the envelope");
    }
  }
  auto schema = kinds().find(api_version + "/" + kind);
  if (schema == kinds().end())
    return Error{ErrorCode::kUnsupportedMediaType,
                 fmt::format("elafrosd does not read {} {} as protobuf; send it as JSON ('kubectl "
                             "apply -f' it)",
                             api_version, kind)};
  auto object = decode(raw.value_or(std::string_view{}), *schema->second, "");
  if (!object) return object.error();
  object->insert_or_assign("apiVersion", api_version);
  object->insert_or_assign("kind", kind);
  return json::value(std::move(*object));
}

}  // namespace elafros::api
