// Placement core: each policy's semantics on small hand-made worlds, the pipeline optimiser
// against exhaustive search on random seeded instances, loaders and their bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "gedge/sched.hpp"

using namespace gedge;
using namespace gedge::sched;
using nlohmann::json;

namespace {

constexpr double GiB = 1073741824.0;

Node node(std::string name, double cpu, double mem_gib, double gpu, double used_cpu = 0,
          double used_mem_gib = 0, double used_gpu = 0, bool ready = true) {
  Node n;
  n.name = std::move(name);
  n.ready = ready;
  n.capacity = {cpu, mem_gib * GiB, gpu};
  n.allocated = {used_cpu, used_mem_gib * GiB, used_gpu};
  return n;
}

Workload yolo() {
  auto wl = parse_workload(R"(
kind: Pipeline
name: yolo
source: cam-1
stages:
  - name: pre
    containers: [10.213.0.1:5000/yolo/pre:1]
    resources: {cpu: 500m, memory: 512Mi}
    compute_ms: 8
    output_mb: 1.2
  - name: infer
    containers: [10.213.0.1:5000/yolo/infer:1]
    resources: {cpu: 2, memory: 4Gi, gpu: 1}
    compute_ms: {gpu: 25, cpu: 400}
    output_mb: 0.1
  - name: post
    containers: [10.213.0.1:5000/yolo/post:1]
    resources: {cpu: 500m, memory: 256Mi}
    compute_ms: 5
)",
                           "yolo.yaml");
  REQUIRE_MESSAGE(wl.has_value(), wl.error().message);
  return *wl;
}

Workload single(double cpu, double gpu = 0, double compute = 1) {
  Workload wl;
  wl.kind = "Service";
  wl.name = "svc";
  Stage s;
  s.name = "svc";
  s.request = {cpu, 0.25 * GiB, gpu};
  s.compute_ms = compute;
  wl.stages.push_back(s);
  REQUIRE(resolve(wl).has_value());
  return wl;
}

// Three clusters: near (2 small nodes), mid (1 GPU node), far (cloud, big GPU node).
World three() {
  World w;
  w.clusters.push_back(
      Cluster{"near", "local", {node("n1", 4, 8, 0, 1, 2), node("n2", 4, 8, 0, 3, 6)}});
  w.clusters.push_back(Cluster{"mid", "neighbor", {node("g1", 8, 16, 1, 2, 4)}});
  w.clusters.push_back(Cluster{"far", "cloud", {node("c1", 32, 128, 4, 4, 16)}});
  w.latency.intra_cluster = 0.3;
  w.latency.links = {{"cam-1", "near", 2}, {"cam-1", "mid", 6}, {"cam-1", "far", 40},
                     {"near", "mid", 5},   {"near", "far", 38}, {"mid", "far", 35}};
  finalize(w);
  return w;
}

Request req(Policy p) {
  Request r;
  r.policy = p;
  r.source = "cam-1";
  return r;
}

Node& at(World& w, const std::string& c, const std::string& n) {
  for (auto& cl : w.clusters)
    for (auto& nd : cl.nodes)
      if (cl.name == c && nd.name == n) return nd;
  FAIL("no node ", c, "/", n);
  throw 0;
}

std::string where(const Placement& p, std::size_t i = 0) {
  return p.placements[i].cluster + "/" + p.placements[i].node;
}

}  // namespace

TEST_CASE("quantities") {
  CHECK(*parse_cpu(json("500m")) == doctest::Approx(0.5));
  CHECK(*parse_cpu(json(2)) == 2);
  CHECK(*parse_memory(json("4Gi")) == 4 * GiB);
  CHECK(*parse_memory(json("1G")) == 1e9);
  CHECK_FALSE(parse_cpu(json("lots")).has_value());
  CHECK_FALSE(parse_memory(json("-1Gi")).has_value());
  CHECK_FALSE(parse_cpu(json(-1)).has_value());
}

TEST_CASE("state loader is strict") {
  const char* good = R"({"clusters": [{"name": "edge-a", "tier": "local",
     "nodes": [{"name": "n1", "ready": true, "labels": {"gpu": "none"},
                "capacity":  {"cpu": 4,   "memory": "8Gi", "gpu": 0},
                "allocated": {"cpu": 1.5, "memory": "2Gi", "gpu": 0}}]}],
   "latency_ms": {"intra_cluster": 0.3,
     "links": [{"a": "cam-1", "b": "edge-a", "ms": 2.0},
               {"a": "edge-a", "b": "cloud", "ms": 40},
               {"a": "cam-1", "b": "edge-a/n1", "ms": 1.2}]},
   "bandwidth_mbps": {"intra_cluster": 10000, "links": [{"a": "edge-a", "b": "cloud", "mbps": 200}]}})";
  auto w = parse_state(good);
  REQUIRE_MESSAGE(w.has_value(), w.error().message);
  CHECK(w->clusters[0].nodes[0].capacity.memory == 8 * GiB);
  SUBCASE("most specific link wins, links are symmetric") {
    CHECK(*latency_ms(*w, "cam-1", "edge-a/n1") == 1.2);
    CHECK(*latency_ms(*w, "edge-a/n1", "cam-1") == 1.2);
    CHECK(*latency_ms(*w, "cloud", "edge-a/n1") == 40);
    CHECK_FALSE(latency_ms(*w, "cam-2", "edge-a/n1").has_value());
    CHECK(*bandwidth_mbps(*w, "edge-a/n1", "cloud") == 200);
  }
  SUBCASE("bad input") {
    auto bad = [](std::string text, std::string needle) {
      auto r = parse_state(text, "s.json");
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code == ErrorCode::usage);
      CHECK_MESSAGE(r.error().message.find(needle) != std::string::npos, r.error().message);
    };
    std::string base =
        R"({"clusters": [{"name": "a", "nodes": [{"name": "n", "capacity": {"cpu": CPU}}]}], "latency_ms": {}})";
    auto with = [&](std::string cpu) {
      std::string t = base;
      return t.replace(t.find("CPU"), 3, cpu);
    };
    bad(with("-4"), "negative");
    bad(with("NaN"), "not valid JSON");
    bad(with("1e300"), "out of range");
    bad(with("\"four\""), "invalid quantity 'four'");
    bad(R"({"clusters": [], "latency_ms": {}, "latency_ms": {}})", "duplicate key 'latency_ms'");
    bad(R"({"clusters": [], "latency_ms": {}, "extra": 1})", "unknown field 'extra'");
    bad(R"({"clusters": [{"name": "a", "nodes": [{"name": "n", "capacity": {"cpu": 1}, "colour": "red"}]}], "latency_ms": {}})",
        "unknown field 'colour'");
    bad(R"({"clusters": [{"name": "a", "nodes": []}], "latency_ms": {"links": [{"a": "a/x", "b": "cam", "ms": 1}]}})",
        "unknown node 'a/x'");
    bad(R"({"clusters": [{"name": "a", "nodes": []}]})", "missing field 'latency_ms'");
    bad(R"({"clusters": [{"name": "a", "nodes": []}, {"name": "a", "nodes": []}], "latency_ms": {}})",
        "duplicate cluster");
  }
}

TEST_CASE("workload loader") {
  Workload wl = yolo();
  REQUIRE(wl.stages.size() == 3);
  CHECK(wl.source == "cam-1");
  CHECK(wl.is_chain());
  CHECK(wl.stages[0].request.cpu == doctest::Approx(0.5));
  CHECK(wl.stages[1].request.gpu == 1);
  CHECK(*wl.stages[1].compute_gpu_ms == 25);
  CHECK(*wl.stages[1].compute_cpu_ms == 400);
  CHECK(wl.stages[0].output_mb == doctest::Approx(1.2));

  SUBCASE("containers' requests are summed when resources are absent; other fields tolerated") {
    auto s = parse_workload(R"(
name: web
replicas: 2
ports: [80]
containers:
  - image: 10.213.0.1:5000/gedge/busybox:1.0
    resources: {requests: {cpu: 250m, memory: 64Mi}}
  - image: 10.213.0.1:5000/gedge/busybox:1.0
    resources: {requests: {cpu: 250m, memory: 64Mi}, acceleration: {compute: {gpu: 1}}}
scheduleHint: {preferred: local, nodeSelector: {zone: a}}
)");
    REQUIRE_MESSAGE(s.has_value(), s.error().message);
    CHECK(s->stages.size() == 1);
    CHECK(s->stages[0].request.cpu == doctest::Approx(0.5));
    CHECK(s->stages[0].request.gpu == 1);
    CHECK(s->stages[0].tier_hint == "local");
    CHECK(s->stages[0].node_selector.at("zone") == "a");
  }
  SUBCASE("bad pipelines") {
    auto bad = [](const char* text, std::string needle) {
      auto r = parse_workload(text, "p.yaml");
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code == ErrorCode::usage);
      CHECK_MESSAGE(r.error().message.find(needle) != std::string::npos, r.error().message);
    };
    bad("kind: Pipeline\nstages:\n - {name: a, after: [b]}\n - {name: b, after: [a]}\n", "cycle");
    bad("kind: Pipeline\nstages:\n - {name: a, after: [zz]}\n", "unknown stage 'zz'");
    bad("kind: Pipeline\nstages:\n - {name: a}\n - {name: a}\n", "duplicate stage");
    bad("kind: Pipeline\nstages:\n - {name: a, compute_ms: fast}\n",
        "p.yaml:3: stages[0].compute_ms");
    bad("kind: Pipeline\nstages:\n - {name: a, resources: {cpu: 1, disk: 3}}\n",
        "unknown resource 'disk'");
    bad("kind: Pipeline\nstages: [\n", "malformed YAML");
  }
  SUBCASE("after: builds a DAG") {
    auto r = parse_workload(
        "kind: Pipeline\nstages:\n - {name: a}\n - {name: b, after: [a]}\n - {name: c, after: "
        "[a]}\n"
        " - {name: d, after: [b, c]}\n");
    REQUIRE(r.has_value());
    CHECK_FALSE(r->is_chain());
    CHECK(r->preds[3] == std::vector<int>{1, 2});
  }
}

TEST_CASE("levels: JSON, GS-Scheduler's Python literal and the bare form, never evaluated") {
  auto l = parse_levels(R"(["c1", ["c2", "c3"], ["c4"]])");
  REQUIRE(l.has_value());
  CHECK(l->size() == 3);
  CHECK((*l)[1] == std::vector<std::string>{"c2", "c3"});
  CHECK((*l)[2] == std::vector<std::string>{"c4"});
  for (const char* form : {R"(["c1", ["c2", "c3"], "c4"])", "['c1', ['c2', 'c3'], 'c4']",
                           "[c1,[c2,c3],c4]", " [ c1 , [ 'c2' , \"c3\" ] , c4 ] "}) {
    auto f = parse_levels(form);
    REQUIRE_MESSAGE(f.has_value(), form);
    CHECK(*f == Levels{{"c1"}, {"c2", "c3"}, {"c4"}});
  }
  CHECK(*parse_levels(R"(['it\'s'])") == Levels{{"it's"}});
  CHECK_FALSE(parse_levels("__import__('os').system('id')").has_value());
  CHECK_FALSE(parse_levels("[c1, c2").has_value());
  CHECK_FALSE(parse_levels("[c1 c2]").has_value());
  CHECK_FALSE(parse_levels("[c1, []]").has_value());
  CHECK_FALSE(parse_levels("[c1]; rm -rf /").has_value());
  CHECK_FALSE(parse_levels("[]").has_value());
  CHECK_FALSE(parse_levels(R"(["c1", [["c2"]]])").has_value());
  CHECK_FALSE(parse_levels(R"({"c1": 1})").has_value());
}

TEST_CASE("low-latency: nearest cluster first, least-allocated node inside, skip infeasible") {
  World w = three();
  auto p = place(w, single(1), req(Policy::low_latency));
  REQUIRE_MESSAGE(p.has_value(), p.error().message);
  CHECK(where(*p) == "near/n1");  // n1 is emptier than n2
  CHECK(p->placements[0].policy_terms["rtt_ms"] == 2.0);
  // Needs 2 cpus: near/n1 has 3 free; 4 does not fit near at all -> mid (6 ms) before far.
  p = place(w, single(4), req(Policy::low_latency));
  REQUIRE(p.has_value());
  CHECK(where(*p) == "mid/g1");
  // A GPU request skips near (no GPU).
  p = place(w, single(1, 1), req(Policy::low_latency));
  REQUIRE(p.has_value());
  CHECK(where(*p) == "mid/g1");
  // Without a source it is a usage error.
  Request r = req(Policy::low_latency);
  r.source = "";
  CHECK(place(w, single(1), r).error().code == ErrorCode::usage);
  // A cluster with feasible nodes but no RTT from the source is an error, not a zero.
  w.latency.links.erase(w.latency.links.begin() + 1);  // cam-1 <-> mid
  finalize(w);
  auto e = place(w, single(1), req(Policy::low_latency));
  REQUIRE_FALSE(e.has_value());
  CHECK(e.error().code == ErrorCode::usage);
  CHECK(e.error().message.find("mid") != std::string::npos);
}

TEST_CASE("least-allocated: GS MostRequest's real score, GPU bonus only for GPU requests") {
  World w = three();
  auto p = place(w, single(1), req(Policy::least_allocated));
  REQUIRE(p.has_value());
  // scores: near/n1 (100-25)+(100-25)=150; g1 (100-25)+(100-25)=150; c1 (100-12.5)+(100-12.5)=175
  CHECK(where(*p) == "far/c1");
  CHECK(p->placements[0].score == doctest::Approx(175));
  // With a GPU request: 200 x free GPUs dominates: c1 has 4 free -> 175 + 800.
  p = place(w, single(1, 1), req(Policy::least_allocated));
  REQUIRE(p.has_value());
  CHECK(where(*p) == "far/c1");
  CHECK(p->placements[0].score == doctest::Approx(975));
  // Weights are configurable: cpu only, and the tie near/n1 vs mid/g1 breaks by name.
  Request r = req(Policy::least_allocated);
  r.weights = {1, 0, 0};
  at(w, "near", "n1").allocated.cpu = 0.5;  // near/n1 cpu% 12.5 == far/c1 cpu% 12.5
  auto q = place(w, single(1), r);
  REQUIRE(q.has_value());
  CHECK(where(*q) == "far/c1");  // "far/c1" < "near/n1"
}

TEST_CASE("most-allocated bin-packs") {
  World w = three();
  auto p = place(w, single(1), req(Policy::most_allocated));
  REQUIRE(p.has_value());
  CHECK(where(*p) == "near/n2");  // 3/4 cpu and 6/8 memory used: fullest that still fits
}

TEST_CASE("select-clusters: GS level rules") {
  World w = three();
  Request r = req(Policy::select_clusters);
  SUBCASE("plain levels in order, first feasible wins") {
    r.levels = *parse_levels(R"(["far", "near"])");
    auto p = place(w, single(1), r);
    REQUIRE(p.has_value());
    CHECK(where(*p) == "far/c1");
    CHECK(p->placements[0].policy_terms["level"] == 1);
  }
  SUBCASE("an infeasible level falls through to the next") {
    r.levels = *parse_levels(R"(["near", ["far", "mid"]])");
    auto p = place(w, single(1, 1), r);  // near has no GPU
    REQUIRE(p.has_value());
    CHECK(where(*p) == "mid/g1");  // nested level ranked by RTT: mid 6 ms < far 40 ms
    CHECK(p->placements[0].policy_terms["level"] == 2);
  }
  SUBCASE("the nested level's secondary policy is configurable") {
    r.levels = *parse_levels(R"([["mid", "far"]])");
    r.rank = Policy::least_allocated;
    auto p = place(w, single(1, 1), r);
    REQUIRE(p.has_value());
    CHECK(where(*p) == "far/c1");
  }
  SUBCASE("a one-element nested list is a level (GS ignored it)") {
    r.levels = *parse_levels(R"([["mid"]])");
    auto p = place(w, single(1), r);
    REQUIRE(p.has_value());
    CHECK(where(*p) == "mid/g1");
  }
  SUBCASE("nodes outside the levels are rejected with a reason; nothing fits -> summary") {
    r.levels = *parse_levels(R"(["near"])");
    auto p = place(w, single(1, 1), r);
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().code == ErrorCode::failure);
    CHECK(p.error().message ==
          "0/4 nodes fit stage 'svc': 2 insufficient gpu, 2 not in --clusters");
  }
  SUBCASE("unknown cluster -> not found; missing --clusters -> usage") {
    r.levels = *parse_levels(R"(["nowhere"])");
    CHECK(place(w, single(1), r).error().code == ErrorCode::not_found);
    r.levels.clear();
    CHECK(place(w, single(1), r).error().code == ErrorCode::usage);
  }
}

TEST_CASE("node policy still checks feasibility") {
  World w = three();
  Request r = req(Policy::node);
  r.node = "near/n2";
  auto p = place(w, single(1), r);
  REQUIRE(p.has_value());
  CHECK(where(*p) == "near/n2");
  auto q = place(w, single(2), r);  // n2 has 1 cpu free
  REQUIRE_FALSE(q.has_value());
  CHECK(q.error().message.find("1 insufficient cpu") != std::string::npos);
  r.node = "near/zz";
  CHECK(place(w, single(1), r).error().code == ErrorCode::not_found);
}

TEST_CASE("filters: readiness, node selector, tier hint") {
  World w = three();
  at(w, "mid", "g1").ready = false;
  at(w, "near", "n2").labels["zone"] = "a";
  finalize(w);
  Workload wl = single(0.5);
  wl.stages[0].node_selector["zone"] = "a";
  auto p = place(w, wl, req(Policy::least_allocated));
  REQUIRE(p.has_value());
  CHECK(where(*p) == "near/n2");
  bool saw_not_ready = false;
  for (const auto& r : p->rejected) saw_not_ready |= r.node == "g1" && r.reason == "not ready";
  CHECK(saw_not_ready);
  Workload t = single(0.5);
  t.stages[0].tier_hint = "cloud";
  p = place(w, t, req(Policy::most_allocated));
  REQUIRE(p.has_value());
  CHECK(where(*p) == "far/c1");
  t.stages[0].request.cpu = 100;  // fits nowhere at all
  CHECK(place(w, t, req(Policy::most_allocated)).error().code == ErrorCode::failure);
}

TEST_CASE("pipeline: YOLO placed jointly, e2e by the one cost model") {
  World w = three();
  Workload wl = yolo();
  auto p = place(w, wl, req(Policy::pipeline));
  REQUIRE_MESSAGE(p.has_value(), p.error().message);
  CHECK(p->method == "dp");
  auto best = place_exhaustive(w, wl, "cam-1");
  REQUIRE(best.has_value());
  REQUIRE(best->has_value());
  CHECK(*p->e2e_ms == doctest::Approx((*best)->second));
  // pre near then infer on mid costs 2 + 8 + 5 + 25 + 5 = 45; all three on mid's GPU node
  // costs 6 + 8 + 25 + 5 = 44: the joint optimum moves pre next to infer.
  CHECK(*p->e2e_ms == doctest::Approx(44));
  CHECK(p->placements[0].cluster == "mid");
  CHECK(p->placements[1].cluster == "mid");
  CHECK(p->placements[1].gpu);
  // Every policy reports e2e_ms with the same model; per-stage low-latency is worse here.
  auto ll = place(w, wl, req(Policy::low_latency));
  REQUIRE(ll.has_value());
  REQUIRE(ll->e2e_ms.has_value());
  CHECK(*ll->e2e_ms >= *p->e2e_ms);
  // Deterministic: same input, byte-identical JSON.
  CHECK(to_json(*p).dump() == to_json(*place(w, wl, req(Policy::pipeline))).dump());
}

TEST_CASE("pipeline: the CPU variant when no GPU is free; missing links are errors") {
  World w = three();
  at(w, "mid", "g1").allocated.gpu = 1;
  at(w, "far", "c1").allocated.gpu = 4;
  finalize(w);
  auto p = place(w, yolo(), req(Policy::pipeline));
  REQUIRE(p.has_value());
  CHECK_FALSE(p->placements[1].gpu);
  CHECK(p->placements[1].terms.compute_ms == 400);
  World m = three();
  m.latency.links.pop_back();  // mid <-> far
  finalize(m);
  auto e = place(m, yolo(), req(Policy::pipeline));
  REQUIRE_FALSE(e.has_value());
  CHECK(e.error().code == ErrorCode::usage);
  CHECK(e.error().message.find("no latency link between clusters 'far' and 'mid'") !=
        std::string::npos);
}

TEST_CASE("pipeline: capacity coupling is solved exactly (branch and bound)") {
  // One near node that can hold any one stage but not two: the DP wants all three there.
  World w;
  w.clusters.push_back(Cluster{"edge", "local", {node("e1", 2, 4, 1)}});
  w.clusters.push_back(Cluster{"cloud", "cloud", {node("c1", 64, 256, 4)}});
  w.latency.intra_cluster = 0.2;
  w.latency.links = {{"cam", "edge", 1}, {"cam", "cloud", 30}, {"edge", "cloud", 30}};
  finalize(w);
  Workload wl;
  wl.kind = "Pipeline";
  for (const char* n : {"a", "b", "c"}) {
    Stage s;
    s.name = n;
    s.request = {1.5, 1 * GiB, 0};
    s.compute_ms = 5;
    wl.stages.push_back(s);
  }
  REQUIRE(resolve(wl).has_value());
  Request r = req(Policy::pipeline);
  r.source = "cam";
  auto p = place(w, wl, r);
  REQUIRE_MESSAGE(p.has_value(), p.error().message);
  CHECK(p->method == "bnb");
  auto best = place_exhaustive(w, wl, "cam");
  REQUIRE(best->has_value());
  CHECK(*p->e2e_ms == doctest::Approx((*best)->second));
}

TEST_CASE("property: pipeline equals exhaustive search on random small instances") {
  int capacitated = 0;
  for (unsigned seed = 1; seed <= 120; ++seed) {
    std::mt19937 rng(seed);
    auto uni = [&](double a, double b) {
      return std::uniform_real_distribution<double>(a, b)(rng);
    };
    auto pick = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
    World w;
    int C = pick(2, 4);
    std::vector<std::string> names;
    for (int c = 0; c < C; ++c) {
      Cluster cl{"c" + std::to_string(c), c == C - 1 ? "cloud" : "local", {}};
      int N = pick(1, 3);
      for (int k = 0; k < N; ++k)
        cl.nodes.push_back(node("n" + std::to_string(k), pick(1, 6), pick(2, 16), pick(0, 2),
                                uni(0, 1), uni(0, 1)));
      names.push_back(cl.name);
      w.clusters.push_back(cl);
    }
    w.latency.intra_cluster = uni(0.1, 0.5);
    LinkTable bw;
    bw.intra_cluster = 10000;
    for (int a = 0; a < C; ++a) {
      w.latency.links.push_back({"src", names[a], uni(1, 50)});
      for (int b = a + 1; b < C; ++b) {
        w.latency.links.push_back({names[a], names[b], uni(2, 60)});
        bw.links.push_back({names[a], names[b], uni(100, 2000)});
      }
    }
    // Sometimes a node-specific link (exercises the "special node" path).
    if (pick(0, 1)) w.latency.links.push_back({"src", names[0] + "/n0", uni(0.5, 3)});
    if (pick(0, 2) == 0 && C > 1)
      w.latency.links.push_back({names[0] + "/n0", names[1], uni(1, 5)});
    if (pick(0, 1)) w.bandwidth = bw;
    finalize(w);
    Workload wl;
    wl.kind = "Pipeline";
    int K = pick(1, 4);
    for (int i = 0; i < K; ++i) {
      Stage s;
      s.name = "s" + std::to_string(i);
      s.request = {uni(0.2, 2.5), uni(0.1, 4) * GiB, 0};
      int kind = pick(0, 2);
      if (kind == 0) s.compute_ms = uni(1, 30);
      if (kind == 1) s.compute_gpu_ms = uni(5, 30), s.compute_cpu_ms = uni(50, 400);
      if (kind == 2) s.compute_ms = uni(5, 30), s.request.gpu = 1;
      s.output_mb = uni(0, 2);
      wl.stages.push_back(s);
    }
    REQUIRE(resolve(wl).has_value());
    Request r = req(Policy::pipeline);
    r.source = "src";
    auto best = place_exhaustive(w, wl, "src");
    REQUIRE_MESSAGE(best.has_value(), best.error().message);
    auto p = place(w, wl, r);
    if (!best->has_value()) {
      CHECK_FALSE(p.has_value());
      continue;
    }
    REQUIRE_MESSAGE(p.has_value(), "seed ", seed, ": ", p.error().message);
    CHECK_MESSAGE(*p->e2e_ms == doctest::Approx((*best)->second).epsilon(1e-9), "seed ", seed,
                  " method ", p->method);
    if (p->method != "dp") ++capacitated;
  }
  CHECK(capacitated > 0);  // the random instances do exercise capacity coupling
}

TEST_CASE("pipeline on a DAG: exhaustive when small, longest path cost") {
  World w = three();
  auto wl = parse_workload(R"(
kind: Pipeline
source: cam-1
stages:
  - {name: split, compute_ms: 1, output_mb: 0}
  - {name: left, after: [split], compute_ms: 10}
  - {name: right, after: [split], compute_ms: 3}
  - {name: join, after: [left, right], compute_ms: 1}
)");
  REQUIRE(wl.has_value());
  auto p = place(w, *wl, req(Policy::pipeline));
  REQUIRE_MESSAGE(p.has_value(), p.error().message);
  CHECK(p->method == "exhaustive");
  CHECK(*p->e2e_ms == doctest::Approx(2 + 1 + 10 + 1));  // all on one near node
}

TEST_CASE("explain lists candidates with terms") {
  World w = three();
  Request r = req(Policy::pipeline);
  r.explain = true;
  auto p = place(w, yolo(), r);
  REQUIRE(p.has_value());
  CHECK_FALSE(p->candidates.empty());
  bool any = false;
  for (const auto& c : p->candidates)
    if (c.stage == "infer" && c.cluster == "mid") any = c.terms.contains("best_e2e_ms");
  CHECK(any);
  json j = to_json(*p);
  CHECK(j["candidates"].is_array());
  CHECK(j["rejected"].is_array());
  CHECK(j["placements"][0]["terms"].contains("compute_ms"));
}

TEST_CASE(
    "pipeline: rejection list in order (filters, then tier hint), failure summary, reused "
    "buffers") {
  // Flat order is far/c1, mid/g1, near/n1, near/n2 (clusters and nodes sorted by name).
  World w = three();
  at(w, "near", "n1").allocated.cpu = 3;  // pre (0.5) fits, infer's CPU variant (2) does not
  at(w, "near", "n2").ready = false;
  at(w, "mid", "g1").labels["zone"] = "a";
  at(w, "far", "c1").labels["zone"] = "a";
  finalize(w);
  Workload wl = yolo();
  wl.stages[0].tier_hint = "neighbor";
  wl.stages[2].node_selector["zone"] = "a";
  auto rej = [](const Placement& p) {
    std::vector<std::string> v;
    for (const auto& r : p.rejected)
      v.push_back(r.stage + " " + r.cluster + "/" + r.node + ": " + r.reason);
    return v;
  };
  auto p = place(w, wl, req(Policy::pipeline));
  REQUIRE_MESSAGE(p.has_value(), p.error().message);
  CHECK(where(*p, 0) == "mid/g1");
  const std::vector<std::string> want = {
      "pre near/n2: not ready",
      "pre far/c1: not in preferred tier 'neighbor'",
      "pre near/n1: not in preferred tier 'neighbor'",
      "infer near/n1: insufficient cpu",
      "infer near/n2: not ready",
      "post near/n1: node selector not matched",
      "post near/n2: not ready",
  };
  CHECK(rej(*p) == want);
  const std::string first = to_json(*p).dump();

  // Without the rejection list: same placement; the tier hint's drops are still listed.
  Request quiet = req(Policy::pipeline);
  quiet.record_rejections = false;
  auto q = place(w, wl, quiet);
  REQUIRE(q.has_value());
  CHECK(to_json(*q)["placements"] == to_json(*p)["placements"]);
  CHECK(rej(*q) == std::vector<std::string>{want[1], want[2]});

  // A stage that fits nowhere: the summary counts every node's first failing filter.
  Workload big = wl;
  big.stages[2].request.cpu = 100;
  for (bool record : {true, false}) {
    Request r = req(Policy::pipeline);
    r.record_rejections = record;
    auto e = place(w, big, r);
    REQUIRE_FALSE(e.has_value());
    CHECK(e.error().code == ErrorCode::failure);
    CHECK(
        e.error().message ==
        "0/4 nodes fit stage 'post': 2 insufficient cpu, 1 node selector not matched, 1 not ready");
  }

  // The optimiser keeps its buffers between calls: a larger world in between changes nothing.
  World large;
  large.latency.intra_cluster = 0.5;
  for (int c = 0; c < 6; ++c) {
    Cluster cl{"k" + std::to_string(c), c < 3 ? "local" : "cloud", {}};
    for (int n = 0; n < 40; ++n) {
      cl.nodes.push_back(node("m" + std::to_string(n), 8, 16, n % 3 == 0 ? 1 : 0, n % 8, 1));
      if (n % 2 == 0) cl.nodes.back().labels["zone"] = "a";
    }
    large.clusters.push_back(cl);
    large.latency.links.push_back({"cam-1", cl.name, 3.0 + c});
    for (int d = 0; d < c; ++d)
      large.latency.links.push_back({cl.name, "k" + std::to_string(d), 4.0 + c + d});
  }
  finalize(large);
  auto l1 = place(large, wl, req(Policy::pipeline));
  REQUIRE_MESSAGE(l1.has_value(), l1.error().message);
  auto again = place(w, wl, req(Policy::pipeline));
  REQUIRE(again.has_value());
  CHECK(to_json(*again).dump() == first);
  auto l2 = place(large, wl, req(Policy::pipeline));
  REQUIRE(l2.has_value());
  CHECK(to_json(*l2).dump() == to_json(*l1).dump());
}

TEST_CASE("queue failure rule: more than 2 -> front, more than 5 -> failed for good") {
  CHECK(after_failure(1).state == "enqueued");
  CHECK_FALSE(after_failure(1).front);
  CHECK_FALSE(after_failure(2).front);
  CHECK(after_failure(3).front);
  CHECK(after_failure(5).state == "enqueued");
  CHECK(after_failure(6).state == "failed");
}

TEST_CASE("queue: permanent errors fail at once; transient ones back off 30 s doubling to 10 min") {
  CHECK(permanent_failure(ErrorCode::usage));
  CHECK(permanent_failure(ErrorCode::not_found));
  CHECK_FALSE(permanent_failure(ErrorCode::failure));      // nothing fits now
  CHECK_FALSE(permanent_failure(ErrorCode::unreachable));  // the world could not be read
  CHECK(retry_backoff_s(0) == 0);
  CHECK(retry_backoff_s(1) == 30);
  CHECK(retry_backoff_s(2) == 60);
  CHECK(retry_backoff_s(4) == 240);
  CHECK(retry_backoff_s(5) == 480);
  CHECK(retry_backoff_s(6) == 600);
  CHECK(retry_backoff_s(60) == 600);
}

TEST_CASE("GS-Scheduler's policy names are aliases") {
  CHECK(*parse_policy("GLowLatencyPriority") == Policy::low_latency);
  CHECK(*parse_policy("GMostRequestedPriority") == Policy::least_allocated);
  CHECK(*parse_policy("GMostRequestPriority") == Policy::least_allocated);
  CHECK(*parse_policy("GSelectedCluster") == Policy::select_clusters);
  CHECK_FALSE(parse_policy("GFancy").has_value());
}

TEST_CASE("GS-Scheduler request options map onto gedge's flags") {
  auto g = gs_request(json::parse(R"({"scope": "global", "priority": "GLowLatencyPriority",
      "option": {"mode": "fromnode", "parameters": {"source_node": "cam-1", "select_clusters": ["c1", ["c2", "c3"]]}}})"),
                      "r.json");
  REQUIRE(g.has_value());
  CHECK(g->policy == "low-latency");
  CHECK(g->from == "cam-1");
  CHECK(*parse_levels(g->clusters) == Levels{{"c1"}, {"c2", "c3"}});
  auto n = gs_request(
      json::parse(
          R"({"option": {"mode": "node", "parameters": {"select_cluster": "c", "select_node": "n"}}})"),
      "r.json");
  REQUIRE(n.has_value());
  CHECK((n->policy == "node" && n->node == "c/n"));
  auto flat = gs_request(
      json::parse(
          R"({"scope": "##global", "priority": "GMostRequestedPriority", "select_clusters": "['a', 'b']"})"),
      "r.json");
  REQUIRE(flat.has_value());
  CHECK(flat->policy == "least-allocated");
  CHECK_FALSE(gs_request(json::parse(R"({"option": {"mode": "frompod"}})"), "r.json").has_value());
  CHECK_FALSE(gs_request(json::parse(R"({"option": {"mode": "cluster"}})"), "r.json").has_value());
}

TEST_CASE("Kubernetes workloads: taints, tolerations and required node affinity filter nodes") {
  World w;
  Cluster c;
  c.name = "c";
  Node a = node("a", 8, 8, 0, 4, 4), b = node("b", 8, 8, 0, 4, 4), t = node("t", 64, 64, 0);
  a.labels = {{"zone", "x"}, {"rank", "5"}};
  b.labels = {{"zone", "y"}, {"rank", "9"}};
  t.labels = {{"zone", "x"}, {"rank", "9"}};
  t.taints = {{"dedicated", "ml", "NoSchedule"}};
  c.nodes = {a, b, t};
  w.clusters = {c};
  w.latency.intra_cluster = 0.5;
  finalize(w);
  auto place_pod = [&](const std::string& extra) {
    auto wl = workload_from_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
        "  containers: [{name: c, image: i, resources: {requests: {cpu: '1'}}}]\n" +
            extra,
        "p.yaml");
    REQUIRE_MESSAGE(wl.has_value(), wl.error().message);
    Request r;
    r.policy = Policy::least_allocated;
    return place(w, *wl, r);
  };
  auto p = place_pod("");
  REQUIRE(p.has_value());
  CHECK(p->placements[0].node != "t");  // the taint keeps it out
  p = place_pod(
      "  tolerations: [{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]\n");
  REQUIRE(p.has_value());
  CHECK(p->placements[0].node == "t");  // tolerated, and the emptiest
  p = place_pod(
      "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n     "
      "   nodeSelectorTerms:\n"
      "          - matchExpressions: [{key: zone, operator: In, values: [x]}, {key: rank, "
      "operator: Gt, values: ['6']}]\n"
      "          - matchExpressions: [{key: zone, operator: In, values: [y]}]\n");
  REQUIRE(p.has_value());
  CHECK(p->placements[0].node == "b");  // t matches the first term but is tainted; a's rank is 5
  p = place_pod(
      "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n     "
      "   nodeSelectorTerms:\n"
      "          - matchExpressions: [{key: zone, operator: DoesNotExist}]\n");
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().message.find("node affinity not matched") != std::string::npos);
}

TEST_CASE(
    "Kubernetes workloads: replicas multiply the stage's demand; a Service alone is not a "
    "workload") {
  auto wl = workload_from_text(
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 3\n"
      "  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    "
      "spec:\n"
      "      containers: [{name: c, image: i, resources: {limits: {cpu: 500m, memory: 1Gi}}}]\n",
      "d.yaml");
  REQUIRE(wl.has_value());
  REQUIRE(wl->stages.size() == 1);
  CHECK(wl->stages[0].name == "d");
  CHECK(wl->stages[0].request.cpu == doctest::Approx(1.5));
  CHECK(wl->stages[0].request.memory == 3 * GiB);
  auto svc = workload_from_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "s.yaml");
  REQUIRE_FALSE(svc.has_value());
  CHECK(svc.error().code == ErrorCode::usage);
  // parse_workload (gedge's own loader) no longer takes a Kubernetes Service for gedge's kind:
  // Service.
  auto old = parse_workload(
      "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Pod\n"
      "metadata: {name: p}\nspec:\n  containers: [{name: c, image: i, resources: {requests: {cpu: "
      "'3'}}}]\n",
      "f.yaml");
  REQUIRE(old.has_value());
  REQUIRE(old->stages.size() == 1);
  CHECK(old->stages[0].name == "p");
  CHECK(old->stages[0].request.cpu == 3);
}

TEST_CASE("requests from flags: one path for place, submit and the queue (issue 12 item 3)") {
  // --weights: each item checked, the item named.
  auto w = parse_weights("cpu=2,memory=0.5,gpu=0");
  REQUIRE(w);
  CHECK((w->cpu == 2 && w->memory == 0.5 && w->gpu == 0));
  CHECK(parse_weights("")->gpu == 200);  // the defaults
  for (const char* bad : {"cpu=lots", "cpu", "disk=1", "cpu=-1", "cpu=1e7", "cpu=1,", "cpu=nan"}) {
    auto e = parse_weights(bad);
    REQUIRE_FALSE_MESSAGE(e, bad);
    CHECK(e.error().code == ErrorCode::usage);
    CHECK(e.error().message.find("malformed --weights item") != std::string::npos);
  }

  // The flags' combinations.
  auto refused = [](RequestFlags f) {
    auto r = build_request(f);
    return !r && r.error().code == ErrorCode::usage;
  };
  RequestFlags f;
  f.policy = "node";
  CHECK(refused(f));  // node needs --node
  f.node = "edge-a/n1";
  CHECK(build_request(f).has_value());
  f.policy = "least-allocated";
  CHECK(refused(f));  // --node only with node
  f = {};
  f.clusters = "[edge-a]";
  CHECK(refused(f));  // no levels with pipeline
  f.policy = "select-clusters";
  f.rank = "node";
  CHECK(refused(f));  // a rank that cannot rank clusters
  f.rank = "most-allocated";
  auto r = build_request(f);
  REQUIRE(r);
  CHECK(r->levels == Levels{{"edge-a"}});
  CHECK(r->rank == Policy::most_allocated);

  // What submit stores is what the queue builds again: the weights reach the queue's request.
  f = {};
  f.policy = "most-allocated";
  f.from = "cam-1";
  f.weights = "cpu=1000,memory=0,gpu=0.1";
  auto o = request_options(f);
  REQUIRE(o);
  CHECK((*o)["weights"] == json{{"cpu", 1000.0}, {"memory", 0.0}, {"gpu", 0.1}});
  auto back = build_request(flags_from_options(*o));
  REQUIRE(back);
  CHECK(back->policy == Policy::most_allocated);
  CHECK(back->source == "cam-1");
  CHECK((back->weights.cpu == 1000 && back->weights.memory == 0 && back->weights.gpu == 0.1));
  f.weights = "cpu=x";
  CHECK_FALSE(request_options(f));  // never stored unchecked

  // GS-Scheduler's request fills only what the flags left out.
  RequestFlags g;
  g.from = "cam-2";
  fill_from(g, GschRequest{"select-clusters", "[a]", "cam-9", ""}, false);
  CHECK((g.policy == "select-clusters" && g.clusters == "[a]" && g.from == "cam-2"));
  RequestFlags h;
  fill_from(h, GschRequest{"select-clusters", "", "", ""}, true);
  CHECK(h.policy == "pipeline");  // --policy given wins
}

TEST_CASE("explain renders from its JSON; when nothing fits, every node's every reason") {
  World w = three();
  Request r = req(Policy::pipeline);
  r.explain = true;
  auto p = place(w, yolo(), r);
  REQUIRE_MESSAGE(p, p.error().message);
  json data = to_json(*p);
  REQUIRE(data.contains("explain"));
  std::string all = explain_text(data["explain"], 100);
  std::string top1 = explain_text(data["explain"], 1);
  const auto& stages = data["explain"]["stages"];
  REQUIRE(stages.size() == 3);
  CHECK(all.starts_with(stages[0]["summary"].get<std::string>()));
  long lines = -1;
  for (const auto& st : stages) {
    CHECK(all.find(st["summary"].get<std::string>()) != std::string::npos);
    lines += 1 + static_cast<long>(st["ranking"].size());
  }
  CHECK(std::count(all.begin(), all.end(), '\n') == lines);
  CHECK(top1.find("\n  #1 ") != std::string::npos);
  CHECK(top1.find("\n  #2 ") == std::string::npos);
  const auto& best = stages[0]["ranking"][0];
  CHECK(top1.find("#1 " + best["cluster"].get<std::string>() + "/" +
                  best["node"].get<std::string>() + " score=") != std::string::npos);
  // Nothing fits: the rows name every node with all its reasons; the text is the summaries.
  Workload big = yolo();
  big.stages[0].request.cpu = 100;
  auto why = explain_unplaced(w, big, r);
  json rows = unplaced_rows(why);
  std::size_t nodes = 0;
  std::string summaries;
  for (const auto& st : why["stages"]) {
    nodes += st["nodes"].size();
    summaries += (summaries.empty() ? "" : "\n") + st["summary"].get<std::string>();
  }
  CHECK(rows.size() == nodes);
  int pre = 0;
  for (const auto& row : rows) {
    if (row["stage"] != "pre") continue;
    ++pre;
    CHECK_FALSE(row["fits"].get<bool>());
    CHECK_FALSE(row["reasons"].empty());
  }
  CHECK(pre == 4);
  CHECK(explain_text(why, 5) == summaries);
}

TEST_CASE("place --apply: one cluster, the one named or the only one used") {
  json one = {{"placements", {{{"cluster", "a"}}, {{"cluster", "a"}}}}};
  CHECK(apply_cluster(one, "").value() == "a");
  CHECK(apply_cluster(one, "a").value() == "a");
  auto named_other = apply_cluster(one, "b");
  REQUIRE_FALSE(named_other);
  CHECK(named_other.error().code == ErrorCode::usage);
  json two = {{"placements", {{{"cluster", "a"}}, {{"cluster", "b"}}}}};
  auto e = apply_cluster(two, "");
  REQUIRE_FALSE(e);
  CHECK(e.error().message == "--apply deploys to one cluster, but the placement uses 'a' and 'b'");
}

TEST_CASE("sched run's error counts the requests that failed for good") {
  CHECK_FALSE(run_error(json::array()).has_value());
  CHECK_FALSE(run_error(json{{{"state", "completed"}}, {{"state", "enqueued"}}}).has_value());
  auto e = run_error(json{{{"state", "failed"}}, {{"state", "completed"}}, {{"state", "failed"}}});
  REQUIRE(e);
  CHECK(e->code == ErrorCode::partial);
  CHECK(e->message == "2 of 3 requests failed for good");
}
