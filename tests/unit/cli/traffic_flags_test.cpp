#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "cli/template_changes.hpp"

using namespace elafros::cli;
namespace json = boost::json;

namespace {
json::array traffic(const char* text) {
  return json::parse(text).as_array();
}
}  // namespace

TEST_CASE("--traffic replaces the split and keeps tags") {
  TrafficChanges c;
  c.traffic = {"hello-00001=90,@latest=10"};
  auto out = apply_traffic_changes(traffic(R"([{"latestRevision":true,"percent":100},
                                                {"revisionName":"hello-00003","percent":0,"tag":"candidate"}])"),
                                   c);
  CHECK(
      out ==
      traffic(R"([{"revisionName":"hello-00001","percent":90},{"latestRevision":true,"percent":10},
                           {"revisionName":"hello-00003","percent":0,"tag":"candidate"}])"));
}

TEST_CASE("--traffic may name a tag") {
  TrafficChanges c;
  c.traffic = {"candidate=20", "@latest=80"};
  auto out = apply_traffic_changes(traffic(R"([{"latestRevision":true,"percent":100},
                                                {"revisionName":"hello-00003","percent":0,"tag":"candidate"}])"),
                                   c);
  CHECK(
      out ==
      traffic(
          R"([{"revisionName":"hello-00003","percent":20,"tag":"candidate"},{"latestRevision":true,"percent":80}])"));
}

TEST_CASE("--tag and --untag") {
  TrafficChanges tag;
  tag.tags = {"hello-00003=candidate", "@latest=current"};
  auto out = apply_traffic_changes(json::array{}, tag);
  CHECK(out == traffic(R"([{"latestRevision":true,"percent":100,"tag":"current"},
                           {"revisionName":"hello-00003","percent":0,"tag":"candidate"}])"));
  TrafficChanges untag;
  untag.untags = {"candidate", "current"};
  CHECK(apply_traffic_changes(out, untag) == traffic(R"([{"latestRevision":true,"percent":100}])"));
}

TEST_CASE("bad traffic flags say what is wrong") {
  TrafficChanges c;
  c.traffic = {"a=50,b=40"};
  CHECK_THROWS_WITH(apply_traffic_changes({}, c), Catch::Contains("sum to 100 (they sum to 90)"));
  c.traffic = {"a=fifty"};
  CHECK_THROWS_WITH(apply_traffic_changes({}, c), Catch::Contains("not a whole percent"));
  c.traffic = {"a"};
  CHECK_THROWS_WITH(apply_traffic_changes({}, c), Catch::Contains("must be KEY=VALUE"));
  c.traffic = {"a=50,a=50"};
  CHECK_THROWS_WITH(apply_traffic_changes({}, c), Catch::Contains("names a twice"));
  TrafficChanges u;
  u.untags = {"ghost"};
  CHECK_THROWS_WITH(apply_traffic_changes({}, u), Catch::Contains("no such tag"));
  TrafficChanges t;
  t.tags = {"x=dup", "y=dup"};
  CHECK_THROWS_WITH(apply_traffic_changes({}, t), Catch::Contains("already used"));
}

TEST_CASE("export drops status and server-set fields") {
  json::value s = json::parse(R"({"apiVersion":"serving.knative.dev/v1","kind":"Service",
    "metadata":{"name":"hello","namespace":"default","uid":"u","generation":3,"creationTimestamp":"t","labels":{"a":"b"}},
    "spec":{"template":{"spec":{"containers":[{"image":"x"}]}}},"status":{"url":"u"}})");
  json::value e = exportable(s);
  CHECK(e.at("metadata") ==
        json::parse(R"({"name":"hello","namespace":"default","labels":{"a":"b"}})"));
  CHECK_FALSE(e.as_object().contains("status"));
  CHECK(e.at("spec") == s.at("spec"));
}

TEST_CASE("--limit and --request set, merge and remove resources as kn's flags do") {
  json::object tmpl;
  TemplateChanges t;
  t.limits = {"cpu=500m,memory=128Mi"};
  t.requests = {"memory=64Mi"};
  apply_template_changes(tmpl, t, true);
  const auto& c = tmpl["spec"].at("containers").at(0);
  CHECK(c.at("resources").at("limits").at("cpu") == "500m");
  CHECK(c.at("resources").at("limits").at("memory") == "128Mi");
  CHECK(c.at("resources").at("requests").at("memory") == "64Mi");
  TemplateChanges u;
  u.limits = {"cpu-", "memory=256Mi"};
  u.requests = {"memory-"};
  apply_template_changes(tmpl, u, false);
  const auto& c2 = tmpl["spec"].at("containers").at(0);
  CHECK_FALSE(c2.at("resources").at("limits").as_object().contains("cpu"));
  CHECK(c2.at("resources").at("limits").at("memory") == "256Mi");
  CHECK_FALSE(c2.at("resources").as_object().contains("requests"));
  TemplateChanges bad;
  bad.limits = {"gpu=1"};
  CHECK_THROWS_WITH(apply_template_changes(tmpl, bad, false),
                    Catch::Contains("cpu, memory and ephemeral-storage"));
  bad.limits = {"memory"};
  CHECK_THROWS_WITH(apply_template_changes(tmpl, bad, false), Catch::Contains("NAME=QUANTITY"));
}

TEST_CASE("-a and -l set and remove annotations and labels, on the template and the service") {
  json::object tmpl;
  TemplateChanges t;
  t.image = "oci:/img";
  t.labels = {"team=web", "tier=front"};
  t.annotations = {"note=hi"};
  t.scale_annotations = {{"autoscaling.knative.dev/min-scale", "1"}};
  apply_template_changes(tmpl, t, true);
  CHECK(tmpl.at("metadata").at("labels") == json::parse(R"({"team":"web","tier":"front"})"));
  CHECK(tmpl.at("metadata").at("annotations") ==
        json::parse(R"({"autoscaling.knative.dev/min-scale":"1","note":"hi"})"));
  TemplateChanges u;
  u.labels = {"tier-", "team=api"};
  u.annotations = {"note-", "absent-"};
  apply_template_changes(tmpl, u, false);
  CHECK(tmpl.at("metadata").at("labels") == json::parse(R"({"team":"api"})"));
  CHECK(tmpl.at("metadata").at("annotations") ==
        json::parse(R"({"autoscaling.knative.dev/min-scale":"1"})"));

  json::object service{{"metadata", json::object{{"name", "hello"}}}};
  MetadataChanges m;
  m.labels = {"app=hello"};
  m.annotations = {"owner=me"};
  apply_metadata_changes(service, m);
  CHECK(service.at("metadata").at("labels") == json::parse(R"({"app":"hello"})"));
  m.labels = {"app-"};
  m.annotations = {};
  apply_metadata_changes(service, m);
  CHECK_FALSE(service.at("metadata").as_object().contains("labels"));
  m.labels = {"=x"};
  CHECK_THROWS_WITH(apply_metadata_changes(service, m), Catch::Contains("KEY=VALUE"));
}

TEST_CASE("--probe-readiness takes kn's http, tcp and exec forms, and says what it cannot take") {
  auto probe_of = [](TemplateChanges t) {
    json::object tmpl;
    t.image = "oci:/img";
    apply_template_changes(tmpl, t, true);
    return tmpl["spec"].at("containers").at(0).at("readinessProbe");
  };
  TemplateChanges http;
  http.probe_readiness = "http::8080:/healthz";
  http.probe_readiness_opts = "initialdelayseconds=2,PeriodSeconds=1";
  CHECK(probe_of(http) == json::parse(R"({"httpGet":{"port":8080,"path":"/healthz"},
                                          "initialDelaySeconds":2,"periodSeconds":1})"));
  TemplateChanges no_port;
  no_port.probe_readiness = "http:::ready";
  CHECK(probe_of(no_port) == json::parse(R"({"httpGet":{"path":"/ready"}})"));
  TemplateChanges tcp;
  tcp.probe_readiness = "tcp::8080";
  CHECK(probe_of(tcp) == json::parse(R"({"tcpSocket":{"port":8080}})"));
  TemplateChanges exec;
  exec.probe_readiness = "exec:cat,/tmp/ready";
  CHECK(probe_of(exec) == json::parse(R"({"exec":{"command":["cat","/tmp/ready"]}})"));
  for (const char* bad : {"exec:", "https::8080:/", "http:example.com:8080:/", "tcp:8080",
                          "http::eighty:/", "grpc::8080"}) {
    TemplateChanges b;
    b.probe_readiness = bad;
    CHECK_THROWS_WITH(probe_of(b), Catch::Contains("--probe-readiness"));
  }
  TemplateChanges opts_only;
  opts_only.probe_readiness_opts = "PeriodSeconds=1";
  CHECK_THROWS_WITH(probe_of(opts_only), Catch::Contains("give --probe-readiness too"));
  TemplateChanges bad_opt;
  bad_opt.probe_readiness = "tcp::";
  bad_opt.probe_readiness_opts = "Retries=3";
  CHECK_THROWS_WITH(probe_of(bad_opt), Catch::Contains("the options are"));
  TemplateChanges live;
  live.image = "oci:/img";
  live.probe_liveness = "http:::/healthz";
  live.probe_liveness_opts = "PeriodSeconds=1,FailureThreshold=2";
  json::object tmpl;
  apply_template_changes(tmpl, live, true);
  CHECK(tmpl["spec"].at("containers").at(0).at("livenessProbe") ==
        json::parse(R"({"httpGet":{"path":"/healthz"},"periodSeconds":1,"failureThreshold":2})"));
  TemplateChanges live_opts_only;
  live_opts_only.probe_liveness_opts = "PeriodSeconds=1";
  CHECK_THROWS_WITH(probe_of(live_opts_only), Catch::Contains("give --probe-liveness too"));
}

TEST_CASE("--mount /DIR=pvc:CLAIM and --volume NAME=pvc:CLAIM mount a claim, read-write") {
  TemplateChanges t;
  t.image = "oci:/img";
  t.mounts = {"/data=pvc:data"};
  t.volumes = {"cache=pvc:cache"};
  json::object tmpl;
  apply_template_changes(tmpl, t, true);
  const json::value& spec = tmpl["spec"];
  CHECK(spec.at("containers").at(0).at("volumeMounts") ==
        json::parse(R"([{"name":"data","mountPath":"/data"}])"));
  CHECK(spec.at("volumes") ==
        json::parse(R"([{"name":"cache","persistentVolumeClaim":{"claimName":"cache"}},
                        {"name":"data","persistentVolumeClaim":{"claimName":"data"}}])"));
}

TEST_CASE("template flags change the serving container (the one with ports), not a sidecar") {
  json::object tmpl = json::parse(R"({"spec": {"containers": [
      {"name": "side", "image": "oci:/side"},
      {"name": "app", "image": "oci:/old", "ports": [{"containerPort": 8080}]}]}})")
                          .as_object();
  TemplateChanges t;
  t.image = "oci:/new";
  t.env = {"ROUND=2"};
  apply_template_changes(tmpl, t, false);
  const json::array& cs = tmpl["spec"].at("containers").as_array();
  CHECK(cs[0].at("image") == "oci:/side");
  CHECK_FALSE(cs[0].as_object().contains("env"));
  CHECK(cs[1].at("image") == "oci:/new");
  CHECK(cs[1].at("env") == json::parse(R"([{"name": "ROUND", "value": "2"}])"));
}

TEST_CASE("--pull-policy and --env-file") {
  CHECK(pull_policy_flag("always") == "Always");
  CHECK(pull_policy_flag("ifnotpresent") == "IfNotPresent");
  CHECK_THROWS_WITH(pull_policy_flag("sometimes"),
                    Catch::Contains("Always, Never and IfNotPresent"));
  auto env = env_file_entries("# settings\nA=1\n\n  B=two words\r\nC=\n", "app.env");
  CHECK(env == std::vector<std::string>{"A=1", "B=two words", "C="});
  CHECK_THROWS_WITH(env_file_entries("A=1\nnot a pair\n", "app.env"),
                    Catch::Contains("app.env line 2"));
}
