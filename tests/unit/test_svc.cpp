// svc: schema loading, defaults, rendering (golden files), error messages, fuzzing.
// Regenerate goldens on purpose with GEDGE_UPDATE_GOLDEN=1 and review the diff.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "../../libgedge/src/svc/deploy_internal.hpp"
#include "../../libgedge/src/svc/hosts_internal.hpp"
#include "gedge/stores.hpp"
#include "gedge/svc.hpp"
#include "gedge/tune.hpp"
#include "test_helpers.hpp"

using namespace gedge;
using nlohmann::json;

namespace {

const std::filesystem::path kGolden =
    std::filesystem::path(gedge::test::source_dir()) / "tests/golden/svc";

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

svc::Spec must_parse(const std::string& text) {
  auto r = svc::parse_spec(text, "t.yaml");
  if (!r) FAIL("parse failed: " << r.error().message);
  return *r;
}

std::string parse_error(const std::string& text, svc::LoadLimits limits = {}) {
  auto r = svc::parse_spec(text, "app.yaml", limits);
  if (r) {
    FAIL_CHECK("expected an error for:\n" << text);
    return "";
  }
  CHECK(r.error().code == ErrorCode::usage);
  return r.error().message;
}

}  // namespace

TEST_CASE("golden: every input renders to its golden multi-document YAML") {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kGolden)) {
    auto p = entry.path();
    auto ext = p.extension().string();
    if (ext != ".yaml" && ext != ".json") continue;
    if (p.string().ends_with(".out.yaml")) continue;
    ++n;
    CAPTURE(p.filename().string());
    auto spec = svc::load_spec(p);
    REQUIRE_MESSAGE(spec.has_value(), (spec ? "" : spec.error().message));
    std::string got = svc::to_multidoc_yaml(svc::render_all(*spec));
    test::check_golden("svc/" + p.stem().string() + ".out.yaml", got);
    // Deterministic: rendering twice gives the same bytes.
    CHECK(svc::to_multidoc_yaml(svc::render_all(*spec)) == got);
  }
  CHECK(n >= 8);
}

TEST_CASE("golden: Kubernetes manifests (files and directories) render as deploy applies them") {
  const auto data = std::filesystem::path(gedge::test::source_dir()) / "tests/data/manifests";
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(data)) {
    auto p = entry.path();
    if (!entry.is_directory() && p.extension() != ".yaml") continue;
    ++n;
    CAPTURE(p.filename().string());
    auto spec = svc::load_spec(p);
    REQUIRE_MESSAGE(spec.has_value(), (spec ? "" : spec.error().message));
    CHECK(spec->is_manifest);
    std::string got = svc::to_multidoc_yaml(svc::render_all(*spec));
    test::check_golden("manifests/" + p.stem().string() + ".out.yaml", got);
  }
  CHECK(n >= 3);
}

TEST_CASE(
    "volumes and networks: one source each, sizes only for claims, networks need what they use") {
  CHECK(parse_error("name: w\ncontainers: [i:1]\nvolumes: [{name: v, mountPath: /v}]\n")
            .find("needs a source") != std::string::npos);
  CHECK(parse_error("name: w\ncontainers: [i:1]\nvolumes: [{name: v, mountPath: /v, hostPath: /x, "
                    "emptyDir: {}}]\n")
            .find("exactly one source") != std::string::npos);
  CHECK(parse_error("name: w\ncontainers: [i:1]\nvolumes: [{name: v, mountPath: /v, hostPath: /x, "
                    "size: 1Gi}]\n")
            .find("only a claim volume has a size") != std::string::npos);
  CHECK(parse_error(
            "name: w\ncontainers: [i:1]\nvolumes:\n  - {name: v, mountPath: /v, hostPath: /x}\n"
            "  - {name: u, mountPath: /v, hostPath: /y}\n")
            .starts_with("app.yaml:5: volumes[1].mountPath: two volumes mount at '/v'"));
  CHECK(parse_error("name: w\ncontainers: [i:1]\nnetworks: [{name: n, type: macvlan}]\n")
            .find("needs master") != std::string::npos);
  CHECK(parse_error("name: w\ncontainers: [i:1]\nnetworks: [{name: n, type: sriov}]\n")
            .find("needs resource") != std::string::npos);
  // acceleration.network is refused, never dropped.
  CHECK(parse_error("name: w\ncontainers:\n  - image: i:1\n    resources: {acceleration: {network: "
                    "{sriov: 1}}}\n")
            .find("acceleration.network is not supported") != std::string::npos);
  auto s = must_parse(
      "name: w\ncontainers: [{image: i:1}]\nvolumes:\n  - {name: c, claim: c, mountPath: /c}\n"
      "  - {name: n, nfs: {server: h, path: /e}, mountPath: /n}\nnetworks: [{name: f, type: sriov, "
      "resource: a.b/c}]\n");
  CHECK(svc::hosts_unsupported(s.service) ==
        std::vector<std::string>{
            "networks[0] (sriov: only a macvlan network is a podman network on container hosts)"});
  auto plan = svc::render_host_plan(s.service);
  std::string argv = plan["spec"]["containers"][0]["containers"][0]["argv"].dump();
  CHECK(argv.find(R"("-v","c:/c")") != std::string::npos);
}

TEST_CASE("the embedded schema is schemas/service.schema.json") {
  auto file = json::parse(
      slurp(std::filesystem::path(gedge::test::source_dir()) / "schemas/service.schema.json"));
  CHECK(json::parse(svc::schema_text()) == file);
}

TEST_CASE("v1 short form: GS-Engine defaults") {
  auto spec = must_parse(
      "name: cam\nnamespace: vision\ncontainers: [reg:5000/a/busybox:1.0]\nports: [80]\ntype: "
      "NodePort\n");
  const auto& s = spec.service;
  CHECK(s.form == 1);
  CHECK(s.containers[0].name == "busybox");
  CHECK(s.containers[0].requests.at("cpu") == "100m");
  CHECK(s.containers[0].requests.at("memory") == "100Mi");
  CHECK(s.containers[0].limits.at("cpu") == "1000m");
  CHECK(s.containers[0].limits.at("memory") == "1Gi");
  auto objs = svc::render_kubernetes(s);
  REQUIRE(objs.size() == 2);
  CHECK(objs[0]["kind"] == "Deployment");
  CHECK(objs[0]["spec"]["replicas"] == 1);
  CHECK(objs[0]["spec"]["selector"]["matchLabels"] == json{{"app", "cam"}});
  CHECK_FALSE(objs[0]["spec"].contains("progressDeadlineSeconds"));
  CHECK(objs[1]["spec"]["ports"][0] == json{{"name", "80"}, {"port", 80}});
  CHECK(objs[1]["spec"]["type"] == "NodePort");
}

TEST_CASE("v2 container form: defaults, names, ports") {
  auto spec = must_parse(R"(service:
  name: web
  containers:
    - image: i:1
      ports: [{containerPort: 8080, externalPort: 80}]
    - image: j:1
)");
  const auto& s = spec.service;
  CHECK(s.form == 2);
  CHECK(s.containers[0].name == "web");
  CHECK(s.containers[1].name == "web1");
  CHECK(s.containers[0].requests ==
        std::map<std::string, std::string>{{"cpu", "200m"}, {"memory", "500Mi"}});
  CHECK(s.containers[0].limits ==
        std::map<std::string, std::string>{{"cpu", "500m"}, {"memory", "1Gi"}});
  auto objs = svc::render_kubernetes(s);
  auto& dep = objs[0];
  CHECK(dep["spec"]["progressDeadlineSeconds"] == 3600);
  CHECK(dep["spec"]["template"]["spec"]["containers"][0]["ports"][0] ==
        json{{"containerPort", 8080}, {"name", "tcp-8080"}, {"protocol", "TCP"}});
  auto& svcobj = objs[1];
  CHECK(svcobj["metadata"]["labels"]["service"] == "web");
  CHECK(svcobj["spec"]["type"] == "ClusterIP");
  CHECK(svcobj["spec"]["ports"][0] ==
        json{{"name", "8080"}, {"port", 80}, {"targetPort", 8080}, {"protocol", "TCP"}});
}

TEST_CASE("acceleration, topologyAware, gpu") {
  auto spec = must_parse(R"(name: d
containers:
  - image: i:1
    resources: {acceleration: {topologyAware: true, compute: {gpu: 2}}}
)");
  auto dep = svc::render_kubernetes(spec.service)[0];
  auto res = dep["spec"]["template"]["spec"]["containers"][0]["resources"];
  CHECK(res["requests"] == res["limits"]);
  CHECK(res["limits"]["cpu"] == "1");
  CHECK(res["limits"]["memory"] == "500Mi");
  CHECK(res["limits"]["nvidia.com/gpu"] == "2");
  CHECK(dep["spec"]["template"]["spec"]["nodeSelector"]["gse-resalloc"] == "numa");
  CHECK_FALSE(dep["spec"].contains("nodeSelector"));  // GS-Engine's bug, fixed
}

TEST_CASE("autoscale: HPA autoscaling/v2 and no replicas on the Deployment") {
  auto spec = must_parse("name: a\ncontainers: [{image: i:1}]\nautoscale: {min: 2, max: 5}\n");
  auto objs = svc::render_kubernetes(spec.service);
  REQUIRE(objs.size() == 2);
  CHECK_FALSE(objs[0]["spec"].contains("replicas"));
  CHECK(objs[1]["apiVersion"] == "autoscaling/v2");
  CHECK(objs[1]["spec"]["metrics"][0]["type"] == "Resource");
  CHECK(objs[1]["spec"]["metrics"][0]["resource"]["target"] ==
        json{{"type", "Utilization"}, {"averageUtilization", 80}});
  CHECK(objs[1]["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300);
  CHECK(spec.service.desired_replicas() == 2);
}

TEST_CASE(
    "autoscale metrics, vpa and limits: HPA v2 metric types, a VPA, a LimitRange; hosts refuse "
    "them") {
  auto spec = must_parse(R"(name: d
containers: [{image: x:1}]
autoscale: {max: 4, metrics: [{type: resource, name: cpu, target: 70}, {type: pods, name: fps, target: 30},
                              {type: external, name: queue_depth, target: 500m}]}
vpa: {mode: initial}
limits: {min: {cpu: 100m}, max: {memory: 2Gi}}
)");
  auto objs = svc::render_kubernetes(spec.service);
  std::map<std::string, json> by;
  for (const auto& o : objs) by[o["kind"].get<std::string>()] = o;
  const json& m = by["HorizontalPodAutoscaler"]["spec"]["metrics"];
  REQUIRE(m.size() == 3);
  CHECK(m[0]["type"] == "Resource");
  CHECK(m[0]["resource"]["target"]["averageUtilization"] == 70);
  CHECK(m[1]["type"] == "Pods");  // not GS-Engine's "Pod"
  CHECK(m[1]["pods"]["metric"]["name"] == "fps");
  CHECK(m[1]["pods"]["target"] == json{{"type", "AverageValue"}, {"averageValue", "30"}});
  CHECK(m[2]["type"] == "External");
  CHECK(m[2]["external"]["target"]["averageValue"] == "500m");
  CHECK(by["VerticalPodAutoscaler"]["apiVersion"] == "autoscaling.k8s.io/v1");
  CHECK(by["VerticalPodAutoscaler"]["spec"]["updatePolicy"]["updateMode"] == "Initial");
  CHECK(by["VerticalPodAutoscaler"]["spec"]["targetRef"] ==
        json{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "d"}});
  CHECK(by["LimitRange"]["spec"]["limits"] ==
        json::array(
            {{{"type", "Container"}, {"min", {{"cpu", "100m"}}}, {"max", {{"memory", "2Gi"}}}}}));
  CHECK(spec.service.autoscale->cpu == 70);  // what the container-host autoscaler uses
  auto u = svc::hosts_unsupported(spec.service);
  REQUIRE(u.size() == 4);
  CHECK(u[0].find("autoscale.metrics[1] (pods fps") == 0);
  CHECK(u[2] == "vpa");
  CHECK(u[3] == "limits");
  // CPU-only metrics are fine on container hosts.
  CHECK(svc::hosts_unsupported(
            must_parse("name: d\ncontainers: [{image: x:1}]\nautoscale: {max: 3, metrics: "
                       "[{type: resource, name: cpu, target: 60}]}\n")
                .service)
            .empty());
  CHECK(parse_error("name: d\ncontainers: [{image: x:1}]\nautoscale: {max: 3, cpu: 50, metrics: "
                    "[{type: resource, "
                    "name: cpu, target: 60}]}\n")
            .find("cpu and metrics") != std::string::npos);
  CHECK(parse_error("name: d\ncontainers: [{image: x:1}]\nautoscale: {max: 3, metrics: [{type: "
                    "resource, name: gpu, "
                    "target: 60}]}\n")
            .find("autoscale.metrics[0].name: resource metric 'gpu'") != std::string::npos);
  CHECK(
      parse_error(
          "name: d\ncontainers: [{image: x:1}]\nautoscale: {max: 3, metrics: [{type: pod, name: x, "
          "target: 1}]}\n")
          .find("autoscale.metrics[0].type: 'pod' is not one of") != std::string::npos);
  CHECK(parse_error("name: d\ncontainers: [{image: x:1}]\nvpa: {mode: Auto}\n").find("vpa.mode") !=
        std::string::npos);
  CHECK(parse_error(
            "name: d\ncontainers: [{image: x:1}]\nlimits: {min: {cpu: \"2\"}, max: {cpu: 500m}}\n")
            .find("min 2 is above max 500m") != std::string::npos);
}

TEST_CASE("durations for svc logs --since, as kubectl takes them") {
  CHECK(svc::parse_duration_s("30s", "--since").value() == 30);
  CHECK(svc::parse_duration_s("5m", "--since").value() == 300);
  CHECK(svc::parse_duration_s("1h30m", "--since").value() == 5400);
  for (const char* bad : {"", "5", "5 minutes", "m", "0s", "1d", "-5m", "99999999999h"}) {
    CAPTURE(bad);
    auto r = svc::parse_duration_s(bad, "--since");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    CHECK(r.error().message.find("--since") != std::string::npos);
  }
}

TEST_CASE("scheduleHint: weighted tier affinity and a hard nodeSelector") {
  for (auto [pref, first, last] :
       {std::tuple{"local", "local", "cloud"}, std::tuple{"cloud", "cloud", "local"}}) {
    auto spec =
        must_parse(fmt::format("name: n\ncontainers: [{{image: i:1}}]\nscheduleHint: {{preferred: "
                               "{}, nodeSelector: {{zone: a}}}}\n",
                               pref));
    auto pod = svc::render_kubernetes(spec.service)[0]["spec"]["template"]["spec"];
    auto terms = pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    REQUIRE(terms.size() == 3);
    CHECK(terms[0]["weight"] == 100);
    CHECK(terms[0]["preference"]["matchExpressions"][0]["values"][0] == first);
    CHECK(terms[0]["preference"]["matchExpressions"][0]["key"] == "gedge.io/tier");
    CHECK(terms[2]["preference"]["matchExpressions"][0]["values"][0] == last);
    CHECK(terms[2]["weight"] < terms[1]["weight"]);
    CHECK(pod["nodeSelector"] == json{{"zone", "a"}});
  }
}

TEST_CASE("pipeline: chain by default, explicit after, dependency order, stage fields kept") {
  auto spec = must_parse(R"(kind: Pipeline
name: p
source: cam1
stages:
  - {name: c, after: [b], containers: [{image: i:1}]}
  - {name: a, after: [], containers: [{image: i:1}], compute_ms: {gpu: 3, cpu: 30}, output_mb: 2}
  - {name: b, containers: [{image: i:1}], resources: {cpu: 1, gpu: 1}}
  - {name: d, containers: [{image: i:1}]}
)");
  REQUIRE(spec.is_pipeline);
  CHECK(spec.pipeline.source == "cam1");
  CHECK(spec.pipeline.stages[1].after.empty());
  CHECK(spec.pipeline.stages[2].after == std::vector<std::string>{"a"});  // chained in file order
  CHECK(spec.pipeline.stages[3].after == std::vector<std::string>{"b"});
  CHECK(spec.pipeline.stages[1].compute_ms == json{{"gpu", 3}, {"cpu", 30}});
  CHECK(spec.pipeline.stages[2].resources["gpu"] == 1);
  std::vector<std::string> names;
  for (auto* s : spec.ordered()) names.push_back(s->name);
  CHECK(names == std::vector<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("errors name file, line and field path") {
  SUBCASE("wrong type") {
    auto m = parse_error(
        "name: w\ncontainers:\n  - image: i:1\n    ports:\n      - containerPort: 80\n      - "
        "containerPort: eighty\n");
    CHECK(m == "app.yaml:6: containers[0].ports[1].containerPort: expected integer, got string");
  }
  SUBCASE("unknown field") {
    auto m = parse_error("name: w\ncontainers: [{image: i:1}]\nreplica: 3\n");
    CHECK(m == "app.yaml:3: replica: unknown field");
  }
  SUBCASE("unknown nested field") {
    auto m = parse_error(
        "service:\n  name: w\n  containers:\n    - image: i:1\n      imagePullPolicy: Always\n");
    CHECK(m == "app.yaml:5: service.containers[0].imagePullPolicy: unknown field");
  }
  SUBCASE("enum") {
    auto m = parse_error("name: w\ntype: External\ncontainers: [{image: i:1}]\n");
    CHECK(m == "app.yaml:2: type: 'External' is not one of: ClusterIP, NodePort, LoadBalancer");
  }
  SUBCASE("bad name") {
    auto m = parse_error("name: Web_1\ncontainers: [{image: i:1}]\n");
    CHECK(m == "app.yaml:1: name: invalid value 'Web_1'");
  }
  SUBCASE("missing containers") {
    CHECK(parse_error("name: w\n") == "app.yaml:1: missing required field 'containers'");
  }
  SUBCASE("range") {
    CHECK(parse_error("name: w\ncontainers: [{image: i:1, ports: [{containerPort: 70000}]}]\n") ==
          "app.yaml:2: containers[0].ports[0].containerPort: must be at most 65535");
  }
  SUBCASE("malformed YAML") {
    auto m = parse_error("name: w\ncontainers: [\n  - a\n: b\n");
    CHECK(m.starts_with("app.yaml:"));
    CHECK(m.find("malformed YAML") != std::string::npos);
  }
  SUBCASE("duplicate key") {
    CHECK(parse_error("name: w\nname: x\n").starts_with("app.yaml:2: duplicate key 'name'"));
  }
  SUBCASE("empty") {
    CHECK(parse_error("") == "app.yaml: empty document");
  }
  SUBCASE("two documents") {
    CHECK(parse_error("name: a\n---\nname: b\n")
              .starts_with("app.yaml:2: more than one YAML document"));
  }
  SUBCASE("mixed forms") {
    CHECK(parse_error("name: w\ncontainers:\n  - i:1\n  - {image: j:1}\n") ==
          "app.yaml:4: containers[1]: mixes the v1 form (image strings) with the v2 form "
          "(container objects)");
  }
  SUBCASE("v2 with top-level ports") {
    CHECK(parse_error("name: w\ncontainers: [{image: i:1}]\nports: [80]\n")
              .starts_with("app.yaml:3: ports: top-level ports"));
  }
  SUBCASE("monitorPorts not a port") {
    CHECK(parse_error("name: w\ncontainers: [i:1]\nports: [80]\nmonitorPorts: [9100]\n") ==
          "app.yaml:4: monitorPorts[0]: port 9100 is not a port of the service");
  }
  SUBCASE("autoscale min > max") {
    CHECK(parse_error("name: w\ncontainers: [i:1]\nautoscale: {min: 4, max: 2}\n")
              .starts_with("app.yaml:3: autoscale.min: min 4 is above max 2"));
  }
  SUBCASE("topologyAware needs integer cpu") {
    CHECK(parse_error("name: w\ncontainers:\n  - image: i:1\n    resources:\n      limits: {cpu: "
                      "1500m}\n      acceleration: {topologyAware: true}\n")
              .starts_with("app.yaml:5: containers[0].resources.limits.cpu: topologyAware needs a "
                           "whole number of CPUs"));
  }
  SUBCASE("requests above limits") {
    CHECK(
        parse_error("name: w\ncontainers:\n  - image: i:1\n    resources: {limits: {cpu: 100m}}\n")
            .find("request cpu=200m exceeds its limit 100m") != std::string::npos);
  }
  SUBCASE("duplicate stage names") {
    CHECK(parse_error("kind: Pipeline\nname: p\nstages:\n  - {name: a, containers: [i:1]}\n  - "
                      "{name: a, containers: [i:1]}\n") ==
          "app.yaml:5: stages[1].name: duplicate stage name 'a' (first at line 4)");
  }
  SUBCASE("cycle") {
    auto m = parse_error(
        "kind: Pipeline\nname: p\nstages:\n  - {name: a, after: [b], containers: [i:1]}\n  - "
        "{name: b, containers: [i:1]}\n");
    CHECK(m.find("stages form a cycle") != std::string::npos);
    CHECK(m.find("a -> b -> a") != std::string::npos);
  }
  SUBCASE("after names an unknown stage") {
    CHECK(
        parse_error(
            "kind: Pipeline\nname: p\nstages:\n  - {name: a, after: [zz], containers: [i:1]}\n") ==
        "app.yaml:4: stages[0].after[0]: no stage named 'zz'");
  }
  SUBCASE("stages without kind Pipeline") {
    CHECK(parse_error("name: p\ncontainers: [i:1]\nstages: []\n").find("stages") !=
          std::string::npos);
  }
  SUBCASE("YAML bomb") {
    std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    std::string prev = "a";
    for (char c = 'b'; c <= 'j'; ++c) {
      bomb += fmt::format("{}: &{} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                          c, c, fmt::arg("p", prev));
      prev = std::string(1, c);
    }
    auto m = parse_error(bomb);
    CHECK(m.find("more than 100000 nodes") != std::string::npos);
  }
  SUBCASE("deep nesting") {
    std::string deep = "name: " + std::string(200, '[') + std::string(200, ']') + "\n";
    auto m = parse_error(deep);
    CHECK(m.find("nested deeper than 64") != std::string::npos);
  }
  SUBCASE("too large") {
    svc::LoadLimits small;
    small.max_bytes = 16;
    CHECK(parse_error("name: w\ncontainers: [i:1]\n", small).find("more than the 16") !=
          std::string::npos);
  }
}

TEST_CASE("YAML and JSON inputs normalise to the same model") {
  auto y = must_parse(
      "service:\n  name: s\n  containers:\n    - image: i:1\n      ports: [{containerPort: 80}]\n");
  auto j = must_parse(
      R"({"service": {"name": "s", "containers": [{"image": "i:1", "ports": [{"containerPort": 80}]}]}})");
  CHECK(svc::render_all(y) == svc::render_all(j));
}

TEST_CASE("quoted numbers stay strings; plain scalars are typed") {
  auto m = parse_error("name: w\ncontainers: [{image: i:1, ports: [{containerPort: \"80\"}]}]\n");
  CHECK(m.find("expected integer, got string") != std::string::npos);
}

TEST_CASE("spec hash: replicas do not change it, the image does") {
  auto a = must_parse("name: w\nreplicas: 1\ncontainers: [{image: i:1}]\n");
  auto b = must_parse("name: w\nreplicas: 3\ncontainers: [{image: i:1}]\n");
  auto c = must_parse("name: w\nreplicas: 1\ncontainers: [{image: i:2}]\n");
  CHECK(svc::spec_hash(a.service) == svc::spec_hash(b.service));
  CHECK(svc::spec_hash(a.service) != svc::spec_hash(c.service));
}

TEST_CASE("quantities") {
  CHECK(*svc::parse_cpu("500m") == doctest::Approx(0.5));
  CHECK(*svc::parse_cpu("2") == doctest::Approx(2));
  CHECK(*svc::parse_bytes("512k") == 512000);  // Kubernetes' grammar, the same parser as sched
  CHECK(*svc::parse_bytes("1e9") == 1e9);
  CHECK(*svc::parse_bytes("1.5Gi") == doctest::Approx(1.5 * 1073741824.0));
  CHECK_FALSE(svc::parse_bytes("512K"));
  CHECK(
      parse_error("name: w\ncontainers:\n  - image: i:1\n    resources: {limits: {memory: 512K}}\n")
          .starts_with(
              "app.yaml:4: containers[0].resources.limits.memory: invalid quantity '512K'"));
  CHECK(
      parse_error("name: w\ncontainers:\n  - image: i:1\n    resources: {limits: {memory: 16Ei}}\n")
          .find("out of range") != std::string::npos);
  CHECK(*svc::parse_bytes("1Gi") == doctest::Approx(1073741824.0));
  CHECK(*svc::parse_bytes("500Mi") == doctest::Approx(524288000.0));
  CHECK_FALSE(svc::parse_bytes("12Q"));
}

TEST_CASE(
    "regression: a 30 KB string in a patterned field is a usage error, not a stack overflow") {
  // std::regex inside valijson recursed per character: 30 KB overflowed the stack (SIGSEGV).
  const std::string big(30000, 'a');
  struct Case {
    std::string text, says;
  };
  std::vector<Case> cases = {
      {"name: w\ncontainers: [" + big + "]\n",
       "app.yaml:2: containers[0]: longer than 1024 characters (30000)"},
      {"name: w\ncontainers:\n  - image: " + big + "\n", "containers[0].image: longer than 1024"},
      {"name: w\ncontainers: [i:1]\nlabels: {app: " + big + "}\n", "labels.app: longer than 63"},
      {"name: w\ncontainers:\n  - image: i:1\n    env: [{name: " + big + "}]\n",
       "name: longer than 256"},
      // (yaml-cpp itself refuses keys over 1024 bytes)
      {"name: w\ncontainers: [i:1]\nlabels: {" + std::string(300, 'k') + ": x}\n",
       "labels: a key longer than 256 bytes (300)"},
      {"name: " + big + "\ncontainers: [i:1]\n", "name: longer than 50"},
  };
  for (const auto& c : cases) {
    auto msg = parse_error(c.text);
    CHECK_MESSAGE(msg.find(c.says) != std::string::npos, msg);
  }
  // At the bound it is the pattern that decides.
  CHECK(parse_error("name: w\ncontainers: [\"" + std::string(1024, 'a') +
                    "\"]\nlabels: {app: \"a b\"}\n")
            .find("labels.app: invalid value") != std::string::npos);
}

TEST_CASE("regression: an input on which yaml-cpp's LoadAll never returns is rejected") {
  auto r = svc::parse_spec(slurp(kGolden / "regress-loadall-hang.txt"), "hang.json");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == ErrorCode::usage);
}

TEST_CASE(
    "fuzz: seeded mutations of the golden inputs never crash and fail only with usage errors") {
  std::mt19937 rng(20261122);
  std::vector<std::string> seeds;
  for (const auto& entry : std::filesystem::directory_iterator(kGolden)) {
    auto p = entry.path().string();
    if ((p.ends_with(".yaml") && !p.ends_with(".out.yaml")) || p.ends_with(".json"))
      seeds.push_back(slurp(p));
  }
  // The libFuzzer corpus (tests/fuzz/corpus/svc): every file must load or fail with a usage error.
  for (const auto& entry : std::filesystem::directory_iterator(
           std::filesystem::path(gedge::test::source_dir()) / "tests/fuzz/corpus/svc")) {
    auto text = slurp(entry.path().string());
    auto r = svc::parse_spec(text, "corpus.yaml");
    if (!r) CHECK(r.error().code == ErrorCode::usage);
    seeds.push_back(text);
  }
  REQUIRE(!seeds.empty());
  const std::string alphabet = " :-[]{}&*!|>'\"#\n\t0123456789abcxyz,?%@";
  int ok = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      std::size_t pos = rng() % s.size();
      switch (rng() % 4) {
        case 0:
          s[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          s.erase(pos, 1 + rng() % 8);
          break;
        case 2:
          s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        default: {  // duplicate a slice (repeated keys, deeper nesting)
          std::size_t len = std::min<std::size_t>(s.size() - pos, 1 + rng() % 40);
          s.insert(pos, s.substr(pos, len));
        }
      }
    }
    if (std::getenv("GEDGE_FUZZ_DUMP")) std::ofstream(std::getenv("GEDGE_FUZZ_DUMP")) << s;
    auto r = svc::parse_spec(s, "fuzz.yaml");
    if (r) {
      ++ok;
      (void)svc::render_all(*r);
    } else {
      ++rejected;
      CHECK(r.error().code == ErrorCode::usage);
      CHECK(r.error().message.starts_with("fuzz.yaml"));
    }
  }
  CHECK(ok + rejected == 3000);
  CHECK(rejected > 0);
}

TEST_CASE(
    "a resolved runtime: mounted read-only at its prefix with its env, and part of the spec hash") {
  auto spec = svc::parse_spec(R"({"name": "infer", "runtime": "torch",
    "containers": [{"name": "infer", "image": "10.213.0.1:5000/yolo/infer:1"}]})",
                              "rt.json");
  REQUIRE(spec);
  svc::RuntimeMount rt{"abc123",
                       "/var/lib/gedge/runtimes/abc123",
                       "/opt/gedge/rt/torch",
                       {{"PATH", "/opt/gedge/rt/torch/env/bin:/usr/bin"},
                        {"LD_LIBRARY_PATH", "/opt/gedge/rt/torch/cuda/lib64"}}};
  auto plan = svc::render_host_plan(spec->service, &rt);
  auto argv = plan["spec"]["containers"][0]["containers"][0]["argv"];
  std::vector<std::string> a = argv.get<std::vector<std::string>>();
  auto has_pair = [&](const std::string& flag, const std::string& value) {
    for (std::size_t i = 0; i + 1 < a.size(); ++i)
      if (a[i] == flag && a[i + 1] == value) return true;
    return false;
  };
  CHECK(has_pair("-v", "/var/lib/gedge/runtimes/abc123:/opt/gedge/rt/torch:ro"));
  CHECK(has_pair("--env", "LD_LIBRARY_PATH=/opt/gedge/rt/torch/cuda/lib64"));
  CHECK(has_pair("--env", "GEDGE_RUNTIME=/opt/gedge/rt/torch"));
  CHECK(a.back() == "10.213.0.1:5000/yolo/infer:1");
  CHECK(a[a.size() - 2] == "--");  // the image is never read as an option (issue 16 item 13)
  auto dep = svc::render_kubernetes(spec->service, &rt)[0];
  auto pod = dep["spec"]["template"]["spec"];
  CHECK(pod["volumes"][0]["hostPath"]["path"] == "/var/lib/gedge/runtimes/abc123");
  CHECK(pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/opt/gedge/rt/torch");
  CHECK(pod["containers"][0]["volumeMounts"][0]["readOnly"] == true);
  // A new bundle (re-pack) changes what replicas run: the hash moves, so deploy replaces them.
  svc::RuntimeMount rt2 = rt;
  rt2.id = "def456";
  rt2.host_dir = "/var/lib/gedge/runtimes/def456";
  CHECK(svc::spec_hash_with(spec->service, &rt) != svc::spec_hash_with(spec->service, &rt2));
  CHECK(svc::spec_hash_with(spec->service, nullptr) == svc::spec_hash(spec->service));
}

TEST_CASE("autoscale arithmetic: the HPA rule with a 10 % tolerance, clamped to min..max") {
  CHECK(svc::autoscale_desired(2, 160, 80, 1, 10) == 4);  // twice the target: double
  CHECK(svc::autoscale_desired(2, 85, 80, 1, 10) == 2);   // inside the tolerance: keep
  CHECK(svc::autoscale_desired(4, 20, 80, 1, 10) == 1);   // quarter: shrink
  CHECK(svc::autoscale_desired(4, 20, 80, 2, 10) == 2);   // never below min
  CHECK(svc::autoscale_desired(3, 400, 80, 1, 5) == 5);   // never above max
  CHECK(svc::autoscale_desired(0, 50, 80, 1, 5) == 1);    // a scaled-to-zero service counts as one
  CHECK(svc::autoscale_desired(3, 100, 80, 1, 10) == 4);  // ceil(3 * 1.25) = 4
}

TEST_CASE("manifests on container hosts: env valueFrom a ConfigMap of the same stream") {
  auto translate = [](const std::string& text) {
    auto in = manifest::parse(text, "m.yaml");
    REQUIRE(in.has_value());
    return svc::detail::hosts_spec(svc::spec_from_manifest(*in), false);
  };
  const std::string cm =
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {mode: \"fast '$(x)' "
      "\\\"q\\\"\"}\n---\n";
  auto dep = [](const std::string& env) {
    return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: "
           "{matchLabels: {app: d}}\n"
           "  template:\n    metadata: {labels: {app: d}}\n    spec:\n      containers:\n      - "
           "name: c\n"
           "        image: x:1\n        env: [" +
           env + "]\n";
  };
  auto ok = translate(
      cm +
      dep("{name: MODE, valueFrom: {configMapKeyRef: {name: cfg, key: mode}}}, "
          "{name: GONE, valueFrom: {configMapKeyRef: {name: cfg, key: nokey, optional: true}}}"));
  REQUIRE(ok.has_value());
  const auto& env = ok->json["stages"][0]["containers"][0]["env"];
  REQUIRE(env.size() == 1);  // the optional absent key is not set, as Kubernetes does
  CHECK(env[0] == nlohmann::json{{"name", "MODE"}, {"value", "fast '$(x)' \"q\""}});
  auto err = [&](const std::string& text) {
    auto r = translate(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    return r.error().message;
  };
  CHECK(err(dep("{name: M, valueFrom: {configMapKeyRef: {name: other, key: mode}}}"))
            .find("ConfigMap 'other' is not in the manifests") != std::string::npos);
  CHECK(err(cm + dep("{name: M, valueFrom: {configMapKeyRef: {name: cfg, key: nokey}}}"))
            .find("has no data key 'nokey'") != std::string::npos);
  CHECK(err(dep("{name: M, valueFrom: {secretKeyRef: {name: s, key: k}}}")).find("secretKeyRef") !=
        std::string::npos);
  CHECK(err(dep("{name: M, valueFrom: {fieldRef: {fieldPath: status.podIP}}}")).find("fieldRef") !=
        std::string::npos);
  CHECK(err(cm + dep("{name: M, value: v, valueFrom: {configMapKeyRef: {name: cfg, key: mode}}}"))
            .find("value and valueFrom") != std::string::npos);
}

TEST_CASE("manifests on container hosts: the downward API's env what a device gives the same") {
  auto translate = [](const std::string& text) {
    auto in = manifest::parse(text, "m.yaml");
    REQUIRE(in.has_value());
    return svc::detail::hosts_spec(svc::spec_from_manifest(*in), false);
  };
  auto dep = [](const std::string& env) {
    return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: cams}\nspec:\n"
           "  selector: {matchLabels: {app: d}}\n  template:\n    metadata:\n      labels: {app: "
           "d, tier: edge}\n      annotations: {note: \"a 'b' $(c)\"}\n    spec:\n      "
           "containers:\n"
           "      - name: c\n        image: x:1\n"
           "        resources: {requests: {cpu: 250m, memory: 64Mi}, limits: {cpu: 1500m, "
           "memory: 128Mi}}\n        env: [" +
           env +
           "]\n      - name: side\n        image: y:1\n        resources: {limits: {cpu: 2}}\n";
  };
  auto ok = translate(
      dep("{name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}, "
          "{name: TIER, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['tier']\"}}}, "
          "{name: NONE, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['absent']\"}}}, "
          "{name: NOTE, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: "
          "\"metadata.annotations['note']\"}}}, "
          "{name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}, "
          "{name: MCPU, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}, "
          "{name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}, "
          "{name: SIDE, valueFrom: {resourceFieldRef: {containerName: side, resource: "
          "requests.cpu}}}"));
  REQUIRE(ok.has_value());
  auto want = nlohmann::json::parse(R"J([{"name": "NS", "value": "cams"},
    {"name": "TIER", "value": "edge"}, {"name": "NONE", "value": ""},
    {"name": "NOTE", "value": "a 'b' $(c)"}, {"name": "CPU", "value": "2"},
    {"name": "MCPU", "value": "250"}, {"name": "MEM", "value": "128"},
    {"name": "SIDE", "value": "2"}])J");
  CHECK(ok->json["stages"][0]["containers"][0]["env"] == want);
  auto err = [&](const std::string& env) {
    auto r = translate(dep(env));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    return r.error().message;
  };
  for (const char* f :
       {"metadata.uid", "status.hostIPs", "status.podIP", "spec.serviceAccountName"}) {
    std::string m = err(fmt::format("{{name: X, valueFrom: {{fieldRef: {{fieldPath: {}}}}}}}", f));
    CHECK(m.find(fmt::format("fieldRef '{}' is not supported", f)) != std::string::npos);
    CHECK(m.find("env[0].valueFrom.fieldRef.fieldPath") != std::string::npos);
  }
  // the replica's name and its device's name and address: set per replica and per device
  auto fields =
      translate(dep("{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}, "
                    "{name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}, "
                    "{name: HOST, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}"));
  REQUIRE(fields.has_value());
  CHECK(fields->json["stages"][0]["containers"][0]["env"] ==
        nlohmann::json::parse(R"([{"name": "POD", "field": "metadata.name"},
          {"name": "NODE", "field": "spec.nodeName"}, {"name": "HOST", "field": "status.hostIP"}])"));
  auto two = fields->pipeline.stages[0];
  two.replicas = 2;
  auto plan = svc::render_host_plan(two);
  for (int r = 0; r < 2; ++r) {
    const auto& c = plan["spec"]["containers"][r]["containers"][0];
    std::string argv = c["argv"].dump();
    CHECK(argv.find(fmt::format(R"("--env","POD=gedge-d-{}")", r)) != std::string::npos);
    REQUIRE(c["deviceEnv"].size() == 2);
    CHECK(c["deviceEnv"][0]["field"] == "spec.nodeName");
    CHECK(c["argv"][c["deviceEnv"][0]["arg"].get<std::size_t>()].get<std::string>().starts_with(
        "NODE=<spec.nodeName"));
    CHECK(c["deviceEnv"][1]["field"] == "status.hostIP");
    CHECK(c["argv"][c["deviceEnv"][1]["arg"].get<std::size_t>()].get<std::string>().starts_with(
        "HOST=<status.hostIP"));
  }
  // the same replica spec on every device and replica: one spec hash (a re-deploy is a no-op)
  CHECK(plan["spec"]["containers"][0]["containers"][0]["argv"][12] ==
        plan["spec"]["containers"][1]["containers"][0]["argv"][12]);
  // on Kubernetes: valueFrom.fieldRef as written
  auto k = svc::render_kubernetes(fields->pipeline.stages[0]);
  CHECK(k[0]["spec"]["template"]["spec"]["containers"][0]["env"][1] ==
        nlohmann::json::parse(
            R"({"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})"));
  // the short schema takes the same
  CHECK(svc::parse_spec(
            "name: w\ncontainers: [{image: x, env: [{name: N, field: spec.nodeName}]}]\n", "w.yaml")
            .has_value());
  CHECK(parse_error("name: w\ncontainers: [{image: x, env: [{name: N, value: v, field: "
                    "spec.nodeName}]}]\n") != "");
  CHECK(parse_error("name: w\ncontainers: [{image: x, env: [{name: N, field: status.podIP}]}]\n") !=
        "");
  CHECK(err("{name: X, valueFrom: {resourceFieldRef: {resource: limits.ephemeral-storage}}}")
            .find("resourceFieldRef 'limits.ephemeral-storage' is not supported") !=
        std::string::npos);
  CHECK(err("{name: X, valueFrom: {resourceFieldRef: {containerName: side, resource: "
            "limits.memory}}}")
            .find("without limits.memory") != std::string::npos);
  CHECK(err("{name: X, valueFrom: {resourceFieldRef: {containerName: nope, resource: "
            "limits.cpu}}}")
            .find("no container named") != std::string::npos);
}

TEST_CASE("manifests on container hosts: a Service must target ports the containers expose") {
  auto translate = [](const std::string& text) {
    auto in = manifest::parse(text, "m.yaml");
    REQUIRE(in.has_value());
    return svc::detail::hosts_spec(svc::spec_from_manifest(*in), false);
  };
  const std::string dep =
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
      "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
      "    spec:\n      containers:\n      - name: c\n        image: x:1\n"
      "        ports: [{containerPort: 8080, name: http}, {containerPort: 53, protocol: UDP}]\n";
  auto svc_doc = [](const std::string& selector, const std::string& ports) {
    return "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: " + selector +
           "\n  ports: [" + ports + "]\n---\n";
  };
  CHECK(translate(svc_doc("{app: web}",
                          "{port: 80, targetPort: 8080}, {port: 81, targetPort: http}, "
                          "{port: 53, protocol: UDP}") +
                  dep)
            .has_value());
  auto err = [&](const std::string& text) {
    auto r = translate(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    return r.error().message;
  };
  CHECK(err(svc_doc("{app: web}", "{port: 80, targetPort: 9090}") + dep)
            .starts_with("m.yaml:6: spec.ports[0].targetPort: Service 'web' targets TCP port 9090, "
                         "which no container of Deployment 'web' exposes"));
  CHECK(err(svc_doc("{app: web}", "{port: 8080}, {port: 81, targetPort: metrics}") + dep)
            .find("Service 'web' targets TCP port 'metrics'") != std::string::npos);
  CHECK(err(svc_doc("{app: web}", "{port: 53}") + dep).find("TCP port 53") != std::string::npos);
  CHECK(err(svc_doc("{app: other}", "{port: 8080}") + dep)
            .find("Service 'web' selects no workload") != std::string::npos);
}

TEST_CASE(
    "manifests on container hosts: env secretKeyRef is a podman secret, never in the argv or "
    "record") {
  auto translate = [](const std::string& text, svc::detail::HostObjects* out) {
    auto in = manifest::parse(text, "m.yaml");
    REQUIRE(in.has_value());
    std::map<std::string, svc::detail::HostObjects> extras;
    auto r = svc::detail::hosts_spec(svc::spec_from_manifest(*in), false, &extras);
    if (out) *out = extras["d"];
    return r;
  };
  auto stream = [](const std::string& b64, const std::string& env) {
    return "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata: {token: \"" + b64 +
           "\"}\nstringData: {plain: \"p $(x) 'q'\"}\n---\napiVersion: apps/v1\nkind: Deployment\n"
           "metadata: {name: d}\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n"
           "    metadata: {labels: {app: d}}\n    spec:\n      containers:\n      - name: c\n"
           "        image: x:1\n        env: [" +
           env + "]\n";
  };
  const std::string env =
      "{name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}, "
      "{name: PLAIN, valueFrom: {secretKeyRef: {name: creds, key: plain}}}, "
      "{name: GONE, valueFrom: {secretKeyRef: {name: creds, key: nokey, optional: true}}}";
  svc::detail::HostObjects x;
  auto ok = translate(stream("czNjcjN0LXZhbHVl", env), &x);  // "s3cr3t-value"
  REQUIRE(ok.has_value());
  const auto& e = ok->json["stages"][0]["containers"][0]["env"];
  REQUIRE(e.size() == 2);  // the optional absent key is not set
  CHECK(e[0]["name"] == "TOKEN");
  std::string name = e[0]["secret"];
  CHECK(name.rfind("gedge-d-", 0) == 0);
  CHECK(name.size() == std::string("gedge-d-").size() + 16);
  REQUIRE(x.secrets.size() == 2);
  CHECK(x.secrets[0].name == name);
  CHECK(x.secrets[0].value == "s3cr3t-value");
  CHECK(x.secrets[1].value == "p $(x) 'q'");  // stringData, byte for byte
  // the argv names the secret; the value is nowhere in the document or the plan
  auto plan = svc::render_host_plan(ok->pipeline.stages[0]);
  std::string argv = plan["spec"]["containers"][0]["containers"][0]["argv"].dump();
  CHECK(argv.find("\"--secret\",\"" + name + ",type=env,target=TOKEN\"") != std::string::npos);
  CHECK(argv.find("s3cr3t") == std::string::npos);
  CHECK(ok->json.dump().find("s3cr3t") == std::string::npos);
  // Kubernetes render of the same model: a secretKeyRef again
  auto k8s = svc::render_kubernetes(ok->pipeline.stages[0]);
  CHECK(k8s[0]["spec"]["template"]["spec"]["containers"][0]["env"][0] ==
        nlohmann::json{{"name", "TOKEN"},
                       {"valueFrom", {{"secretKeyRef", {{"name", name}, {"key", "TOKEN"}}}}}});
  // same value: same name (a no-op); another value: another name (a replace)
  auto same = translate(stream("czNjcjN0LXZhbHVl", env), nullptr);
  REQUIRE(same.has_value());
  CHECK(same->json == ok->json);
  auto changed = translate(stream("b3RoZXI=", env), nullptr);
  REQUIRE(changed.has_value());
  CHECK(changed->json["stages"][0]["containers"][0]["env"][0]["secret"] != name);
  CHECK(svc::spec_hash(changed->pipeline.stages[0]) != svc::spec_hash(ok->pipeline.stages[0]));
  auto err = [&](const std::string& text) {
    auto r = translate(text, nullptr);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    CHECK(r.error().message.find("s3cr3t") == std::string::npos);
    return r.error().message;
  };
  CHECK(err(stream("czNjcjN0LXZhbHVl",
                   "{name: T, valueFrom: {secretKeyRef: {name: nope, key: token}}}"))
            .find("Secret 'nope' is not in the manifests") != std::string::npos);
  CHECK(err(stream("czNjcjN0LXZhbHVl",
                   "{name: T, valueFrom: {secretKeyRef: {name: creds, key: no}}}"))
            .find("has no key 'no'") != std::string::npos);
  CHECK(err(stream("", "{name: T, valueFrom: {secretKeyRef: {name: creds, key: token}}}"))
            .find("empty Secret value") != std::string::npos);
  // the short schema: a secret and a value at once is refused
  auto both = svc::parse_spec(
      "name: w\ncontainers: [{image: x, env: [{name: A, value: v, secret: s}]}]\n", "w.yaml");
  CHECK_FALSE(both.has_value());
}

TEST_CASE("manifests on container hosts: a ConfigMap, Secret or claim no workload uses is named") {
  const std::string dep =
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n"
      "  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n"
      "    spec:\n      containers:\n      - name: c\n        image: x:1\n"
      "        env: [{name: A, valueFrom: {configMapKeyRef: {name: used, key: a}}}]\n"
      "        volumeMounts: [{name: data, mountPath: /data}]\n"
      "      volumes: [{name: data, persistentVolumeClaim: {claimName: claim}}]\n";
  const std::string used =
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: used}\ndata: {a: x}\n---\n"
      "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: claim}\nspec:\n"
      "  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n---\n";
  auto translate = [](const std::string& text, std::vector<std::string>* unused) {
    auto in = manifest::parse(text, "m.yaml");
    REQUIRE(in.has_value());
    return svc::detail::hosts_spec(svc::spec_from_manifest(*in), false, nullptr, unused);
  };
  CHECK(translate(used + dep, nullptr).has_value());  // everything used
  for (const auto& [doc, what] : std::vector<std::pair<std::string, std::string>>{
           {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: spare}\ndata: {a: x}\n",
            "ConfigMap 'spare' is used by no workload"},
           {"apiVersion: v1\nkind: Secret\nmetadata: {name: spare}\nstringData: {a: s3cr3t}\n",
            "Secret 'spare' is used by no workload"},
           {"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: spare}\nspec: {}\n",
            "PersistentVolumeClaim 'spare' is used by no workload"}}) {
    std::string before = dep + "---\n" + used;
    auto r = translate(before + doc, nullptr);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    CHECK_MESSAGE(r.error().message.rfind("m.yaml:", 0) == 0, r.error().message);  // file:line
    CHECK(r.error().message.find(what) != std::string::npos);
    CHECK(r.error().message.find("s3cr3t") == std::string::npos);
    CHECK(r.error().hint.find("--allow-unused") != std::string::npos);
    // listed instead, when the caller allows it (deploy --allow-unused)
    std::vector<std::string> unused;
    auto ok = translate(before + doc, &unused);
    REQUIRE(ok.has_value());
    REQUIRE(unused.size() == 1);
    CHECK(unused[0].find("/spare") != std::string::npos);
  }
}

TEST_CASE("manifests on container hosts: subPath mounts and projected volumes") {
  auto translate = [](const std::string& mounts, const std::string& vols,
                      svc::detail::HostObjects* out) {
    std::string text =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {app.conf: \"a = 1\\n\", "
        "b.conf: b}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n"
        "stringData: {token: s3cr3t}\n---\napiVersion: apps/v1\nkind: Deployment\n"
        "metadata: {name: d}\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n"
        "    metadata: {labels: {app: d}}\n    spec:\n      containers:\n      - name: c\n"
        "        image: x:1\n        volumeMounts: [" +
        mounts + "]\n      volumes: [" + vols + "]\n";
    auto in = manifest::parse(text, "m.yaml");
    REQUIRE(in.has_value());
    std::map<std::string, svc::detail::HostObjects> extras;
    std::vector<std::string> unused;  // not every test uses both objects
    auto r = svc::detail::hosts_spec(svc::spec_from_manifest(*in), false, &extras, &unused);
    if (out) *out = extras["d"];
    return r;
  };
  svc::detail::HostObjects x;
  auto ok = translate(
      "{name: conf, mountPath: /etc/app}, {name: conf, mountPath: /etc/app.conf, subPath: "
      "app.conf}, {name: conf, mountPath: /etc/b.conf, subPath: b.conf}, {name: host, mountPath: "
      "/data, subPath: sub/dir}, {name: host, mountPath: /all}, {name: scratch, mountPath: /tmp/s, "
      "subPath: s}",
      "{name: conf, configMap: {name: cfg}}, {name: host, hostPath: {path: /srv/}}, "
      "{name: scratch, emptyDir: {}}",
      &x);
  REQUIRE(ok.has_value());
  const auto& v = ok->json["stages"][0]["volumes"];
  REQUIRE(v.size() == 6);        // every mount, also a volume mounted twice without subPath
  REQUIRE(x.files.size() == 1);  // the ConfigMap's files are written once
  std::string dir = x.files[0].dir;
  CHECK(v[0] ==
        nlohmann::json{
            {"name", "conf"}, {"mountPath", "/etc/app"}, {"hostPath", dir}, {"readOnly", true}});
  CHECK(v[1] == nlohmann::json{{"name", "conf-2"},
                               {"mountPath", "/etc/app.conf"},
                               {"hostPath", dir + "/app.conf"},
                               {"readOnly", true}});
  CHECK(v[2]["name"] == "conf-3");
  CHECK(v[2]["hostPath"] == dir + "/b.conf");
  CHECK(v[3] ==
        nlohmann::json{{"name", "host"}, {"mountPath", "/data"}, {"hostPath", "/srv/sub/dir"}});
  CHECK(v[4] == nlohmann::json{{"name", "host-2"}, {"mountPath", "/all"}, {"hostPath", "/srv"}});
  CHECK(v[5]["emptyDir"].is_object());
  // the podman argv binds the single file
  auto plan = svc::render_host_plan(ok->pipeline.stages[0]);
  std::string argv = plan["spec"]["containers"][0]["containers"][0]["argv"].dump();
  CHECK(argv.find("\"" + dir + "/app.conf:/etc/app.conf:ro\"") != std::string::npos);

  // projected: ConfigMap and Secret sources in one directory, 0600 for all (a Secret is there)
  svc::detail::HostObjects y;
  auto proj = translate("{name: all, mountPath: /etc/all}",
                        "{name: all, projected: {sources: [{configMap: {name: cfg, items: [{key: "
                        "app.conf, path: conf/app.conf}]}}, {secret: {name: creds}}]}}",
                        &y);
  REQUIRE(proj.has_value());
  REQUIRE(y.files.size() == 1);
  CHECK(y.files[0].secret);
  CHECK(y.files[0].files == std::vector<std::pair<std::string, std::string>>{
                                {"conf/app.conf", "a = 1\n"}, {"token", "s3cr3t"}});
  CHECK(proj->json.dump().find("s3cr3t") == std::string::npos);

  auto err = [&](const std::string& mounts, const std::string& vols) {
    auto r = translate(mounts, vols, nullptr);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    return r.error().message;
  };
  CHECK(err("{name: c, mountPath: /c, subPath: x}",
            "{name: c, persistentVolumeClaim: {claimName: c}}")
            .find("volumeMounts[0].subPath: subPath on a persistentVolumeClaim volume") !=
        std::string::npos);
  CHECK(err("{name: c, mountPath: /c, subPath: nope}", "{name: c, configMap: {name: cfg}}")
            .find("subPath 'nope' is no file or directory of volume 'c'") != std::string::npos);
  CHECK(err("{name: c, mountPath: /c, subPath: ../x}", "{name: c, hostPath: {path: /srv}}")
            .find("subPath '../x' is not a relative path") != std::string::npos);
  CHECK(err("{name: c, mountPath: /c, subPathExpr: x}", "{name: c, hostPath: {path: /srv}}")
            .find("subPathExpr") != std::string::npos);
  CHECK(err("{name: p, mountPath: /p}",
            "{name: p, projected: {sources: [{downwardAPI: {items: [{path: n, fieldRef: "
            "{fieldPath: metadata.name}}]}}]}}")
            .find("projected.sources[0].downwardAPI") != std::string::npos);
  CHECK(err("{name: p, mountPath: /p}",
            "{name: p, projected: {sources: [{serviceAccountToken: {path: t}}]}}")
            .find("serviceAccountToken") != std::string::npos);
  CHECK(err("{name: p, mountPath: /p}", "{name: p, downwardAPI: {items: []}}")
            .find("a downwardAPI volume is not supported") != std::string::npos);
  CHECK(err("{name: p, mountPath: /p}",
            "{name: p, projected: {sources: [{configMap: {name: cfg}}, {configMap: {name: cfg}}]}}")
            .find("collides") != std::string::npos);
}

TEST_CASE(
    "container hosts: NFS volumes and claims bound to an NFS PersistentVolume are podman volumes") {
  // the short schema: a volume of the local driver, options from server, path and readOnly
  auto spec = svc::parse_spec(
      "name: w\ncontainers: [{image: x}]\nvolumes:\n"
      "  - {name: models, nfs: {server: 10.213.0.1, path: /exports/models}, mountPath: /models, "
      "readOnly: true}\n",
      "w.yaml");
  REQUIRE(spec.has_value());
  CHECK(svc::hosts_unsupported(spec->service).empty());
  auto plan = svc::render_host_plan(spec->service);
  REQUIRE(plan["spec"]["volumes"].size() == 1);
  const auto& vol = plan["spec"]["volumes"][0];
  std::string name = vol["name"];
  CHECK(name.rfind("gedge-nfs-", 0) == 0);
  CHECK(vol["driver"] == "local");
  CHECK(vol["options"] == nlohmann::json{{"type", "nfs"},
                                         {"o", "addr=10.213.0.1,ro"},
                                         {"device", "10.213.0.1:/exports/models"}});
  std::string argv = plan["spec"]["containers"][0]["containers"][0]["argv"].dump();
  CHECK(argv.find("\"" + name + ":/models:ro\"") != std::string::npos);

  // manifests: a claim bound (volumeName) to an NFS PersistentVolume of the files, as GS-MSA has
  const std::string pv =
      "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv-nfs}\nspec:\n"
      "  capacity: {storage: 50Gi}\n  accessModes: [ReadWriteMany]\n"
      "  persistentVolumeReclaimPolicy: Retain\n  nfs: {server: 10.213.0.1, path: "
      "/exports/models}\n";
  const std::string pvc =
      "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: pvc-nfs}\nspec:\n"
      "  accessModes: [ReadWriteMany]\n  resources: {requests: {storage: 50Gi}}\n"
      "  storageClassName: \"\"\n  volumeName: pv-nfs\n";
  auto dep = [](const std::string& vols) {
    return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n"
           "  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n"
           "    spec:\n      containers:\n      - name: c\n        image: x:1\n"
           "        volumeMounts: [{name: data, mountPath: /models, readOnly: true}]\n"
           "      volumes: [" +
           vols + "]\n";
  };
  auto translate = [](const std::string& text) {
    auto in = manifest::parse(text, "m.yaml");
    REQUIRE(in.has_value());
    return svc::detail::hosts_spec(svc::spec_from_manifest(*in), false);
  };
  auto ok = translate(pv + "---\n" + pvc + "---\n" +
                      dep("{name: data, persistentVolumeClaim: {claimName: pvc-nfs}}"));
  REQUIRE(ok.has_value());
  CHECK(ok->json["stages"][0]["volumes"][0] ==
        nlohmann::json{{"name", "data"},
                       {"mountPath", "/models"},
                       {"readOnly", true},
                       {"nfs", {{"server", "10.213.0.1"}, {"path", "/exports/models"}}}});
  // the same export as the short schema's: the same podman volume (shared by the services)
  CHECK(svc::render_host_plan(ok->pipeline.stages[0])["spec"]["volumes"][0]["name"] == name);
  // a pod nfs volume directly
  auto direct = translate(dep("{name: data, nfs: {server: 10.213.0.1, path: /exports/models}}"));
  REQUIRE(direct.has_value());
  CHECK(direct->json["stages"][0]["volumes"][0]["nfs"]["path"] == "/exports/models");
  // a claim with no PersistentVolume in the files: a named podman volume as before
  auto plain = translate(dep("{name: data, persistentVolumeClaim: {claimName: other}}"));
  REQUIRE(plain.has_value());
  CHECK(plain->json["stages"][0]["volumes"][0]["claim"] == "other");
  auto err = [&](const std::string& text) {
    auto r = translate(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    return r.error().message;
  };
  // a PersistentVolume no claim binds, fields that change the mount, other sources: named
  CHECK(err(pv + "---\n" + dep("{name: data, emptyDir: {}}"))
            .find("PersistentVolume 'pv-nfs' is used by no workload") != std::string::npos);
  std::string opts = pv + "  mountOptions: [nfsvers=4.1]\n---\n" + pvc + "---\n" +
                     dep("{name: data, persistentVolumeClaim: {claimName: pvc-nfs}}");
  CHECK(err(opts).find("spec.mountOptions: 'mountOptions' is not supported") != std::string::npos);
  std::string iscsi =
      "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv-nfs}\nspec:\n"
      "  iscsi: {targetPortal: 10.213.0.1, iqn: x, lun: 0}\n---\n" +
      pvc + "---\n" + dep("{name: data, persistentVolumeClaim: {claimName: pvc-nfs}}");
  CHECK(err(iscsi).find("spec.iscsi") != std::string::npos);
  CHECK(err(dep("{name: data, nfs: {server: h, path: /p, mountOptions: x}}"))
            .find("nfs.mountOptions") != std::string::npos);
}

TEST_CASE("container hosts: a macvlan network is a podman network with a range per device") {
  auto spec = svc::parse_spec(
      "name: w\ncontainers: [{image: x, ports: [{containerPort: 80}]}]\n"
      "networks: [{name: cams, type: macvlan, master: eth1, subnet: 10.213.7.0/24}]\n",
      "w.yaml");
  REQUIRE(spec.has_value());
  CHECK(svc::hosts_unsupported(spec->service).empty());
  auto plan = svc::render_host_plan(spec->service);
  REQUIRE(plan["spec"]["networks"].size() == 1);
  const auto& net = plan["spec"]["networks"][0];
  std::string name = net["name"];
  CHECK(name.rfind("gedge-net-", 0) == 0);
  CHECK(name.size() == std::string("gedge-net-").size() + 16);
  CHECK(net["driver"] == "macvlan");
  CHECK(net["parent"] == "eth1");
  CHECK(net["subnet"] == "10.213.7.0/24");
  // joined besides the default network (where the ports are published)
  std::string argv = plan["spec"]["containers"][0]["containers"][0]["argv"].dump();
  CHECK(argv.find(R"("--network","podman","--network",")" + name + "\"") != std::string::npos);
  // on Kubernetes the same network is a NetworkAttachmentDefinition (unchanged)
  auto objs = svc::render_kubernetes(spec->service);
  CHECK(objs[0]["kind"] == "NetworkAttachmentDefinition");
  // what podman cannot make is named
  auto bad = [](const std::string& nets) {
    auto s =
        svc::parse_spec("name: w\ncontainers: [{image: x}]\nnetworks: [" + nets + "]\n", "w.yaml");
    REQUIRE(s.has_value());
    auto u = svc::hosts_unsupported(s->service);
    REQUIRE(u.size() == 1);
    return u[0];
  };
  CHECK(bad("{name: n, type: macvlan, master: eth1}").find("without subnet") != std::string::npos);
  CHECK(bad("{name: n, type: macvlan, master: eth1, subnet: 10.213.7.5/24}")
            .find("'10.213.7.5/24' is not an IPv4 network address") != std::string::npos);
  CHECK(bad("{name: n, type: macvlan, master: eth1, subnet: 'fd00::/64'}")
            .find("not an IPv4 network address") != std::string::npos);
  CHECK(bad("{name: n, type: ipvlan, master: eth1, subnet: 10.213.7.0/24}")
            .starts_with("networks[0] (ipvlan: only a macvlan"));
  // each member of the cluster its own block of the subnet
  CHECK(svc::detail::member_ip_range("10.213.7.0/24", 0, 1).value() == "10.213.7.0/24");
  CHECK(svc::detail::member_ip_range("10.213.7.0/24", 0, 3).value() == "10.213.7.0/26");
  CHECK(svc::detail::member_ip_range("10.213.7.0/24", 2, 3).value() == "10.213.7.128/26");
  CHECK(svc::detail::member_ip_range("10.213.7.0/24", 31, 32).value() == "10.213.7.248/29");
  auto small = svc::detail::member_ip_range("10.213.7.0/24", 0, 33);
  REQUIRE_FALSE(small.has_value());
  CHECK(small.error().code == ErrorCode::usage);
  CHECK(small.error().message.find("too small") != std::string::npos);

  // manifests: a Multus annotation naming a macvlan NetworkAttachmentDefinition of the files
  auto nad = [](const std::string& config) {
    return "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: "
           "cams}\nspec:\n  config: '" +
           config + "'\n---\n";
  };
  const std::string macvlan =
      R"({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth1", "mode": "bridge", )"
      R"("ipam": {"type": "host-local", "subnet": "10.213.7.0/24"}})";
  auto dep = [](const std::string& networks) {
    return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n"
           "  selector: {matchLabels: {app: d}}\n  template:\n    metadata:\n      labels: {app: "
           "d}\n      annotations: {k8s.v1.cni.cncf.io/networks: '" +
           networks + "'}\n    spec:\n      containers:\n      - name: c\n        image: x:1\n";
  };
  auto translate = [](const std::string& text) {
    auto in = manifest::parse(text, "m.yaml");
    REQUIRE(in.has_value());
    return svc::detail::hosts_spec(svc::spec_from_manifest(*in), false);
  };
  for (const std::string sel : {"cams", "default/cams", R"([{"name": "cams"}])"}) {
    auto ok = translate(nad(macvlan) + dep(sel));
    REQUIRE(ok.has_value());
    CHECK(ok->json["stages"][0]["networks"] == nlohmann::json::parse(
                                                   R"([{"name": "cams", "type": "macvlan",
                                                   "master": "eth1", "subnet": "10.213.7.0/24"}])"));
    // the same network as the short schema's: the same podman network
    CHECK(svc::render_host_plan(ok->pipeline.stages[0])["spec"]["networks"][0]["name"] ==
          svc::render_host_plan([] {
            auto s = svc::parse_spec(
                "name: w\ncontainers: [{image: x}]\n"
                "networks: [{name: cams, type: macvlan, master: eth1, subnet: 10.213.7.0/24}]\n",
                "w.yaml");
            return s->service;
          }())["spec"]["networks"][0]["name"]);
  }
  auto err = [&](const std::string& text) {
    auto r = translate(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    return r.error().message;
  };
  CHECK(err(dep("cams")).find("NetworkAttachmentDefinition 'cams' is not in the manifests") !=
        std::string::npos);
  CHECK(err(dep("cams@net1")).find("an interface name ('cams@net1') is not supported") !=
        std::string::npos);
  CHECK(err(nad(macvlan) + dep("other/cams")).find("another namespace") != std::string::npos);
  CHECK(err(nad(macvlan) + dep(R"([{"name": "cams", "ips": ["10.213.7.9/24"]}])"))
            .find("'ips' in a network selection is not supported") != std::string::npos);
  // SR-IOV and other types are refused by name, as are config keys podman cannot honour
  std::string sriov = err(nad(R"({"type": "sriov", "ipam": {}})") + dep("cams"));
  CHECK(sriov.find("m.yaml:5: spec.config: a sriov network (NetworkAttachmentDefinition 'cams') "
                   "is not supported on container hosts") != std::string::npos);
  CHECK(err(nad(R"({"type": "macvlan", "master": "eth1", "ipam": {"type": "dhcp"}})") + dep("cams"))
            .find("host-local") != std::string::npos);
  CHECK(err(nad(R"({"type": "macvlan", "master": "eth1", "ipam": {"type": "host-local", )"
                R"("subnet": "10.213.7.0/24", "gateway": "10.213.7.254"}})") +
            dep("cams"))
            .find("ipam key 'gateway' is not supported") != std::string::npos);
  CHECK(
      err(nad(R"({"type": "macvlan", "master": "eth1", "mode": "vepa", "ipam": {}})") + dep("cams"))
          .find("mode other than bridge") != std::string::npos);
  // a network no workload selects is named like an unused ConfigMap
  CHECK(err(nad(macvlan) +
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, "
            "image: x:1}]\n")
            .find("NetworkAttachmentDefinition 'cams' is used by no workload") !=
        std::string::npos);
}

TEST_CASE(
    "manifests on container hosts: ConfigMap and Secret volumes become files, never recorded") {
  auto translate = [](const std::string& text,
                      std::map<std::string, svc::detail::HostObjects>* files) {
    auto in = manifest::parse(text, "m.yaml");
    REQUIRE(in.has_value());
    return svc::detail::hosts_spec(svc::spec_from_manifest(*in), false, files);
  };
  auto stream = [](const std::string& secret_b64, const std::string& vols) {
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {app.conf: \"a = 1\\n\", "
           "other: x}\n"
           "binaryData: {blob: AAEC}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: "
           "creds}\ndata: {token: " +
           secret_b64 +
           "}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n"
           "  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n   "
           " spec:\n"
           "      containers:\n      - name: c\n        image: x:1\n        volumeMounts: [{name: "
           "conf, mountPath: /etc/app},"
           " {name: sec, mountPath: /run/sec}]\n      volumes: [" +
           vols + "]\n";
  };
  const std::string vols =
      "{name: conf, configMap: {name: cfg, items: [{key: app.conf, path: sub/app.conf}]}}, "
      "{name: sec, secret: {secretName: creds, defaultMode: 384}}";
  std::map<std::string, svc::detail::HostObjects> files;
  auto ok = translate(stream("czNjcjN0LXZhbHVl", vols), &files);  // "s3cr3t-value"
  REQUIRE(ok.has_value());
  const auto& v = ok->json["stages"][0]["volumes"];
  REQUIRE(v.size() == 2);
  CHECK(v[0]["hostPath"].get<std::string>().rfind("/var/lib/gedge/svc/d/conf-", 0) == 0);
  CHECK(v[1]["hostPath"].get<std::string>().rfind("/var/lib/gedge/svc/d/sec-", 0) == 0);
  CHECK(v[0]["readOnly"] == true);
  CHECK(v[1]["readOnly"] == true);
  CHECK(ok->json.dump().find("s3cr3t") ==
        std::string::npos);  // the record holds a digest, never the value
  REQUIRE(files["d"].files.size() == 2);
  CHECK(files["d"].files[0].files ==
        std::vector<std::pair<std::string, std::string>>{{"sub/app.conf", "a = 1\n"}});
  CHECK_FALSE(files["d"].files[0].secret);
  CHECK(files["d"].files[1].files ==
        std::vector<std::pair<std::string, std::string>>{{"token", "s3cr3t-value"}});
  CHECK(files["d"].files[1].secret);
  CHECK(files["d"].files[1].dir == v[1]["hostPath"]);
  // another value: another directory (so a replace), same ConfigMap directory
  auto changed = translate(stream("b3RoZXI=", vols), nullptr);
  REQUIRE(changed.has_value());
  CHECK(changed->json["stages"][0]["volumes"][0]["hostPath"] == v[0]["hostPath"]);
  CHECK(changed->json["stages"][0]["volumes"][1]["hostPath"] != v[1]["hostPath"]);
  auto err = [&](const std::string& text) {
    auto r = translate(text, nullptr);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    return r.error().message;
  };
  CHECK(
      err(stream("czNjcjN0LXZhbHVl",
                 "{name: conf, configMap: {name: nope}}, {name: sec, secret: {secretName: creds}}"))
          .find("ConfigMap 'nope' is not in the manifests") != std::string::npos);
  CHECK(err(stream("czNjcjN0LXZhbHVl",
                   "{name: conf, configMap: {name: cfg}}, {name: sec, secret: {secretName: nope}}"))
            .find("Secret 'nope' is not in the manifests") != std::string::npos);
  CHECK(err(stream("czNjcjN0LXZhbHVl",
                   "{name: conf, configMap: {name: cfg}}, {name: sec, secret: {secretName: creds, "
                   "defaultMode: 420}}"))
            .find("defaultMode") != std::string::npos);
  CHECK(err(stream("czNjcjN0LXZhbHVl",
                   "{name: conf, configMap: {name: cfg, items: [{key: none, path: p}]}}, "
                   "{name: sec, secret: {secretName: creds}}"))
            .find("no key 'none'") != std::string::npos);
  CHECK(err(stream("czNjcjN0LXZhbHVl",
                   "{name: conf, configMap: {name: cfg, items: [{key: other, path: ../x}]}}, "
                   "{name: sec, secret: {secretName: creds}}"))
            .find("'../x' is not a relative path") != std::string::npos);
  std::string bad = err(stream("czNjcjN0LXZhbHVl!", vols));
  CHECK(bad.find("not base64") != std::string::npos);
  CHECK(bad.find("czNjcjN0") == std::string::npos);
}

namespace {

// A TCP listener on an ephemeral loopback port (IPv4 or IPv6); -1 when the family is missing.
struct Listener {
  int fd = -1;
  int port = 0;
  explicit Listener(int family) {
    fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof *a;
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      ::close(fd);
      fd = -1;
      return;
    }
    port = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                    : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  ~Listener() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

TEST_CASE("readiness: a port answers on IPv4, IPv6 and a host name") {
  using svc::detail::hosts::port_answers;
  Listener v4(AF_INET);
  REQUIRE(v4.fd >= 0);
  CHECK(port_answers("127.0.0.1", v4.port));
  // "localhost" is a name: it must be resolved, not read as an address (a device added by name).
  CHECK(port_answers("localhost", v4.port));
  Listener v6(AF_INET6);
  if (v6.fd >= 0) {  // a machine without IPv6 loopback cannot check this half
    CHECK(port_answers("::1", v6.port));
    CHECK(port_answers("[::1]", v6.port));
  } else {
    MESSAGE("no IPv6 loopback here: the IPv6 check was skipped");
  }
  // Nothing listens: no answer, for every form.
  int closed = v4.port;
  ::close(v4.fd);
  v4.fd = -1;
  CHECK_FALSE(port_answers("127.0.0.1", closed));
  CHECK_FALSE(port_answers("localhost", closed));
}

TEST_CASE("tune: a device's container pinned is recorded; a failed pin records nothing") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "inv.db", true);
  REQUIRE(inv);
  auto t = topo::Topology::load(topo::TopologySource::from_arg("numa:2 core:2 pu:1"));
  REQUIRE(t);
  topo::PlanRequest r;
  r.cpuset = "2-3";
  r.numa = 1;
  auto p = topo::plan(*t, r);
  REQUIRE(p);
  std::string applied = "2-3";
  topo::RemoteRun podman = [&](const std::vector<std::string>& argv) -> Result<topo::RemoteOutput> {
    std::string verb = argv.size() > 3 ? argv[3] : "";
    if (verb == "update") return topo::RemoteOutput{0, "web\n", ""};
    if (verb == "inspect") return topo::RemoteOutput{0, applied + "|1|4242\n", ""};
    if (argv[0] == "cat")
      return topo::RemoteOutput{
          0, "Name:\tx\nCpus_allowed_list:\t" + applied + "\nMems_allowed_list:\t1\n", ""};
    return topo::RemoteOutput{1, "", "unexpected"};
  };
  // The kernel reports other CPUs than planned: an error, and no pin recorded.
  applied = "0-3";
  CHECK_FALSE(svc::pin_and_record(*inv, "edge1", "web", *p, podman).has_value());
  CHECK(PinStore(*inv).on_device("edge1")->empty());

  applied = "2-3";
  auto ok = svc::pin_and_record(*inv, "edge1", "web", *p, podman);
  REQUIRE_MESSAGE(ok.has_value(), (ok ? "" : ok.error().message));
  auto pins = PinStore(*inv).on_device("edge1");
  REQUIRE(pins->size() == 1);
  CHECK((*pins)[0].owner == "web");
  CHECK((*pins)[0].cpuset == "2-3");
  CHECK((*pins)[0].mems == "1");

  // What a later plan on that device avoids: every pin but the one being re-pinned.
  REQUIRE(PinStore(*inv).put({"edge1", "db", "0", ""}));
  auto others = svc::recorded_pins(*inv, "edge1", "web");
  REQUIRE(others->size() == 1);
  CHECK((*others)[0].first == "db");
  CHECK(topo::format_list((*others)[0].second) == "0");
  CHECK(svc::recorded_pins(*inv, "edge1")->size() == 2);
  CHECK(svc::recorded_pins(*inv, "edge2")->empty());
  CHECK(svc::recorded_pins(*inv, "")->empty());
}

TEST_CASE("svc table rows: deploy actions and objects, status where/what, removals, --replica") {
  json deploy = json::parse(R"({"dry_run": true, "services": [
    {"name": "web", "state": "planned", "replicas": 2, "actions": [
      {"replica": 0, "device": "edge1", "action": "create", "state": "planned"},
      {"device": "edge2", "container": "gedge-web-5", "action": "remove"}]},
    {"name": "api", "namespace": "shop", "state": "deployed", "replicas": 1,
     "objects": [{"kind": "Deployment", "name": "api", "action": "configured"}]}]})");
  auto rows = svc::deploy_rows(deploy);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == json{{"service", "web"},
                        {"replica", 0},
                        {"target", "edge1"},
                        {"action", "create"},
                        {"state", "planned"},
                        {"error", ""}});
  CHECK((rows[1]["replica"] == "-" && rows[1]["target"] == "edge2"));
  CHECK((rows[2]["target"] == "Deployment/api" && rows[2]["state"] == "deployed" &&
         rows[2]["action"] == "configured"));
  CHECK(svc::deploy_summary(deploy) ==
        "web: planned (2 replicas, dry run: nothing changed)\n"
        "api: deployed (1 replicas, dry run: nothing changed)");
  CHECK(svc::deploy_rows(json::object()).empty());

  json status = json::parse(R"({"name": "web", "ready": 1, "desired": 2, "state": "degraded",
    "replicas": [{"replica": 0, "device": "edge1", "container": "gedge-web-0"},
                 {"replica": 1, "node": "n1", "pod": "web-7d9f"}]})");
  auto st = svc::status_rows(status);
  REQUIRE(st.size() == 2);
  CHECK((st[0]["where"] == "edge1" && st[0]["what"] == "gedge-web-0"));
  CHECK((st[1]["where"] == "n1" && st[1]["what"] == "web-7d9f"));
  CHECK(svc::status_summary(status) == "web: 1 of 2 ready (degraded)");

  json removed = json::parse(R"({"removed": [
    {"device": "edge1", "containers": ["gedge-web-0"], "state": "removed"},
    {"namespace": "shop", "kind": "Service", "name": "web", "state": "removed"}]})");
  auto rm = svc::removed_rows(removed);
  REQUIRE(rm.size() == 2);
  CHECK((rm[0]["where"] == "edge1" && rm[0]["what"] == json{"gedge-web-0"}));
  CHECK((rm[1]["where"] == "shop" && rm[1]["what"] == "Service/web"));

  svc::LogsRequest lr;
  svc::set_replica(lr, "2");
  CHECK((lr.replica == 2 && lr.pod == "2"));
  svc::LogsRequest pod;
  svc::set_replica(pod, "web-7d9f-x2kq");
  CHECK((!pod.replica && pod.pod == "web-7d9f-x2kq"));
  svc::LogsRequest huge;
  svc::set_replica(huge, "1234567890");  // not a replica number: a pod name
  CHECK((!huge.replica && huge.pod == "1234567890"));
}
