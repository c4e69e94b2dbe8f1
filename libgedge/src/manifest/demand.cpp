// A workload's demand as kube-scheduler computes a pod's request: per resource,
// max(Σ app containers + Σ sidecars, max over init containers of (init + sidecars before it))
// + pod overhead; a container's request is its requests[r], else its limits[r] (Kubernetes
// defaults a missing request to the limit).
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "gedge/manifest.hpp"
#include "gedge/quantity.hpp"
#include "gedge/text.hpp"

namespace gedge::manifest {

using nlohmann::json;

namespace {

using Amounts = std::map<std::string, double>;

Result<Amounts> container_amounts(const Object& w, const json& c, const std::string& ptr) {
  Amounts out;
  if (!c.is_object())
    return std::unexpected(w.source.error_at(ptr, "expected a container (a mapping)"));
  if (!c.contains("resources")) return out;
  const json& res = c["resources"];
  if (!res.is_object())
    return std::unexpected(w.source.error_at(ptr + "/resources", "expected a mapping"));
  for (const char* part : {"limits", "requests"}) {  // requests win: read second
    if (!res.contains(part)) continue;
    const json& m = res[part];
    std::string mptr = ptr + "/resources/" + part;
    if (!m.is_object())
      return std::unexpected(w.source.error_at(mptr, "expected a mapping of quantities"));
    for (auto it = m.begin(); it != m.end(); ++it) {
      std::string where =
          fmt::format("{}:{}: {}", w.source.file, w.source.line_of(mptr + "/" + it.key()),
                      field_path(w.json(), mptr + "/" + it.key()));
      Result<double> v = it.key() == "cpu"      ? parse_cpu_quantity(it.value(), where)
                         : it.key() == "memory" ? parse_memory_quantity(it.value(), where)
                                                : parse_resource_quantity(it.value(), where);
      if (!v) return std::unexpected(v.error());
      out[it.key()] = *v;
    }
  }
  return out;
}

void add(Amounts& a, const Amounts& b) {
  for (const auto& [k, v] : b) a[k] += v;
}
void max_into(Amounts& a, const Amounts& b) {
  for (const auto& [k, v] : b) a[k] = std::max(a[k], v);
}

Result<std::vector<std::string>> strings_at(const Object& w, const json& v,
                                            const std::string& ptr) {
  std::vector<std::string> out;
  if (!v.is_array()) return std::unexpected(w.source.error_at(ptr, "expected a list of strings"));
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string())
      return std::unexpected(w.source.error_at(ptr + "/" + std::to_string(i), "expected a string"));
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

Result<std::vector<Requirement>> term_at(const Object& w, const json& term,
                                         const std::string& ptr) {
  std::vector<Requirement> out;
  if (!term.is_object())
    return std::unexpected(w.source.error_at(ptr, "expected a node selector term"));
  static const std::set<std::string> ops = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"};
  for (const char* part : {"matchExpressions", "matchFields"}) {
    if (!term.contains(part)) continue;
    const json& exprs = term[part];
    std::string eptr = ptr + "/" + part;
    if (!exprs.is_array())
      return std::unexpected(w.source.error_at(eptr, "expected a list of requirements"));
    for (std::size_t i = 0; i < exprs.size(); ++i) {
      std::string rp = eptr + "/" + std::to_string(i);
      const json& e = exprs[i];
      if (!e.is_object() || !e.contains("key") || !e["key"].is_string() ||
          !e.contains("operator") || !e["operator"].is_string())
        return std::unexpected(w.source.error_at(rp, "a requirement needs key and operator"));
      Requirement r;
      r.key = e["key"].get<std::string>();
      r.op = e["operator"].get<std::string>();
      if (std::string(part) == "matchFields") {
        if (r.key != "metadata.name")
          return std::unexpected(w.source.error_at(
              rp + "/key", fmt::format("matchFields key '{}' is not supported", r.key),
              "Kubernetes supports only metadata.name here"));
      }
      if (!ops.contains(r.op))
        return std::unexpected(
            w.source.error_at(rp + "/operator", fmt::format("unknown operator '{}'", r.op),
                              "operators: In, NotIn, Exists, DoesNotExist, Gt, Lt"));
      if (e.contains("values")) {
        GEDGE_TRY_ASSIGN(r.values, strings_at(w, e["values"], rp + "/values"));
      }
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::vector<std::string> split_names(const std::string& s) {
  return split_list(s, ',', " \t");
}

// One workload's demand, step by step: each step reads the pod spec and fills the fields it
// names.
struct DemandReading {
  const Object& w;
  const json& spec;  // the pod spec
  std::string pp;    // its pointer
  Demand d;
  Amounts apps, init_peak, sidecars;

  // Replicas: Deployment and StatefulSet spec.replicas, Job spec.parallelism; else 1.
  Result<void> count_replicas() {
    const json& top = w.json().value("spec", json::object());
    auto count = [&](const char* key) -> Result<int> {
      if (!top.contains(key)) return 1;
      const json& v = top[key];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 100000)
        return std::unexpected(w.source.error_at(std::string("/spec/") + key,
                                                 "expected a whole number from 0 to 100000"));
      return static_cast<int>(v.get<int64_t>());
    };
    if (w.kind == "Deployment" || w.kind == "StatefulSet") {
      GEDGE_TRY_ASSIGN(d.replicas, count("replicas"));
    } else if (w.kind == "Job") {
      GEDGE_TRY_ASSIGN(d.replicas, count("parallelism"));
    }
    return {};
  }

  // The app containers (at least one) summed into `apps`.
  Result<void> sum_containers() {
    if (!spec.contains("containers") || !spec["containers"].is_array() ||
        spec["containers"].empty())
      return std::unexpected(w.source.error_at(
          pp + "/containers", fmt::format("{} '{}' has no containers", w.kind, w.name)));
    for (std::size_t i = 0; i < spec["containers"].size(); ++i) {
      GEDGE_TRY_ASSIGN(auto a, container_amounts(w, spec["containers"][i],
                                                 pp + "/containers/" + std::to_string(i)));
      add(apps, a);
    }
    return {};
  }

  // The init containers in order: sidecars (restartPolicy Always) summed, and the peak of each
  // init container with the sidecars started before it.
  Result<void> sum_init_containers() {
    if (!spec.contains("initContainers")) return {};
    const json& inits = spec["initContainers"];
    if (!inits.is_array())
      return std::unexpected(w.source.error_at(pp + "/initContainers", "expected a list"));
    for (std::size_t i = 0; i < inits.size(); ++i) {
      GEDGE_TRY_ASSIGN(auto a,
                       container_amounts(w, inits[i], pp + "/initContainers/" + std::to_string(i)));
      bool sidecar = inits[i].is_object() && inits[i].value("restartPolicy", "") == "Always";
      if (sidecar) {
        add(sidecars, a);
        max_into(init_peak, sidecars);
      } else {
        Amounts with = sidecars;
        add(with, a);
        max_into(init_peak, with);
      }
    }
    return {};
  }

  // max(apps + sidecars, init peak) + the pod overhead, into cpu, memory, gpu and extended.
  Result<void> set_amounts() {
    Amounts total = apps;
    add(total, sidecars);
    max_into(total, init_peak);
    if (spec.contains("overhead") && spec["overhead"].is_object()) {
      GEDGE_TRY_ASSIGN(
          auto o, container_amounts(w, json{{"resources", {{"requests", spec["overhead"]}}}}, pp));
      add(total, o);
    }
    for (const auto& [k, v] : total) {
      if (k == "cpu")
        d.cpu = v;
      else if (k == "memory")
        d.memory = v;
      else if (k == "nvidia.com/gpu")
        d.gpu = v;
      else
        d.extended[k] = v;
    }
    return {};
  }

  // nodeSelector: a mapping of label strings.
  Result<void> read_node_selector() {
    if (!spec.contains("nodeSelector")) return {};
    const json& ns = spec["nodeSelector"];
    if (!ns.is_object())
      return std::unexpected(
          w.source.error_at(pp + "/nodeSelector", "expected a mapping of labels"));
    for (auto it = ns.begin(); it != ns.end(); ++it) {
      if (!it.value().is_string())
        return std::unexpected(
            w.source.error_at(pp + "/nodeSelector/" + it.key(), "expected a string"));
      d.node_selector[it.key()] = it.value().get<std::string>();
    }
    return {};
  }

  // The required node affinity's terms.
  Result<void> read_affinity() {
    std::string ap = pp + "/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution";
    const json req = spec.value("affinity", json::object())
                         .value("nodeAffinity", json::object())
                         .value("requiredDuringSchedulingIgnoredDuringExecution", json());
    if (req.is_null()) return {};
    if (!req.is_object() || !req.contains("nodeSelectorTerms") ||
        !req["nodeSelectorTerms"].is_array())
      return std::unexpected(w.source.error_at(ap, "expected nodeSelectorTerms: [...]"));
    for (std::size_t i = 0; i < req["nodeSelectorTerms"].size(); ++i) {
      GEDGE_TRY_ASSIGN(auto t, term_at(w, req["nodeSelectorTerms"][i],
                                       ap + "/nodeSelectorTerms/" + std::to_string(i)));
      d.affinity.push_back(std::move(t));
    }
    return {};
  }

  // The tolerations, with operator Equal or Exists.
  Result<void> read_tolerations() {
    if (!spec.contains("tolerations")) return {};
    const json& ts = spec["tolerations"];
    if (!ts.is_array())
      return std::unexpected(w.source.error_at(pp + "/tolerations", "expected a list"));
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const json& t = ts[i];
      if (!t.is_object())
        return std::unexpected(
            w.source.error_at(pp + "/tolerations/" + std::to_string(i), "expected a mapping"));
      Toleration tol;
      tol.key = t.value("key", "");
      tol.op = t.value("operator", "Equal");
      tol.value = t.value("value", "");
      tol.effect = t.value("effect", "");
      if (tol.op != "Equal" && tol.op != "Exists")
        return std::unexpected(w.source.error_at(
            pp + "/tolerations/" + std::to_string(i) + "/operator",
            fmt::format("unknown operator '{}'", tol.op), "operators: Equal, Exists"));
      d.tolerations.push_back(std::move(tol));
    }
    return {};
  }

  // The gedge.io/after annotation: the workloads this one starts after ("" alone: a root).
  Result<void> read_after() {
    const json ann =
        w.json().value("metadata", json::object()).value("annotations", json::object());
    if (ann.is_object() && ann.contains("gedge.io/after")) {
      if (!ann["gedge.io/after"].is_string())
        return std::unexpected(w.source.error_at("/metadata/annotations/gedge.io~1after",
                                                 "expected 'a,b' (a string)"));
      d.after = split_names(ann["gedge.io/after"].get<std::string>());
      if (d.after.empty()) d.after.push_back("");  // explicit root
    }
    return {};
  }

  // GS-Scheduler's gschConfig: a JSON object in the first container's env (the last one wins).
  Result<void> read_gsch() {
    const json& c0 = spec["containers"][0];
    if (!c0.is_object() || !c0.contains("env") || !c0["env"].is_array()) return {};
    for (std::size_t i = 0; i < c0["env"].size(); ++i) {
      const json& e = c0["env"][i];
      if (!e.is_object() || e.value("name", "") != "gschConfig") continue;
      std::string ptr = pp + "/containers/0/env/" + std::to_string(i) + "/value";
      json cfg = json::parse(e.value("value", ""), nullptr, false);
      if (cfg.is_discarded() || !cfg.is_object())
        return std::unexpected(w.source.error_at(
            ptr, "gschConfig is not a JSON object",
            R"(GS-Scheduler's form: {"type": "global", "targetClusters": "[c1,[c2,c3]]", "priority": "GLowLatencyPriority"})"));
      GschConfig g;
      auto text = [&](const char* k) -> std::string {
        if (!cfg.contains(k)) return "";
        return cfg[k].is_string() ? cfg[k].get<std::string>() : cfg[k].dump();
      };
      g.type = text("type");
      g.priority = text("priority");
      g.target_clusters = text("targetClusters");
      json opt = cfg.value("option", json::object());
      if (opt.is_object()) {
        g.source_cluster = opt.value("sourceCluster", opt.value("source_cluster", ""));
        g.source_node = opt.value("sourceNode", opt.value("source_node", ""));
      }
      d.gsch = g;
    }
    return {};
  }
};

}  // namespace

Result<Demand> demand_of(const Object& w) {
  const json* ps = pod_spec(w);
  if (!ps)
    return std::unexpected(
        w.source.error_at(w.kind == "Pod" ? "/spec" : "/spec/template/spec",
                          fmt::format("{} '{}' has no pod spec", w.kind, w.name)));
  DemandReading r{w, *ps, pod_spec_pointer(w)};
  GEDGE_TRY(r.count_replicas());
  GEDGE_TRY(r.sum_containers());
  GEDGE_TRY(r.sum_init_containers());
  GEDGE_TRY(r.set_amounts());
  GEDGE_TRY(r.read_node_selector());
  GEDGE_TRY(r.read_affinity());
  GEDGE_TRY(r.read_tolerations());
  GEDGE_TRY(r.read_after());
  GEDGE_TRY(r.read_gsch());
  return std::move(r.d);
}

}  // namespace gedge::manifest
