// ImageStore::push: a stored image's manifest, config and layers to a registry.

#include <fmt/format.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "elafros/registry_reference.hpp"
#include "image_store.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;

namespace elafros {

Result<std::string> ImageStore::push(const std::string& manifest_digest,
                                     const std::string& destination,
                                     const PushProgressFn& progress) const {
  if (!registry_)
    return Error::precondition("pushing needs a registry client, which this image store lacks");
  std::string dest = destination.rfind("docker://", 0) == 0 ? destination.substr(9) : destination;
  auto ref = parse_registry_reference(dest);
  if (!ref)
    return Error::invalid(
        fmt::format("\"{}\" is not a registry reference; give HOST[:PORT]/REPOSITORY[:TAG], e.g. "
                    "127.0.0.1:5000/app:v1",
                    destination));
  if (!ref->digest.empty())
    return Error::invalid(fmt::format(
        "push to a tag, not a digest (\"{}\"): the registry computes the digest", destination));
  std::ifstream in(blob_path(manifest_digest), std::ios::binary);
  if (!in)
    return Error::not_found(
        fmt::format("the manifest {} is not in the image store", manifest_digest));
  std::stringstream ss;
  ss << in.rdbuf();
  PushRequest req;
  req.reference = *ref;
  req.manifest = ss.str();
  req.progress = progress;
  boost::system::error_code ec;
  json::value doc = json::parse(req.manifest, ec);
  const json::object* mo = ec ? nullptr : doc.if_object();
  if (!mo || !mo->if_contains("config") || !mo->if_contains("layers"))
    return Error::internal(fmt::format("the manifest {} lacks config or layers", manifest_digest));
  const json::value* mt = mo->if_contains("mediaType");
  req.media_type = mt && mt->is_string() ? std::string(mt->get_string())
                                         : "application/vnd.oci.image.manifest.v1+json";
  auto add = [&](const json::value& d, const char* kind) -> Result<void> {
    const json::object* o = d.if_object();
    const json::value* dg = o ? o->if_contains("digest") : nullptr;
    const json::value* sz = o ? o->if_contains("size") : nullptr;
    if (!dg || !dg->is_string() || !sz || !sz->is_number())
      return Error::internal(
          fmt::format("the manifest {} has a malformed descriptor", manifest_digest));
    PushBlob b;
    b.digest = std::string(dg->get_string());
    b.size = sz->to_number<std::int64_t>();
    b.path = blob_path(b.digest);
    b.kind = kind;
    std::error_code fec;
    if (!fs::exists(b.path, fec))
      return Error::not_found(fmt::format(
          "the {} blob {} of the image is missing from the store; import the image again", kind,
          b.digest));
    req.blobs.push_back(std::move(b));
    return {};
  };
  for (const auto& l : mo->at("layers").as_array())
    if (auto r = add(l, "layer"); !r) return r.error();
  if (auto r = add(mo->at("config"), "config"); !r) return r.error();
  auto pushed = registry_->push(req);
  if (!pushed)
    return Error{pushed.error().code,
                 fmt::format("pushing to {}: {}", ref->str(), pushed.error().message)};
  return pushed;
}

}  // namespace elafros
