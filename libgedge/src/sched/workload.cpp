// The scheduling fields of a service or pipeline file. The service issue owns the full schema;
// this loader reads only what placement needs (resources, compute_ms, output_mb, after,
// source, scheduleHint) and tolerates every other field.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "gedge/manifest.hpp"
#include "gedge/sched.hpp"
#include "sched_internal.hpp"

namespace gedge::sched {

using nlohmann::json;

namespace {

struct Ctx {
  std::string origin;
  std::string where(const YAML::Node& n, const std::string& path) const {
    auto m = n.Mark();
    if (m.line >= 0) return fmt::format("{}:{}: {}", origin, m.line + 1, path);
    return fmt::format("{}: {}", origin, path);
  }
};

// A YAML scalar as JSON: numbers when the plain scalar reads as one, strings otherwise.
json scalar_json(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() != "!")  // not quoted
    if (auto d = detail::whole_double(s)) return *d;
  return s;
}

Result<double> number_at(const Ctx& c, const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar())
    return fail(ErrorCode::usage, fmt::format("{}: expected a number", c.where(n, path)));
  json v = scalar_json(n);
  if (!v.is_number())
    return fail(ErrorCode::usage,
                fmt::format("{}: expected a number, got '{}'", c.where(n, path), n.Scalar()));
  double d = v.get<double>();
  if (!std::isfinite(d) || d < 0 || d > 1e12)
    return fail(ErrorCode::usage,
                fmt::format("{}: must be a finite non-negative number", c.where(n, path)));
  return d;
}

Result<std::string> string_at(const Ctx& c, const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar())
    return fail(ErrorCode::usage, fmt::format("{}: expected a string", c.where(n, path)));
  return n.Scalar();
}

Result<Resources> resources_at(const Ctx& c, const YAML::Node& n, const std::string& path) {
  if (!n.IsMap())
    return fail(ErrorCode::usage,
                fmt::format("{}: expected a map of cpu, memory, gpu", c.where(n, path)));
  Resources r;
  for (const auto& kv : n) {
    std::string k = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    std::string p = path + "." + k;
    if (k == "cpu") {
      if (!v.IsScalar())
        return fail(ErrorCode::usage, fmt::format("{}: expected a cpu quantity", c.where(v, p)));
      auto q = parse_cpu(scalar_json(v));
      if (!q)
        return fail(ErrorCode::usage, fmt::format("{}: {}", c.where(v, p), q.error().message),
                    q.error().hint);
      r.cpu = *q;
    } else if (k == "memory") {
      if (!v.IsScalar())
        return fail(ErrorCode::usage, fmt::format("{}: expected a memory quantity", c.where(v, p)));
      auto q = parse_memory(scalar_json(v));
      if (!q)
        return fail(ErrorCode::usage, fmt::format("{}: {}", c.where(v, p), q.error().message),
                    q.error().hint);
      r.memory = *q;
    } else if (k == "gpu" || k == "nvidia.com/gpu") {
      GEDGE_TRY_ASSIGN(r.gpu, number_at(c, v, p));
    } else {
      return fail(ErrorCode::usage,
                  fmt::format("{}: unknown resource '{}'", c.where(kv.first, path), k),
                  "resources are cpu, memory and gpu");
    }
  }
  return r;
}

// Σ of the containers' requests (v2 container form); v1 image strings request nothing.
Result<Resources> container_requests(const Ctx& c, const YAML::Node& containers,
                                     const std::string& path) {
  Resources sum;
  if (!containers.IsSequence()) return sum;
  for (std::size_t i = 0; i < containers.size(); ++i) {
    const YAML::Node& ct = containers[i];
    if (!ct.IsMap() || !ct["resources"]) continue;
    std::string p = fmt::format("{}[{}].resources", path, i);
    const YAML::Node& res = ct["resources"];
    if (res["requests"]) {
      GEDGE_TRY_ASSIGN(auto r, resources_at(c, res["requests"], p + ".requests"));
      sum.cpu += r.cpu, sum.memory += r.memory, sum.gpu += r.gpu;
    }
    if (res["acceleration"] && res["acceleration"].IsMap() && res["acceleration"]["compute"] &&
        res["acceleration"]["compute"]["gpu"]) {
      GEDGE_TRY_ASSIGN(double gpu, number_at(c, res["acceleration"]["compute"]["gpu"],
                                             p + ".acceleration.compute.gpu"));
      sum.gpu += gpu;
    }
  }
  return sum;
}

Result<Stage> stage_at(const Ctx& c, const YAML::Node& n, const std::string& path, bool named) {
  if (!n.IsMap())
    return fail(ErrorCode::usage, fmt::format("{}: expected a map", c.where(n, path)));
  Stage s;
  if (n["name"]) {
    GEDGE_TRY_ASSIGN(s.name, string_at(c, n["name"], path + ".name"));
  }
  if (named && s.name.empty())
    return fail(ErrorCode::usage, fmt::format("{}: missing field 'name'", c.where(n, path)));
  if (n["resources"]) {
    GEDGE_TRY_ASSIGN(s.request, resources_at(c, n["resources"], path + ".resources"));
  } else if (n["containers"]) {
    GEDGE_TRY_ASSIGN(s.request, container_requests(c, n["containers"], path + ".containers"));
  }
  if (n["compute_ms"]) {
    const YAML::Node& cm = n["compute_ms"];
    std::string p = path + ".compute_ms";
    if (cm.IsMap()) {
      for (const auto& kv : cm) {
        std::string k = kv.first.Scalar();
        if (k == "gpu") {
          GEDGE_TRY_ASSIGN(s.compute_gpu_ms, number_at(c, kv.second, p + ".gpu"));
        } else if (k == "cpu") {
          GEDGE_TRY_ASSIGN(s.compute_cpu_ms, number_at(c, kv.second, p + ".cpu"));
        } else {
          return fail(ErrorCode::usage,
                      fmt::format("{}: unknown key '{}'", c.where(kv.first, p), k),
                      "compute_ms is a number or {gpu: X, cpu: Y}");
        }
      }
      if (!s.compute_gpu_ms || !s.compute_cpu_ms)
        return fail(ErrorCode::usage,
                    fmt::format("{}: the map form needs both gpu and cpu", c.where(cm, p)));
    } else {
      GEDGE_TRY_ASSIGN(s.compute_ms, number_at(c, cm, p));
    }
  }
  if (n["output_mb"]) {
    GEDGE_TRY_ASSIGN(s.output_mb, number_at(c, n["output_mb"], path + ".output_mb"));
  }
  if (n["after"]) {
    const YAML::Node& a = n["after"];
    if (a.IsScalar()) {
      s.after.push_back(a.Scalar());
    } else if (a.IsSequence()) {
      for (std::size_t i = 0; i < a.size(); ++i) {
        GEDGE_TRY_ASSIGN(auto dep, string_at(c, a[i], fmt::format("{}.after[{}]", path, i)));
        s.after.push_back(std::move(dep));
      }
      if (s.after.empty()) s.after.push_back("");  // explicit root: `after: []`
    } else {
      return fail(ErrorCode::usage,
                  fmt::format("{}: expected a list of stage names", c.where(a, path + ".after")));
    }
  }
  auto selector = [&](const YAML::Node& sel, const std::string& p) -> Result<void> {
    if (!sel.IsMap())
      return fail(ErrorCode::usage, fmt::format("{}: expected a map of labels", c.where(sel, p)));
    for (const auto& kv : sel) {
      GEDGE_TRY_ASSIGN(s.node_selector[kv.first.Scalar()],
                       string_at(c, kv.second, p + "." + kv.first.Scalar()));
    }
    return {};
  };
  if (n["nodeSelector"]) GEDGE_TRY(selector(n["nodeSelector"], path + ".nodeSelector"));
  if (n["scheduleHint"]) {
    const YAML::Node& h = n["scheduleHint"];
    std::string p = path + ".scheduleHint";
    if (!h.IsMap()) return fail(ErrorCode::usage, fmt::format("{}: expected a map", c.where(h, p)));
    if (h["preferred"]) {
      GEDGE_TRY_ASSIGN(s.tier_hint, string_at(c, h["preferred"], p + ".preferred"));
      if (s.tier_hint != "local" && s.tier_hint != "neighbor" && s.tier_hint != "cloud")
        return fail(ErrorCode::usage,
                    fmt::format("{}: '{}' is not local, neighbor or cloud",
                                c.where(h["preferred"], p + ".preferred"), s.tier_hint));
    }
    if (h["nodeSelector"]) GEDGE_TRY(selector(h["nodeSelector"], p + ".nodeSelector"));
  }
  return s;
}

}  // namespace

bool Workload::is_chain() const {
  for (std::size_t i = 0; i < stages.size(); ++i) {
    if (i == 0 && !preds[i].empty()) return false;
    if (i > 0 && (preds[i].size() != 1 || preds[i][0] != static_cast<int>(i) - 1)) return false;
  }
  return true;
}

Result<void> resolve(Workload& wl) {
  std::map<std::string, int> index;
  for (std::size_t i = 0; i < wl.stages.size(); ++i)
    if (!index.emplace(wl.stages[i].name, static_cast<int>(i)).second)
      return fail(ErrorCode::usage, fmt::format("duplicate stage name '{}'", wl.stages[i].name));
  wl.preds.assign(wl.stages.size(), {});
  for (std::size_t i = 0; i < wl.stages.size(); ++i) {
    const auto& after = wl.stages[i].after;
    if (after.empty()) {
      if (i > 0) wl.preds[i].push_back(static_cast<int>(i) - 1);
      continue;
    }
    std::set<int> seen;
    for (const auto& a : after) {
      if (a.empty()) continue;  // explicit root
      auto it = index.find(a);
      if (it == index.end())
        return fail(ErrorCode::usage, fmt::format("stage '{}': after names unknown stage '{}'",
                                                  wl.stages[i].name, a));
      if (it->second == static_cast<int>(i))
        return fail(ErrorCode::usage, fmt::format("stage '{}' is after itself", wl.stages[i].name));
      if (seen.insert(it->second).second) wl.preds[i].push_back(it->second);
    }
  }
  // Kahn's algorithm, lowest file index first.
  std::vector<int> indeg(wl.stages.size(), 0);
  std::vector<std::vector<int>> succ(wl.stages.size());
  for (std::size_t i = 0; i < wl.stages.size(); ++i)
    for (int p : wl.preds[i]) succ[p].push_back(static_cast<int>(i)), ++indeg[i];
  std::set<int> ready;
  for (std::size_t i = 0; i < indeg.size(); ++i)
    if (indeg[i] == 0) ready.insert(static_cast<int>(i));
  wl.order.clear();
  while (!ready.empty()) {
    int v = *ready.begin();
    ready.erase(ready.begin());
    wl.order.push_back(v);
    for (int s : succ[v])
      if (--indeg[s] == 0) ready.insert(s);
  }
  if (wl.order.size() != wl.stages.size())
    return fail(ErrorCode::usage, fmt::format("{}: the stages' 'after' form a cycle",
                                              wl.name.empty() ? "pipeline" : wl.name));
  return {};
}

Result<Workload> parse_workload(std::string_view text, std::string_view origin) {
  Ctx c{std::string(origin)};
  // Only gedge's own format: Kubernetes objects and streams go through workload_from, which
  // reads every document (reading the first one alone took a Service for the workload).
  GEDGE_TRY_ASSIGN(auto input, manifest::parse(std::string(text), std::string(origin)));
  if (!input.is_gedge) return workload_from(input);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage,
                fmt::format("{}:{}: malformed YAML: {}", origin, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap())
    return fail(ErrorCode::usage,
                fmt::format("{}: expected a service or pipeline (a YAML map)", origin));
  try {
    Workload wl;
    wl.kind = root["kind"] ? root["kind"].Scalar() : "Service";
    if (wl.kind != "Pipeline" && wl.kind != "Service")
      return fail(ErrorCode::usage, fmt::format("{}: kind '{}' is neither Pipeline nor Service",
                                                c.where(root["kind"], "kind"), wl.kind));
    if (root["name"]) {
      GEDGE_TRY_ASSIGN(wl.name, string_at(c, root["name"], "name"));
    }
    if (root["source"]) {
      GEDGE_TRY_ASSIGN(wl.source, string_at(c, root["source"], "source"));
    }
    if (wl.kind == "Pipeline") {
      const YAML::Node& st = root["stages"];
      if (!st || !st.IsSequence() || st.size() == 0)
        return fail(ErrorCode::usage,
                    fmt::format("{}: a pipeline needs a non-empty 'stages' list", origin));
      if (st.size() > 64)
        return fail(ErrorCode::usage, fmt::format("{}: more than 64 stages", origin));
      for (std::size_t i = 0; i < st.size(); ++i) {
        GEDGE_TRY_ASSIGN(auto stage, stage_at(c, st[i], fmt::format("stages[{}]", i), true));
        wl.stages.push_back(std::move(stage));
      }
    } else {
      GEDGE_TRY_ASSIGN(auto s, stage_at(c, root, "", false));
      if (s.name.empty()) s.name = wl.name.empty() ? "service" : wl.name;
      s.after.clear();
      wl.stages.push_back(std::move(s));
    }
    if (wl.name.empty()) wl.name = wl.stages.front().name;
    auto r = resolve(wl);
    if (!r) return fail(ErrorCode::usage, fmt::format("{}: {}", origin, r.error().message));
    return wl;
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage, fmt::format("{}:{}: {}", origin, e.mark.line + 1, e.msg));
  }
}

Result<Workload> workload_from(const manifest::Input& in) {
  if (in.is_gedge) return parse_workload(in.gedge_text, in.gedge_file);
  auto ws = in.workloads();
  if (ws.empty()) {
    std::string kinds;
    for (const auto& o : in.objects) kinds += (kinds.empty() ? "" : ", ") + o.kind + "/" + o.name;
    return fail(ErrorCode::usage,
                fmt::format("{}: no workload to place (found {})", in.path, kinds),
                "placement needs a Pod, Deployment, StatefulSet, DaemonSet or Job");
  }
  if (ws.size() > 64)
    return fail(ErrorCode::usage, fmt::format("{}: more than 64 workloads", in.path));
  Workload wl;
  wl.kind = ws.size() > 1 ? "Pipeline" : "Service";
  for (const auto* w : ws) {
    GEDGE_TRY_ASSIGN(auto d, manifest::demand_of(*w));
    Stage s;
    s.name = w->name;
    s.replicas = d.replicas;
    // The stage's replicas are placed together on its node: it needs all of them.
    s.request = {d.cpu * d.replicas, d.memory * d.replicas, d.gpu * d.replicas};
    s.node_selector = d.node_selector;
    s.affinity = d.affinity;
    s.tolerations = d.tolerations;
    s.after = d.after;
    wl.stages.push_back(std::move(s));
  }
  wl.name = ws.size() == 1 ? ws[0]->name : std::filesystem::path(in.path).filename().string();
  if (wl.name.empty()) wl.name = ws[0]->name;
  auto r = resolve(wl);
  if (!r)
    return fail(ErrorCode::usage, fmt::format("{}: {}", in.path, r.error().message),
                r.error().hint);
  return wl;
}

Result<Workload> workload_from_text(const std::string& text, const std::string& origin) {
  GEDGE_TRY_ASSIGN(auto in, manifest::parse(text, origin));
  return workload_from(in);
}

}  // namespace gedge::sched
