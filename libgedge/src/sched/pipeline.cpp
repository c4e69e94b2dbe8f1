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

#include "pipeline_search.hpp"
#include "sched_internal.hpp"

namespace gedge::sched::detail {

using namespace search;

namespace {

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
