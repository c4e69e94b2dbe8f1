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
#include <span>

#include "sched_internal.hpp"

namespace gedge::sched::detail {

namespace {

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

// Everything place_pipeline needs per call, sized for the world (5000 nodes: about 1 MB).
// Kept per thread and reused, so a call allocates almost nothing: at 5000 nodes fresh buffers
// cost as much as the search itself (page faults, copies on growth).
struct Scratch {
  Flat f;
  std::vector<int> cluster;  // per flat node: its cluster index (compact copy)
  // Per stage: the feasible (node, variant) options, written into `store` (which only grows,
  // so refilling it costs no allocation and no initialisation) and viewed through `opts`.
  std::vector<std::vector<Option>> store;
  std::vector<std::span<const Option>> opts;
  std::vector<std::uint8_t> why;               // stage * N + node: the filter's verdict
  std::vector<std::vector<int>> tier_dropped;  // per stage: nodes dropped by the tier hint
  std::vector<std::size_t> count;
  std::vector<char> special, root;
  std::vector<double> clat, cbw, src_lat, via_cluster;
  std::vector<char> seen;
  std::vector<std::vector<int>> clusters;
  DpScratch dp;
};

// The reasons as strings, copied (not converted) into each Rejection.
const std::string& why_string(Why w) {
  static const auto text = [] {
    std::vector<std::string> t;
    for (auto v : kWhyText) t.emplace_back(v);
    return t;
  }();
  return text[static_cast<int>(w)];
}

Scratch& scratch() {
  static thread_local Scratch s;
  return s;
}

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

}  // namespace

Result<Placement> place_pipeline(const World& w, const Workload& wl, const Request& req,
                                 const std::string& source) {
  Scratch& S = scratch();
  const std::size_t K = wl.stages.size();
  std::size_t N = 0;
  for (const auto& c : w.clusters) N += c.nodes.size();
  Flat& f = S.f;
  f.nodes.resize(N);
  f.alloc.resize(N);
  f.ids.clear();
  S.cluster.resize(N);
  S.opts.assign(K, {});
  S.store.resize(K);
  Problem P{w,
            wl,
            f,
            source,
            S.opts,
            S.special,
            static_cast<int>(w.clusters.size()),
            S.clat,
            S.cbw,
            w.bandwidth.has_value(),
            S.src_lat,
            S.dp,
            S.cluster};
  Placement out;
  out.policy = Policy::pipeline;
  out.source = source;

  // Flatten and filter in one pass over the nodes, every stage per node; the verdicts are kept
  // as codes and turned into Rejection records once, below.
  std::vector<StageFilter> filters;
  filters.reserve(K);
  for (const auto& st : wl.stages) filters.emplace_back(st);
  S.why.resize(K * N);
  S.count.assign(K, 0);
  for (std::size_t i = 0; i < K; ++i) {
    std::size_t cap = filters[i].split ? 2 * N : N;
    if (S.store[i].size() < cap) S.store[i].resize(cap);
  }
  std::size_t n_rejected = 0;
  std::size_t k = 0;
  for (std::size_t ci = 0; ci < w.clusters.size(); ++ci)
    for (const Node& n : w.clusters[ci].nodes) {
      f.nodes[k] = FlatNode{static_cast<int>(ci), &w.clusters[ci], &n};
      f.alloc[k] = n.allocated;
      S.cluster[k] = static_cast<int>(ci);
      for (std::size_t i = 0; i < K; ++i) {
        Option* dst = S.store[i].data();
        std::size_t& cnt = S.count[i];
        Why why = filters[i].check_into(n, static_cast<int>(k), n.allocated, true,
                                        [&](const Option& o) { dst[cnt++] = o; });
        S.why[i * N + k] = static_cast<std::uint8_t>(why);
        n_rejected += why != Why::ok;
      }
      ++k;
    }
  if (!req.record_rejections) n_rejected = 0;
  // The tier hint (soft): when a stage has candidates in its preferred tier, drop the others.
  S.tier_dropped.resize(K);
  for (std::size_t i = 0; i < K; ++i) {
    const Stage& s = wl.stages[i];
    Option* opts = S.store[i].data();
    std::size_t& cnt = S.count[i];
    auto& dropped = S.tier_dropped[i];
    dropped.clear();
    if (!s.tier_hint.empty() && std::any_of(opts, opts + cnt, [&](auto& o) {
          return f.nodes[o.node].c->tier == s.tier_hint;
        })) {
      std::size_t kept = 0;
      int last = -1;
      for (std::size_t j = 0; j < cnt; ++j) {
        const Option o = opts[j];
        if (f.nodes[o.node].c->tier == s.tier_hint)
          opts[kept++] = o;
        else if (o.node != last)
          dropped.push_back(o.node);
        last = o.node;
      }
      cnt = kept;
    }
    S.opts[i] = std::span<const Option>(opts, cnt);
    n_rejected += dropped.size();
  }
  out.rejected.reserve(n_rejected);
  for (std::size_t i = 0; i < K; ++i) {
    const Stage& s = wl.stages[i];
    const std::uint8_t* why = &S.why[i * N];
    if (S.opts[i].empty()) {  // the summary needs every reason, recorded or not
      std::vector<Rejection> mine;
      for (std::size_t k = 0; k < N; ++k)
        if (why[k])
          mine.push_back(
              {s.name, f.nodes[k].c->name, f.nodes[k].n->name, std::string(why_text(Why{why[k]}))});
      out.summary = summary(s.name, N, 0, mine);
      return fail(ErrorCode::failure, out.summary,
                  "see 'gedge sched place --explain' for every node's reason");
    }
    if (req.record_rejections)
      for (std::size_t k = 0; k < N; ++k)
        if (why[k])
          out.rejected.emplace_back(s.name, f.nodes[k].c->name, f.nodes[k].n->name,
                                    why_string(Why{why[k]}));
    if (!S.tier_dropped[i].empty()) {
      const std::string reason = fmt::format("not in preferred tier '{}'", s.tier_hint);
      for (int k : S.tier_dropped[i])
        out.rejected.push_back({s.name, f.nodes[k].c->name, f.nodes[k].n->name, reason});
    }
  }
  // Special nodes: named by a link whose other end is a cluster or a node.
  P.special.assign(N, 0);
  if (!w.node_endpoints.empty())
    for (std::size_t k = 0; k < N; ++k)
      if (auto it = w.node_endpoints.find(node_id(f.nodes[k]));
          it != w.node_endpoints.end() && it->second == 2)
        P.special[k] = 1;
  const std::size_t CC = static_cast<std::size_t>(P.C) * P.C;
  P.clat.assign(CC, kInf);
  P.cbw.assign(CC, 0);
  if (w.cluster_latency.size() == CC)
    for (std::size_t ix = 0; ix < CC; ++ix) {
      if (!std::isnan(w.cluster_latency[ix])) P.clat[ix] = w.cluster_latency[ix];
      P.cbw[ix] = w.cluster_bandwidth[ix];
    }
  P.src_lat.assign(N, source.empty() ? 0.0 : kInf);
  if (!source.empty()) {
    // A node no link names is reached through its cluster's link: one lookup per cluster.
    auto& via_cluster = S.via_cluster;
    via_cluster.assign(P.C, -1);
    bool plain_source = source.find('/') == std::string::npos;
    auto& root = S.root;
    root.assign(N, 0);
    for (std::size_t i = 0; i < K; ++i)
      if (wl.preds[i].empty())
        for (const auto& o : P.opts[i]) root[o.node] = 1;
    for (std::size_t k = 0; k < N; ++k) {
      if (!root[k]) continue;
      int c = f.nodes[k].cluster;
      if (plain_source &&
          (w.node_endpoints.empty() || !w.node_endpoints.contains(node_id(f.nodes[k])))) {
        if (via_cluster[c] < 0) {
          auto l = latency_ms(w, source, w.clusters[c].name);
          via_cluster[c] = l && source != w.clusters[c].name ? *l : kInf;
        }
        P.src_lat[k] = via_cluster[c];
      } else if (auto l = latency_ms(w, source, node_id(f.nodes[k]))) {
        P.src_lat[k] = *l;
      }
    }
  }
  GEDGE_TRY(check_links(P));

  Solution sol;
  if (wl.is_chain()) {
    Solution root = dp_chain(P, nullptr);
    if (root.pick.empty())
      return fail(ErrorCode::failure, "no joint placement: the stages cannot reach each other");
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
      auto worse = [](const Sub& a, const Sub& b) {
        return a.lb != b.lb ? a.lb > b.lb : a.seq > b.seq;
      };
      std::priority_queue<Sub, std::vector<Sub>, decltype(worse)> open(worse);
      std::set<std::vector<std::pair<int, int>>> seen;
      long seq = 0;
      open.push(Sub{root.cost, seq++, {}, root});
      int expansions = 0;
      Bans bans(K);
      for (std::size_t i = 0; i < K; ++i) bans[i].assign(P.opts[i].size(), 0);
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
          Solution child = dp_chain(P, &bans);
          if (!child.pick.empty())
            open.push(Sub{child.cost, seq++, std::move(banned), std::move(child)});
        }
      }
      if (sol.pick.empty()) {
        sol = greedy_local(P);
        out.method = "bnb-limited";
      }
    }
  } else {
    std::uint64_t combos = 1;
    for (const auto& o : P.opts)
      combos = std::min<std::uint64_t>(combos * o.size(), 1'000'000'000ULL);
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
        if (wl.preds[i].empty())
          terms["link_ms"] = P.src_lat[o.node];
        else {
          int p = wl.preds[i][0];
          terms["link_ms"] = P.hop(P.opts[p][sol.pick[p]].node, o.node, 0);
          terms["transfer_ms"] =
              P.hop(P.opts[p][sol.pick[p]].node, o.node, wl.stages[p].output_mb) -
              P.hop(P.opts[p][sol.pick[p]].node, o.node, 0);
        }
        double score = kInf;
        if (wl.is_chain() && K * f.nodes.size() <= 20000) {
          Bans bans(K);
          for (std::size_t s = 0; s < K; ++s) bans[s].assign(P.opts[s].size(), s == i ? 1 : 0);
          bans[i][j] = 0;
          score = dp_chain(P, &bans).cost;
          terms["best_e2e_ms"] = score;
        }
        out.candidates.push_back(Candidate{wl.stages[i].name, f.nodes[o.node].c->name,
                                           f.nodes[o.node].n->name, score == kInf ? 0.0 : score,
                                           terms});
      }
  }
  return out;
}

}  // namespace gedge::sched::detail
