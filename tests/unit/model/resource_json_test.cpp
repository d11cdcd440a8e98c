#include "elafros/resource_json.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace elafros;
namespace json = boost::json;

namespace {
Result<Service> parse(const std::string& text) {
  return service_from_json(json::parse(text), "default");
}

std::string error_of(const std::string& text) {
  auto r = parse(text);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kInvalidArgument);
  return r.error().message;
}

constexpr const char* kHello = R"({
  "apiVersion": "serving.knative.dev/v1", "kind": "Service",
  "metadata": {"name": "hello", "namespace": "default"},
  "spec": {"template": {"spec": {
    "containerConcurrency": 5, "timeoutSeconds": 30,
    "containers": [{"image": "oci:/img:latest", "env": [{"name": "GREETING", "value": "hi"}],
                    "ports": [{"containerPort": 9090}], "command": ["/bin/app"], "args": ["--x"]}]}}}})";
}  // namespace

TEST_CASE("a Knative Service parses into the model") {
  auto r = parse(kHello);
  REQUIRE(r.ok());
  const Service& s = r.value();
  CHECK(s.meta.name == "hello");
  CHECK(s.meta.namespace_ == "default");
  CHECK(s.spec.container.image == "oci:/img:latest");
  CHECK(s.spec.container.env == std::vector<EnvVar>{{"GREETING", "hi"}});
  CHECK(s.spec.container.port() == 9090);
  CHECK(s.spec.container.command == std::vector<std::string>{"/bin/app"});
  CHECK(s.spec.container.args == std::vector<std::string>{"--x"});
  CHECK(s.spec.container_concurrency == 5);
  CHECK(s.spec.timeout_seconds == 30);
}

TEST_CASE("the JSON a service renders parses back to the same service") {
  auto r = parse(kHello);
  REQUIRE(r.ok());
  json::object out = service_to_json(r.value(), nullptr);
  CHECK(out.at("apiVersion") == "serving.knative.dev/v1");
  CHECK(out.at("kind") == "Service");
  CHECK(out.at("spec").at("traffic").as_array()[0].at("latestRevision") == true);
  auto again = service_from_json(out, "default");
  REQUIRE(again.ok());
  CHECK(again->spec == r->spec);
}

TEST_CASE("a service's status renders in Knative's shape") {
  auto r = parse(kHello);
  REQUIRE(r.ok());
  ServiceStatus st;
  st.url = "http://hello.default.localhost:8080";
  st.latest_created_revision = st.latest_ready_revision = "hello-00001";
  Condition ready("Ready");
  ready.status = "True";
  st.conditions = {ready};
  st.traffic = {{"hello-00001", true, 100, "", ""}};
  json::object out = service_to_json(r.value(), &st);
  const auto& status = out.at("status").as_object();
  CHECK(status.at("url") == "http://hello.default.localhost:8080");
  CHECK(status.at("latestReadyRevisionName") == "hello-00001");
  CHECK(status.at("conditions").as_array()[0].at("type") == "Ready");
  CHECK(status.at("conditions").as_array()[0].at("status") == "True");
  CHECK(status.at("traffic").as_array()[0].at("percent") == 100);
}

TEST_CASE("bad services are rejected with the field's path") {
  CHECK(
      error_of(
          R"({"metadata": {"name": "Hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})")
          .find("metadata.name") != std::string::npos);
  CHECK(error_of(R"({"metadata": {"name": "hello"}})").find("spec") != std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": []}}}})")
          .find("at least one container is required") != std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": 5}]}}}})") ==
      "spec.template.spec.containers[0].image: expected a string, got an integer");
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x", "imagePullSecret": "y"}]}}}})")
          .find("spec.template.spec.containers[0].imagePullSecret: unknown field") !=
      std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x", "env": [{"name": "PORT", "value": "1"}]}]}}}})")
          .find("PORT is set by elafros") != std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x", "ports": [{"containerPort": 70000}]}]}}}})")
          .find("containerPort") != std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containerConcurrency": -1, "containers": [{"image": "x"}]}}}})")
          .find("containerConcurrency") != std::string::npos);
  CHECK(error_of(R"({"apiVersion": "v1", "metadata": {"name": "hello"}, "spec": {}})")
            .find("apiVersion") != std::string::npos);
  CHECK(error_of(R"([1, 2])").find("expected an object") != std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "resources": {"limits": {"memory": "lots"}}}]}}}})")
          .find("containers[0].resources.limits.memory: \"lots\" is not a valid memory quantity") !=
      std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "readinessProbe": {"exec": {"command": []}}}]}}}})")
          .find("readinessProbe.exec.command: needs the program to run") != std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "livenessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {}}}]}}}})")
          .find("livenessProbe: give one of httpGet, tcpSocket and exec") != std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "startupProbe": {"grpc": {"port": 8080}}}]}}}})")
          .find("startupProbe.grpc: is not supported yet") != std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "livenessProbe": {"tcpSocket": {}, "successThreshold": 2}}]}}}})")
          .find("livenessProbe.successThreshold: must be 1") != std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "livenessProbe": {"httpGet": {"port": "http"}}}]}}}})")
          .find("a named port (\"http\") is not supported") != std::string::npos);
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "ports": [{"containerPort": 9000, "name": "grpc"}]}]}}}})")
          .find("ports[0].name: \"grpc\" is not a port name Knative takes: http1 (HTTP/1.1, the "
                "default) or h2c") != std::string::npos);
  {
    auto h2c = parse(
        R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "ports": [{"containerPort": 9000, "name": "h2c"}]}]}}}})");
    REQUIRE(h2c.ok());
    CHECK(h2c->spec.container.port_name == "h2c");
  }
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "ports": [{"containerPort": 9000, "protocol": "UDP"}]}]}}}})")
          .find("ports[0].protocol: \"UDP\" is not supported") != std::string::npos);
  {
    auto named = parse(
        R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "ports": [{"containerPort": 9000, "name": "http1", "protocol": "TCP"}]}]}}}})");
    REQUIRE(named.ok());
    CHECK(template_to_json(named->spec).at("spec").at("containers").at(0).at("ports") ==
          json::parse(R"([{"containerPort": 9000, "name": "http1", "protocol": "TCP"}])"));
  }
  // The probe's port is checked against the container's, wherever ports comes in the object.
  CHECK(
      parse(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "livenessProbe": {"httpGet": {"port": 9000}}, "ports": [{"containerPort": 9000}]}]}}}})")
          .ok());
  CHECK(
      error_of(
          R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
                    "readinessProbe": {"httpGet": {"path": "/", "port": 1234}}}]}}}})")
          .find("may only name the container's port") != std::string::npos);
}

TEST_CASE("resources and readiness probes parse and render back unchanged") {
  auto r = parse(
      R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
      "resources": {"limits": {"cpu": "500m", "memory": "128Mi", "ephemeral-storage": "2Gi"},
                    "requests": {"cpu": 0.25, "ephemeral-storage": "1Gi"}},
      "readinessProbe": {"httpGet": {"path": "/healthz"}, "periodSeconds": 2, "failureThreshold": 3}}]}}}})");
  REQUIRE(r.ok());
  const ContainerSpec& c = r->spec.container;
  CHECK(c.limits.cpu == "500m");
  CHECK(c.limits.memory == "128Mi");
  CHECK(c.requests.cpu == "0.25");
  CHECK(c.limits.ephemeral_storage == "2Gi");
  CHECK(c.requests.ephemeral_storage == "1Gi");
  REQUIRE(c.readiness_probe.has_value());
  CHECK(c.readiness_probe->http);
  CHECK(c.readiness_probe->http_path == "/healthz");
  CHECK(c.readiness_probe->period_seconds == 2);
  auto again = service_from_json(service_to_json(r.value(), nullptr), "default");
  REQUIRE(again.ok());
  CHECK(again->spec == r->spec);
}

TEST_CASE("liveness, startup and exec probes parse and render back unchanged") {
  auto r = parse(
      R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x",
      "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080,
                                    "httpHeaders": [{"name": "X-Probe", "value": "live"}]},
                        "periodSeconds": 5, "failureThreshold": 2, "initialDelaySeconds": 1},
      "startupProbe": {"tcpSocket": {}, "periodSeconds": 1, "failureThreshold": 30},
      "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "timeoutSeconds": 2}}]}}}})");
  REQUIRE(r.ok());
  const ContainerSpec& c = r->spec.container;
  REQUIRE(c.liveness_probe.has_value());
  CHECK(c.liveness_probe->http_path == "/healthz");
  CHECK(c.liveness_probe->port == 8080);
  CHECK(c.liveness_probe->http_headers ==
        std::vector<std::pair<std::string, std::string>>{{"X-Probe", "live"}});
  CHECK(c.liveness_probe->period() == 5);
  CHECK(c.liveness_probe->failures() == 2);
  REQUIRE(c.startup_probe.has_value());
  CHECK_FALSE(c.startup_probe->http);
  CHECK(c.startup_probe->failures() == 30);
  REQUIRE(c.readiness_probe.has_value());
  CHECK(c.readiness_probe->exec_command == std::vector<std::string>{"cat", "/tmp/ready"});
  CHECK(c.readiness_probe->timeout() == 2);
  CHECK(c.readiness_probe->period() == 10);  // Kubernetes' default
  auto again = service_from_json(service_to_json(r.value(), nullptr), "default");
  REQUIRE(again.ok());
  CHECK(again->spec == r->spec);
}

TEST_CASE(
    "several containers: the one with ports serves, sidecars and init containers keep order") {
  auto r = parse(
      R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {
      "initContainers": [{"name": "migrate", "image": "tools", "command": ["migrate"]}],
      "containers": [{"name": "proxy", "image": "envoy"},
                     {"name": "app", "image": "x", "ports": [{"containerPort": 9000}]},
                     {"name": "log", "image": "fluent"}]}}}})");
  REQUIRE(r.ok());
  const RevisionTemplate& t = r->spec;
  CHECK(t.container.name == "app");
  CHECK(t.container.port() == 9000);
  CHECK(t.serving_index == 1);
  REQUIRE(t.sidecars.size() == 2);
  CHECK(t.sidecars[0].name == "proxy");
  CHECK(t.sidecars[1].image == "fluent");
  REQUIRE(t.init_containers.size() == 1);
  CHECK(t.init_containers[0].command == std::vector<std::string>{"migrate"});
  json::object back = template_to_json(t);
  const json::array& containers = back.at("spec").at("containers").as_array();
  REQUIRE(containers.size() == 3);
  CHECK(containers[0].at("name") == "proxy");
  CHECK(containers[1].at("name") == "app");  // the order as written
  auto again = service_from_json(service_to_json(r.value(), nullptr), "default");
  REQUIRE(again.ok());
  CHECK(again->spec == r->spec);

  auto error_of_spec = [](const std::string& spec) {
    auto e = service_from_json(
        json::parse(R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": )" + spec +
                    "}}}"),
        "default");
    return e ? std::string() : e.error().message;
  };
  CHECK_THAT(error_of_spec(
                 R"({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]})"),
             Catch::Contains("exactly one has ports: the one requests go to (0 of 2 have)"));
  CHECK_THAT(
      error_of_spec(
          R"({"containers": [{"image": "x", "ports": [{"containerPort": 1}]}, {"image": "y"}]})"),
      Catch::Contains("containers[1].name: required: a sidecar or init container has a name"));
  CHECK_THAT(
      error_of_spec(R"({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 1}]},
                                              {"name": "a", "image": "y"}]})"),
      Catch::Contains("containers[1].name: \"a\" names two containers"));
  CHECK_THAT(
      error_of_spec(R"({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 1}]},
                                              {"name": "b", "image": "y", "livenessProbe": {"tcpSocket": {}}}]})"),
      Catch::Contains("containers[1].livenessProbe: probes on a sidecar are not supported yet"));
  CHECK_THAT(
      error_of_spec(
          R"({"initContainers": [{"name": "i", "image": "y", "ports": [{"containerPort": 1}]}],
                               "containers": [{"name": "a", "image": "x"}]})"),
      Catch::Contains("initContainers[0].ports: an init container runs to completion"));
  CHECK_THAT(
      error_of_spec(
          R"({"initContainers": [{"image": "y"}], "containers": [{"name": "a", "image": "x"}]})"),
      Catch::Contains("initContainers[0].name: required"));
}

TEST_CASE("template labels and imagePullPolicy parse, render back, and are checked") {
  auto r = parse(
      R"({"metadata": {"name": "hello"}, "spec": {"template": {
      "metadata": {"labels": {"stage": "canary"}},
      "spec": {"containers": [{"image": "x", "imagePullPolicy": "Always"}]}}}})");
  REQUIRE(r.ok());
  CHECK(r->spec.labels == std::map<std::string, std::string>{{"stage", "canary"}});
  CHECK(r->spec.container.pull_policy == "Always");
  auto again = service_from_json(service_to_json(r.value(), nullptr), "default");
  REQUIRE(again.ok());
  CHECK(again->spec == r->spec);
  // A label change is a template change: a new revision, as in Knative.
  Service relabeled = r.value();
  relabeled.spec.labels["stage"] = "stable";
  CHECK_FALSE(relabeled.spec == r->spec);
  std::string msg = error_of(
      R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [
      {"image": "x", "imagePullPolicy": "always"}]}}}})");
  CHECK_THAT(msg, Catch::Contains("containers[0].imagePullPolicy"));
  CHECK_THAT(msg, Catch::Contains("use Always, Never or IfNotPresent"));
}

TEST_CASE("Kubernetes quantities") {
  CHECK(parse_cpu_millis("1") == 1000);
  CHECK(parse_cpu_millis("0.5") == 500);
  CHECK(parse_cpu_millis("250m") == 250);
  CHECK_FALSE(parse_cpu_millis("abc"));
  CHECK_FALSE(parse_cpu_millis("0"));
  CHECK_FALSE(parse_cpu_millis("1.2.3"));
  CHECK(parse_memory_bytes("128Mi") == 128LL << 20);
  CHECK(parse_memory_bytes("1G") == 1000000000LL);
  CHECK(parse_memory_bytes("4096") == 4096);
  CHECK_FALSE(parse_memory_bytes("1.5Gi"));
  CHECK_FALSE(parse_memory_bytes("Mi"));
}

TEST_CASE("template diffing: only a changed template makes a revision") {
  auto base = parse(kHello);
  REQUIRE(base.ok());
  // The same service sent again, even re-rendered, is the same template.
  auto same = service_from_json(service_to_json(base.value(), nullptr), "default");
  CHECK(same->spec == base->spec);
  // Each of these is a change.
  auto changed = [&](auto mutate) {
    RevisionTemplate t = base->spec;
    mutate(t);
    return !(t == base->spec);
  };
  CHECK(changed([](RevisionTemplate& t) { t.container.image = "oci:/img:v2"; }));
  CHECK(changed([](RevisionTemplate& t) { t.container.env.push_back({"B", "2"}); }));
  CHECK(changed([](RevisionTemplate& t) { t.container.env[0].value = "other"; }));
  CHECK(changed([](RevisionTemplate& t) { t.container.args.clear(); }));
  CHECK(changed([](RevisionTemplate& t) { t.container.container_port = 9091; }));
  CHECK(changed([](RevisionTemplate& t) { t.container.limits.memory = "64Mi"; }));
  CHECK(changed([](RevisionTemplate& t) { t.container_concurrency = 6; }));
  CHECK(
      changed([](RevisionTemplate& t) { t.annotations["autoscaling.knative.dev/target"] = "5"; }));
  CHECK(changed([](RevisionTemplate& t) { t.name = "hello-custom"; }));
  // Traffic is not part of the template.
  Service traffic_only = base.value();
  traffic_only.traffic = {{"hello-00001", false, 100, ""}};
  CHECK(traffic_only.spec == base->spec);
}

TEST_CASE("the default traffic block is the same as none") {
  auto r = parse(
      R"({"metadata": {"name": "hello"}, "spec": {"template": {"spec": {"containers": [{"image": "x"}]}},
                     "traffic": [{"latestRevision": true, "percent": 100}]}})");
  REQUIRE(r.ok());
  CHECK(r->traffic.empty());
}

TEST_CASE(
    "responseStartTimeoutSeconds and idleTimeoutSeconds are read within timeoutSeconds, and "
    "written back") {
  auto with = [](const std::string& fields) {
    return std::string(R"({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
      "metadata": {"name": "s"}, "spec": {"template": {"spec": {)") +
           fields + R"(, "containers": [{"image": "oci:/img:latest"}]}}}})";
  };
  auto r = parse(
      with(R"("timeoutSeconds": 60, "responseStartTimeoutSeconds": 10, "idleTimeoutSeconds": 5)"));
  REQUIRE(r.ok());
  CHECK(r->spec.response_start_timeout_seconds == 10);
  CHECK(r->spec.idle_timeout_seconds == 5);
  auto spec = template_to_json(r->spec).at("spec").as_object();
  CHECK(spec.at("responseStartTimeoutSeconds").as_int64() == 10);
  CHECK(spec.at("idleTimeoutSeconds").as_int64() == 5);
  auto back = template_from_json(template_to_json(r->spec));
  REQUIRE(back.ok());
  CHECK(*back == r->spec);
  // Unset: not written, so an exported Service reads as it was applied.
  auto plain = parse(with(R"("timeoutSeconds": 60)"));
  REQUIRE(plain.ok());
  CHECK_FALSE(template_to_json(plain->spec).at("spec").as_object().contains("idleTimeoutSeconds"));

  CHECK(error_of(with(R"("timeoutSeconds": 60, "responseStartTimeoutSeconds": 61)"))
            .find("spec.template.spec.responseStartTimeoutSeconds: must be between 1 and "
                  "timeoutSeconds (60) (got 61)") != std::string::npos);
  CHECK(error_of(with(R"("idleTimeoutSeconds": -1)")).find("idleTimeoutSeconds") !=
        std::string::npos);
  CHECK(error_of(with(R"("idleTimeoutSeconds": 301)")).find("timeoutSeconds (300)") !=
        std::string::npos);
}

TEST_CASE("Kubernetes fields elafros does not take are refused naming the field and saying why") {
  auto spec_with = [](const std::string& pod, const std::string& container) {
    return std::string(R"({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
      "metadata": {"name": "s"}, "spec": {"template": {"spec": {)") +
           pod + R"("containers": [{"image": "oci:/img:latest")" + container + "}]}}}}";
  };
  CHECK(error_of(spec_with(R"("nodeSelector": {"disk": "ssd"}, )", "")) ==
        "spec.template.spec.nodeSelector: is not supported: elafros runs on one machine: there "
        "is no node to select");
  CHECK(error_of(spec_with(R"("tolerations": [], )", "")).find("no taints") != std::string::npos);
  CHECK(error_of(spec_with(R"("imagePullSecrets": [{}], )", ""))
            .find("spec.template.spec.imagePullSecrets[0].name: required") != std::string::npos);
  auto pulled = service_from_json(
      json::parse(spec_with(R"("imagePullSecrets": [{"name": "regcred"}], )", "")), "default");
  REQUIRE(pulled.ok());
  CHECK(pulled->spec.image_pull_secrets == std::vector<std::string>{"regcred"});
  CHECK(template_to_json(pulled->spec).at("spec").at("imagePullSecrets") ==
        json::parse(R"([{"name": "regcred"}])"));
  CHECK(error_of(spec_with("", R"(, "volumeDevices": [])"))
            .find("spec.template.spec.containers[0].volumeDevices: is not supported") !=
        std::string::npos);
  CHECK(error_of(spec_with("", R"(, "lifecycle": {})")).find("handle SIGTERM") !=
        std::string::npos);
  // A field Kubernetes does not have at all is still an unknown field, with the known ones.
  CHECK(error_of(spec_with(R"("nodeSelektor": {}, )", "")).find("unknown field (known fields:") !=
        std::string::npos);
}

TEST_CASE("an instance's resources are its containers' sum, or an init container's if more") {
  RevisionTemplate t;
  t.container.limits = {"500m", "128Mi", ""};
  ContainerSpec side;
  side.limits = {"250m", "64Mi", ""};
  side.requests = {"100m", "", ""};
  t.sidecars.push_back(side);
  ContainerSpec init;
  init.limits = {"1", "32Mi", ""};
  t.init_containers.push_back(init);
  PodResources p = pod_resources(t);
  CHECK(p.limits_cpu_millis == 1000);  // the init container's 1 > 500m + 250m
  CHECK(p.limits_memory_bytes == 192LL << 20);
  CHECK(p.requests_cpu_millis == 100);
  CHECK(p.requests_memory_bytes == 0);
}
