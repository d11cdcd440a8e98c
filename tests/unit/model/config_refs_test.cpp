// Secrets and ConfigMaps: their admission (stringData, base64, keys), a template's env
// valueFrom/envFrom and volumes read strictly and written back, and their resolution at start.
#include "elafros/config_refs.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <filesystem>

#include "elafros/base64.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/resource_json.hpp"
#include "secret_cipher.hpp"

using namespace elafros;
namespace json = boost::json;

namespace {

Result<RevisionTemplate> tmpl(const char* spec) {
  return template_from_json(json::parse(std::string(R"({"spec":)") + spec + "}"));
}

}  // namespace

TEST_CASE("a Secret's stringData becomes base64 data, and bad values are refused") {
  const KindInfo* k = builtin_kinds().find_kind("", "Secret");
  REQUIRE(k);
  auto s = k->admit(json::parse(R"({"metadata":{"name":"db"},"type":"",
      "data":{"a":"eA=="},"stringData":{"pw":"hunter2"}})")
                        .as_object());
  REQUIRE(s);
  CHECK(s->at("type") == "Opaque");
  CHECK(s->at("data").at("pw") == json::value(base64_encode("hunter2")));
  CHECK_FALSE(s->contains("stringData"));
  auto bad = k->admit(json::parse(R"({"metadata":{"name":"db"},"data":{"a":"!!"}})").as_object());
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::StartsWith("data.a: is not base64"));
  auto key =
      k->admit(json::parse(R"({"metadata":{"name":"db"},"stringData":{"a b":"x"}})").as_object());
  REQUIRE_FALSE(key);
  CHECK_THAT(key.error().message, Catch::StartsWith("stringData.a b: the key"));
  const KindInfo* cm = builtin_kinds().find_kind("", "ConfigMap");
  REQUIRE(cm);
  auto twice = cm->admit(json::parse(R"({"metadata":{"name":"c"},"data":{"a":"1"},
      "binaryData":{"a":"eA=="}})")
                             .as_object());
  REQUIRE_FALSE(twice);
  CHECK_THAT(twice.error().message, Catch::Contains("only one"));
}

TEST_CASE("env valueFrom, envFrom, volumes and mounts round-trip, strictly") {
  auto t = tmpl(R"({"containers":[{"image":"x",
      "env":[{"name":"P","valueFrom":{"secretKeyRef":{"name":"db","key":"pw"}}}],
      "envFrom":[{"configMapRef":{"name":"conf"},"prefix":"C_"}],
      "volumeMounts":[{"name":"s","mountPath":"/etc/db"},{"name":"e","mountPath":"/tmp/e"}]}],
      "volumes":[{"name":"s","secret":{"secretName":"db","items":[{"key":"pw","path":"a/pw","mode":256}]}},
                 {"name":"e","emptyDir":{"medium":"Memory","sizeLimit":"8Mi"}}]})");
  REQUIRE(t);
  REQUIRE(t->container.env.at(0).value_from);
  CHECK(t->container.env[0].value_from->kind == "Secret");
  CHECK(t->container.volume_mounts.at(0).read_only);  // secret mounts are read-only
  CHECK_FALSE(t->container.volume_mounts.at(1).read_only);
  auto again = template_from_json(template_to_json(*t));
  REQUIRE(again);
  CHECK(*again == *t);
  auto missing =
      tmpl(R"({"containers":[{"image":"x","volumeMounts":[{"name":"v","mountPath":"/v"}]}]})");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("volumeMounts[0].name: no volume is named"));
  auto escape =
      tmpl(R"({"containers":[{"image":"x"}],"volumes":[{"name":"s","secret":{"secretName":"db",
      "items":[{"key":"k","path":"../etc/passwd"}]}}]})");
  REQUIRE_FALSE(escape);
  CHECK_THAT(escape.error().message, Catch::Contains("items[0].path"));
  auto both = tmpl(R"({"containers":[{"image":"x","env":[{"name":"A","value":"1",
      "valueFrom":{"secretKeyRef":{"name":"db","key":"k"}}}]}]})");
  REQUIRE_FALSE(both);
  CHECK_THAT(both.error().message, Catch::Contains("not both"));
}

TEST_CASE("resolution reads the values at start, and names what is missing") {
  auto t = tmpl(R"({"containers":[{"image":"x",
      "env":[{"name":"P","valueFrom":{"secretKeyRef":{"name":"db","key":"pw"}}},{"name":"Q","value":"q"}],
      "envFrom":[{"configMapRef":{"name":"conf"},"prefix":"C_"}],
      "volumeMounts":[{"name":"s","mountPath":"/etc/db"}]}],
      "volumes":[{"name":"s","secret":{"secretName":"db","defaultMode":256}}]})");
  REQUIRE(t);
  json::object db = json::parse(R"({"data":{}})").as_object();
  db["data"].as_object()["pw"] = base64_encode("hunter2");
  json::object conf = json::parse(R"({"data":{"a":"1","bad name":"x"}})").as_object();
  bool have_key = true;
  ConfigGetter get = [&](const std::string& kind, const std::string& name) -> Result<json::object> {
    if (kind == "Secret" && name == "db") {
      if (!have_key) return json::object{{"data", json::object{}}};
      return db;
    }
    if (kind == "ConfigMap" && name == "conf") return conf;
    return Error::not_found("no");
  };
  auto r = resolve_config(*t, "team", get);
  REQUIRE(r);
  std::map<std::string, std::string> env;
  for (const auto& e : r->env) env[e.name] = e.value;
  CHECK(env["P"] == "hunter2");
  CHECK(env["Q"] == "q");
  CHECK(env["C_a"] == "1");
  CHECK_FALSE(env.count("C_bad name"));  // not a variable name: skipped, as Kubernetes does
  REQUIRE(r->volumes.size() == 1);
  CHECK(r->volumes[0].files.at(0).content == "hunter2");
  CHECK(r->volumes[0].files.at(0).mode == 256);
  CHECK(r->has_secret_files);
  have_key = false;
  auto missing = resolve_config(*t, "team", get);
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("couldn't find key pw in Secret team/db"));
  t->container.env[0].value_from->optional = true;
  t->volumes[0].optional = true;
  auto optional = resolve_config(*t, "team", get);
  REQUIRE(optional);
}

TEST_CASE("hostPath and persistentVolumeClaim volumes round-trip and resolve; others say why not") {
  auto t = tmpl(R"({"containers":[{"image":"x",
      "volumeMounts":[{"name":"h","mountPath":"/host"},{"name":"c","mountPath":"/data"},
                      {"name":"r","mountPath":"/ro"}]}],
      "volumes":[{"name":"h","hostPath":{"path":"/srv/elafros/a","type":"DirectoryOrCreate"}},
                 {"name":"c","persistentVolumeClaim":{"claimName":"data"}},
                 {"name":"r","persistentVolumeClaim":{"claimName":"data","readOnly":true}}]})");
  REQUIRE(t);
  CHECK(t->volumes[0].kind == "HostPath");
  CHECK(t->volumes[0].path_type == "DirectoryOrCreate");
  CHECK_FALSE(t->container.volume_mounts[1].read_only);
  CHECK(t->container.volume_mounts[2].read_only);  // a read-only claim mounts read-only
  auto again = template_from_json(template_to_json(*t));
  REQUIRE(again);
  CHECK(*again == *t);
  ConfigGetter get = [](const std::string& kind, const std::string& name) -> Result<json::object> {
    if (kind == "PersistentVolumeClaim" && name == "data")
      return json::parse(R"({"metadata":{"name":"data","uid":"u-1"}})").as_object();
    return Error::not_found("no");
  };
  auto r = resolve_config(*t, "team", get);
  REQUIRE(r);
  REQUIRE(r->volumes.size() == 3);
  CHECK(r->volumes[0].host_path == "/srv/elafros/a");
  CHECK(r->volumes[1].claim_uid == "u-1");
  CHECK_FALSE(r->volumes[1].read_only);
  CHECK(r->volumes[2].read_only);
  t->volumes[1].source = "gone";
  auto missing = resolve_config(*t, "team", get);
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message,
             Catch::Contains("persistentvolumeclaim \"gone\" not found in namespace \"team\"") &&
                 Catch::Contains("elafros volume create gone -n team"));

  auto error_of = [](const char* volume) {
    auto v =
        tmpl((std::string(R"({"containers":[{"image":"x"}],"volumes":[)") + volume + "]}").c_str());
    return v ? std::string() : v.error().message;
  };
  CHECK_THAT(error_of(R"({"name":"h","hostPath":{"path":"/srv/../etc"}})"),
             Catch::Contains("hostPath.path: \"/srv/../etc\" must be an absolute path"));
  CHECK_THAT(error_of(R"({"name":"h","hostPath":{"path":"relative"}})"),
             Catch::Contains("must be an absolute path"));
  CHECK_THAT(error_of(R"({"name":"h","hostPath":{"path":"/dev/sda","type":"BlockDevice"}})"),
             Catch::Contains("hostPath.type: devices are not passed to instances"));
  CHECK_THAT(error_of(R"({"name":"c","persistentVolumeClaim":{}})"),
             Catch::Contains("persistentVolumeClaim.claimName: required"));
  CHECK_THAT(error_of(R"({"name":"n","nfs":{"server":"s","path":"/"}})"),
             Catch::Contains("volumes[0].nfs: is not supported: elafros runs on one machine"));
  CHECK_THAT(error_of(R"({"name":"p","projected":{"sources":[]}})"),
             Catch::Contains("volumes[0].projected: is not supported yet; mount each"));

  CHECK_FALSE(host_path_problem("/srv/elafros/a", {"/srv/elafros"}));
  CHECK_FALSE(host_path_problem("/srv/elafros", {"/srv/elafros/"}));
  CHECK(host_path_problem("/srv/elafros-other", {"/srv/elafros"}));
  CHECK_THAT(*host_path_problem("/etc", {}), Catch::Contains("hostPath volumes are off"));
}

TEST_CASE("each container of a pod resolves its own env and mounts") {
  auto t = tmpl(R"({"containers":[
      {"name":"app","image":"x","ports":[{"containerPort":8080}],
       "env":[{"name":"P","valueFrom":{"secretKeyRef":{"name":"db","key":"pw"}}}]},
      {"name":"side","image":"y","volumeMounts":[{"name":"s","mountPath":"/s"}],
       "env":[{"name":"Q","valueFrom":{"secretKeyRef":{"name":"db","key":"missing"}}}]}],
      "volumes":[{"name":"s","emptyDir":{}}]})");
  REQUIRE(t);
  ConfigGetter get = [](const std::string& kind, const std::string& name) -> Result<json::object> {
    if (kind == "Secret" && name == "db") {
      json::object db{{"data", json::object{{"pw", base64_encode("hunter2")}}}};
      return db;
    }
    return Error::not_found("no");
  };
  auto r = resolve_config(*t, "team", get);
  REQUIRE_FALSE(r);  // the sidecar's key is missing: named with the container
  CHECK_THAT(r.error().message, Catch::StartsWith("container \"side\": couldn't find key missing"));
  t->sidecars[0].env[0].value_from->key = "pw";
  auto ok = resolve_config(*t, "team", get);
  REQUIRE(ok);
  CHECK(ok->env.at(0).value == "hunter2");
  REQUIRE(ok->sidecars.size() == 1);
  CHECK(ok->sidecars[0].env.at(0).name == "Q");
  CHECK(ok->sidecars[0].volumes.size() == 1);
  CHECK(ok->volumes.empty());  // the serving container mounts nothing
}

TEST_CASE("a PersistentVolumeClaim is Bound at once; what it cannot be is refused") {
  const KindInfo* k = builtin_kinds().find_kind("", "PersistentVolumeClaim");
  REQUIRE(k);
  auto ok = k->admit(json::parse(R"({"metadata":{"name":"data"},"spec":{
      "accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"2Gi"}}}})")
                         .as_object());
  REQUIRE(ok);
  CHECK(ok->at("status") == json::parse(R"({"phase":"Bound","accessModes":["ReadWriteOnce"],
                                           "capacity":{"storage":"2Gi"}})"));
  auto error_of = [k](const char* spec) {
    auto r =
        k->admit(json::parse(std::string(R"({"metadata":{"name":"data"},"spec":)") + spec + "}")
                     .as_object());
    return r ? std::string() : r.error().message;
  };
  CHECK_THAT(error_of(R"({"resources":{"requests":{"storage":"1Gi"}}})"),
             Catch::StartsWith("spec.accessModes: at least one is required"));
  CHECK_THAT(
      error_of(R"({"accessModes":["Sometimes"],"resources":{"requests":{"storage":"1Gi"}}})"),
      Catch::StartsWith("spec.accessModes[0]: \"Sometimes\" is not an access mode"));
  CHECK_THAT(error_of(R"({"accessModes":["ReadWriteOnce"]})"),
             Catch::StartsWith("spec.resources.requests.storage: required"));
  CHECK_THAT(error_of(R"({"accessModes":["ReadWriteOnce"],"volumeMode":"Block",
                          "resources":{"requests":{"storage":"1Gi"}}})"),
             Catch::StartsWith("spec.volumeMode: \"Block\" is not supported"));
  CHECK_THAT(
      error_of(R"({"accessModes":["ReadWriteOnce"],"volumeName":"pv-1",
                          "resources":{"requests":{"storage":"1Gi"}}})"),
      Catch::StartsWith("spec.volumeName: is not supported: there are no PersistentVolumes"));
}

TEST_CASE("the secret cipher seals, opens after a rotation, and refuses altered values") {
  auto dir = std::filesystem::temp_directory_path() / "elafros-cipher-test";
  std::filesystem::remove_all(dir);
  auto c = SecretCipher::open((dir / "keys").string());
  REQUIRE(c);
  std::string sealed = (*c)->seal("hunter2");
  CHECK(sealed.find("hunter2") == std::string::npos);
  auto opened = (*c)->unseal(sealed);
  REQUIRE(opened);
  CHECK(*opened == "hunter2");
  REQUIRE((*c)->add_key());
  auto old = (*c)->unseal(sealed);  // the old key still opens
  REQUIRE(old);
  CHECK(*old == "hunter2");
  REQUIRE((*c)->drop_old_keys());
  CHECK_FALSE((*c)->unseal(sealed));
  std::string fresh = (*c)->seal("x");
  fresh[fresh.size() - 3] = fresh[fresh.size() - 3] == 'A' ? 'B' : 'A';
  CHECK_FALSE((*c)->unseal(fresh));
  auto reopened = SecretCipher::open((dir / "keys").string());
  REQUIRE(reopened);
  CHECK((*reopened)->current_key_id() == (*c)->current_key_id());
  std::filesystem::remove_all(dir);
}
