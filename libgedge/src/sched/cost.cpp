// The one cost model (E2E latency of an assignment), filters, exhaustive search, JSON shape.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <optional>

#include "sched_internal.hpp"

namespace gedge::sched {

using nlohmann::json;
using namespace detail;

namespace detail {

void flatten_into(const World& w, Flat& f, bool ids) {
  std::size_t total = 0;
  for (const auto& c : w.clusters) total += c.nodes.size();
  f.nodes.clear();
  f.alloc.clear();
  f.ids.clear();
  f.nodes.reserve(total);
  f.alloc.reserve(total);
  for (std::size_t ci = 0; ci < w.clusters.size(); ++ci)
    for (const auto& n : w.clusters[ci].nodes) {
      f.nodes.push_back(FlatNode{static_cast<int>(ci), &w.clusters[ci], &n});
      f.alloc.push_back(n.allocated);
      if (ids) f.ids.push_back(w.clusters[ci].name + "/" + n.name);
    }
}

Flat flatten(const World& w) {
  Flat f;
  flatten_into(w, f, true);
  return f;
}

double stage_compute(const Stage& s, bool gpu) {
  if (s.compute_gpu_ms) return gpu ? *s.compute_gpu_ms : *s.compute_cpu_ms;
  return s.compute_ms.value_or(0.0);
}

Resources stage_need(const Stage& s, bool gpu) {
  Resources r = s.request;
  if (s.compute_gpu_ms) r.gpu = gpu ? (s.request.gpu > 0 ? s.request.gpu : 1.0) : 0.0;
  return r;
}

bool fits(const Node& n, const Resources& alloc, const Resources& need) {
  constexpr double eps = 1e-9;
  return alloc.cpu + need.cpu <= n.capacity.cpu + eps &&
         alloc.memory + need.memory <= n.capacity.memory + eps &&
         alloc.gpu + need.gpu <= n.capacity.gpu + eps;
}

StageFilter::StageFilter(const Stage& st)
    : s(&st),
      split(st.compute_gpu_ms.has_value()),
      need(stage_need(st, false)),
      need_gpu(stage_need(st, true)),
      need_cpu(stage_need(st, false)),
      compute(stage_compute(st, false)),
      compute_gpu(split ? stage_compute(st, true) : 0.0),
      compute_cpu(split ? stage_compute(st, false) : 0.0) {}

bool StageFilter::selector_matches(const Node& n) const {
  for (const auto& [key, val] : s->node_selector) {
    auto it = n.labels.find(key);
    if (it == n.labels.end() || it->second != val) return false;
  }
  return true;
}

namespace {

bool requirement_holds(const manifest::Requirement& r, const Node& n) {
  std::optional<std::string> v;
  if (r.key == "metadata.name") {
    v = n.name;
  } else if (auto it = n.labels.find(r.key); it != n.labels.end()) {
    v = it->second;
  }
  auto in = [&] { return v && std::find(r.values.begin(), r.values.end(), *v) != r.values.end(); };
  auto number = [](const std::string& t) -> std::optional<long long> {
    try {
      std::size_t used = 0;
      long long x = std::stoll(t, &used);
      if (used == t.size()) return x;
    } catch (...) {
    }
    return std::nullopt;
  };
  if (r.op == "In") return in();
  if (r.op == "NotIn") return !in();
  if (r.op == "Exists") return v.has_value();
  if (r.op == "DoesNotExist") return !v.has_value();
  if ((r.op == "Gt" || r.op == "Lt") && v && r.values.size() == 1) {
    auto a = number(*v), b = number(r.values[0]);
    if (!a || !b) return false;
    return r.op == "Gt" ? *a > *b : *a < *b;
  }
  return false;
}

bool tolerated(const Taint& t, const std::vector<manifest::Toleration>& tols) {
  for (const auto& tol : tols) {
    if (!tol.effect.empty() && tol.effect != t.effect) continue;
    if (tol.op == "Exists") {
      if (tol.key.empty() || tol.key == t.key) return true;
    } else if (tol.key == t.key && tol.value == t.value) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool StageFilter::affinity_matches(const Node& n) const {
  for (const auto& term : s->affinity) {
    if (term.empty()) continue;  // an empty term matches no objects (Kubernetes)
    if (std::all_of(term.begin(), term.end(),
                    [&](const auto& r) { return requirement_holds(r, n); }))
      return true;
  }
  return false;
}

bool StageFilter::tolerates(const Node& n) const {
  for (const auto& t : n.taints)
    if (t.effect != "PreferNoSchedule" && !tolerated(t, s->tolerations)) return false;
  return true;
}

std::string_view filter(const Stage& s, const Flat& f, int k, const Resources& alloc,
                        std::vector<Option>* out, bool all_variants) {
  return why_text(StageFilter(s).check(*f.nodes[k].n, k, alloc, out, all_variants));
}

std::string summary(const std::string& stage, std::size_t total, std::size_t feasible,
                    const std::vector<Rejection>& rejected) {
  std::map<std::string, int> counts;
  for (const auto& r : rejected)
    if (r.stage == stage) ++counts[r.reason];
  std::vector<std::pair<std::string, int>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
  std::string out = fmt::format("{}/{} nodes fit stage '{}'", feasible, total, stage);
  for (std::size_t i = 0; i < v.size(); ++i)
    out += fmt::format("{} {} {}", i == 0 ? ":" : ",", v[i].second, v[i].first);
  return out;
}

}  // namespace detail

Result<Policy> parse_policy(std::string_view s) {
  if (s == "low-latency") return Policy::low_latency;
  if (s == "least-allocated") return Policy::least_allocated;
  if (s == "most-allocated") return Policy::most_allocated;
  if (s == "select-clusters") return Policy::select_clusters;
  if (s == "node") return Policy::node;
  if (s == "pipeline") return Policy::pipeline;
  // GS-Scheduler's names: its "MostRequested" scores free capacity.
  if (s == "GLowLatencyPriority") return Policy::low_latency;
  if (s == "GMostRequestedPriority" || s == "GMostRequestPriority") return Policy::least_allocated;
  if (s == "GSelectedCluster") return Policy::select_clusters;
  return fail(
      ErrorCode::usage, fmt::format("unknown policy '{}'", s),
      "policies: low-latency, least-allocated, most-allocated, select-clusters, node, pipeline "
      "(GS-Scheduler's GLowLatencyPriority, GMostRequestedPriority, GSelectedCluster are aliases)");
}

std::string_view policy_name(Policy p) {
  switch (p) {
    case Policy::low_latency:
      return "low-latency";
    case Policy::least_allocated:
      return "least-allocated";
    case Policy::most_allocated:
      return "most-allocated";
    case Policy::select_clusters:
      return "select-clusters";
    case Policy::node:
      return "node";
    case Policy::pipeline:
      return "pipeline";
  }
  return "?";
}

namespace {

// A list literal: '[' item (',' item)* ']' where an item is a name or a nested list; a name is
// "double-quoted" (JSON escapes), 'single-quoted' (Python: \\ \' \") or bare
// ([A-Za-z0-9._:-]+). Nothing is evaluated.
struct LevelParser {
  std::string_view t;
  std::size_t pos = 0;
  std::string error;

  void ws() {
    while (pos < t.size() && (t[pos] == ' ' || t[pos] == '\t' || t[pos] == '\n' || t[pos] == '\r'))
      ++pos;
  }
  bool bad(std::string why) {
    if (error.empty()) error = fmt::format("{} at character {}", why, pos + 1);
    return false;
  }
  bool name(std::string& out) {
    ws();
    if (pos >= t.size()) return bad("expected a cluster name");
    char q = t[pos];
    if (q == '"' || q == '\'') {
      ++pos;
      while (pos < t.size() && t[pos] != q) {
        char c = t[pos++];
        if (c == '\\') {
          if (pos >= t.size()) return bad("unterminated string");
          char e = t[pos++];
          if (e == '\\' || e == '\'' || e == '"' || e == '/')
            out.push_back(e);
          else
            return bad(fmt::format("unsupported escape '\\{}'", e));
        } else {
          out.push_back(c);
        }
      }
      if (pos >= t.size()) return bad("unterminated string");
      ++pos;
    } else {
      while (pos < t.size() && (std::isalnum(static_cast<unsigned char>(t[pos])) || t[pos] == '-' ||
                                t[pos] == '_' || t[pos] == '.' || t[pos] == ':'))
        out.push_back(t[pos++]);
    }
    if (out.empty()) return bad("expected a cluster name");
    return true;
  }
  // items of a list whose '[' was consumed; nested lists only at depth 0.
  bool list(int depth, Levels& levels, std::vector<std::string>* into) {
    ws();
    if (pos < t.size() && t[pos] == ']') return bad("empty list");
    for (;;) {
      ws();
      if (pos < t.size() && t[pos] == '[') {
        if (depth > 0) return bad("lists nest one level deep");
        ++pos;
        std::vector<std::string> level;
        if (!list(depth + 1, levels, &level)) return false;
        levels.push_back(std::move(level));
      } else {
        std::string n;
        if (!name(n)) return false;
        if (into)
          into->push_back(std::move(n));
        else
          levels.push_back({std::move(n)});
      }
      ws();
      if (pos >= t.size()) return bad("missing ']'");
      if (t[pos] == ',') {
        ++pos;
        continue;
      }
      if (t[pos] == ']') {
        ++pos;
        return true;
      }
      return bad(fmt::format("unexpected '{}'", t[pos]));
    }
  }
};

}  // namespace

Result<Levels> parse_levels(std::string_view text) {
  constexpr const char* kExample =
      R"(examples: --clusters '["c1", ["c2", "c3"], "c4"]', "['c1', ['c2', 'c3']]" or '[c1,[c2,c3]]')";
  LevelParser p{text};
  Levels levels;
  p.ws();
  bool ok = p.pos < text.size() && text[p.pos] == '[';
  if (!ok)
    p.bad("expected '['");
  else {
    ++p.pos;
    ok = p.list(0, levels, nullptr);
    p.ws();
    if (ok && p.pos != text.size()) ok = p.bad("trailing text");
  }
  if (!ok)
    return fail(ErrorCode::usage, fmt::format("--clusters: not a list of clusters: {}", p.error),
                kExample);
  return levels;
}

Result<double> e2e_ms(const World& w, const Workload& wl, const std::string& source,
                      const Assignment& a, std::vector<StageTerms>* terms) {
  const std::size_t K = wl.stages.size();
  std::vector<double> finish(K, 0.0);
  std::vector<StageTerms> t(K);
  for (int i : wl.order) {
    const Stage& s = wl.stages[i];
    double start = 0;
    if (wl.preds[i].empty()) {
      if (!source.empty()) {
        auto l = latency_ms(w, source, a.node[i]);
        if (!l)
          return fail(
              ErrorCode::usage,
              fmt::format("no latency link between '{}' and '{}'", source, a.node[i]),
              "add it to latency_ms.links, or measure it with 'gedge sched probe --from DEVICE'");
        t[i].link_ms = *l;
        start = *l;
      }
    } else {
      bool first = true;
      for (int p : wl.preds[i]) {
        double link = 0, transfer = 0;
        if (a.node[p] != a.node[i]) {
          auto l = latency_ms(w, a.node[p], a.node[i]);
          if (!l)
            return fail(ErrorCode::usage,
                        fmt::format("no latency link between '{}' and '{}'", a.node[p], a.node[i]),
                        "add it (or a link between their clusters) to latency_ms.links");
          link = *l;
          double mb = wl.stages[p].output_mb;
          if (w.bandwidth && mb > 0) {
            auto bw = bandwidth_mbps(w, a.node[p], a.node[i]);
            if (!bw || *bw <= 0)
              return fail(
                  ErrorCode::usage,
                  fmt::format("no bandwidth link between '{}' and '{}'", a.node[p], a.node[i]),
                  "add it to bandwidth_mbps.links, or drop bandwidth_mbps to ignore transfer time");
            transfer = mb * 8000.0 / *bw;
          }
        }
        double arrive = finish[p] + link + transfer;
        if (first || arrive > start) {
          start = arrive;
          t[i].link_ms = link;
          t[i].transfer_ms = transfer;
          first = false;
        }
      }
    }
    t[i].compute_ms = stage_compute(s, a.gpu[i]);
    finish[i] = start + t[i].compute_ms;
  }
  if (terms) *terms = std::move(t);
  return *std::max_element(finish.begin(), finish.end());
}

Result<std::optional<std::pair<Assignment, double>>> place_exhaustive(const World& w,
                                                                      const Workload& wl,
                                                                      const std::string& source,
                                                                      std::uint64_t max_combos) {
  Flat f = flatten(w);
  const std::size_t K = wl.stages.size();
  std::vector<std::vector<Option>> opts(K);
  std::uint64_t combos = 1;
  for (std::size_t i = 0; i < K; ++i) {
    for (std::size_t k = 0; k < f.nodes.size(); ++k) {
      std::string tier_hint = wl.stages[i].tier_hint;
      if (!tier_hint.empty() && f.nodes[k].c->tier != tier_hint)
        continue;  // filtered below if needed
      (void)filter(wl.stages[i], f, static_cast<int>(k), f.alloc[k], &opts[i], true);
    }
    if (opts[i].empty() && !wl.stages[i].tier_hint.empty())  // the tier hint is soft
      for (std::size_t k = 0; k < f.nodes.size(); ++k)
        (void)filter(wl.stages[i], f, static_cast<int>(k), f.alloc[k], &opts[i], true);
    if (opts[i].empty()) return std::optional<std::pair<Assignment, double>>{};
    combos *= opts[i].size();
    if (combos > max_combos)
      return fail(ErrorCode::usage,
                  fmt::format("exhaustive search over more than {} combinations", max_combos));
  }
  std::optional<std::pair<Assignment, double>> best;
  std::vector<std::size_t> pick(K, 0);
  Assignment a;
  a.node.resize(K);
  a.gpu.resize(K);
  std::vector<Resources> alloc = f.alloc;
  std::function<Result<void>(std::size_t)> rec = [&](std::size_t i) -> Result<void> {
    if (i == K) {
      GEDGE_TRY_ASSIGN(double e, e2e_ms(w, wl, source, a));
      if (!best || e < best->second - 1e-9) best = std::pair{a, e};
      return {};
    }
    for (const auto& o : opts[i]) {
      Resources& al = alloc[o.node];
      if (!fits(*f.nodes[o.node].n, al, o.need)) continue;
      al.cpu += o.need.cpu, al.memory += o.need.memory, al.gpu += o.need.gpu;
      a.node[i] = f.ids[o.node];
      a.gpu[i] = o.gpu;
      auto r = rec(i + 1);
      al.cpu -= o.need.cpu, al.memory -= o.need.memory, al.gpu -= o.need.gpu;
      if (!r) return r;
    }
    return {};
  };
  GEDGE_TRY(rec(0));
  return best;
}

void commit(World& w, const Workload& wl, const Placement& p) {
  for (std::size_t i = 0; i < p.placements.size() && i < wl.stages.size(); ++i) {
    const auto& sp = p.placements[i];
    const Stage* s = nullptr;
    for (const auto& st : wl.stages)
      if (st.name == sp.stage) s = &st;
    if (!s) continue;
    for (auto& c : w.clusters)
      if (c.name == sp.cluster)
        for (auto& n : c.nodes)
          if (n.name == sp.node) {
            Resources need = stage_need(*s, sp.gpu);
            n.allocated.cpu += need.cpu, n.allocated.memory += need.memory,
                n.allocated.gpu += need.gpu;
          }
  }
}

namespace {
// Rounds to 1e-3 so the JSON is stable and readable; the inputs are ms and percentages.
json num(double d) {
  return std::round(d * 1000.0) / 1000.0;
}
}  // namespace

json to_json(const Placement& p) {
  json out = json::object();
  out["policy"] = std::string(policy_name(p.policy));
  out["source"] = p.source.empty() ? json(nullptr) : json(p.source);
  json pl = json::array();
  for (const auto& s : p.placements) {
    json terms = {{"compute_ms", num(s.terms.compute_ms)},
                  {"link_ms", num(s.terms.link_ms)},
                  {"transfer_ms", num(s.terms.transfer_ms)}};
    for (auto it = s.policy_terms.begin(); it != s.policy_terms.end(); ++it)
      terms[it.key()] = it.value().is_number() ? num(it.value().get<double>()) : it.value();
    pl.push_back({{"stage", s.stage},
                  {"cluster", s.cluster},
                  {"node", s.node},
                  {"gpu", s.gpu},
                  {"score", num(s.score)},
                  {"terms", terms}});
  }
  out["placements"] = pl;
  out["e2e_ms"] = p.e2e_ms ? num(*p.e2e_ms) : json(nullptr);
  if (!p.e2e_note.empty()) out["e2e_note"] = p.e2e_note;
  if (!p.method.empty()) out["method"] = p.method;
  json rej = json::array();
  for (const auto& r : p.rejected)
    rej.push_back(
        {{"stage", r.stage}, {"cluster", r.cluster}, {"node", r.node}, {"reason", r.reason}});
  out["rejected"] = rej;
  if (!p.candidates.empty()) {
    json cands = json::array();
    for (const auto& c : p.candidates) {
      json terms = json::object();
      for (auto it = c.terms.begin(); it != c.terms.end(); ++it)
        terms[it.key()] = it.value().is_number() ? num(it.value().get<double>()) : it.value();
      cands.push_back({{"stage", c.stage},
                       {"cluster", c.cluster},
                       {"node", c.node},
                       {"score", num(c.score)},
                       {"terms", terms}});
    }
    out["candidates"] = cands;
    out["explain"] = explain_json(p);
  }
  if (!p.summary.empty()) out["summary"] = p.summary;
  return out;
}

}  // namespace gedge::sched
