// Kubernetes workloads on container hosts: each Pod template becomes a gedge service (then the
// usual podman plan), field by field. Whatever podman cannot honour is refused with the field's
// file, line and path (exit 2), never dropped.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

#include "from_manifest_internal.hpp"

namespace gedge::svc::detail {

namespace from_manifest {

const manifest::Object* Translator::find(const std::string& kind, const std::string& name) const {
  std::string ns = w.namespace_.empty() ? "default" : w.namespace_;
  for (const auto& o : in.objects)
    if (o.kind == kind && o.name == name &&
        (o.namespace_.empty() ? "default" : o.namespace_) == ns) {
      if (used) used->insert(&o);
      return &o;
    }
  return nullptr;
}

Error Translator::refuse(const std::string& ptr, const std::string& why,
                         const std::string& hint) const {
  return w.source.error_at(
      ptr, fmt::format("{} on container hosts", why),
      hint.empty() ? "deploy this manifest to a Kubernetes cluster, or drop the field" : hint);
}

// Fields of `obj` at `ptr` must be in `ok`; `ignored` are accepted as having no effect here.
Result<void> Translator::only(const json& obj, const std::string& ptr,
                              const std::set<std::string>& ok) const {
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (!ok.contains(it.key()))
      return std::unexpected(
          refuse(ptr + "/" + it.key(), fmt::format("'{}' is not supported", it.key())));
  return {};
}

Result<json> Translator::service() const {
  const json& top = w.json();
  if (w.kind == "DaemonSet" || w.kind == "Job")
    return std::unexpected(
        refuse("/kind", fmt::format("a {} is not supported", w.kind),
               "a Deployment (or a Pod) runs its replicas on the cluster's devices"));
  GEDGE_TRY(only(top, "", {"apiVersion", "kind", "metadata", "spec", "status"}));
  json doc{{"name", w.name}};  // the namespace is the pipeline's (hosts_spec)
  if (w.kind != "Pod") {
    const json& sp = top["spec"];
    GEDGE_TRY(
        only(sp, "/spec",
             {"replicas", "selector", "template", "strategy", "revisionHistoryLimit",
              "progressDeadlineSeconds", "serviceName", "podManagementPolicy", "updateStrategy"}));
    doc["replicas"] = sp.value("replicas", 1);
  }
  const json* ps = manifest::pod_spec(w);
  std::string pp = manifest::pod_spec_pointer(w);
  GEDGE_TRY(check_pod(*ps, pp));

  std::map<std::string, json> volumes;  // name -> pod volume
  std::map<std::string, std::string> vptr;
  if (ps->contains("volumes"))
    for (std::size_t i = 0; i < (*ps)["volumes"].size(); ++i) {
      const json& v = (*ps)["volumes"][i];
      volumes[v.value("name", "")] = v;
      vptr[v.value("name", "")] = pp + "/volumes/" + std::to_string(i);
    }
  json mounts = json::array();
  json containers = json::array();
  for (std::size_t i = 0; i < (*ps)["containers"].size(); ++i) {
    json cm = json::array();
    GEDGE_TRY_ASSIGN(auto c, container((*ps)["containers"][i],
                                       pp + "/containers/" + std::to_string(i), volumes, cm));
    containers.push_back(std::move(c));
    mounts.push_back(cm);
  }
  doc["containers"] = containers;
  GEDGE_TRY_ASSIGN(auto vols, pod_volumes(volumes, vptr, mounts));
  if (!vols.empty()) doc["volumes"] = vols;
  GEDGE_TRY_ASSIGN(auto nets, networks());
  if (!nets.empty()) doc["networks"] = nets;
  return doc;
}

// The pod spec's own fields: only those that mean the same on a device.
Result<void> Translator::check_pod(const json& pod, const std::string& pp) const {
  GEDGE_TRY(only(pod, pp,
                 {"containers", "restartPolicy", "volumes", "nodeSelector", "affinity",
                  "tolerations", "dnsPolicy", "schedulerName", "terminationGracePeriodSeconds"}));
  for (const char* k : {"nodeSelector", "affinity", "tolerations"})
    if (pod.contains(k) && !placed)
      return std::unexpected(
          refuse(pp + "/" + k, fmt::format("'{}' without a placement is not supported", k),
                 "place it first: gedge sched place FILE -o json > plan.json, then "
                 "gedge svc deploy FILE --cluster C --placement plan.json"));
  if (pod.value("restartPolicy", "Always") == "Never")
    return std::unexpected(refuse(pp + "/restartPolicy", "restartPolicy Never is not supported"));
  if (pod.value("dnsPolicy", "ClusterFirst") != "ClusterFirst")
    return std::unexpected(
        refuse(pp + "/dnsPolicy", "a dnsPolicy other than ClusterFirst is not supported"));
  if (pod.contains("schedulerName") && pod["schedulerName"] != "default-scheduler")
    return std::unexpected(refuse(pp + "/schedulerName", "a custom scheduler is not supported"));
  if (pod.contains("terminationGracePeriodSeconds") && pod["terminationGracePeriodSeconds"] != 30)
    return std::unexpected(refuse(pp + "/terminationGracePeriodSeconds",
                                  "a grace period other than 30 s is not supported"));
  if (pod.contains("initContainers"))
    return std::unexpected(refuse(pp + "/initContainers", "init containers are not supported"));
  return {};
}

}  // namespace from_manifest

namespace {

using nlohmann::json;

// A Service of the manifests on container hosts: no object of its own (each device publishes
// its replica's container ports), so it must select workloads of the same files and every port
// must target a port one of their containers exposes; otherwise the Service would promise what
// the devices do not serve. nullopt: fine; an Error names the Service's file, line and port.
std::optional<Error> check_service(const manifest::Object& svc,
                                   const std::vector<const manifest::Object*>& ws) {
  auto ns_of = [](const manifest::Object& o) {
    return o.namespace_.empty() ? std::string("default") : o.namespace_;
  };
  const json& spec = svc.json().contains("spec") ? svc.json()["spec"] : json::object();
  if (!spec.is_object()) return svc.source.error_at("/spec", "a Service without a spec");
  json sel = spec.contains("selector") ? spec["selector"] : json();
  if (!sel.is_object() || sel.empty())
    return svc.source.error_at(
        "/spec/selector",
        fmt::format("Service '{}' has no selector: on container hosts it would route nowhere",
                    svc.name),
        "select the workloads' pod labels, or deploy this manifest to a Kubernetes cluster");
  std::vector<const manifest::Object*> picked;
  for (const auto* w : ws) {
    if (ns_of(*w) != ns_of(svc)) continue;
    std::string pp = manifest::pod_spec_pointer(*w);
    json::json_pointer lp(pp.substr(0, pp.size() - std::string("/spec").size()) +
                          "/metadata/labels");
    const json& labels = w->json().contains(lp) ? w->json()[lp] : json::object();
    bool all = labels.is_object();
    for (auto it = sel.begin(); all && it != sel.end(); ++it)
      all = labels.contains(it.key()) && labels[it.key()] == it.value();
    if (all) picked.push_back(w);
  }
  if (picked.empty())
    return svc.source.error_at(
        "/spec/selector",
        fmt::format("Service '{}' selects no workload of the manifests", svc.name),
        "its selector must match a workload's pod labels (spec.template.metadata.labels)");
  const json& ports = spec.contains("ports") ? spec["ports"] : json::array();
  for (std::size_t i = 0; ports.is_array() && i < ports.size(); ++i) {
    const json& p = ports[i];
    if (!p.is_object()) continue;
    json target = p.contains("targetPort") ? p["targetPort"] : p.value("port", json());
    std::string proto = p.value("protocol", "TCP");
    bool found = false;
    for (const auto* w : picked) {
      const json* ps = manifest::pod_spec(*w);
      if (!ps || !ps->contains("containers")) continue;
      for (const auto& c : (*ps)["containers"])
        for (const auto& cp : c.value("ports", json::array())) {
          if (cp.value("protocol", "TCP") != proto) continue;
          if (target.is_number_integer() && cp.value("containerPort", -1) == target) found = true;
          if (target.is_string() && cp.value("name", "") == target) found = true;
        }
    }
    if (found) continue;
    std::vector<std::string> names;
    for (const auto* w : picked) names.push_back(fmt::format("{} '{}'", w->kind, w->name));
    return svc.source.error_at(
        fmt::format("/spec/ports/{}/{}", i, p.contains("targetPort") ? "targetPort" : "port"),
        fmt::format("Service '{}' targets {} port {}, which no container of {} exposes", svc.name,
                    proto,
                    target.is_string() ? "'" + target.get<std::string>() + "'" : target.dump(),
                    fmt::join(names, ", ")),
        "on container hosts a Service is the containers' published ports: add the port to the "
        "container's ports, or fix the targetPort");
  }
  return std::nullopt;
}

}  // namespace

Result<Spec> hosts_spec(const Spec& spec, bool placed, std::map<std::string, HostObjects>* extras,
                        std::vector<std::string>* unused) {
  json stages = json::array();
  std::vector<const manifest::Object*> ws = spec.manifest.workloads();
  if (ws.empty())
    return fail(ErrorCode::usage, fmt::format("{}: no workload to deploy", spec.manifest.path),
                "a manifest deploy needs a Pod, Deployment, StatefulSet, DaemonSet or Job");
  for (const auto& o : spec.manifest.objects)
    if (o.role != manifest::Role::workload && o.kind != "Service" && o.kind != "ConfigMap" &&
        o.kind != "Secret" && o.kind != "PersistentVolumeClaim" && o.kind != "PersistentVolume" &&
        o.kind != "NetworkAttachmentDefinition")
      return fail(
          ErrorCode::usage,
          fmt::format("{}: {} '{}' is not supported on container hosts", o.where(), o.kind, o.name),
          "deploy this manifest to a Kubernetes cluster");
  std::set<const manifest::Object*> used;
  for (const auto* w : ws) {
    from_manifest::Translator t{*w, placed, spec.manifest, extras ? &(*extras)[w->name] : nullptr,
                                &used};
    GEDGE_TRY_ASSIGN(auto doc, t.service());
    GEDGE_TRY_ASSIGN(auto d, manifest::demand_of(*w));
    if (!d.after.empty() && !(d.after.size() == 1 && d.after[0].empty())) doc["after"] = d.after;
    stages.push_back(std::move(doc));
  }
  for (const auto& o : spec.manifest.objects)
    if (o.kind == "Service")
      if (auto e = check_service(o, ws)) {
        e->code = ErrorCode::usage;
        return std::unexpected(*e);
      }
  // A ConfigMap, Secret or claim exists on container hosts only as what a workload makes of it
  // (files, env, a volume): one that no workload uses would be dropped, so it is an error unless
  // the caller lists it (deploy --allow-unused).
  for (const auto& o : spec.manifest.objects) {
    if ((o.kind != "ConfigMap" && o.kind != "Secret" && o.kind != "PersistentVolumeClaim" &&
         o.kind != "PersistentVolume" && o.kind != "NetworkAttachmentDefinition") ||
        used.contains(&o))
      continue;
    if (unused) {
      unused->push_back(fmt::format("{}: {}/{}", o.where(), o.kind, o.name));
      continue;
    }
    return fail(ErrorCode::usage,
                fmt::format("{}: {} '{}' is used by no workload: on container hosts it would not "
                            "exist",
                            o.where(), o.kind, o.name),
                "on container hosts a ConfigMap, Secret, claim, volume or network exists only as "
                "a workload's files, env, volume or network: drop it from the files, deploy to a "
                "Kubernetes cluster, or pass --allow-unused to deploy the rest without it");
  }
  // Container hosts have no namespaces; the one the manifests name is kept on the record. Workloads
  // in different namespaces would share one record: refused rather than one namespace dropped.
  auto ns_of = [](const manifest::Object* o) {
    return o->namespace_.empty() ? std::string("default") : o->namespace_;
  };
  for (const auto* w : ws)
    if (ns_of(w) != ns_of(ws[0]))
      return fail(
          ErrorCode::usage,
          fmt::format("{}: {} '{}' is in namespace '{}', {} '{}' in '{}'", w->where(), w->kind,
                      w->name, ns_of(w), ws[0]->kind, ws[0]->name, ns_of(ws[0])),
          "on container hosts one manifest deploy is one namespace: deploy them separately");
  json pipeline{{"apiVersion", "gedge/v1"},
                {"kind", "Pipeline"},
                {"name", ws[0]->name},
                {"namespace", ns_of(ws[0])},
                {"stages", stages}};
  auto out = parse_spec(pipeline.dump(), spec.manifest.path);
  if (!out) {
    Error e = out.error();
    e.message = fmt::format("{} (as a container-host service): {}", spec.manifest.path, e.message);
    return std::unexpected(e);
  }
  return out;
}

}  // namespace gedge::svc::detail
