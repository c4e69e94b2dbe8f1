// manifest: Kubernetes inputs (streams, Lists, arrays, directories), kinds, and the demand
// kube-scheduler would compute for a pod.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "gedge/manifest.hpp"
#include "test_helpers.hpp"

using namespace gedge;
using nlohmann::json;

namespace {

const std::filesystem::path kData =
    std::filesystem::path(gedge::test::source_dir()) / "tests/data/manifests";
constexpr double MiB = 1024.0 * 1024.0;

manifest::Input must(const std::string& text) {
  auto r = manifest::parse(text, "m.yaml");
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  return *r;
}

std::string error_of(const std::string& text, manifest::LoadOptions o = {}) {
  auto r = manifest::parse(text, "m.yaml", o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == ErrorCode::usage);
  return r.error().message;
}

manifest::Demand demand(const std::string& text) {
  auto in = must(text);
  REQUIRE(in.workloads().size() == 1);
  auto d = manifest::demand_of(*in.workloads()[0]);
  REQUIRE_MESSAGE(d.has_value(), d.error().message);
  return *d;
}

const char* kPod =
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n";

}  // namespace

TEST_CASE(
    "detection: gedge's format keeps working, Kubernetes objects are recognised by apiVersion") {
  auto g = must("name: web\ncontainers: [nginx:1]\n");
  CHECK(g.is_gedge);
  CHECK(must("apiVersion: gedge/v1\nkind: Service\nname: web\ncontainers: [nginx:1]\n").is_gedge);
  auto k = must(std::string("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n") + kPod);
  CHECK_FALSE(k.is_gedge);
  REQUIRE(k.objects.size() == 2);
  CHECK(k.objects[0].role == manifest::Role::companion);
  CHECK(k.objects[1].role == manifest::Role::workload);
  CHECK(k.objects[1].where() == "m.yaml:4");
  CHECK(k.workloads().size() == 1);
}

TEST_CASE("streams, Lists, arrays and empty documents") {
  auto in = must(std::string("---\n---\n# nothing\n---\n") + kPod + "---\n");
  CHECK(in.objects.size() == 1);
  json pod = json::parse(
      R"({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})");
  auto list = must(json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", {pod}}}.dump());
  REQUIRE(list.objects.size() == 1);
  CHECK(list.objects[0].json() == pod);
  CHECK(must(json::array({pod}).dump()).objects.size() == 1);
  CHECK(must(list.canonical_text()).objects[0].json() == pod);  // what the queue stores reads back
}

TEST_CASE("errors name file, line and kind") {
  CHECK(error_of(std::string(kPod) +
                 "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
            .starts_with("m.yaml:8: kind: unknown kind 'Widget' (apiVersion example.com/v1)"));
  manifest::LoadOptions allow;
  allow.allow_unknown_kinds = true;
  auto r = manifest::parse(
      std::string(kPod) + "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
      "m.yaml", allow);
  REQUIRE(r.has_value());
  CHECK(r->objects[1].role == manifest::Role::unknown);
  CHECK(error_of("apiVersion: v1\nkind: Pod\nspec: {}\n").find("Pod needs metadata.name") !=
        std::string::npos);
  CHECK(error_of(std::string("name: web\ncontainers: [i]\n---\n") + kPod)
            .find("mixed with Kubernetes objects") != std::string::npos);
  CHECK(error_of(std::string(kPod) + "---\n" + kPod).find("appears twice") != std::string::npos);
  CHECK(error_of("name: a\n---\nname: b\n").starts_with("m.yaml:2: more than one YAML document"));
  CHECK(error_of("").find("empty") != std::string::npos);
}

TEST_CASE("a directory: every yaml, yml and json file in name order") {
  auto in = manifest::load(kData / "gs-msa");
  REQUIRE_MESSAGE(in.has_value(), in.error().message);
  std::vector<std::string> names;
  for (const auto& o : in->objects) names.push_back(o.kind + "/" + o.name);
  CHECK(names == std::vector<std::string>{"PersistentVolume/pv-nfs",
                                          "PersistentVolumeClaim/pvc-nfs", "Deployment/preprocess",
                                          "Deployment/inference", "Deployment/postprocess",
                                          "Service/front"});
  CHECK(in->objects[4].where().ends_with("30-postprocess.yaml:1"));
}

TEST_CASE(
    "demand: containers summed, limits standing in, init containers as Kubernetes computes them") {
  auto in = manifest::load(kData / "gs-msa");
  REQUIRE(in.has_value());
  auto ws = in->workloads();
  REQUIRE(ws.size() == 3);
  auto pre = manifest::demand_of(*ws[0]);
  REQUIRE(pre.has_value());
  CHECK(pre->cpu == doctest::Approx(2.0));            // max(init 2, 0.5 + 0.25)
  CHECK(pre->memory == doctest::Approx(1088 * MiB));  // max(init 256Mi, 1Gi + 64Mi)
  CHECK(pre->replicas == 2);
  auto inf = manifest::demand_of(*ws[1]);
  REQUIRE(inf.has_value());
  CHECK(inf->cpu == 2);
  CHECK(inf->memory == 8 * 1024 * MiB);
  CHECK(inf->gpu == 1);
  CHECK(inf->node_selector == std::map<std::string, std::string>{{"accelerator", "nvidia"}});
  REQUIRE(inf->tolerations.size() == 1);
  CHECK(inf->tolerations[0].op == "Exists");
  auto post = manifest::demand_of(*ws[2]);
  REQUIRE(post.has_value());
  CHECK(post->after == std::vector<std::string>{"inference"});
  REQUIRE(post->affinity.size() == 1);
  CHECK(post->affinity[0][0].values == std::vector<std::string>{"local", "neighbor"});
}

TEST_CASE("demand: sidecars (restartPolicy Always init containers) add up, overhead is added") {
  auto d = demand(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
      "  overhead: {cpu: 100m}\n"
      "  initContainers:\n"
      "    - {name: side, image: i, restartPolicy: Always, resources: {requests: {cpu: '1'}}}\n"
      "    - {name: init, image: i, resources: {requests: {cpu: '2'}}}\n"
      "  containers:\n"
      "    - {name: c, image: i, resources: {requests: {cpu: 500m}}}\n");
  // max(0.5 + 1 sidecar, init 2 + 1 sidecar started before it) + 0.1 overhead
  CHECK(d.cpu == doctest::Approx(3.1));
  auto j = demand(
      "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  parallelism: 3\n  "
      "template:\n    spec:\n"
      "      containers: [{name: c, image: i, resources: {limits: {nvidia.com/gpu: 2, "
      "example.com/fpga: 1}}}]\n");
  CHECK(j.replicas == 3);
  CHECK(j.gpu == 2);
  CHECK(j.extended.at("example.com/fpga") == 1);
}

TEST_CASE("demand: bad quantities and affinity name file, line and field") {
  auto in = must(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
      "    - {name: c, image: i, resources: {requests: {memory: 512K}}}\n");
  auto d = manifest::demand_of(*in.workloads()[0]);
  REQUIRE_FALSE(d.has_value());
  CHECK(d.error().message.starts_with(
      "m.yaml:6: spec.containers[0].resources.requests.memory: invalid quantity '512K'"));
  auto big = must(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
      "    - {name: c, image: i, resources: {limits: {memory: 20Ei}}}\n");
  CHECK(manifest::demand_of(*big.workloads()[0]).error().message.find("out of range") !=
        std::string::npos);
  auto aff = must(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n"
      "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
      "        nodeSelectorTerms:\n          - matchExpressions: [{key: a, operator: Near}]\n");
  CHECK(manifest::demand_of(*aff.workloads()[0]).error().message.find("unknown operator 'Near'") !=
        std::string::npos);
}

TEST_CASE("gschConfig env is read from the first container") {
  auto d = demand(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: c\n      "
      "image: i\n"
      "      env:\n        - name: gschConfig\n"
      "          value: '{ \"type\" : \"global\", \"targetClusters\": "
      "\"[cluster1,[cluster2,cluster3]]\", "
      "\"priority\" : \"GLowLatencyPriority\" }'\n");
  REQUIRE(d.gsch.has_value());
  CHECK(d.gsch->priority == "GLowLatencyPriority");
  CHECK(d.gsch->target_clusters == "[cluster1,[cluster2,cluster3]]");
}
