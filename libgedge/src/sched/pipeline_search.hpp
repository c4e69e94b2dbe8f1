// The search behind place_pipeline (pipeline.cpp): the problem as the solvers see it, and the
// solvers themselves (pipeline_search.cpp). Internal to the sched module.
#pragma once

#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sched_internal.hpp"

namespace gedge::sched::detail::search {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Best {
  double v = kInf;
  int node = -1, opt = -1;
};

// dp_chain's working memory, kept between calls (see Scratch).
struct DpScratch {
  std::vector<std::vector<double>> val;
  std::vector<std::vector<int>> back;
  std::vector<std::pair<double, int>> by_node;
  std::vector<Best> best1, best2;
  std::vector<std::pair<double, int>> g;
  std::vector<int> touched, specials, active;
  std::vector<char> need;
  std::vector<double> intra_lat, intra_xfer;  // per cluster, for the current layer's payload
  std::vector<std::pair<double, int>> w1,
      w2;  // per cluster: best arrival other than the node itself
};

struct Problem {
  const World& w;
  const Workload& wl;
  const Flat& f;
  std::string source;
  std::vector<std::span<const Option>>& opts;  // per stage index
  std::vector<char>& special;                  // per flat node
  int C = 0;
  std::vector<double>& clat;  // C*C; diagonal = intra_cluster; kInf = no link
  std::vector<double>& cbw;   // C*C Mbit/s; 0 = no link
  bool has_bw = false;
  std::vector<double>& src_lat;  // per flat node; kInf = no link
  DpScratch& dp;
  const std::vector<int>& cl;  // per flat node: its cluster (f.nodes[k].cluster, compact)

  double lat(int a, int b) const { return clat[static_cast<std::size_t>(a) * C + b]; }
  double xfer(int a, int b, double mb) const {
    if (!has_bw || mb <= 0) return 0;
    double bw = cbw[static_cast<std::size_t>(a) * C + b];
    return bw > 0 ? mb * 8000.0 / bw : kInf;
  }
  // xfer(a, b, mb) != kInf, without the division where it cannot overflow (bw >= 1).
  bool xfer_finite(int a, int b, double mb) const {
    if (!has_bw || mb <= 0) return true;
    double bw = cbw[static_cast<std::size_t>(a) * C + b];
    if (!(bw > 0)) return false;
    double t = mb * 8000.0;
    return bw >= 1.0 ? t != kInf : t / bw != kInf;
  }
  // Latency + transfer between two flat nodes for a payload of `mb`.
  double hop(int n, int m, double mb) const {
    if (n == m) return 0;
    if (special[n] || special[m]) {
      const std::string a = node_id(f.nodes[n]), b = node_id(f.nodes[m]);
      auto l = latency_ms(w, a, b);
      if (!l) return kInf;
      double t = 0;
      if (has_bw && mb > 0) {
        auto bw = bandwidth_mbps(w, a, b);
        if (!bw || *bw <= 0) return kInf;
        t = mb * 8000.0 / *bw;
      }
      return *l + t;
    }
    int a = f.nodes[n].cluster, b = f.nodes[m].cluster;
    return lat(a, b) + xfer(a, b, mb);
  }
};

struct Solution {
  double cost = kInf;
  std::vector<int> pick;  // option index per stage
};

using Bans = std::vector<std::vector<char>>;  // per stage, per option

// Exact layered shortest path for a chain (stage i's predecessor is i-1). `bans` may be null.
Solution dp_chain(const Problem& P, const Bans* bans);

// Nodes overloaded by a joint solution: the first one (by node order) and the stages on it.
std::vector<int> overload(const Problem& P, const std::vector<int>& pick);

double evaluate(const Problem& P, const std::vector<int>& pick);

// Greedy in topological order (each stage: cheapest finish given its placed predecessors,
// capacity-checked), then rounds of single-stage moves while E2E improves.
Solution greedy_local(const Problem& P);

Solution exhaustive(const Problem& P);

// Every link the search may use must exist: a missing one is an error, never a silent zero.
Result<void> check_links(const Problem& P);

}  // namespace gedge::sched::detail::search
