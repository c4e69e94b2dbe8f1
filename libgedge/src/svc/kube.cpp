// The Kubernetes back end: server-side apply of the rendered objects (fieldManager=gedge;
// conflicts reported unless forced; --dry-run sends dryRun=All), then a wait for the Deployment
// to be available. Credentials stay in the registered kubeconfig.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "deploy_internal.hpp"
#include "gedge/k8s.hpp"

namespace gedge::svc::detail {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

Result<k8s::Client> client_for(const ClusterInfo& cl, double timeout_s = 30) {
  if (cl.kubeconfig.empty())
    return fail(ErrorCode::usage, fmt::format("cluster '{}' has no kubeconfig registered", cl.name),
                "register it: gedge cluster register NAME [--kubeconfig FILE] [--context C]");
  GEDGE_TRY_ASSIGN(auto cfg, k8s::load_registered(cl.kubeconfig, cl.context));
  k8s::ClientOptions o;
  o.timeout_s = timeout_s;
  return k8s::Client::create(std::move(cfg), o);
}

std::string ns_of(const json& obj) {
  return obj.contains("metadata") && obj["metadata"].contains("namespace")
             ? obj["metadata"]["namespace"].get<std::string>()
             : "default";
}

// Server-side apply of one object, reported as kubectl does: created, configured or unchanged
// (from the resourceVersion before and after), "(dry run)" appended under --dry-run. `where`
// prefixes an apply error (a manifest's file and document) when not empty.
Result<json> apply_object(k8s::Client& client, const json& o, const k8s::ApplyOptions& ao,
                          Reporter& rep, const std::string& cluster, const std::string& where) {
  std::string kind = o["kind"], name = o["metadata"]["name"], ns = ns_of(o);
  std::string before_rv;
  auto before = client.get(o["apiVersion"].get<std::string>(), kind, ns, name);
  if (before)
    before_rv = before->value("metadata", json::object()).value("resourceVersion", "");
  else if (before.error().code != ErrorCode::not_found)
    return std::unexpected(before.error());
  auto r = client.apply(o, ao);
  if (!r) {
    Error e = r.error();
    if (!where.empty()) e.message = fmt::format("{}: {}", where, e.message);
    if (e.code == ErrorCode::conflict)
      e.hint =
          "another field manager owns these fields: deploy with --force-conflicts to take them "
          "over";
    return std::unexpected(e);
  }
  std::string after_rv = r->value("metadata", json::object()).value("resourceVersion", "");
  std::string action = before_rv.empty()       ? "created"
                       : before_rv == after_rv ? "unchanged"
                                               : "configured";
  if (ao.dry_run) action += " (dry run)";
  rep.step(cluster, fmt::format("{}/{} {}", kind, name, action));
  return json{{"kind", kind}, {"name", name}, {"namespace", ns}, {"action", action}};
}

// The kinds gedge renders for a service, for removal (whatever the current spec renders).
const std::vector<std::pair<std::string, std::string>> kKinds = {
    {"v1", "LimitRange"},
    {"autoscaling.k8s.io/v1", "VerticalPodAutoscaler"},
    {"autoscaling/v2", "HorizontalPodAutoscaler"},
    {"monitoring.coreos.com/v1", "ServiceMonitor"},
    {"v1", "Service"},
    {"apps/v1", "Deployment"},
};

}  // namespace

Result<std::vector<UnitResult>> deploy_kube(Inventory& inv, const ClusterInfo& cl,
                                            std::vector<Unit>& units, const DeployRequest& req,
                                            Reporter& rep) {
  (void)inv;
  GEDGE_TRY_ASSIGN(auto client, client_for(cl));
  std::vector<UnitResult> results;
  for (auto& u : units) {
    UnitResult res;
    const Service& s = *u.svc;
    Service sized = s;
    sized.replicas = u.replicas;
    auto objs = render_kubernetes(sized, u.runtime ? &*u.runtime : nullptr);
    res.out = {{"name", s.name},
               {"namespace", s.namespace_},
               {"replicas", u.replicas},
               {"spec_hash", spec_hash_with(s, u.runtime ? &*u.runtime : nullptr)},
               {"runtime", u.runtime ? json(u.runtime->id) : json(nullptr)}};
    if (!u.placed.empty()) {
      // A placement on a Kubernetes cluster pins the pods to the chosen node(s).
      json nodes = json::array();
      for (const auto& n : u.placed) nodes.push_back(n);
      auto dep = std::find_if(objs.begin(), objs.end(),
                              [](const json& o) { return o["kind"] == "Deployment"; });
      (*dep)["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"] = {
                {"nodeSelectorTerms",
                 json::array({{{"matchExpressions", json::array({{{"key", "kubernetes.io/hostname"},
                                                                  {"operator", "In"},
                                                                  {"values", nodes}}})}}})}};
    }
    json applied = json::array();
    k8s::ApplyOptions ao;
    ao.force = req.force_conflicts;
    ao.dry_run = req.dry_run;
    for (const auto& o : objs) {
      if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
      GEDGE_TRY_ASSIGN(json one, apply_object(client, o, ao, rep, cl.name, ""));
      applied.push_back(std::move(one));
    }
    res.out["objects"] = applied;
    if (!req.dry_run && req.wait) {
      auto deadline =
          Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(req.timeout_s * 1000));
      // kubectl rollout status: the controller saw this generation and every wanted replica
      // (spec.replicas, which the HPA owns under autoscale) is updated and available.
      int want = 1;
      for (;;) {
        if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
        GEDGE_TRY_ASSIGN(auto dep, client.get("apps/v1", "Deployment", s.namespace_, s.name));
        json st = dep.value("status", json::object());
        want = dep.value("spec", json::object()).value("replicas", 1);
        int avail = st.value("availableReplicas", 0);
        int64_t gen = dep["metadata"].value("generation", int64_t{0});
        int64_t seen = st.value("observedGeneration", int64_t{0});
        if (seen >= gen && avail >= want) {
          res.out["available"] = avail;
          break;
        }
        if (Clock::now() > deadline) {
          res.ok = false;
          res.error =
              Error{ErrorCode::failure,
                    fmt::format("deployment {}/{}: {} of {} replicas available after {:.0f} s",
                                s.namespace_, s.name, avail, want, req.timeout_s),
                    "see 'gedge svc status'; raise --timeout for slow image pulls"};
          res.out["available"] = avail;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
    res.out["state"] = req.dry_run ? "planned" : res.ok ? "deployed" : "degraded";
    for (int r = 0; r < u.replicas; ++r) {
      json pl{{"stage", s.name},
              {"cluster", cl.name},
              {"node", u.placed.empty() ? "" : u.placed[r % u.placed.size()]},
              {"replica", r}};
      if (!u.placed.empty()) pl["from_placement"] = true;
      res.placements.push_back(pl);
    }
    results.push_back(std::move(res));
  }
  return results;
}

namespace {

json ref_of(const json& o) {
  const json& md = o["metadata"];
  json r{{"apiVersion", o["apiVersion"]}, {"kind", o["kind"]}, {"name", md["name"]}};
  if (md.contains("namespace")) r["namespace"] = md["namespace"];
  return r;
}

// ANDs `kubernetes.io/hostname In nodes` into the pod spec's required node affinity (into every
// existing term: terms are ORed, so each must also name the node).
void pin_to_nodes(json& pod_spec, const std::vector<std::string>& nodes) {
  json expr{{"key", "kubernetes.io/hostname"}, {"operator", "In"}, {"values", nodes}};
  json& req =
      pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
  if (!req.is_object() || !req.contains("nodeSelectorTerms") ||
      !req["nodeSelectorTerms"].is_array() || req["nodeSelectorTerms"].empty()) {
    req = {{"nodeSelectorTerms", json::array({{{"matchExpressions", json::array({expr})}}})}};
    return;
  }
  for (auto& term : req["nodeSelectorTerms"]) term["matchExpressions"].push_back(expr);
}

// Ready when the controller saw this generation and the wanted replicas are available.
std::optional<std::pair<int, int>> readiness(const json& obj) {
  std::string kind = obj.value("kind", "");
  json st = obj.value("status", json::object());
  json sp = obj.value("spec", json::object());
  if (kind == "Deployment")
    return std::make_pair(st.value("availableReplicas", 0), sp.value("replicas", 1));
  if (kind == "StatefulSet")
    return std::make_pair(st.value("readyReplicas", 0), sp.value("replicas", 1));
  if (kind == "DaemonSet")
    return std::make_pair(st.value("numberReady", 0), st.value("desiredNumberScheduled", 0));
  return std::nullopt;  // Pod, Job: not waited for
}

}  // namespace

Result<std::vector<ManifestResult>> deploy_manifest_kube(const ClusterInfo& cl, const Spec& spec,
                                                         const DeployRequest& req, Reporter& rep) {
  GEDGE_TRY_ASSIGN(auto client, client_for(cl));
  std::vector<json> objs = manifest_objects(spec);
  std::vector<ManifestResult> out;
  json companions = json::array();
  for (std::size_t i = 0; i < objs.size(); ++i) {
    const auto& o = spec.manifest.objects[i];
    if (o.role == manifest::Role::workload) {
      ManifestResult m;
      m.name = o.name;
      m.namespace_ = objs[i]["metadata"].value("namespace", "default");
      auto d = manifest::demand_of(o);
      m.replicas = d ? d->replicas : 1;
      GEDGE_TRY_ASSIGN(auto placed, placed_nodes(req.placement, o.name, cl));
      if (!placed.empty()) {
        json& ps = o.kind == "Pod" ? objs[i]["spec"] : objs[i]["spec"]["template"]["spec"];
        pin_to_nodes(ps, placed);
      }
      for (int r = 0; r < m.replicas; ++r) {
        json pl{{"stage", o.name},
                {"cluster", cl.name},
                {"node", placed.empty() ? "" : placed[r % placed.size()]},
                {"replica", r}};
        if (!placed.empty()) pl["from_placement"] = true;
        m.res.placements.push_back(pl);
      }
      m.doc = {{"apiVersion", "gedge/v1"},
               {"kind", "Manifest"},
               {"workload", ref_of(objs[i])},
               {"objects", json::array({ref_of(objs[i])})}};
      m.res.out = {{"name", o.name},
                   {"namespace", m.namespace_},
                   {"kind", o.kind},
                   {"replicas", m.replicas},
                   {"objects", json::array()}};
      out.push_back(std::move(m));
    } else {
      companions.push_back(ref_of(objs[i]));
    }
  }
  if (out.empty())
    return fail(ErrorCode::usage, fmt::format("{}: no workload to deploy", spec.manifest.path),
                "a manifest deploy needs a Pod, Deployment, StatefulSet, DaemonSet or Job");
  for (const auto& c : companions)
    out[0].doc["objects"].push_back(c);  // removed with the first workload

  k8s::ApplyOptions ao;
  ao.force = req.force_conflicts;
  ao.dry_run = req.dry_run;
  // Companions first (ConfigMaps, claims and networks the workloads need), then workloads.
  std::vector<std::size_t> order;
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t i = 0; i < objs.size(); ++i)
      if ((spec.manifest.objects[i].role == manifest::Role::workload) == (pass == 1))
        order.push_back(i);
  std::size_t owner = 0;  // the result companions are listed under
  for (std::size_t i : order) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
    const json& o = objs[i];
    const auto& obj = spec.manifest.objects[i];
    GEDGE_TRY_ASSIGN(json applied, apply_object(client, o, ao, rep, cl.name, obj.where()));
    const std::string name = o["metadata"]["name"];
    for (auto& m : out)
      if (m.name == name && obj.role == manifest::Role::workload)
        owner = static_cast<std::size_t>(&m - out.data());
    out[obj.role == manifest::Role::workload ? owner : 0].res.out["objects"].push_back(applied);
  }
  for (auto& m : out) {
    m.res.out["state"] = "planned";
    if (req.dry_run) continue;
    m.res.out["state"] = "deployed";
    if (!req.wait) continue;
    const json& w = m.doc["workload"];
    auto deadline =
        Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(req.timeout_s * 1000));
    for (;;) {
      if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
      GEDGE_TRY_ASSIGN(auto cur, client.get(w["apiVersion"], w["kind"], m.namespace_, m.name));
      auto rd = readiness(cur);
      if (!rd) break;
      int64_t gen = cur["metadata"].value("generation", int64_t{0});
      int64_t seen = cur.value("status", json::object()).value("observedGeneration", int64_t{0});
      if (seen >= gen && rd->first >= rd->second) {
        m.res.out["available"] = rd->first;
        break;
      }
      if (Clock::now() > deadline) {
        m.res.ok = false;
        m.res.error = Error{ErrorCode::failure,
                            fmt::format("{} {}/{}: {} of {} replicas ready after {:.0f} s",
                                        w["kind"].get<std::string>(), m.namespace_, m.name,
                                        rd->first, rd->second, req.timeout_s),
                            "see 'gedge svc status'; raise --timeout for slow image pulls"};
        m.res.out["available"] = rd->first;
        m.res.out["state"] = "degraded";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  return out;
}

namespace {

// The service's workload (absent: not_found kept in the Result) and its pods.
struct Workload {
  std::string kind;
  Result<json> obj;
  json pods = json::array();
};

Result<Workload> workload_of(k8s::Client& client, const ServiceRecord& rec) {
  std::string gv = "apps/v1", kind = "Deployment", selector = "app=" + rec.name;
  bool manifest = rec.spec.value("kind", "") == "Manifest";
  if (manifest) {
    json w = rec.spec.value("workload", json::object());
    gv = w.value("apiVersion", gv);
    kind = w.value("kind", kind);
  }
  auto dep = client.get(gv, kind, rec.namespace_, rec.name);
  if (manifest && dep) {
    // The workload's own selector finds its pods (a Pod: itself, by name).
    selector.clear();
    json ml = dep->value("spec", json::object())
                  .value("selector", json::object())
                  .value("matchLabels", json::object());
    for (auto it = ml.begin(); it != ml.end(); ++it)
      if (it.value().is_string())
        selector += (selector.empty() ? "" : ",") + it.key() + "=" + it.value().get<std::string>();
  }
  if (!dep && dep.error().code != ErrorCode::not_found) return std::unexpected(dep.error());
  json items = json::array();
  if (manifest && kind == "Pod") {
    if (dep) items.push_back(*dep);
  } else if (!selector.empty()) {
    GEDGE_TRY_ASSIGN(auto pods, client.list("v1", "Pod", rec.namespace_, selector));
    items = pods.value("items", json::array());
  }
  return Workload{kind, std::move(dep), std::move(items)};
}

}  // namespace

Result<StatusOutcome> status_kube(Inventory& inv, const ClusterInfo& cl, const ServiceRecord& rec) {
  (void)inv;
  GEDGE_TRY_ASSIGN(auto client, client_for(cl));
  StatusOutcome out;
  GEDGE_TRY_ASSIGN(auto w, workload_of(client, rec));
  const std::string& kind = w.kind;
  const auto& dep = w.obj;
  const json& items = w.pods;
  json d = dep ? dep->value("status", json::object()) : json::object();
  json replicas = json::array();
  for (const auto& p : items) {
    int restarts = 0;
    json st = p.value("status", json::object());
    for (const auto& c : st.value("containerStatuses", json::array()))
      restarts += c.value("restartCount", 0);
    replicas.push_back({{"pod", p["metadata"].value("name", "")},
                        {"node", p.value("spec", json::object()).value("nodeName", "")},
                        {"state", st.value("phase", "Unknown")},
                        {"restarts", restarts}});
  }
  out.result = {{"name", rec.name},
                {"cluster", rec.cluster},
                {"kind", "kubernetes"},
                {"namespace", rec.namespace_},
                {"desired", rec.replicas},
                {"ready", d.value("readyReplicas", 0)},
                {"available", d.value("availableReplicas", 0)},
                {"state", dep ? rec.state : "missing"},
                {"replicas", replicas}};
  if (!dep)
    out.partial =
        Error{ErrorCode::not_found,
              fmt::format("{} {}/{} is gone from the cluster",
                          kind == "Deployment" ? "deployment" : kind, rec.namespace_, rec.name),
              "deploy it again, or forget it with 'gedge svc rm'"};
  return out;
}

Result<void> logs_kube(const ClusterInfo& cl, const ServiceRecord& rec, const LogsRequest& req,
                       const std::function<void(std::string_view)>& sink) {
  GEDGE_TRY_ASSIGN(auto client, client_for(cl));
  GEDGE_TRY_ASSIGN(auto w, workload_of(client, rec));
  struct Stream {
    std::string pod, container, path, prefix;
  };
  std::vector<Stream> streams;
  std::vector<std::string> names;
  for (const auto& p : w.pods) {
    std::string pod = p["metadata"].value("name", "");
    names.push_back(pod);
    if (!req.pod.empty() && pod != req.pod) continue;
    std::vector<std::string> containers;
    for (const auto& c : p.value("spec", json::object()).value("containers", json::array()))
      containers.push_back(c.value("name", ""));
    if (!req.container.empty()) {
      if (std::find(containers.begin(), containers.end(), req.container) == containers.end())
        return fail(ErrorCode::not_found,
                    fmt::format("pod {} has no container '{}' (it has: {})", pod, req.container,
                                fmt::join(containers, ", ")));
      containers = {req.container};
    }
    for (const auto& c : containers) {
      std::string path =
          fmt::format("/api/v1/namespaces/{}/pods/{}/log?container={}",
                      k8s::url_escape(rec.namespace_), k8s::url_escape(pod), k8s::url_escape(c));
      if (req.tail >= 0) path += fmt::format("&tailLines={}", req.tail);
      if (req.since_s) path += fmt::format("&sinceSeconds={}", *req.since_s);
      if (req.follow) path += "&follow=true";
      streams.push_back({pod, c, path, ""});
    }
  }
  if (streams.empty()) {
    if (!req.pod.empty())
      return fail(ErrorCode::not_found,
                  fmt::format("service '{}' has no pod '{}'", rec.name, req.pod),
                  names.empty() ? "it has no pods now"
                                : fmt::format("its pods: {}", fmt::join(names, ", ")));
    return fail(ErrorCode::not_found,
                fmt::format("service '{}' has no pods in {} on cluster '{}'", rec.name,
                            rec.namespace_, cl.name),
                "see 'gedge svc status'");
  }
  constexpr std::size_t kMaxFollow = 16;
  if (req.follow && streams.size() > kMaxFollow)
    return fail(
        ErrorCode::usage,
        fmt::format("--follow would open {} log streams (at most {})", streams.size(), kMaxFollow),
        "pick one pod with --replica POD or one container with --container C");
  if (streams.size() > 1)
    for (auto& st : streams) st.prefix = fmt::format("[pod/{}/{}] ", st.pod, st.container);

  std::mutex mu;  // one writer at a time, whole lines
  auto run = [&](k8s::Client& c, const Stream& st) -> Result<void> {
    std::string pending;
    auto r = c.stream(st.path, [&](std::string_view chunk) {
      pending.append(chunk);
      std::size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::lock_guard lk(mu);
        sink(st.prefix + pending.substr(0, nl + 1));
        pending.erase(0, nl + 1);
      }
      return true;
    });
    if (!pending.empty()) {
      std::lock_guard lk(mu);
      sink(st.prefix + pending + "\n");
    }
    if (!r) {
      Error e = r.error();
      e.message = fmt::format("logs of pod {} container {}: {}", st.pod, st.container, e.message);
      return std::unexpected(e);
    }
    return {};
  };
  if (!req.follow || streams.size() == 1) {  // one after the other, as kubectl logs -l
    for (const auto& st : streams) GEDGE_TRY(run(client, st));
    return {};
  }
  // --follow: every stream at once, each with its own client (a Client is not thread-safe).
  std::vector<std::optional<Error>> errors(streams.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < streams.size(); ++i)
    threads.emplace_back([&, i] {
      auto c = client_for(cl);
      auto r = c ? run(*c, streams[i]) : Result<void>(std::unexpected(c.error()));
      if (!r) errors[i] = r.error();
    });
  for (auto& t : threads) t.join();
  if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
  for (const auto& e : errors)
    if (e) return std::unexpected(*e);
  return {};
}

Result<json> remove_kube(Inventory& inv, const ClusterInfo& cl, const ServiceRecord& rec) {
  (void)inv;
  GEDGE_TRY_ASSIGN(auto client, client_for(cl));
  json out = json::array();
  if (rec.spec.value("kind", "") == "Manifest") {
    // Exactly the objects the deploy applied (workload first, then its companions), and only
    // those still carrying gedge's label.
    for (const auto& ref : rec.spec.value("objects", json::array())) {
      std::string gv = ref.value("apiVersion", ""), kind = ref.value("kind", ""),
                  name = ref.value("name", "");
      std::string ns = ref.value("namespace", "");
      auto obj = client.get(gv, kind, ns, name);
      if (!obj) {
        if (obj.error().code == ErrorCode::not_found) continue;
        return std::unexpected(obj.error());
      }
      auto labels = obj->value("metadata", json::object()).value("labels", json::object());
      if (labels.value("app.kubernetes.io/managed-by", "") != "gedge") {
        out.push_back({{"kind", kind},
                       {"name", name},
                       {"state", "kept"},
                       {"reason", "not labelled app.kubernetes.io/managed-by=gedge"}});
        continue;
      }
      auto r = client.remove(gv, kind, ns, name);
      if (!r && r.error().code != ErrorCode::not_found) return std::unexpected(r.error());
      out.push_back({{"kind", kind}, {"name", name}, {"namespace", ns}, {"state", "removed"}});
    }
    return out;
  }
  for (const auto& [gv, kind] : kKinds) {
    // Only what gedge manages: the object must carry gedge's managed-by label.
    auto obj = client.get(gv, kind, rec.namespace_, rec.name);
    if (!obj) {
      if (obj.error().code == ErrorCode::not_found) continue;
      return std::unexpected(obj.error());
    }
    auto labels = obj->value("metadata", json::object()).value("labels", json::object());
    if (labels.value("app.kubernetes.io/managed-by", "") != "gedge") {
      out.push_back({{"kind", kind},
                     {"name", rec.name},
                     {"state", "kept"},
                     {"reason", "not labelled app.kubernetes.io/managed-by=gedge"}});
      continue;
    }
    auto r = client.remove(gv, kind, rec.namespace_, rec.name);
    if (!r && r.error().code != ErrorCode::not_found) return std::unexpected(r.error());
    out.push_back(
        {{"kind", kind}, {"name", rec.name}, {"namespace", rec.namespace_}, {"state", "removed"}});
  }
  return out;
}

}  // namespace gedge::svc::detail
