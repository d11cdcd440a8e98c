#include "cli/yaml_json.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace elafros::cli;
namespace json = boost::json;

TEST_CASE("YAML scalars take Kubernetes' types; quoted ones stay strings") {
  auto docs = yaml_documents(R"(
a: 8080
b: "8080"
c: true
d: 'false'
e: 0.5
f: hello
g: ~
h: 500m
i: -3
)");
  REQUIRE(docs.size() == 1);
  const auto& o = docs[0].as_object();
  CHECK(o.at("a") == 8080);
  CHECK(o.at("b") == "8080");
  CHECK(o.at("c") == true);
  CHECK(o.at("d") == "false");
  CHECK(o.at("e") == 0.5);
  CHECK(o.at("f") == "hello");
  CHECK(o.at("g").is_null());
  CHECK(o.at("h") == "500m");
  CHECK(o.at("i") == -3);
}

TEST_CASE("multi-document YAML yields every document, skipping empty ones") {
  auto docs = yaml_documents("kind: A\n---\n---\nkind: B\nlist: [1, two]\n");
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].at("kind") == "A");
  CHECK(docs[1].at("list").as_array()[1] == "two");
}

TEST_CASE("a Knative Service maps to JSON and back unchanged") {
  const char* text = R"(apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  annotations:
    note: "123"
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/target: "10"
    spec:
      containerConcurrency: 10
      containers:
        - image: oci:/img:latest
          env:
            - name: FLAG
              value: "true"
            - name: EMPTY
              value: ""
  traffic:
    - latestRevision: true
      percent: 100
)";
  auto docs = yaml_documents(text);
  REQUIRE(docs.size() == 1);
  const json::value& v = docs[0];
  CHECK(v.at("spec")
            .at("template")
            .at("metadata")
            .at("annotations")
            .at("autoscaling.knative.dev/target") == "10");
  CHECK(v.at("spec").at("template").at("spec").at("containerConcurrency") == 10);
  CHECK(v.at("spec")
            .at("template")
            .at("spec")
            .at("containers")
            .as_array()[0]
            .at("env")
            .as_array()[0]
            .at("value") == "true");
  std::string back = to_yaml(v);
  CHECK(back.find("value: \"true\"") != std::string::npos);  // re-quoted, so it stays a string
  CHECK(back.find("value: \"\"") != std::string::npos);
  auto again = yaml_documents(back);
  REQUIRE(again.size() == 1);
  CHECK(again[0] == v);
}

TEST_CASE("a YAML syntax error names its line") {
  CHECK_THROWS_WITH(yaml_documents("a: 1\nb: [unclosed\n"), Catch::Contains("line"));
}
