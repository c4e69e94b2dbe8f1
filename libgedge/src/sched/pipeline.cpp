// gedge's own policy: place every stage of a pipeline jointly to minimise E2E latency.
//
// Chains: an exact layered shortest path over stages x (node, variant). Latency and bandwidth
// between two nodes depend only on their clusters unless a link names one of the nodes
// ("special" nodes), so each layer costs O(N + C^2) instead of O(N^2).
// When capacity couples the stages (two stages on one node that cannot hold both), a
// best-first branch and bound over "stage s may not use option o" constraints, with the DP
// as the lower bound, returns the exact capacitated optimum (first feasible leaf popped).
// DAGs: exhaustive search when small, otherwise greedy in topological order plus local search.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <queue>
#include <set>

#include "sched_internal.hpp"

namespace gedge::sched::detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Problem {
  const World& w;
  const Workload& wl;
  const Flat& f;
  std::string source;
  std::vector<std::vector<Option>> opts;  // per stage index
  std::vector<char> special;              // per flat node
  int C = 0;
  std::vector<double> clat;  // C*C; diagonal = intra_cluster; kInf = no link
  std::vector<double> cbw;   // C*C Mbit/s; 0 = no link
  bool has_bw = false;
  std::vector<double> src_lat;  // per flat node; kInf = no link

  double lat(int a, int b) const { return clat[static_cast<std::size_t>(a) * C + b]; }
  double xfer(int a, int b, double mb) const {
    if (!has_bw || mb <= 0) return 0;
    double bw = cbw[static_cast<std::size_t>(a) * C + b];
    return bw > 0 ? mb * 8000.0 / bw : kInf;
  }
  // Latency + transfer between two flat nodes for a payload of `mb`.
  double hop(int n, int m, double mb) const {
    if (n == m) return 0;
    if (special[n] || special[m]) {
      auto l = latency_ms(w, f.nodes[n].id, f.nodes[m].id);
      if (!l) return kInf;
      double t = 0;
      if (has_bw && mb > 0) {
        auto bw = bandwidth_mbps(w, f.nodes[n].id, f.nodes[m].id);
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

// Exact layered shortest path for a chain (stage i's predecessor is i-1).
Solution dp_chain(const Problem& P, const Bans& bans) {
  const std::size_t K = P.opts.size();
  const std::size_t N = P.f.nodes.size();
  std::vector<std::vector<double>> val(K);
  std::vector<std::vector<int>> back(K);
  for (std::size_t j = 0; j < P.opts[0].size(); ++j) {
    const Option& o = P.opts[0][j];
    val[0].push_back(bans[0][j] ? kInf : P.src_lat[o.node] + o.compute);
  }
  back[0].assign(P.opts[0].size(), -1);
  std::vector<std::pair<double, int>> by_node(N, {kInf, -1});
  struct Best {
    double v = kInf;
    int node = -1, opt = -1;
  };
  std::vector<Best> best1(P.C), best2(P.C);
  std::vector<std::pair<double, int>> g(P.C);
  for (std::size_t i = 1; i < K; ++i) {
    const auto& prev = P.opts[i - 1];
    const double mb = P.wl.stages[i - 1].output_mb;
    std::vector<int> touched, specials;
    for (std::size_t j = 0; j < prev.size(); ++j) {
      double v = val[i - 1][j];
      if (v == kInf) continue;
      int k = prev[j].node;
      if (by_node[k].second < 0) touched.push_back(k);
      if (v < by_node[k].first) by_node[k] = {v, static_cast<int>(j)};
    }
    std::fill(best1.begin(), best1.end(), Best{});
    std::fill(best2.begin(), best2.end(), Best{});
    std::vector<int> active;
    for (int k : touched) {
      if (P.special[k]) {
        specials.push_back(k);
        continue;
      }
      int c = P.f.nodes[k].cluster;
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
    std::vector<char> need(P.C, 0);
    for (const auto& o : P.opts[i]) need[P.f.nodes[o.node].cluster] = 1;
    for (int d = 0; d < P.C; ++d) {
      g[d] = {kInf, -1};
      if (!need[d]) continue;
      for (int c : active) {
        if (c == d) continue;
        double v = best1[c].v + P.lat(c, d) + P.xfer(c, d, mb);
        if (v < g[d].first) g[d] = {v, best1[c].opt};
      }
    }
    val[i].assign(P.opts[i].size(), kInf);
    back[i].assign(P.opts[i].size(), -1);
    for (std::size_t j = 0; j < P.opts[i].size(); ++j) {
      if (bans[i][j]) continue;
      const Option& o = P.opts[i][j];
      int k = o.node, d = P.f.nodes[k].cluster;
      double bv = kInf;
      int bj = -1;
      auto consider = [&](double v, int from) {
        if (v < bv) bv = v, bj = from;
      };
      if (P.special[k]) {
        for (int n : touched) consider(by_node[n].first + P.hop(n, k, mb), by_node[n].second);
      } else {
        if (by_node[k].second >= 0) consider(by_node[k].first, by_node[k].second);
        const Best& b = best1[d].node == k ? best2[d] : best1[d];
        if (b.opt >= 0) consider(b.v + P.lat(d, d) + P.xfer(d, d, mb), b.opt);
        if (g[d].second >= 0) consider(g[d].first, g[d].second);
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
  std::map<int, std::vector<int>> on;
  for (std::size_t i = 0; i < pick.size(); ++i) on[P.opts[i][pick[i]].node].push_back(static_cast<int>(i));
  for (const auto& [k, stages] : on) {
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
    a.node.push_back(P.f.nodes[P.opts[i][pick[i]].node].id);
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
        start = std::max(start, finish[p] + P.hop(P.opts[p][pick[p]].node, o.node, P.wl.stages[p].output_mb));
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
        if (static_cast<int>(j) == keep || !fits(*P.f.nodes[o.node].n, alloc[o.node], o.need)) continue;
        int was = pick[i];
        pick[i] = static_cast<int>(j);
        double v = evaluate(P, pick);
        if (v < cur - 1e-9) cur = v, improved = true;
        else pick[i] = was;
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
      int c = P.f.nodes[o.node].cluster;
      if (!seen[c]) clusters[i].push_back(c), seen[c] = 1;
    }
  }
  for (std::size_t i = 0; i < K; ++i) {
    if (P.wl.preds[i].empty() && !P.source.empty())
      for (const auto& o : P.opts[i])
        if (P.src_lat[o.node] == kInf)
          return fail(ErrorCode::usage, fmt::format("no latency link between '{}' and '{}'", P.source, P.f.nodes[o.node].id),
                      "add it to latency_ms.links, or measure it with 'gedge sched probe --from DEVICE'");
    for (int p : P.wl.preds[i]) {
      double mb = P.wl.stages[p].output_mb;
      for (int a : clusters[p])
        for (int b : clusters[i]) {
          const std::string &an = P.w.clusters[a].name, &bn = P.w.clusters[b].name;
          if (a == b) {
            if (P.lat(a, a) != kInf && P.xfer(a, a, mb) != kInf) continue;
            // Only needed when two distinct nodes of the cluster can be involved.
            std::set<int> both;
            for (const auto& o : P.opts[p]) if (P.f.nodes[o.node].cluster == a) both.insert(o.node);
            for (const auto& o : P.opts[i]) if (P.f.nodes[o.node].cluster == a) both.insert(o.node);
            if (both.size() < 2) continue;
            if (P.lat(a, a) == kInf)
              return fail(ErrorCode::usage, fmt::format("no intra-cluster latency for cluster '{}'", an),
                          "set latency_ms.intra_cluster");
            return fail(ErrorCode::usage, fmt::format("no intra-cluster bandwidth for cluster '{}'", an),
                        "set bandwidth_mbps.intra_cluster");
          }
          if (P.lat(a, b) == kInf)
            return fail(ErrorCode::usage, fmt::format("no latency link between clusters '{}' and '{}'", an, bn),
                        "add it to latency_ms.links, or measure it: gedge sched probe --from A_MEMBER --to B_MEMBER");
          if (P.xfer(a, b, mb) == kInf)
            return fail(ErrorCode::usage, fmt::format("no bandwidth link between clusters '{}' and '{}'", an, bn),
                        "add it to bandwidth_mbps.links, or drop bandwidth_mbps to ignore transfer time");
        }
    }
  }
  return {};
}

}  // namespace

Result<Placement> place_pipeline(const World& w, const Workload& wl, const Request& req, const std::string& source) {
  Flat f = flatten(w);
  Problem P{w, wl, f, source, {}, {}, static_cast<int>(w.clusters.size()), {}, {}, w.bandwidth.has_value(), {}};
  Placement out;
  out.policy = Policy::pipeline;
  out.source = source;
  const std::size_t K = wl.stages.size();
  P.opts.resize(K);
  for (auto& o : P.opts) o.reserve(f.nodes.size() + 8);
  for (std::size_t i = 0; i < K; ++i) {
    const Stage& s = wl.stages[i];
    std::size_t before = out.rejected.size();
    for (std::size_t k = 0; k < f.nodes.size(); ++k) {
      std::string_view why = filter(s, f, static_cast<int>(k), f.alloc[k], &P.opts[i], true);
      if (!why.empty() && req.record_rejections)
        out.rejected.push_back({s.name, f.nodes[k].c->name, f.nodes[k].n->name, std::string(why)});
    }
    if (P.opts[i].empty() && !req.record_rejections)  // the summary needs every reason
      for (std::size_t k = 0; k < f.nodes.size(); ++k) {
        std::vector<Option> none;
        std::string_view why = filter(s, f, static_cast<int>(k), f.alloc[k], &none, true);
        out.rejected.push_back({s.name, f.nodes[k].c->name, f.nodes[k].n->name, std::string(why)});
      }
    if (!s.tier_hint.empty() &&
        std::any_of(P.opts[i].begin(), P.opts[i].end(), [&](auto& o) { return f.nodes[o.node].c->tier == s.tier_hint; })) {
      std::vector<Option> keep;
      int last = -1;
      for (auto& o : P.opts[i]) {
        if (f.nodes[o.node].c->tier == s.tier_hint) keep.push_back(o);
        else if (o.node != last)
          out.rejected.push_back({s.name, f.nodes[o.node].c->name, f.nodes[o.node].n->name,
                                  fmt::format("not in preferred tier '{}'", s.tier_hint)});
        last = o.node;
      }
      P.opts[i] = std::move(keep);
    }
    if (P.opts[i].empty()) {
      std::vector<Rejection> mine(out.rejected.begin() + static_cast<long>(before), out.rejected.end());
      out.summary = summary(s.name, f.nodes.size(), 0, mine);
      return fail(ErrorCode::failure, out.summary, "see 'gedge sched place --explain' for every node's reason");
    }
  }
  // Special nodes: named by a link whose other end is a cluster or a node.
  P.special.assign(f.nodes.size(), 0);
  if (!w.node_endpoints.empty())
    for (std::size_t k = 0; k < f.nodes.size(); ++k)
      if (auto it = w.node_endpoints.find(f.nodes[k].id); it != w.node_endpoints.end() && it->second == 2) P.special[k] = 1;
  const std::size_t CC = static_cast<std::size_t>(P.C) * P.C;
  P.clat.assign(CC, kInf);
  P.cbw.assign(CC, 0);
  if (w.cluster_latency.size() == CC)
    for (std::size_t ix = 0; ix < CC; ++ix) {
      if (!std::isnan(w.cluster_latency[ix])) P.clat[ix] = w.cluster_latency[ix];
      P.cbw[ix] = w.cluster_bandwidth[ix];
    }
  P.src_lat.assign(f.nodes.size(), source.empty() ? 0.0 : kInf);
  if (!source.empty()) {
    // A node no link names is reached through its cluster's link: one lookup per cluster.
    std::vector<double> via_cluster(P.C, -1);
    bool plain_source = source.find('/') == std::string::npos;
    std::vector<char> root(f.nodes.size(), 0);
    for (std::size_t i = 0; i < K; ++i)
      if (wl.preds[i].empty())
        for (const auto& o : P.opts[i]) root[o.node] = 1;
    for (std::size_t k = 0; k < f.nodes.size(); ++k) {
      if (!root[k]) continue;
      int c = f.nodes[k].cluster;
      if (plain_source && (w.node_endpoints.empty() || !w.node_endpoints.contains(f.nodes[k].id))) {
        if (via_cluster[c] < 0) {
          auto l = latency_ms(w, source, w.clusters[c].name);
          via_cluster[c] = l && source != w.clusters[c].name ? *l : kInf;
        }
        P.src_lat[k] = via_cluster[c];
      } else if (auto l = latency_ms(w, source, f.nodes[k].id)) {
        P.src_lat[k] = *l;
      }
    }
  }
  GEDGE_TRY_VOID(check_links(P));

  Solution sol;
  if (wl.is_chain()) {
    Bans bans(K);
    for (std::size_t i = 0; i < K; ++i) bans[i].assign(P.opts[i].size(), 0);
    Solution root = dp_chain(P, bans);
    if (root.pick.empty()) return fail(ErrorCode::failure, "no joint placement: the stages cannot reach each other");
    if (overload(P, root.pick).empty()) {
      sol = root;
      out.method = "dp";
    } else {
      // Best-first branch and bound; the DP of a subproblem is its lower bound.
      struct Sub {
        double lb;
        long seq;
        std::vector<std::pair<int, int>> banned;
        Solution s;
      };
      auto worse = [](const Sub& a, const Sub& b) { return a.lb != b.lb ? a.lb > b.lb : a.seq > b.seq; };
      std::priority_queue<Sub, std::vector<Sub>, decltype(worse)> open(worse);
      std::set<std::vector<std::pair<int, int>>> seen;
      long seq = 0;
      open.push(Sub{root.cost, seq++, {}, root});
      int expansions = 0;
      while (!open.empty()) {
        Sub cur = open.top();
        open.pop();
        auto stages = overload(P, cur.s.pick);
        if (stages.empty()) {
          sol = cur.s;
          out.method = "bnb";
          break;
        }
        if (++expansions > req.max_expansions) break;
        for (int st : stages) {
          auto banned = cur.banned;
          banned.emplace_back(st, cur.s.pick[st]);
          std::sort(banned.begin(), banned.end());
          if (!seen.insert(banned).second) continue;
          for (auto& b : bans) std::fill(b.begin(), b.end(), 0);
          for (auto [s, j] : banned) bans[s][j] = 1;
          Solution child = dp_chain(P, bans);
          if (!child.pick.empty()) open.push(Sub{child.cost, seq++, std::move(banned), std::move(child)});
        }
      }
      if (sol.pick.empty()) {
        sol = greedy_local(P);
        out.method = "bnb-limited";
      }
    }
  } else {
    std::uint64_t combos = 1;
    for (const auto& o : P.opts) combos = std::min<std::uint64_t>(combos * o.size(), 1'000'000'000ULL);
    if (combos <= 200'000) {
      sol = exhaustive(P);
      out.method = "exhaustive";
    } else {
      sol = greedy_local(P);
      out.method = "local-search";
    }
  }
  if (sol.pick.empty()) {
    out.summary = "every stage fits somewhere, but not all of them together";
    return fail(ErrorCode::failure, out.summary, "free capacity or relax the pipeline's requests");
  }
  for (std::size_t i = 0; i < K; ++i) {
    const Option& o = P.opts[i][sol.pick[i]];
    StagePlacement sp;
    sp.stage = wl.stages[i].name;
    sp.cluster = f.nodes[o.node].c->name;
    sp.node = f.nodes[o.node].n->name;
    sp.gpu = o.gpu;
    out.placements.push_back(std::move(sp));
  }
  if (req.explain) {
    // For every candidate: its own terms and, for chains, the best E2E with the stage forced
    // there (capacity not coupled), so the top-k table ranks real alternatives.
    for (std::size_t i = 0; i < K; ++i)
      for (std::size_t j = 0; j < P.opts[i].size(); ++j) {
        const Option& o = P.opts[i][j];
        nlohmann::json terms = {{"compute_ms", o.compute}, {"gpu", o.gpu}};
        if (wl.preds[i].empty()) terms["link_ms"] = P.src_lat[o.node];
        else {
          int p = wl.preds[i][0];
          terms["link_ms"] = P.hop(P.opts[p][sol.pick[p]].node, o.node, 0);
          terms["transfer_ms"] = P.hop(P.opts[p][sol.pick[p]].node, o.node, wl.stages[p].output_mb) -
                                 P.hop(P.opts[p][sol.pick[p]].node, o.node, 0);
        }
        double score = kInf;
        if (wl.is_chain() && K * f.nodes.size() <= 20000) {
          Bans bans(K);
          for (std::size_t s = 0; s < K; ++s) bans[s].assign(P.opts[s].size(), s == i ? 1 : 0);
          bans[i][j] = 0;
          score = dp_chain(P, bans).cost;
          terms["best_e2e_ms"] = score;
        }
        out.candidates.push_back(Candidate{wl.stages[i].name, f.nodes[o.node].c->name, f.nodes[o.node].n->name,
                                           score == kInf ? 0.0 : score, terms});
      }
  }
  return out;
}

}  // namespace gedge::sched::detail
