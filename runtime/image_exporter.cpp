#include "image_exporter.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "atomic_file.hpp"
#include "elafros/errno_text.hpp"
#include "elafros/resource_json.hpp"
#include "layer_writer.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;

namespace elafros {
namespace {

constexpr const char* kManifestType = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kConfigType = "application/vnd.oci.image.config.v1+json";
constexpr const char* kLayerType = "application/vnd.oci.image.layer.v1.tar+gzip";

Result<json::object> read_json_object(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Error::not_found(fmt::format("{} is missing from the image store ({})", what, path));
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(ss.str(), ec);
  if (ec || !v.is_object())
    return Error::internal(fmt::format("{} ({}) is not a JSON object", what, path));
  return std::move(v.get_object());
}

std::string hex_of(const std::string& digest) {
  return digest.substr(digest.find(':') + 1);
}

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

// The base's Env with each of `env` set (replacing a variable of the same name in place).
json::array merged_env(const json::value* base, const std::vector<EnvVar>& env) {
  json::array out;
  if (base && base->is_array()) out = base->get_array();
  for (const auto& e : env) {
    std::string kv = e.name + "=" + e.value;
    bool replaced = false;
    for (auto& x : out)
      if (x.is_string() && x.get_string().subview().substr(0, e.name.size() + 1) == e.name + "=") {
        x = kv;
        replaced = true;
      }
    if (!replaced) out.emplace_back(kv);
  }
  return out;
}

// Layers with Docker's media types keep their bytes under the OCI names.
std::string oci_layer_type(std::string_view type) {
  if (type == "application/vnd.docker.image.rootfs.diff.tar.gzip") return kLayerType;
  if (type == "application/vnd.docker.image.rootfs.diff.tar")
    return "application/vnd.oci.image.layer.v1.tar";
  return std::string(type);
}

}  // namespace

Result<ExportedImage> OciImageExporter::export_image(const ImageExport& spec) {
  auto base = read_json_object(images_->blob_path(spec.base_digest), "the base image's manifest");
  if (!base) return base.error();
  const json::value* bc = base->if_contains("config");
  const json::value* bl = base->if_contains("layers");
  if (!bc || !bc->is_object() || !bl || !bl->is_array())
    return Error::internal(
        fmt::format("the base image {} has no config or layers", spec.base_digest));
  std::string base_config_digest(bc->get_object().at("digest").as_string());
  auto config = read_json_object(images_->blob_path(base_config_digest), "the base image's config");
  if (!config) return config.error();

  std::string layout = images_->scratch_path("build");
  std::error_code ec;
  fs::create_directories(layout + "/blobs/sha256", ec);
  if (ec) return Error::internal(fmt::format("cannot create {}: {}", layout, errno_text(ec)));
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code rm;
      fs::remove_all(dir, rm);
    }
  } cleanup{layout};

  LayerWriteOptions lo;
  lo.image_path = spec.image_path;
  lo.mtime = spec.created_unix;
  lo.uid = spec.uid;
  lo.gid = spec.gid;
  std::string layer_tmp = layout + "/layer.tmp";
  auto layer = write_layer(spec.source_dir, layer_tmp, lo);
  if (!layer) return layer.error();
  ExportedImage out;
  out.layer_digest = layer->digest;
  out.diff_id = layer->diff_id;
  out.layer_bytes = layer->size;
  out.layer_existed = fs::exists(images_->blob_path(layer->digest), ec);
  fs::rename(layer_tmp, layout + "/blobs/sha256/" + hex_of(layer->digest), ec);
  if (ec) return Error::internal(fmt::format("storing the layer: {}", errno_text(ec)));

  // The config: the base's, with this layer, its history entry and the overrides.
  std::string created = format_rfc3339(spec.created_unix);
  json::object& c = *config;
  c["created"] = created;
  if (!c.if_contains("architecture")) c["architecture"] = "amd64";
  if (!c.if_contains("os")) c["os"] = "linux";
  json::value& cc = c["config"];
  if (!cc.is_object()) cc = json::object{};
  json::object& proc = cc.as_object();
  if (!spec.env.empty()) proc["Env"] = merged_env(proc.if_contains("Env"), spec.env);
  if (spec.entrypoint) {
    proc["Entrypoint"] = strings(*spec.entrypoint);
    // As a Dockerfile's ENTRYPOINT does, a new entrypoint drops the base's Cmd.
    if (!spec.cmd) proc.erase("Cmd");
  }
  if (spec.cmd) proc["Cmd"] = strings(*spec.cmd);
  if (!spec.working_dir.empty()) proc["WorkingDir"] = spec.working_dir;
  if (!spec.user.empty()) proc["User"] = spec.user;
  json::value& rootfs = c["rootfs"];
  if (!rootfs.is_object()) rootfs = json::object{{"type", "layers"}};
  json::value& diff_ids = rootfs.as_object()["diff_ids"];
  if (!diff_ids.is_array()) diff_ids = json::array{};
  diff_ids.as_array().emplace_back(layer->diff_id);
  json::value& history = c["history"];
  if (!history.is_array()) history = json::array{};
  history.as_array().push_back(json::object{
      {"created", created}, {"created_by", spec.history}, {"comment", "elafros build"}});
  std::string config_text = json::serialize(c);
  std::string config_path = layout + "/config.tmp";
  if (auto w = write_file_atomic(config_path, config_text); !w) return w.error();
  auto config_hex = sha256_file(config_path);
  if (!config_hex) return config_hex.error();
  fs::rename(config_path, layout + "/blobs/sha256/" + *config_hex, ec);

  json::array layers;
  for (const auto& l : bl->get_array()) {
    json::object d = l.as_object();
    if (const json::value* t = d.if_contains("mediaType"); t && t->is_string())
      d["mediaType"] = oci_layer_type(t->get_string());
    layers.push_back(std::move(d));
  }
  layers.push_back(
      json::object{{"mediaType", kLayerType}, {"digest", layer->digest}, {"size", layer->size}});
  json::object manifest{
      {"schemaVersion", 2},
      {"mediaType", kManifestType},
      {"config", json::object{{"mediaType", kConfigType},
                              {"digest", "sha256:" + *config_hex},
                              {"size", static_cast<std::int64_t>(config_text.size())}}},
      {"layers", std::move(layers)}};
  std::string manifest_text = json::serialize(manifest);
  std::string manifest_path = layout + "/manifest.tmp";
  if (auto w = write_file_atomic(manifest_path, manifest_text); !w) return w.error();
  auto manifest_hex = sha256_file(manifest_path);
  if (!manifest_hex) return manifest_hex.error();
  fs::rename(manifest_path, layout + "/blobs/sha256/" + *manifest_hex, ec);

  json::object index{
      {"schemaVersion", 2},
      {"manifests",
       json::array{json::object{
           {"mediaType", kManifestType},
           {"digest", "sha256:" + *manifest_hex},
           {"size", static_cast<std::int64_t>(manifest_text.size())},
           {"annotations", json::object{{"org.opencontainers.image.ref.name", "build"}}}}}}};
  if (auto w = write_file_atomic(layout + "/index.json", json::serialize(index)); !w)
    return w.error();
  if (auto w = write_file_atomic(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"); !w)
    return w.error();
  auto record = images_->import("oci:" + layout + ":build", spec.name);
  if (!record) return record.error();
  out.record = std::move(*record);
  return out;
}

}  // namespace elafros
