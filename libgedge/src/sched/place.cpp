// The per-stage policies, reproduced from GEdge Platform's GS-Scheduler with its bugs
// fixed: levels parsed as JSON (never eval), "MostRequest" named for what it does
// (least-allocated), a one-element nested level is a level, and a request that fits nowhere is
// reported with a reason per node instead of a deleted pod.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "sched_internal.hpp"

namespace gedge::sched {

using nlohmann::json;
using namespace detail;

namespace {

double pct(double used, double cap) {
  return cap > 0 ? used / cap * 100.0 : 100.0;
}

bool wants_gpu(const Stage& s) {
  return s.request.gpu > 0 || s.compute_gpu_ms.has_value();
}

// GS "MostRequest" as its code behaves: higher means emptier.
double least_score(const Stage& s, const Node& n, const Resources& alloc, const Weights& wt) {
  double score = wt.cpu * (100 - pct(alloc.cpu, n.capacity.cpu)) +
                 wt.memory * (100 - pct(alloc.memory, n.capacity.memory));
  if (wants_gpu(s)) score += wt.gpu * std::max(0.0, n.capacity.gpu - alloc.gpu);
  return score;
}

// Bin-packing: higher means fuller after placing.
double most_score(const Option& o, const Node& n, const Resources& alloc, const Weights& wt) {
  double score = wt.cpu * pct(alloc.cpu + o.need.cpu, n.capacity.cpu) +
                 wt.memory * pct(alloc.memory + o.need.memory, n.capacity.memory);
  if (o.need.gpu > 0) score += pct(alloc.gpu + o.need.gpu, n.capacity.gpu);
  return score;
}

// RTT from the source to a cluster: its cluster-level link, else its nearest node's link.
std::optional<double> cluster_rtt(const World& w, const std::string& source, const Cluster& c) {
  if (auto l = latency_ms(w, source, c.name); l && source != c.name) return l;
  std::optional<double> best;
  for (const auto& n : c.nodes)
    if (auto l = latency_ms(w, source, c.name + "/" + n.name); l && (!best || *l < *best)) best = l;
  return best;
}

struct Scored {
  Option opt;
  double score = 0;
  json terms;
};

Result<Placement> place_sequential(const World& w, const Workload& wl, const Request& req,
                                   const std::string& source) {
  Flat f = flatten(w);
  Placement p;
  p.policy = req.policy;
  p.source = source;
  std::set<std::string> in_levels;
  for (const auto& l : req.levels) in_levels.insert(l.begin(), l.end());
  Levels levels = req.levels;
  if (levels.empty()) {
    levels.emplace_back();
    for (const auto& c : w.clusters) levels.back().push_back(c.name);
  }
  Policy rank = req.policy == Policy::select_clusters ? req.rank : req.policy;
  std::map<std::string, double> rtt_cache;
  auto rtt_of = [&](const Cluster& c) -> Result<double> {
    if (auto it = rtt_cache.find(c.name); it != rtt_cache.end()) return it->second;
    auto r = cluster_rtt(w, source, c);
    if (!r)
      return fail(
          ErrorCode::usage,
          fmt::format("no latency link between '{}' and cluster '{}'", source, c.name),
          "add it to latency_ms.links, or measure it with 'gedge sched probe --from DEVICE'");
    rtt_cache[c.name] = *r;
    return *r;
  };

  for (int i : wl.order) {
    const Stage& s = wl.stages[i];
    std::vector<Scored> feas;
    std::size_t before = p.rejected.size();
    for (std::size_t k = 0; k < f.nodes.size(); ++k) {
      const FlatNode& fn = f.nodes[k];
      auto reject = [&](std::string why) {
        p.rejected.push_back({s.name, fn.c->name, fn.n->name, std::move(why)});
      };
      if (req.policy == Policy::node && f.ids[k] != req.node) {
        reject("not the requested node");
        continue;
      }
      if (!in_levels.empty() && !in_levels.contains(fn.c->name)) {
        reject("not in --clusters");
        continue;
      }
      std::vector<Option> opts;
      std::string_view why = filter(s, f, static_cast<int>(k), f.alloc[k], &opts, false);
      if (!why.empty()) {
        reject(std::string(why));
        continue;
      }
      for (auto& o : opts) feas.push_back(Scored{o, 0, json::object()});
    }
    if (!s.tier_hint.empty() && std::any_of(feas.begin(), feas.end(), [&](auto& x) {
          return f.nodes[x.opt.node].c->tier == s.tier_hint;
        })) {
      std::vector<Scored> keep;
      for (auto& x : feas) {
        const FlatNode& fn = f.nodes[x.opt.node];
        if (fn.c->tier == s.tier_hint)
          keep.push_back(std::move(x));
        else
          p.rejected.push_back({s.name, fn.c->name, fn.n->name,
                                fmt::format("not in preferred tier '{}'", s.tier_hint)});
      }
      feas = std::move(keep);
    }
    if (feas.empty()) {
      std::vector<Rejection> mine(p.rejected.begin() + static_cast<long>(before), p.rejected.end());
      p.summary = summary(s.name, f.nodes.size(), 0, mine);
      return fail(ErrorCode::failure, p.summary,
                  "see 'gedge sched place --explain' for every node's reason");
    }
    // Per-candidate terms (also the explanation).
    for (auto& x : feas) {
      const FlatNode& fn = f.nodes[x.opt.node];
      const Resources& al = f.alloc[x.opt.node];
      x.terms = {{"cpu_pct", pct(al.cpu, fn.n->capacity.cpu)},
                 {"mem_pct", pct(al.memory, fn.n->capacity.memory)},
                 {"free_gpus", std::max(0.0, fn.n->capacity.gpu - al.gpu)},
                 {"least_allocated", least_score(s, *fn.n, al, req.weights)},
                 {"most_allocated", most_score(x.opt, *fn.n, al, req.weights)}};
      if (rank == Policy::low_latency) {
        GEDGE_TRY_ASSIGN(double r, rtt_of(*fn.c));
        x.terms["rtt_ms"] = r;
      }
      x.score =
          (rank == Policy::most_allocated ? x.terms["most_allocated"] : x.terms["least_allocated"])
              .get<double>();
    }
    // Levels in order; inside a level, clusters ranked by the rank policy; first feasible wins.
    const Scored* chosen = nullptr;
    int chosen_level = -1;
    for (std::size_t L = 0; L < levels.size() && !chosen; ++L) {
      std::set<std::string> level(levels[L].begin(), levels[L].end());
      std::vector<const Scored*> in;
      for (const auto& x : feas)
        if (level.contains(f.nodes[x.opt.node].c->name)) in.push_back(&x);
      if (in.empty()) continue;
      // Best node first: higher score, then cluster/node name. With low-latency the cluster
      // order (RTT, then name) comes first.
      std::stable_sort(in.begin(), in.end(), [&](const Scored* a, const Scored* b) {
        if (rank == Policy::low_latency) {
          double ra = a->terms["rtt_ms"].get<double>(), rb = b->terms["rtt_ms"].get<double>();
          const std::string &ca = f.nodes[a->opt.node].c->name, &cb = f.nodes[b->opt.node].c->name;
          if (ca != cb) return ra != rb ? ra < rb : ca < cb;
        }
        if (a->score != b->score) return a->score > b->score;
        return f.ids[a->opt.node] < f.ids[b->opt.node];
      });
      chosen = in.front();
      chosen_level = static_cast<int>(L);
    }
    if (req.explain)
      for (const auto& x : feas) {
        Candidate c{s.name, f.nodes[x.opt.node].c->name, f.nodes[x.opt.node].n->name, x.score,
                    x.terms};
        c.terms["gpu"] = x.opt.gpu;
        p.candidates.push_back(std::move(c));
      }
    const FlatNode& fn = f.nodes[chosen->opt.node];
    StagePlacement sp;
    sp.stage = s.name;
    sp.cluster = fn.c->name;
    sp.node = fn.n->name;
    sp.gpu = chosen->opt.gpu;
    sp.score = chosen->score;
    sp.policy_terms = chosen->terms;
    if (!req.levels.empty()) sp.policy_terms["level"] = chosen_level + 1;
    Resources& al = f.alloc[chosen->opt.node];
    al.cpu += chosen->opt.need.cpu, al.memory += chosen->opt.need.memory,
        al.gpu += chosen->opt.need.gpu;
    p.placements.push_back(std::move(sp));
  }
  // Placements in file order.
  std::vector<StagePlacement> ordered;
  for (const auto& s : wl.stages)
    for (auto& sp : p.placements)
      if (sp.stage == s.name) ordered.push_back(sp);
  p.placements = std::move(ordered);
  return p;
}

}  // namespace

Result<void> check_request(const World& w, const Workload& wl, const Request& req) {
  if (wl.preds.size() != wl.stages.size() || wl.order.size() != wl.stages.size())
    return fail(ErrorCode::internal, "workload not resolved (call resolve())");
  std::string source = !req.source.empty() ? req.source : wl.source;
  std::set<std::string> clusters;
  if (!req.levels.empty())
    for (const auto& c : w.clusters) clusters.insert(c.name);
  for (const auto& level : req.levels)
    for (const auto& c : level)
      if (!clusters.contains(c))
        return fail(ErrorCode::not_found, fmt::format("--clusters names unknown cluster '{}'", c),
                    "see 'gedge cluster ls' or the state file's clusters");
  if (req.policy == Policy::select_clusters && req.levels.empty())
    return fail(ErrorCode::usage, "select-clusters needs --clusters",
                R"(example: --clusters '["c1", ["c2", "c3"]]')");
  if (req.policy == Policy::node) {
    if (req.node.empty()) return fail(ErrorCode::usage, "policy node needs --node CLUSTER/NODE");
    auto slash = req.node.find('/');
    bool found = false;
    if (slash != std::string::npos)
      for (const auto& c : w.clusters)
        if (c.name == req.node.substr(0, slash))
          for (const auto& n : c.nodes) found = found || n.name == req.node.substr(slash + 1);
    if (!found)
      return fail(ErrorCode::not_found,
                  fmt::format("--node '{}' is not a known cluster/node", req.node),
                  "name it as CLUSTER/NODE");
  }
  if (req.policy == Policy::low_latency && source.empty())
    return fail(ErrorCode::usage, "low-latency needs a source",
                "pass --from DEVICE or set 'source:' in the file");
  if (req.policy == Policy::select_clusters && req.rank == Policy::low_latency && source.empty())
    return fail(ErrorCode::usage,
                "select-clusters ranks nested levels by latency and needs a source",
                "pass --from DEVICE, or --rank least-allocated");
  if (!source.empty()) {
    // The source is a device or node the world knows: a registered device, an endpoint of a latency
    // link, or a node (CLUSTER/NODE or a bare node name).
    bool known = false;
    for (const auto& l : w.latency.links) known = known || l.a == source || l.b == source;
    for (const auto& d : w.devices) known = known || d == source;
    for (const auto& c : w.clusters)
      for (const auto& n : c.nodes)
        known = known || n.name == source || c.name + "/" + n.name == source;
    if (!known)
      return fail(
          ErrorCode::not_found,
          fmt::format("source '{}' is not a device or node the world knows", source),
          "pass --from a registered device (see 'gedge device ls') or a node of the state file");
  }
  return {};
}

Result<Placement> place(const World& w, const Workload& wl, const Request& req) {
  GEDGE_TRY(check_request(w, wl, req));
  std::string source = !req.source.empty() ? req.source : wl.source;

  Placement p;
  if (req.policy == Policy::pipeline) {
    GEDGE_TRY_ASSIGN(p, detail::place_pipeline(w, wl, req, source));
  } else {
    GEDGE_TRY_ASSIGN(p, place_sequential(w, wl, req, source));
  }

  // The one cost model, for every policy.
  Assignment a;
  for (const auto& sp : p.placements) {
    a.node.push_back(sp.cluster + "/" + sp.node);
    a.gpu.push_back(sp.gpu);
  }
  std::vector<StageTerms> terms;
  auto e = e2e_ms(w, wl, source, a, &terms);
  if (e) {
    p.e2e_ms = *e;
    for (std::size_t i = 0; i < p.placements.size(); ++i) p.placements[i].terms = terms[i];
    if (source.empty()) p.e2e_note = "no source: the hop from the data source is not counted";
  } else {
    p.e2e_ms.reset();
    p.e2e_note = e.error().message;
  }
  if (req.policy == Policy::pipeline)
    for (auto& sp : p.placements)
      sp.score = sp.terms.compute_ms + sp.terms.link_ms + sp.terms.transfer_ms;
  return p;
}

}  // namespace gedge::sched
