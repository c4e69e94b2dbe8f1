// gedge sched benchmark (research/anchors-sched.md §8): a seeded three-tier world, the 3-stage
// YOLO pipeline placed online request after request, gedge's policies next to re-implemented
// baselines (GS low-latency per stage, GS least-allocated, Karmada-like resource-only,
// Diktyo-like greedy over stages) and, on S, the exact optimum by exhaustive search.
//
//   sched_bench [--sizes S,T,M,L] [--seed N] [--requests-scale X]
//
// Prints a markdown report on stdout. Single-threaded; run under `taskset -c 1`.
// Environment: SCHED_BENCH_ONLY=SUBSTRING runs only the policies whose name contains it;
// SCHED_BENCH_OUTPUT_HASH=1 adds, per policy, a hash of every placement's full to_json
// (rejection list included) to check that an optimisation changes no output.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gedge/sched.hpp"

using namespace gedge::sched;

namespace {

constexpr double GiB = 1073741824.0;

struct Size {
  const char* name;
  int clusters;
  int nodes;
  int requests;
  bool tight = false;  // nodes left with 2.5 free cores: stages on one node couple
};

struct Instance {
  World world;
  std::vector<std::string> sources;  // one per request
  std::vector<std::string> cameras;
};

// Tier of cluster i of C: ~60 % edge (local), ~30 % near (neighbor), the rest cloud (>= 1).
std::string tier_of(int i, int C) {
  int edge = std::max(1, C * 6 / 10), near = std::max(1, C * 3 / 10);
  if (C <= 4) edge = 2, near = 1;
  if (i < edge) return "local";
  if (i < edge + near) return "neighbor";
  return "cloud";
}

Instance generate(const Size& sz, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  std::lognormal_distribution<double> jitter(0.0, 0.2);
  Instance in;
  World& w = in.world;
  std::vector<std::pair<double, double>> pos;
  std::vector<std::string> tiers;
  for (int c = 0; c < sz.clusters; ++c) {
    Cluster cl;
    cl.name = fmt::format("c{:03d}", c);
    cl.tier = tier_of(c, sz.clusters);
    tiers.push_back(cl.tier);
    pos.emplace_back(uni(0, 100), uni(0, 100));
    for (int k = 0; k < sz.nodes; ++k) {
      Node n;
      n.name = fmt::format("n{:03d}", k);
      if (cl.tier == "local") {
        bool gpu = uni(0, 1) < 0.2;
        n.capacity = gpu ? Resources{8, 16 * GiB, 1} : Resources{4, 8 * GiB, 0};
      } else if (cl.tier == "neighbor") {
        n.capacity = Resources{16, 64 * GiB, uni(0, 1) < 0.5 ? 2.0 : 0.0};
      } else {
        n.capacity = Resources{32, 128 * GiB, 4};
      }
      double u = uni(0, 0.5);
      n.allocated = Resources{std::floor(n.capacity.cpu * u * 2) / 2, n.capacity.memory * u, 0};
      n.ready = uni(0, 1) > 0.02;
      if (sz.tight) n.allocated.cpu = std::max(0.0, n.capacity.cpu - 2.5);
      cl.nodes.push_back(n);
    }
    w.clusters.push_back(cl);
  }
  auto base = [&](const std::string& a, const std::string& b) {
    auto pair = [&](const char* x, const char* y) {
      return (a == x && b == y) || (a == y && b == x);
    };
    if (pair("local", "local")) return uni(5, 15);
    if (pair("local", "neighbor")) return uni(3, 8);
    if (pair("local", "cloud")) return uni(30, 80);
    if (pair("neighbor", "neighbor")) return uni(3, 8);
    if (pair("neighbor", "cloud")) return uni(20, 40);
    return uni(5, 15);  // cloud <-> cloud
  };
  auto bw = [&](const std::string& a, const std::string& b) {
    auto pair = [&](const char* x, const char* y) {
      return (a == x && b == y) || (a == y && b == x);
    };
    if (pair("local", "local")) return 500.0;
    if (pair("local", "neighbor")) return 1000.0;
    if (pair("local", "cloud")) return 200.0;
    if (pair("neighbor", "cloud")) return 1000.0;
    return 1000.0;
  };
  w.latency.intra_cluster = 0.3;
  LinkTable b;
  b.intra_cluster = 10000;
  std::vector<std::vector<double>> lat(sz.clusters, std::vector<double>(sz.clusters, 0));
  for (int a = 0; a < sz.clusters; ++a)
    for (int c = a + 1; c < sz.clusters; ++c) {
      double dist = std::hypot(pos[a].first - pos[c].first, pos[a].second - pos[c].second);
      lat[a][c] = lat[c][a] = (base(tiers[a], tiers[c]) + 0.05 * dist) * jitter(rng);
      w.latency.links.push_back({w.clusters[a].name, w.clusters[c].name, lat[a][c]});
      b.links.push_back({w.clusters[a].name, w.clusters[c].name, bw(tiers[a], tiers[c])});
    }
  w.bandwidth = b;
  // Cameras: two per edge cluster, 1-3 ms from it; to other clusters via their edge cluster.
  for (int c = 0; c < sz.clusters; ++c) {
    if (tiers[c] != "local") continue;
    for (int j = 0; j < 2; ++j) {
      std::string cam = fmt::format("cam-{:03d}-{}", c, j);
      double first = uni(1, 3);
      for (int d = 0; d < sz.clusters; ++d)
        w.latency.links.push_back({cam, w.clusters[d].name, d == c ? first : first + lat[c][d]});
      in.cameras.push_back(cam);
    }
  }
  for (int r = 0; r < sz.requests; ++r)
    in.sources.push_back(
        in.cameras[std::uniform_int_distribution<std::size_t>(0, in.cameras.size() - 1)(rng)]);
  finalize(w);
  return in;
}

Workload yolo() {
  Workload wl;
  wl.kind = "Pipeline";
  wl.name = "yolo";
  Stage pre{"pre", {0.5, 0.5 * GiB, 0}, 8.0, {}, {}, 1.2, {}, {}, ""};
  // The inference pod requests one GPU (as GS-MSA's does): every policy must give it one.
  Stage infer{"infer", {2, 4 * GiB, 1}, 25.0, {}, {}, 0.1, {}, {}, ""};
  Stage post{"post", {0.5, 0.25 * GiB, 0}, 5.0, {}, {}, 0.0, {}, {}, ""};
  wl.stages = {pre, infer, post};
  (void)resolve(wl);
  return wl;
}

// ---- baselines not in the library -----------------------------------------------------------

struct Flat {
  std::vector<std::pair<int, int>> at;  // cluster, node
};

bool fits(const Node& n, const Resources& need) {
  return n.allocated.cpu + need.cpu <= n.capacity.cpu + 1e-9 &&
         n.allocated.memory + need.memory <= n.capacity.memory + 1e-9 &&
         n.allocated.gpu + need.gpu <= n.capacity.gpu + 1e-9;
}

Placement finish(World& w, const Workload& wl, const std::string& source,
                 std::vector<std::pair<int, int>> pick, Policy tag) {
  Placement p;
  p.policy = tag;
  p.source = source;
  for (std::size_t i = 0; i < pick.size(); ++i) {
    StagePlacement sp;
    sp.stage = wl.stages[i].name;
    sp.cluster = w.clusters[pick[i].first].name;
    sp.node = w.clusters[pick[i].first].nodes[pick[i].second].name;
    sp.gpu = wl.stages[i].request.gpu > 0;
    p.placements.push_back(sp);
  }
  Assignment a;
  for (auto& sp : p.placements)
    a.node.push_back(sp.cluster + "/" + sp.node), a.gpu.push_back(sp.gpu);
  auto e = e2e_ms(w, wl, source, a);
  if (e) p.e2e_ms = *e;
  return p;
}

// Karmada-like: per stage, the cluster that can hold the most replicas (Σ floor(free/req)),
// then kube's LeastAllocated node inside it. No latency term at all.
std::optional<Placement> karmada_like(World& w, const Workload& wl, const std::string& source) {
  std::vector<std::pair<int, int>> pick;
  std::vector<Resources> saved;
  for (const auto& s : wl.stages) {
    int best_c = -1;
    double best_est = 0;
    for (std::size_t c = 0; c < w.clusters.size(); ++c) {
      double est = 0;
      for (const auto& n : w.clusters[c].nodes) {
        if (!n.ready || !fits(n, s.request)) continue;
        double r = 1e18;
        auto lim = [&](double cap, double used, double req) {
          if (req > 0) r = std::min(r, std::floor((cap - used) / req));
        };
        lim(n.capacity.cpu, n.allocated.cpu, s.request.cpu);
        lim(n.capacity.memory, n.allocated.memory, s.request.memory);
        lim(n.capacity.gpu, n.allocated.gpu, s.request.gpu);
        est += r;
      }
      if (est > best_est) best_est = est, best_c = static_cast<int>(c);
    }
    if (best_c < 0) return std::nullopt;
    int best_n = -1;
    double best = -1;
    auto& cl = w.clusters[best_c];
    for (std::size_t k = 0; k < cl.nodes.size(); ++k) {
      const Node& n = cl.nodes[k];
      if (!n.ready || !fits(n, s.request)) continue;
      double score =
          ((n.capacity.cpu - n.allocated.cpu - s.request.cpu) / n.capacity.cpu +
           (n.capacity.memory - n.allocated.memory - s.request.memory) / n.capacity.memory) /
          2;
      if (score > best) best = score, best_n = static_cast<int>(k);
    }
    Node& n = cl.nodes[best_n];
    n.allocated.cpu += s.request.cpu, n.allocated.memory += s.request.memory,
        n.allocated.gpu += s.request.gpu;
    pick.emplace_back(best_c, best_n);
  }
  for (std::size_t i = 0; i < pick.size(); ++i) {  // undo: the caller commits
    Node& n = w.clusters[pick[i].first].nodes[pick[i].second];
    const auto& r = wl.stages[i].request;
    n.allocated.cpu -= r.cpu, n.allocated.memory -= r.memory, n.allocated.gpu -= r.gpu;
  }
  return finish(w, wl, source, pick, Policy::least_allocated);
}

// Diktyo-like (NetworkOverhead + BalancedAllocation, 5 : 1): stages in topological order; each
// picks the node minimising the normalised link cost to its placed predecessor (the source for
// the first) and the imbalance of cpu vs memory use. It ignores compute time and payloads.
std::optional<Placement> diktyo_like(World& w, const Workload& wl, const std::string& source) {
  std::vector<std::pair<int, int>> pick;
  for (std::size_t i = 0; i < wl.stages.size(); ++i) {
    const Stage& s = wl.stages[i];
    std::string prev = i == 0 ? source
                              : w.clusters[pick[i - 1].first].name + "/" +
                                    w.clusters[pick[i - 1].first].nodes[pick[i - 1].second].name;
    std::vector<std::tuple<double, double, int, int>> cands;  // link, balance, c, k
    double max_link = 0;
    for (std::size_t c = 0; c < w.clusters.size(); ++c) {
      // Cluster-level latency (Diktyo's zone/region costs); the same node costs 0.
      auto cl_lat = latency_ms(w, prev, w.clusters[c].name);
      for (std::size_t k = 0; k < w.clusters[c].nodes.size(); ++k) {
        const Node& n = w.clusters[c].nodes[k];
        if (!n.ready || !fits(n, s.request)) continue;
        std::string id = w.clusters[c].name + "/" + n.name;
        double link = id == prev ? 0 : latency_ms(w, prev, id).value_or(cl_lat.value_or(1e6));
        double cf = (n.allocated.cpu + s.request.cpu) / n.capacity.cpu,
               mf = (n.allocated.memory + s.request.memory) / n.capacity.memory;
        cands.emplace_back(link, std::fabs(cf - mf), static_cast<int>(c), static_cast<int>(k));
        max_link = std::max(max_link, link);
      }
    }
    if (cands.empty()) return std::nullopt;
    double best = 1e18;
    std::pair<int, int> bp{-1, -1};
    for (auto& [link, bal, c, k] : cands) {
      double cost = 5 * (max_link > 0 ? link / max_link : 0) + 1 * bal;
      if (cost < best) best = cost, bp = {c, k};
    }
    Node& n = w.clusters[bp.first].nodes[bp.second];
    n.allocated.cpu += s.request.cpu, n.allocated.memory += s.request.memory,
        n.allocated.gpu += s.request.gpu;
    pick.push_back(bp);
  }
  for (std::size_t i = 0; i < pick.size(); ++i) {
    Node& n = w.clusters[pick[i].first].nodes[pick[i].second];
    const auto& r = wl.stages[i].request;
    n.allocated.cpu -= r.cpu, n.allocated.memory -= r.memory, n.allocated.gpu -= r.gpu;
  }
  return finish(w, wl, source, pick, Policy::pipeline);
}

// Thread CPU time: the algorithm's own cost, unaffected by other load on a shared machine.
double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// ---- runner ------------------------------------------------------------------------------------

struct Stats {
  std::vector<double> e2e;
  int rejected = 0;
  double seconds = 0;
  int placed_stages = 0;
  std::vector<std::string> decisions;
  std::map<std::string, int> methods;
  std::vector<double> gaps;  // vs exhaustive optimum (S)
  uint64_t output_hash =
      1469598103934665603ULL;  // SCHED_BENCH_OUTPUT_HASH: every to_json, in order
};

// FNV-1a 64, continued over `text`.
void fnv(uint64_t& h, const std::string& text) {
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ULL;
  h = (h ^ '\n') * 1099511628211ULL;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}
double p95(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(std::ceil(0.95 * v.size())) - 1)];
}

// FNV-1a 64 over the sorted decision lines (a stable, dependency-free determinism hash).
std::string hash(std::vector<std::string> lines) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& l : lines) {
    for (unsigned char ch : l) h = (h ^ ch) * 1099511628211ULL;
    h = (h ^ '\n') * 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

using PolicyFn =
    std::function<std::optional<Placement>(World&, const Workload&, const std::string&)>;

Stats run(const Instance& in, const Workload& wl, const PolicyFn& fn, bool with_opt) {
  Stats st;
  // The decision hash covers where stages go; this one covers the whole output (rejection
  // list, terms, scores) for checking that an optimisation changes nothing. Off by default.
  static const bool output_hash = std::getenv("SCHED_BENCH_OUTPUT_HASH") != nullptr;
  World w = in.world;
  for (std::size_t r = 0; r < in.sources.size(); ++r) {
    std::optional<std::pair<Assignment, double>> opt;
    if (with_opt) {
      auto o = place_exhaustive(w, wl, in.sources[r]);
      if (o && *o) opt = **o;
    }
    auto t0 = cpu_now();
    auto p = fn(w, wl, in.sources[r]);
    st.seconds += cpu_now() - t0;
    if (output_hash && p) fnv(st.output_hash, to_json(*p).dump());
    if (!p || !p->e2e_ms) {
      ++st.rejected;
      st.decisions.push_back(fmt::format("{} rejected", r));
      continue;
    }
    st.e2e.push_back(*p->e2e_ms);
    st.placed_stages += static_cast<int>(p->placements.size());
    if (!p->method.empty()) ++st.methods[p->method];
    std::string line = fmt::format("{:06d}", r);
    for (const auto& sp : p->placements)
      line += fmt::format(" {}/{}{}", sp.cluster, sp.node, sp.gpu ? "+gpu" : "");
    st.decisions.push_back(line);
    if (opt) st.gaps.push_back(*p->e2e_ms / opt->second - 1);
    commit(w, wl, *p);
  }
  return st;
}

PolicyFn lib(Policy pol, bool rejections = true) {
  return [pol, rejections](World& w, const Workload& wl,
                           const std::string& src) -> std::optional<Placement> {
    Request r;
    r.policy = pol;
    r.source = src;
    r.record_rejections = rejections;
    auto p = place(w, wl, r);
    if (!p) return std::nullopt;
    return std::move(*p);  // a copy here would be timed with the library (4,000 rejections at L)
  };
}

}  // namespace

int main(int argc, char** argv) {
  std::string sizes = "S,M,L";
  uint64_t seed = 42;
  double scale = 1.0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--sizes") && i + 1 < argc)
      sizes = argv[++i];
    else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = std::stoull(argv[++i]);
    else if (!std::strcmp(argv[i], "--requests-scale") && i + 1 < argc)
      scale = std::stod(argv[++i]);
    else {
      std::fprintf(stderr, "usage: sched_bench [--sizes S,M,L] [--seed N] [--requests-scale X]\n");
      return 2;
    }
  }
  const Size all[] = {
      {"S", 4, 4, 20}, {"T", 4, 4, 12, true}, {"M", 20, 25, 500}, {"L", 50, 100, 2000}};
  Workload wl = yolo();
  std::vector<std::pair<std::string, PolicyFn>> policies = {
      {"gedge pipeline", lib(Policy::pipeline)},
      {"gedge pipeline, no rejection list", lib(Policy::pipeline, false)},
      {"GS low-latency (per stage)", lib(Policy::low_latency)},
      {"GS least-allocated", lib(Policy::least_allocated)},
      {"most-allocated", lib(Policy::most_allocated)},
      {"Karmada-like (resource only)", karmada_like},
      {"Diktyo-like (greedy over stages)", diktyo_like},
  };
  fmt::print("# gedge sched benchmark (seed {}, YOLO 3-stage pipeline, online placement)\n\n",
             seed);
  for (const auto& sz : all) {
    if (sizes.find(sz.name) == std::string::npos) continue;
    Size s = sz;
    s.requests = std::max(1, static_cast<int>(sz.requests * scale));
    Instance in = generate(s, seed);
    fmt::print(
        "## {}: {} clusters x {} nodes = {} nodes, {} requests{}\n\n", s.name, s.clusters, s.nodes,
        s.clusters * s.nodes, s.requests,
        s.tight ? " (tight: every node has 2.5 free cores, so stages sharing a node couple)" : "");
    fmt::print(
        "| policy | placed | rejected | mean E2E ms | p95 E2E ms | stage placements/s | gap to "
        "optimum (mean / max) | methods | hash |\n");
    fmt::print("|---|---|---|---|---|---|---|---|---|\n");
    std::map<std::string, Stats> results;
    const char* only = std::getenv("SCHED_BENCH_ONLY");
    for (const auto& [name, fn] : policies) {
      if (only && name.find(only) == std::string::npos) continue;
      bool with_opt =
          (std::string(s.name) == "S" || std::string(s.name) == "T") && name == "gedge pipeline";
      Stats st = run(in, wl, fn, with_opt);
      std::string gap = "-";
      if (!st.gaps.empty()) {
        double mx = *std::max_element(st.gaps.begin(), st.gaps.end());
        gap = fmt::format("{:.2f} % / {:.2f} %", 100 * mean(st.gaps), 100 * mx);
      }
      std::string methods;
      for (const auto& [m, n] : st.methods)
        methods += fmt::format("{}{}:{}", methods.empty() ? "" : " ", m, n);
      fmt::print("| {} | {} | {} | {:.2f} | {:.2f} | {:.0f} | {} | {} | `{}` |\n", name,
                 st.e2e.size(), st.rejected, mean(st.e2e), p95(st.e2e),
                 st.placed_stages / std::max(st.seconds, 1e-9), gap,
                 methods.empty() ? "-" : methods, hash(st.decisions));
      if (std::getenv("SCHED_BENCH_OUTPUT_HASH"))
        fmt::print("|   output hash (every to_json) | `{:016x}` |\n", st.output_hash);
      std::fflush(stdout);
      results[name] = std::move(st);
    }
    if (only) continue;
    const auto& g = results["gedge pipeline"];
    auto gain = [&](const char* other) {
      const auto& o = results[other];
      return 100 * (1 - mean(g.e2e) / mean(o.e2e));
    };
    fmt::print(
        "\nMean E2E gain of gedge pipeline: {:.1f} % vs Karmada-like (resource only), {:.1f} % vs "
        "GS least-allocated, "
        "{:.1f} % vs GS low-latency per stage, {:.1f} % vs Diktyo-like.\n\n",
        gain("Karmada-like (resource only)"), gain("GS least-allocated"),
        gain("GS low-latency (per stage)"), gain("Diktyo-like (greedy over stages)"));
  }
  return 0;
}
