// svc deploy / ls / status / logs / scale / rm / autoscale: the front that resolves the cluster,
// the runtime bundles and the placement, hands the units to the container-host or Kubernetes back
// end, and records what was deployed in the inventory's services table.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <cmath>

#include "deploy_internal.hpp"
#include "gedge/runtime.hpp"
#include "gedge/stores.hpp"

namespace gedge::svc {

using nlohmann::json;

namespace detail {

namespace {

std::string str(const json& row, const char* key) {
  return row.contains(key) && row[key].is_string() ? row[key].get<std::string>() : "";
}

json parse_or(const json& v, json fallback) {
  if (!v.is_string()) return fallback;
  auto j = json::parse(v.get<std::string>(), nullptr, false);
  return j.is_discarded() ? fallback : j;
}

}  // namespace

Result<ClusterInfo> load_cluster(Inventory& inv, const std::string& name) {
  ClusterStore clusters(inv);
  GEDGE_TRY_ASSIGN(auto row, clusters.get(name));
  if (!row)
    return fail(ErrorCode::not_found, fmt::format("cluster '{}' not found", name),
                "see 'gedge cluster ls'");
  ClusterInfo c;
  c.name = name;
  c.kind = str(*row, "kind");
  c.profile = str(*row, "profile");
  c.registry = str(*row, "registry");
  c.kubeconfig = str(*row, "kubeconfig");
  c.context = str(*row, "context");
  GEDGE_TRY_ASSIGN(auto members, clusters.members(name));
  for (const auto& m : members)
    if (str(m, "state") != "left") c.members.push_back(str(m, "device"));
  std::sort(c.members.begin(), c.members.end());
  if (c.kind == "devices" && c.profile != "containers" && c.kubeconfig.empty())
    return fail(
        ErrorCode::usage,
        fmt::format("cluster '{}' ({} profile) has no Kubernetes endpoint registered yet", name,
                    c.profile),
        "finish 'gedge cluster build', or register its kubeconfig with 'gedge cluster register'");
  if (c.kind == "devices" && c.profile == "containers" && c.members.empty())
    return fail(ErrorCode::usage, fmt::format("cluster '{}' has no members", name),
                "add devices with 'gedge cluster join'");
  if (c.kind == "devices" && c.profile != "containers")
    c.kind = "kubernetes";  // k3s/k8s: via its API
  return c;
}

json standalone_doc(const Spec& spec, const Service& s) {
  if (!spec.is_pipeline) return spec.json;
  for (const auto& st : spec.json["stages"]) {
    if (st.value("name", "") != s.name) continue;
    json d = st;
    d.erase("after");
    d["namespace"] = spec.pipeline.namespace_;
    return d;
  }
  return json::object();
}

Result<Spec> spec_from_doc(const json& doc, const std::string& what) {
  return parse_spec(doc.dump(), what);
}

}  // namespace detail

namespace {

using detail::ClusterInfo;
using detail::Unit;
using detail::UnitResult;

Result<std::optional<RuntimeMount>> resolve_runtime(Inventory& inv, const Service& s,
                                                    const std::string& root) {
  if (s.runtime.empty()) return std::optional<RuntimeMount>{};
  auto b = runtime::find_bundle(inv, s.runtime);
  if (!b) {
    auto e = b.error();
    if (e.code == ErrorCode::not_found)
      e.hint = fmt::format("pack it first: gedge runtime pack DIR --name {}", s.runtime);
    return std::unexpected(e);
  }
  RuntimeMount m;
  m.id = b->id;
  m.host_dir = root + "/" + b->id;
  m.mount_path = b->manifest.value("prefix", "");
  if (m.mount_path.empty()) m.mount_path = root + "/" + b->id;
  m.env = runtime::env_wiring(b->manifest);
  return std::optional<RuntimeMount>{m};
}

}  // namespace

// Nodes that --placement gives the stage `name` on cluster `cluster`.
Result<std::vector<std::string>> detail::placed_nodes(const json& placement,
                                                      const std::string& name,
                                                      const ClusterInfo& cl) {
  std::vector<std::string> out;
  if (placement.is_null()) return out;
  if (!placement.is_object() || !placement.contains("placements") ||
      !placement["placements"].is_array())
    return fail(
        ErrorCode::usage,
        "--placement: expected the JSON of 'gedge sched place -o json' ({\"placements\": [...]})");
  for (const auto& p : placement["placements"]) {
    if (!p.is_object() || p.value("stage", "") != name) continue;
    std::string c = p.value("cluster", ""), n = p.value("node", "");
    if (!c.empty() && c != cl.name)
      return fail(ErrorCode::usage,
                  fmt::format("--placement puts '{}' on cluster '{}', but this deploy is to '{}'",
                              name, c, cl.name),
                  "deploy each cluster's stages with its own --cluster, or place with --clusters "
                  "restricted to one");
    if (cl.kind == "devices" &&
        std::find(cl.members.begin(), cl.members.end(), n) == cl.members.end())
      return fail(
          ErrorCode::usage,
          fmt::format("--placement puts '{}' on '{}', which is not a member of cluster '{}'", name,
                      n, cl.name));
    out.push_back(n);
  }
  return out;
}

namespace {

Result<void> save_record(Inventory& inv, const ClusterInfo& cl, const std::string& name,
                         const std::string& ns, const json& doc, int replicas,
                         const UnitResult& r) {
  json placement{{"placements", r.placements}, {"spec_hash", r.out.value("spec_hash", "")}};
  gedge::ServiceRecord rec{name, cl.name, doc.dump(), placement.dump(),
                           r.ok ? "deployed" : "degraded"};
  rec.namespace_ = ns;
  rec.replicas = replicas;
  return ServiceStore(inv).put(rec);
}

Result<void> save(Inventory& inv, const ClusterInfo& cl, const Unit& u, const UnitResult& r) {
  return save_record(inv, cl, u.svc->name, u.svc->namespace_, u.doc, u.replicas, r);
}

Error first_error(const std::vector<UnitResult>& results, std::size_t* failed) {
  Error e{ErrorCode::partial, "", ""};
  std::vector<std::string> names;
  for (const auto& r : results)
    if (!r.ok) {
      names.push_back(r.out.value("name", "?"));
      if (e.message.empty() && r.error) e = *r.error;
    }
  *failed = names.size();
  return e;
}

// svc scale --file: the recorded service's ConfigMap/Secret contents (files and podman secrets)
// from the manifests it was deployed from, which must still make the same service (its spec
// hash: containers, env, mounts, the contents' digests); else usage, naming the difference.
Result<void> contents_from(const Spec& spec, const std::string& file,
                           std::map<std::string, detail::HostObjects>& files) {
  const Service& want = spec.service;
  GEDGE_TRY_ASSIGN(auto in, manifest::load(file));
  if (in.is_gedge)
    return fail(ErrorCode::usage,
                fmt::format("{}: --file takes the Kubernetes manifests the service was deployed "
                            "from, not a gedge service file",
                            file),
                "a gedge service file has no ConfigMap or Secret contents: scale without --file");
  std::map<std::string, detail::HostObjects> all;
  std::vector<std::string> unused;  // not an error here: only this service's contents are read
  GEDGE_TRY_ASSIGN(auto tr, detail::hosts_spec(spec_from_manifest(in), true, &all, &unused));
  const Service* got = nullptr;
  for (const auto* s : tr.ordered())
    if (s->name == want.name) got = s;
  if (!got)
    return fail(ErrorCode::usage,
                fmt::format("{}: no workload named '{}' in the manifests", file, want.name));
  if (spec_hash(*got) != spec_hash(want))
    return fail(
        ErrorCode::usage,
        fmt::format("{}: workload '{}' is not what was deployed (its containers, env, "
                    "mounts or ConfigMap/Secret contents differ)",
                    file, want.name),
        fmt::format("deploy the files instead: gedge svc deploy {} --cluster CLUSTER", file));
  files[want.name] = all[want.name];
  return {};
}

}  // namespace

Result<DeployOutcome> deploy(Inventory& inv, const Paths& paths, const Spec& spec,
                             const DeployRequest& req, Reporter& rep) {
  if (req.cluster.empty())
    return fail(ErrorCode::usage, "deploy needs --cluster", "see 'gedge cluster ls'");
  GEDGE_TRY_ASSIGN(auto cl, detail::load_cluster(inv, req.cluster));
  if (req.timeout_s <= 0) return fail(ErrorCode::usage, "--timeout must be positive");
  if (spec.is_manifest && cl.kind == "kubernetes") {
    GEDGE_TRY_ASSIGN(auto mres, detail::deploy_manifest_kube(cl, spec, req, rep));
    json services = json::array();
    std::vector<UnitResult> results;
    for (auto& m : mres) {
      services.push_back(m.res.out);
      if (!req.dry_run)
        GEDGE_TRY(save_record(inv, cl, m.name, m.namespace_, m.doc, m.replicas, m.res));
      results.push_back(m.res);
    }
    DeployOutcome out;
    out.result = {{"cluster", cl.name},
                  {"kind", "kubernetes"},
                  {"dry_run", req.dry_run},
                  {"services", services}};
    std::size_t failed = 0;
    Error e = first_error(results, &failed);
    if (failed > 0) out.partial = e;
    return out;
  }
  // Manifests on container hosts: their workloads as gedge services.
  Spec translated;
  std::map<std::string, detail::HostObjects> files;
  std::vector<std::string> unused;
  if (spec.is_manifest) {
    GEDGE_TRY_ASSIGN(translated, detail::hosts_spec(spec, !req.placement.is_null(), &files,
                                                    req.allow_unused ? &unused : nullptr));
    for (const auto& u : unused)
      rep.warn(fmt::format("{}: used by no workload, not deployed (--allow-unused)", u));
  } else if (!req.contents_file.empty() && !spec.is_pipeline) {  // scale --file
    GEDGE_TRY(contents_from(spec, req.contents_file, files));
  }
  const Spec& run = spec.is_manifest ? translated : spec;
  for (const auto* s : run.ordered())
    if (auto u = hosts_unsupported(*s); !u.empty() && cl.kind != "kubernetes")
      return fail(ErrorCode::usage,
                  fmt::format("{}: service '{}': {} not supported on container hosts", spec.file,
                              s->name, fmt::join(u, ", ")),
                  "deploy it to a Kubernetes cluster");
  std::vector<Unit> units;
  for (const auto* s : run.ordered()) {
    Unit u;
    u.svc = s;
    u.doc = detail::standalone_doc(run, *s);
    GEDGE_TRY_ASSIGN(u.runtime, resolve_runtime(inv, *s, req.runtime_root));
    u.replicas = req.replicas_override.value_or(s->desired_replicas());
    if (u.replicas < 0) return fail(ErrorCode::usage, "replicas must be 0 or more");
    if (req.replicas_override) u.doc["replicas"] = *req.replicas_override;
    GEDGE_TRY_ASSIGN(u.placed, detail::placed_nodes(req.placement, s->name, cl));
    if (auto f = files.find(s->name); f != files.end()) {
      u.files = f->second.files;
      u.secrets = f->second.secrets;
    }
    units.push_back(std::move(u));
  }
  std::vector<UnitResult> results;
  if (cl.kind == "kubernetes") {
    GEDGE_TRY_ASSIGN(results, detail::deploy_kube(inv, cl, units, req, rep));
  } else {
    GEDGE_TRY_ASSIGN(results, detail::deploy_hosts(inv, paths, cl, units, req, rep));
  }

  json services = json::array();
  for (std::size_t i = 0; i < results.size(); ++i) {
    services.push_back(results[i].out);
    if (req.dry_run) continue;
    // A failed roll-out that left every replica on the previous spec (rolled back, or not reached)
    // keeps the previous record: it still describes what runs. Anything else is recorded, also a
    // new service none of whose replicas came up (degraded), so rm and a re-run find it.
    if (!results[i].ok && results[i].placements.empty()) {
      GEDGE_TRY_ASSIGN(bool prev, ServiceStore(inv).exists(units[i].svc->name, cl.name));
      if (prev) continue;
    }
    GEDGE_TRY(save(inv, cl, units[i], results[i]));
  }
  DeployOutcome out;
  out.result = {{"cluster", cl.name},
                {"kind", cl.kind == "kubernetes" ? "kubernetes" : "containers"},
                {"dry_run", req.dry_run},
                {"services", services}};
  if (!unused.empty()) out.result["unused"] = unused;  // left out on purpose (--allow-unused)
  std::size_t failed = 0;
  Error e = first_error(results, &failed);
  if (failed > 0) {
    // Device trouble on some replicas while others converged: partial (3). A service that failed
    // for a reason of its own (rollback, crash, conflict) keeps that reason's exit status.
    out.partial = e;
    if (e.code == ErrorCode::unreachable || e.code == ErrorCode::partial)
      out.partial->code = ErrorCode::partial;
  }
  return out;
}

Result<json> list_services(Inventory& inv, const std::string& cluster) {
  GEDGE_TRY_ASSIGN(auto recs, ServiceStore(inv).list(cluster));
  std::map<std::string, std::string> kinds;  // cluster -> containers | kubernetes
  json out = json::array();
  for (const auto& r : recs) {
    if (!kinds.contains(r.cluster)) {
      GEDGE_TRY_ASSIGN(auto c, ClusterStore(inv).get(r.cluster));
      kinds[r.cluster] =
          c && detail::str(*c, "kind") == "devices" && detail::str(*c, "profile") == "containers"
              ? "containers"
              : "kubernetes";
    }
    json pl = detail::parse_or(r.placement ? json(*r.placement) : json(), json::object());
    json nodes = json::array();
    for (const auto& p : pl.value("placements", json::array()))
      nodes.push_back(p.value("node", ""));
    out.push_back({{"name", r.name},
                   {"cluster", r.cluster},
                   {"namespace", r.namespace_},
                   {"kind", kinds[r.cluster]},
                   {"state", r.state},
                   {"replicas", r.replicas},
                   {"nodes", nodes},
                   {"updated_at", r.updated_at}});
  }
  return out;
}

Result<ServiceRecord> find_service(Inventory& inv, const std::string& name,
                                   const std::string& cluster) {
  GEDGE_TRY_ASSIGN(auto rows, ServiceStore(inv).find(name, cluster));
  if (rows.empty())
    return fail(ErrorCode::not_found,
                cluster.empty()
                    ? fmt::format("service '{}' not found", name)
                    : fmt::format("service '{}' not found on cluster '{}'", name, cluster),
                "see 'gedge svc ls'");
  if (rows.size() > 1)
    return fail(ErrorCode::usage,
                fmt::format("service '{}' is deployed on {} clusters", name, rows.size()),
                "say which with --cluster");
  const auto& r = rows[0];
  ServiceRecord rec;
  rec.name = r.name;
  rec.cluster = r.cluster;
  rec.namespace_ = r.namespace_;
  rec.state = r.state;
  rec.spec = detail::parse_or(json(r.spec), json::object());
  rec.placement = detail::parse_or(r.placement ? json(*r.placement) : json(), json::object());
  rec.replicas = static_cast<int>(r.replicas);
  auto cl = detail::load_cluster(inv, rec.cluster);
  rec.cluster_kind = cl ? cl->kind : "";
  return rec;
}

Result<StatusOutcome> status(Inventory& inv, const Paths& paths, const std::string& name,
                             const std::string& cluster, double ssh_timeout_s) {
  GEDGE_TRY_ASSIGN(auto rec, find_service(inv, name, cluster));
  GEDGE_TRY_ASSIGN(auto cl, detail::load_cluster(inv, rec.cluster));
  if (cl.kind == "kubernetes") return detail::status_kube(inv, cl, rec);
  return detail::status_hosts(inv, paths, rec, ssh_timeout_s);
}

Result<long> parse_duration_s(const std::string& text, const std::string& what) {
  auto bad = [&] {
    return fail(ErrorCode::usage, fmt::format("{} '{}' is not a duration", what, text),
                "use e.g. 30s, 5m, 2h or 1h30m");
  };
  long total = 0;
  std::size_t i = 0;
  if (text.empty()) return bad();
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i || j == text.size() || j - i > 9) return bad();
    long n = std::stol(text.substr(i, j - i));
    char unit = text[j];
    long mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 0;
    if (!mult) return bad();
    total += n * mult;
    if (total > 10L * 365 * 86400) return bad();
    i = j + 1;
  }
  if (total < 1) return bad();
  return total;
}

Result<void> logs(Inventory& inv, const Paths& paths, const LogsRequest& req,
                  const std::function<void(std::string_view)>& sink) {
  GEDGE_TRY_ASSIGN(auto rec, find_service(inv, req.name, req.cluster));
  GEDGE_TRY_ASSIGN(auto cl, detail::load_cluster(inv, rec.cluster));
  if (cl.kind == "kubernetes") return detail::logs_kube(cl, rec, req, sink);
  if (!req.container.empty())
    return fail(
        ErrorCode::usage,
        "--container picks a container of a Kubernetes pod; this service runs on container hosts",
        "pick a replica with --replica N");
  if (!req.pod.empty() && !req.replica)
    return fail(ErrorCode::usage,
                fmt::format("on container hosts --replica is a replica number, not '{}'", req.pod),
                fmt::format("see 'gedge svc status {}'", rec.name));
  return detail::logs_hosts(inv, paths, rec, req, sink);
}

Result<DeployOutcome> scale(Inventory& inv, const Paths& paths, const std::string& name,
                            const std::string& cluster, int replicas, const DeployRequest& base,
                            Reporter& rep) {
  if (replicas < 0) return fail(ErrorCode::usage, "replicas must be 0 or more");
  GEDGE_TRY_ASSIGN(auto rec, find_service(inv, name, cluster));
  if (rec.spec.value("kind", "") == "Manifest")
    return fail(ErrorCode::usage,
                fmt::format("service '{}' was deployed from a Kubernetes manifest", name),
                "change replicas in the manifest and deploy it again");
  GEDGE_TRY_ASSIGN(auto spec,
                   detail::spec_from_doc(rec.spec, fmt::format("service '{}' (recorded)", name)));
  DeployRequest req = base;
  req.cluster = rec.cluster;
  req.replicas_override = replicas;
  if (req.placement.is_null() && rec.placement.contains("placements")) {
    // Keep the stage where a sched placement put it; new replicas follow the same nodes.
    json pl = json::array();
    for (const auto& p : rec.placement["placements"])
      if (p.value("from_placement", false)) pl.push_back(p);
    if (!pl.empty()) req.placement = {{"placements", pl}};
  }
  return deploy(inv, paths, spec, req, rep);
}

Result<DeployOutcome> remove(Inventory& inv, const Paths& paths, const std::string& name,
                             const std::string& cluster, double ssh_timeout_s, Reporter& rep) {
  GEDGE_TRY_ASSIGN(auto rec, find_service(inv, name, cluster));
  GEDGE_TRY_ASSIGN(auto cl, detail::load_cluster(inv, rec.cluster));
  auto removing = cl.kind == "kubernetes"
                      ? detail::remove_kube(inv, cl, rec)
                      : detail::remove_hosts(inv, paths, cl, rec, ssh_timeout_s, rep);
  GEDGE_TRY_ASSIGN(json removed, std::move(removing));
  DeployOutcome out;
  out.result = {{"name", rec.name}, {"cluster", rec.cluster}, {"removed", removed}};
  bool all_ok = true;
  for (const auto& r : removed)
    if (r.value("state", "") == "failed") all_ok = false;
  if (!all_ok) {
    out.partial = Error{ErrorCode::partial,
                        fmt::format("service '{}': some replicas could not be removed", name),
                        "the record is kept: run 'gedge svc rm' again when the devices are back"};
    GEDGE_TRY(ServiceStore(inv).set_state(rec.name, rec.cluster, "removing"));
    return out;
  }
  GEDGE_TRY(inv.write([&](Inventory& w) -> Result<void> {
    GEDGE_TRY(ServiceStore(w).remove(rec.name, rec.cluster));
    // Exactly this service's replica pins (owner gedge-NAME-<replica>) on this cluster's devices: a
    // LIKE 'gedge-web-%' also took web-api's pins and web's on other clusters.
    std::string prefix = fmt::format("gedge-{}-", rec.name);
    PinStore pin_store(w);
    GEDGE_TRY_ASSIGN(auto pins, pin_store.on_cluster(rec.cluster));
    for (const auto& p : pins) {
      if (!p.owner.starts_with(prefix)) continue;
      std::string rest = p.owner.substr(prefix.size());
      if (rest.empty() || rest.find_first_not_of("0123456789") != std::string::npos) continue;
      GEDGE_TRY(pin_store.remove(p.device, p.owner));
    }
    return {};
  }));
  return out;
}

int autoscale_desired(int current, double cpu_percent, int target, int min, int max) {
  if (current < 1) current = 1;
  double ratio = target > 0 ? cpu_percent / target : 1.0;
  int want = current;
  if (std::abs(ratio - 1.0) > 0.1) want = static_cast<int>(std::ceil(current * ratio - 1e-9));
  return std::clamp(want, std::max(min, 0), std::max(max, min));
}

Result<DeployOutcome> autoscale_once(Inventory& inv, const Paths& paths, const std::string& cluster,
                                     const DeployRequest& base, Reporter& rep) {
  GEDGE_TRY_ASSIGN(auto list, list_services(inv, cluster));
  DeployOutcome out;
  json decisions = json::array();
  for (const auto& s : list) {
    if (s["kind"] != "containers") continue;
    GEDGE_TRY_ASSIGN(
        auto rec, find_service(inv, s["name"].get<std::string>(), s["cluster"].get<std::string>()));
    auto spec = detail::spec_from_doc(rec.spec, rec.name);
    if (!spec || spec->is_pipeline || !spec->service.autoscale) continue;
    const auto& a = *spec->service.autoscale;
    auto used = detail::cpu_usage_hosts(inv, paths, rec, base.ssh_timeout_s);
    if (!used || !*used) {
      decisions.push_back(
          {{"name", rec.name},
           {"cluster", rec.cluster},
           {"replicas", rec.replicas},
           {"action", "skipped"},
           {"reason", used ? "no replica reported CPU use" : used.error().message}});
      continue;
    }
    int want = autoscale_desired(rec.replicas, **used, a.cpu, a.min, a.max);
    double pct = std::round(**used * 10) / 10;
    json d = json::object();
    d["name"] = rec.name;
    d["cluster"] = rec.cluster;
    d["cpu_percent"] = pct;
    d["target"] = a.cpu;
    d["replicas"] = rec.replicas;
    d["desired"] = want;
    if (want == rec.replicas) {
      d["action"] = "kept";
    } else {
      auto r = scale(inv, paths, rec.name, rec.cluster, want, base, rep);
      d["action"] = r ? "scaled" : "failed";
      if (!r)
        d["error"] = r.error().message;
      else if (r->partial)
        d["error"] = r->partial->message;
      if (!r || r->partial)
        out.partial =
            Error{ErrorCode::partial, fmt::format("autoscale of '{}' failed", rec.name), ""};
    }
    decisions.push_back(d);
  }
  out.result = {{"cluster", cluster}, {"services", decisions}};
  return out;
}

}  // namespace gedge::svc
