// gedge's own policy: place every stage of a pipeline jointly to minimise E2E latency.
//
// Chains: an exact layered shortest path over stages x (node, variant). Latency and bandwidth
// between two nodes depend only on their clusters unless a link names one of the nodes
// ("special" nodes), so each layer costs O(N + C^2) instead of O(N^2).
// When capacity couples the stages (two stages on one node that cannot hold both), a
// best-first branch and bound over "stage s may not use option o" constraints, with the DP
// as the lower bound, returns the exact capacitated optimum (first feasible leaf popped).
// DAGs: exhaustive search when small, otherwise greedy in topological order plus local search.
//
// This file holds the solvers; pipeline.cpp builds the problem and the placement.
#include "pipeline_search.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

namespace gedge::sched::detail::search {

// Exact layered shortest path for a chain (stage i's predecessor is i-1). `bans` may be null.
Solution dp_chain(const Problem& P, const Bans* bans) {
  const std::size_t K = P.opts.size();
  const std::size_t N = P.f.nodes.size();
  DpScratch& D = P.dp;
  auto banned = [&](std::size_t i, std::size_t j) { return bans && (*bans)[i][j]; };
  D.val.resize(K);
  D.back.resize(K);
  auto& val = D.val;
  auto& back = D.back;
  val[0].clear();
  for (std::size_t j = 0; j < P.opts[0].size(); ++j) {
    const Option& o = P.opts[0][j];
    val[0].push_back(banned(0, j) ? kInf : P.src_lat[o.node] + o.compute);
  }
  back[0].assign(P.opts[0].size(), -1);
  auto& by_node = D.by_node;
  by_node.assign(N, {kInf, -1});
  auto& best1 = D.best1;
  auto& best2 = D.best2;
  auto& g = D.g;
  best1.resize(P.C);
  best2.resize(P.C);
  g.resize(P.C);
  for (std::size_t i = 1; i < K; ++i) {
    const auto& prev = P.opts[i - 1];
    const double mb = P.wl.stages[i - 1].output_mb;
    auto& touched = D.touched;
    auto& specials = D.specials;
    touched.clear();
    specials.clear();
    for (std::size_t j = 0; j < prev.size(); ++j) {
      double v = val[i - 1][j];
      if (v == kInf) continue;
      int k = prev[j].node;
      if (by_node[k].second < 0) touched.push_back(k);
      if (v < by_node[k].first) by_node[k] = {v, static_cast<int>(j)};
    }
    std::fill(best1.begin(), best1.end(), Best{});
    std::fill(best2.begin(), best2.end(), Best{});
    auto& active = D.active;
    active.clear();
    for (int k : touched) {
      if (P.special[k]) {
        specials.push_back(k);
        continue;
      }
      int c = P.cl[k];
      auto [v, j] = by_node[k];
      if (best1[c].node < 0) active.push_back(c);
      if (v < best1[c].v) {
        best2[c] = best1[c];
        best1[c] = {v, k, j};
      } else if (v < best2[c].v) {
        best2[c] = {v, k, j};
      }
    }
    std::sort(active.begin(), active.end());
    // Best arrival into cluster D from a generic node of another cluster.
    auto& need = D.need;
    need.assign(P.C, 0);
    for (const auto& o : P.opts[i]) need[P.cl[o.node]] = 1;
    auto& intra_lat = D.intra_lat;
    auto& intra_xfer = D.intra_xfer;
    intra_lat.resize(P.C);
    intra_xfer.resize(P.C);
    for (int d = 0; d < P.C; ++d)
      if (need[d]) intra_lat[d] = P.lat(d, d), intra_xfer[d] = P.xfer(d, d, mb);
    for (int d = 0; d < P.C; ++d) {
      g[d] = {kInf, -1};
      if (!need[d]) continue;
      for (int c : active) {
        if (c == d) continue;
        double v = best1[c].v + P.lat(c, d) + P.xfer(c, d, mb);
        if (v < g[d].first) g[d] = {v, best1[c].opt};
      }
    }
    // A generic node's candidates, in the order they are considered (ties keep the first):
    // itself (the same node: no hop), the best other node of its cluster, the best node of
    // another cluster. The last two depend only on the cluster (and on whether the node is its
    // cluster's best), so their winner is settled once per cluster here.
    auto& w1 = D.w1;
    auto& w2 = D.w2;
    w1.resize(P.C);
    w2.resize(P.C);
    for (int d = 0; d < P.C; ++d) {
      if (!need[d]) continue;
      auto settle = [&](const Best& b) {
        std::pair<double, int> w{kInf, -1};
        if (b.opt >= 0) {
          double v = b.v + intra_lat[d] + intra_xfer[d];
          if (v < w.first) w = {v, b.opt};
        }
        if (g[d].second >= 0 && g[d].first < w.first) w = g[d];
        return w;
      };
      w1[d] = settle(best1[d]);  // for every node but the cluster's best
      w2[d] = settle(best2[d]);  // for the cluster's best node itself
    }
    val[i].assign(P.opts[i].size(), kInf);
    back[i].assign(P.opts[i].size(), -1);
    for (std::size_t j = 0; j < P.opts[i].size(); ++j) {
      if (banned(i, j)) continue;
      const Option& o = P.opts[i][j];
      int k = o.node, d = P.cl[k];
      double bv = kInf;
      int bj = -1;
      auto consider = [&](double v, int from) {
        if (v < bv) bv = v, bj = from;
      };
      if (P.special[k]) {
        for (int n : touched) consider(by_node[n].first + P.hop(n, k, mb), by_node[n].second);
      } else {
        if (by_node[k].second >= 0) consider(by_node[k].first, by_node[k].second);
        const auto& other = best1[d].node == k ? w2[d] : w1[d];
        if (other.second >= 0) consider(other.first, other.second);
        for (int n : specials) consider(by_node[n].first + P.hop(n, k, mb), by_node[n].second);
      }
      if (bj >= 0 && bv < kInf) {
        val[i][j] = bv + o.compute;
        back[i][j] = bj;
      }
    }
    for (int k : touched) by_node[k] = {kInf, -1};
  }
  Solution s;
  int bj = -1;
  for (std::size_t j = 0; j < val[K - 1].size(); ++j)
    if (val[K - 1][j] < s.cost) s.cost = val[K - 1][j], bj = static_cast<int>(j);
  if (bj < 0) return s;
  s.pick.assign(K, -1);
  for (std::size_t i = K; i-- > 0;) {
    s.pick[i] = bj;
    bj = back[i][bj];
  }
  return s;
}

// Nodes overloaded by a joint solution: the first one (by node order) and the stages on it.
std::vector<int> overload(const Problem& P, const std::vector<int>& pick) {
  // (node, stage) pairs in node order, then stage order: the groups of a std::map<node, stages>.
  std::vector<std::pair<int, int>> on;
  on.reserve(pick.size());
  for (std::size_t i = 0; i < pick.size(); ++i)
    on.emplace_back(P.opts[i][pick[i]].node, static_cast<int>(i));
  std::sort(on.begin(), on.end());
  std::vector<int> stages;
  for (std::size_t x = 0; x < on.size();) {
    const int k = on[x].first;
    stages.clear();
    for (; x < on.size() && on[x].first == k; ++x) stages.push_back(on[x].second);
    if (stages.size() < 2) continue;  // single stages were filtered already
    Resources a = P.f.alloc[k];
    for (int s : stages) {
      const Resources& n = P.opts[s][pick[s]].need;
      a.cpu += n.cpu, a.memory += n.memory, a.gpu += n.gpu;
    }
    if (!fits(*P.f.nodes[k].n, a, Resources{})) return stages;
  }
  return {};
}

double evaluate(const Problem& P, const std::vector<int>& pick) {
  Assignment a;
  for (std::size_t i = 0; i < pick.size(); ++i) {
    a.node.push_back(node_id(P.f.nodes[P.opts[i][pick[i]].node]));
    a.gpu.push_back(P.opts[i][pick[i]].gpu);
  }
  auto e = e2e_ms(P.w, P.wl, P.source, a);
  return e ? *e : kInf;
}

// Greedy in topological order (each stage: cheapest finish given its placed predecessors,
// capacity-checked), then rounds of single-stage moves while E2E improves.
Solution greedy_local(const Problem& P) {
  const std::size_t K = P.opts.size();
  std::vector<Resources> alloc = P.f.alloc;
  std::vector<int> pick(K, -1);
  std::vector<double> finish(K, 0);
  for (int i : P.wl.order) {
    double bv = kInf;
    int bj = -1;
    for (std::size_t j = 0; j < P.opts[i].size(); ++j) {
      const Option& o = P.opts[i][j];
      if (!fits(*P.f.nodes[o.node].n, alloc[o.node], o.need)) continue;
      double start = P.wl.preds[i].empty() ? P.src_lat[o.node] : 0;
      for (int p : P.wl.preds[i])
        start = std::max(
            start, finish[p] + P.hop(P.opts[p][pick[p]].node, o.node, P.wl.stages[p].output_mb));
      double v = start + o.compute;
      if (v < bv) bv = v, bj = static_cast<int>(j);
    }
    if (bj < 0) return {};
    pick[i] = bj;
    finish[i] = bv;
    const Resources& n = P.opts[i][bj].need;
    Resources& a = alloc[P.opts[i][bj].node];
    a.cpu += n.cpu, a.memory += n.memory, a.gpu += n.gpu;
  }
  double cur = evaluate(P, pick);
  for (int round = 0; round < 4; ++round) {
    bool improved = false;
    for (std::size_t i = 0; i < K; ++i) {
      const Option& old = P.opts[i][pick[i]];
      Resources& oa = alloc[old.node];
      oa.cpu -= old.need.cpu, oa.memory -= old.need.memory, oa.gpu -= old.need.gpu;
      int keep = pick[i];
      for (std::size_t j = 0; j < P.opts[i].size(); ++j) {
        const Option& o = P.opts[i][j];
        if (static_cast<int>(j) == keep || !fits(*P.f.nodes[o.node].n, alloc[o.node], o.need))
          continue;
        int was = pick[i];
        pick[i] = static_cast<int>(j);
        double v = evaluate(P, pick);
        if (v < cur - 1e-9)
          cur = v, improved = true;
        else
          pick[i] = was;
      }
      const Option& now = P.opts[i][pick[i]];
      Resources& na = alloc[now.node];
      na.cpu += now.need.cpu, na.memory += now.need.memory, na.gpu += now.need.gpu;
    }
    if (!improved) break;
  }
  return Solution{cur, pick};
}

Solution exhaustive(const Problem& P) {
  const std::size_t K = P.opts.size();
  Solution best;
  std::vector<int> pick(K, 0);
  std::vector<Resources> alloc = P.f.alloc;
  std::function<void(std::size_t)> rec = [&](std::size_t i) {
    if (i == K) {
      double v = evaluate(P, pick);
      if (v < best.cost - 1e-9) best = Solution{v, pick};
      return;
    }
    for (std::size_t j = 0; j < P.opts[i].size(); ++j) {
      const Option& o = P.opts[i][j];
      Resources& a = alloc[o.node];
      if (!fits(*P.f.nodes[o.node].n, a, o.need)) continue;
      a.cpu += o.need.cpu, a.memory += o.need.memory, a.gpu += o.need.gpu;
      pick[i] = static_cast<int>(j);
      rec(i + 1);
      a.cpu -= o.need.cpu, a.memory -= o.need.memory, a.gpu -= o.need.gpu;
    }
  };
  rec(0);
  return best;
}

// Every link the search may use must exist: a missing one is an error, never a silent zero.
Result<void> check_links(const Problem& P) {
  const std::size_t K = P.opts.size();
  // Per stage: which clusters have candidates, and how many distinct candidate nodes each.
  std::vector<char> seen(static_cast<std::size_t>(P.C), 0);
  std::vector<std::vector<int>> clusters(K);
  for (std::size_t i = 0; i < K; ++i) {
    std::fill(seen.begin(), seen.end(), 0);
    for (const auto& o : P.opts[i]) {
      int c = P.cl[o.node];
      if (!seen[c]) clusters[i].push_back(c), seen[c] = 1;
    }
  }
  for (std::size_t i = 0; i < K; ++i) {
    if (P.wl.preds[i].empty() && !P.source.empty())
      for (const auto& o : P.opts[i])
        if (P.src_lat[o.node] == kInf)
          return fail(
              ErrorCode::usage,
              fmt::format("no latency link between '{}' and '{}'", P.source,
                          node_id(P.f.nodes[o.node])),
              "add it to latency_ms.links, or measure it with 'gedge sched probe --from DEVICE'");
    for (int p : P.wl.preds[i]) {
      double mb = P.wl.stages[p].output_mb;
      for (int a : clusters[p])
        for (int b : clusters[i]) {
          const std::string &an = P.w.clusters[a].name, &bn = P.w.clusters[b].name;
          if (a == b) {
            if (P.lat(a, a) != kInf && P.xfer_finite(a, a, mb)) continue;
            // Only needed when two distinct nodes of the cluster can be involved.
            std::set<int> both;
            for (const auto& o : P.opts[p])
              if (P.f.nodes[o.node].cluster == a) both.insert(o.node);
            for (const auto& o : P.opts[i])
              if (P.f.nodes[o.node].cluster == a) both.insert(o.node);
            if (both.size() < 2) continue;
            if (P.lat(a, a) == kInf)
              return fail(ErrorCode::usage,
                          fmt::format("no intra-cluster latency for cluster '{}'", an),
                          "set latency_ms.intra_cluster");
            return fail(ErrorCode::usage,
                        fmt::format("no intra-cluster bandwidth for cluster '{}'", an),
                        "set bandwidth_mbps.intra_cluster");
          }
          if (P.lat(a, b) == kInf)
            return fail(ErrorCode::usage,
                        fmt::format("no latency link between clusters '{}' and '{}'", an, bn),
                        "add it to latency_ms.links, or measure it: gedge sched probe --from "
                        "A_MEMBER --to B_MEMBER");
          if (!P.xfer_finite(a, b, mb))
            return fail(
                ErrorCode::usage,
                fmt::format("no bandwidth link between clusters '{}' and '{}'", an, bn),
                "add it to bandwidth_mbps.links, or drop bandwidth_mbps to ignore transfer time");
        }
    }
  }
  return {};
}

}  // namespace gedge::sched::detail::search
