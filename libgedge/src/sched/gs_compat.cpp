// GS-Scheduler's vocabulary mapped onto gedge's request: the gschConfig env of a workload and
// the request/options JSON its REST front took (GEdge Platform's GS-Scheduler source).
#include <fmt/format.h>

#include "gedge/manifest.hpp"
#include "gedge/sched.hpp"

namespace gedge::sched {

using nlohmann::json;

namespace {

Result<std::string> policy_of(const std::string& priority, const std::string& where) {
  auto p = parse_policy(priority);
  if (!p)
    return fail(ErrorCode::usage, fmt::format("{}: {}", where, p.error().message), p.error().hint);
  return std::string(policy_name(*p));
}

Result<void> check_levels(const std::string& text, const std::string& where) {
  if (text.empty()) return {};
  auto l = parse_levels(text);
  if (!l)
    return fail(ErrorCode::usage, fmt::format("{}: {}", where, l.error().message), l.error().hint);
  return {};
}

std::string str(const json& o, const char* k) {
  return o.is_object() && o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : "";
}

}  // namespace

Result<std::optional<GschRequest>> gsch_request(const manifest::Input& in) {
  for (const auto* w : in.workloads()) {
    GEDGE_TRY_ASSIGN(auto d, manifest::demand_of(*w));
    if (!d.gsch) continue;
    GschRequest g;
    std::string where = fmt::format("{}: gschConfig", w->where());
    if (d.gsch->priority.empty())
      return fail(ErrorCode::usage, fmt::format("{}: no priority", where),
                  "priority is GLowLatencyPriority, GMostRequestedPriority or GSelectedCluster");
    GEDGE_TRY_ASSIGN(g.policy, policy_of(d.gsch->priority, where + ".priority"));
    g.clusters = d.gsch->target_clusters;
    GEDGE_TRY(check_levels(g.clusters, where + ".targetClusters"));
    g.from = d.gsch->source_node;
    return std::optional<GschRequest>{g};
  }
  return std::optional<GschRequest>{};
}

Result<GschRequest> gs_request(const json& j, const std::string& origin) {
  if (!j.is_object())
    return fail(ErrorCode::usage, fmt::format("{}: expected a JSON object", origin));
  GschRequest g;
  std::string priority = str(j, "priority");
  if (!priority.empty()) {
    GEDGE_TRY_ASSIGN(g.policy, policy_of(priority, origin + ": priority"));
  }
  const json opt = j.value("option", json::object());
  const json params = opt.is_object() ? opt.value("parameters", json::object()) : json::object();
  auto levels_of = [&](const json& v, const std::string& where) -> Result<std::string> {
    if (v.is_null()) return std::string();
    std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    GEDGE_TRY(check_levels(text, where));
    return text;
  };
  // Flat (most-requested) form first; the v4 parameters win.
  if (j.contains("select_clusters")) {
    GEDGE_TRY_ASSIGN(g.clusters, levels_of(j["select_clusters"], origin + ": select_clusters"));
  }
  if (params.is_object() && params.contains("select_clusters")) {
    GEDGE_TRY_ASSIGN(g.clusters, levels_of(params["select_clusters"],
                                           origin + ": option.parameters.select_clusters"));
  }
  std::string mode = str(opt, "mode");
  if (mode.empty()) mode = "default";
  if (mode == "fromnode" || mode == "default") {
    g.from = str(params, "source_node");
  } else if (mode == "cluster") {
    if (g.policy.empty()) g.policy = "select-clusters";
    if (g.clusters.empty())
      return fail(ErrorCode::usage,
                  fmt::format("{}: mode cluster needs option.parameters.select_clusters", origin));
    g.from = str(params, "source_node");
  } else if (mode == "node") {
    std::string c = str(params, "select_cluster"), n = str(params, "select_node");
    if (c.empty() || n.empty())
      return fail(
          ErrorCode::usage,
          fmt::format("{}: mode node needs option.parameters.select_cluster and select_node",
                      origin));
    g.policy = "node";
    g.node = c + "/" + n;
  } else if (mode == "frompod") {
    return fail(ErrorCode::usage, fmt::format("{}: mode frompod is not supported", origin),
                "gedge places by device: use mode fromnode with option.parameters.source_node");
  } else {
    return fail(ErrorCode::usage, fmt::format("{}: unknown mode '{}'", origin, mode),
                "modes: default, fromnode, cluster, node");
  }
  return g;
}

}  // namespace gedge::sched
