// --explain in data, not only in a table footer: per stage the feasibility counts, every node's
// every failing filter, and the feasible candidates ranked as the policy ranks them. The table
// renders this JSON; `-o json` carries it; a request that fits nowhere is explained too.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "sched_internal.hpp"

namespace gedge::sched {

using nlohmann::json;
using namespace detail;

namespace {

// Every resource a variant is short of (the placement stops at the first; an operator wants all).
void shortfalls(const Node& n, const Resources& alloc, const Resources& need,
                std::vector<std::string>& out) {
  constexpr double eps = 1e-9;
  if (alloc.cpu + need.cpu > n.capacity.cpu + eps) out.emplace_back(why_text(Why::cpu));
  if (alloc.memory + need.memory > n.capacity.memory + eps) out.emplace_back(why_text(Why::memory));
  if (alloc.gpu + need.gpu > n.capacity.gpu + eps) out.emplace_back(why_text(Why::gpu));
}

// Rounded to 1e-3 as to_json rounds, so the JSON is stable.
json rounded(double d) {
  return std::round(d * 1000.0) / 1000.0;
}
json rounded_terms(const json& terms) {
  json out = json::object();
  for (auto it = terms.begin(); it != terms.end(); ++it)
    out[it.key()] = it.value().is_number() ? rounded(it.value().get<double>()) : it.value();
  return out;
}

// rejected_by: how many times each reason was given, most frequent first (as detail::summary orders
// them).
json counts_of(const std::vector<Rejection>& rejected) {
  std::map<std::string, int> counts;
  for (const auto& r : rejected) ++counts[r.reason];
  std::vector<std::pair<std::string, int>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  json out = json::array();
  for (const auto& [reason, n] : v) out.push_back({{"reason", reason}, {"nodes", n}});
  return out;
}

}  // namespace

namespace {

std::vector<std::string> reasons_with(const StageFilter& f, const Stage& s, const Node& n,
                                      const Resources& alloc) {
  std::vector<std::string> out;
  if (!n.ready) out.emplace_back(why_text(Why::not_ready));
  if (!s.node_selector.empty() && !f.selector_matches(n)) out.emplace_back(why_text(Why::selector));
  if (!s.affinity.empty() && !f.affinity_matches(n)) out.emplace_back(why_text(Why::affinity));
  if (!n.taints.empty() && !f.tolerates(n)) out.emplace_back(why_text(Why::taint));
  // Resources: a {gpu, cpu} stage fits when either variant fits; else its CPU variant's shortfalls.
  std::vector<std::string> gpu_short, cpu_short;
  if (s.compute_gpu_ms) {
    shortfalls(n, alloc, stage_need(s, true), gpu_short);
    shortfalls(n, alloc, stage_need(s, false), cpu_short);
    if (!gpu_short.empty() && !cpu_short.empty())
      out.insert(out.end(), cpu_short.begin(), cpu_short.end());
  } else {
    shortfalls(n, alloc, stage_need(s, false), cpu_short);
    out.insert(out.end(), cpu_short.begin(), cpu_short.end());
  }
  return out;
}

}  // namespace

std::vector<std::string> all_reasons(const Stage& s, const Node& n, const Resources& alloc) {
  return reasons_with(StageFilter(s), s, n, alloc);
}

json explain_unplaced(const World& w, const Workload& wl, const Request& req) {
  std::set<std::string> in_levels;
  for (const auto& l : req.levels) in_levels.insert(l.begin(), l.end());
  json stages = json::array();
  for (int i : wl.order) {
    const Stage& s = wl.stages[static_cast<std::size_t>(i)];
    const StageFilter filter(s);
    json nodes = json::array();
    std::vector<Rejection> rejected;
    int total = 0, fit = 0;
    for (const auto& c : w.clusters)
      for (const auto& n : c.nodes) {
        ++total;
        std::vector<std::string> why;
        if (req.policy == Policy::node && c.name + "/" + n.name != req.node)
          why.emplace_back("not the requested node");
        if (!in_levels.empty() && !in_levels.contains(c.name))
          why.emplace_back("not in --clusters");
        auto filters = reasons_with(filter, s, n, n.allocated);
        why.insert(why.end(), filters.begin(), filters.end());
        fit += why.empty();
        for (const auto& r : why) rejected.push_back({s.name, c.name, n.name, r});
        nodes.push_back(
            {{"cluster", c.name}, {"node", n.name}, {"fits", why.empty()}, {"reasons", why}});
      }
    stages.push_back({{"stage", s.name},
                      {"fit", fit},
                      {"total", total},
                      {"rejected_by", counts_of(rejected)},
                      {"summary", summary(s.name, static_cast<std::size_t>(total),
                                          static_cast<std::size_t>(fit), rejected)},
                      {"nodes", nodes}});
  }
  return json{
      {"placed", false}, {"policy", std::string(policy_name(req.policy))}, {"stages", stages}};
}

json explain_json(const Placement& p) {
  json stages = json::array();
  for (const auto& sp : p.placements) {
    std::set<std::string> fit_nodes, rejected_nodes;
    std::vector<Rejection> first_reasons;  // one per rejected node
    for (const auto& c : p.candidates)
      if (c.stage == sp.stage) fit_nodes.insert(c.cluster + "/" + c.node);
    for (const auto& r : p.rejected)
      if (r.stage == sp.stage && rejected_nodes.insert(r.cluster + "/" + r.node).second)
        first_reasons.push_back(r);
    std::vector<const Candidate*> cands;
    for (const auto& c : p.candidates)
      if (c.stage == sp.stage) cands.push_back(&c);
    // The policy's order: low-latency by RTT, the pipeline by its cost (lower first), the
    // allocation policies by score (higher first); ties by name.
    bool lower_better = p.policy == Policy::pipeline;
    std::stable_sort(cands.begin(), cands.end(), [&](const Candidate* a, const Candidate* b) {
      if (p.policy == Policy::low_latency && a->terms.contains("rtt_ms") &&
          b->terms.contains("rtt_ms") && a->terms["rtt_ms"] != b->terms["rtt_ms"])
        return a->terms["rtt_ms"].get<double>() < b->terms["rtt_ms"].get<double>();
      if (a->score != b->score) return lower_better ? a->score < b->score : a->score > b->score;
      return a->cluster + "/" + a->node < b->cluster + "/" + b->node;
    });
    json ranking = json::array();
    for (const auto* c : cands)
      ranking.push_back({{"cluster", c->cluster},
                         {"node", c->node},
                         {"score", rounded(c->score)},
                         {"terms", rounded_terms(c->terms)}});
    stages.push_back({{"stage", sp.stage},
                      {"fit", fit_nodes.size()},
                      {"total", fit_nodes.size() + rejected_nodes.size()},
                      {"rejected_by", counts_of(first_reasons)},
                      {"summary", summary(sp.stage, fit_nodes.size() + rejected_nodes.size(),
                                          fit_nodes.size(), first_reasons)},
                      {"ranking", ranking}});
  }
  return json{{"placed", true}, {"stages", stages}};
}

std::string explain_text(const json& explain, int top) {
  auto ms = [](const json& v) {
    return v.is_number() ? fmt::format("{:.3f}", v.get<double>()) : std::string("-");
  };
  std::string out;
  for (const auto& st : explain.value("stages", json::array())) {
    out += (out.empty() ? "" : "\n") + st.value("summary", "");
    int i = 0;
    for (const auto& c : st.value("ranking", json::array())) {
      if (i >= top) break;
      std::string terms;
      for (auto it = c["terms"].begin(); it != c["terms"].end(); ++it)
        terms += fmt::format(" {}={}", it.key(),
                             it.value().is_number_float() ? ms(it.value()) : it.value().dump());
      out += fmt::format("\n  #{} {}/{} score={:.3f}{}", ++i, c["cluster"].get<std::string>(),
                         c["node"].get<std::string>(), c["score"].get<double>(), terms);
    }
  }
  return out;
}

json unplaced_rows(const json& unplaced) {
  json rows = json::array();
  for (const auto& st : unplaced.value("stages", json::array()))
    for (const auto& n : st.value("nodes", json::array()))
      rows.push_back({{"stage", st["stage"]},
                      {"cluster", n["cluster"]},
                      {"node", n["node"]},
                      {"fits", n["fits"]},
                      {"reasons", n["reasons"]}});
  return rows;
}

Result<std::string> apply_cluster(const json& placement, const std::string& wanted) {
  std::string target = wanted;
  for (const auto& pl : placement.value("placements", json::array())) {
    std::string c = pl.value("cluster", "");
    if (target.empty()) target = c;
    if (c != target)
      return fail(
          ErrorCode::usage,
          fmt::format("--apply deploys to one cluster, but the placement uses '{}' and '{}'",
                      target, c),
          "restrict the candidates (--policy select-clusters --clusters '[\"C\"]'), or deploy "
          "each cluster's stages with 'gedge svc deploy --placement'");
  }
  return target;
}

}  // namespace gedge::sched
