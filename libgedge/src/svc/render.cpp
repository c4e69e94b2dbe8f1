// Offline, deterministic rendering: Kubernetes objects (GS-Engine's shapes with its bugs fixed);
// the container-host run plan is render_hosts.cpp. Pure: model in, JSON out.
#include <fmt/format.h>

#include <cctype>
#include <set>

#include "deploy_internal.hpp"
#include "gedge/output.hpp"
#include "gedge/quantity.hpp"
#include "gedge/svc.hpp"
#include "gedge/text.hpp"
#include "render_internal.hpp"

namespace gedge::svc {

namespace detail::render {

using nlohmann::json;

json labels_json(const std::map<std::string, std::string>& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

// Requests/limits of container `i`, with `pin` applied to container 0 (Guaranteed, integer CPU).
std::pair<std::map<std::string, std::string>, std::map<std::string, std::string>>
effective_resources(const Service& s, std::size_t i) {
  auto req = s.containers[i].requests;
  auto lim = s.containers[i].limits;
  if (s.pin && i == 0) {
    lim["cpu"] = std::to_string(s.pin->cores);
    req = lim;
  }
  return {req, lim};
}

}  // namespace detail::render

namespace {

using detail::render::effective_resources;
using detail::render::kRuntimeRoot;
using detail::render::labels_json;
using nlohmann::json;

constexpr const char* kTierLabel = "gedge.io/tier";

std::map<std::string, std::string> pod_labels(const Service& s) {
  auto m = s.labels;
  m["app"] = s.name;
  return m;
}

json quantity_json(const std::string& q) {
  return q;
}

bool needs_numa_node(const Service& s) {
  if (s.pin) return true;
  for (const auto& c : s.containers)
    if (c.topology_aware) return true;
  return false;
}

json container_json(const Service& s, std::size_t i, const RuntimeMount* rt) {
  const auto& c = s.containers[i];
  json j{{"name", c.name}, {"image", c.image}};
  if (!c.ports.empty()) {
    json ports = json::array();
    for (const auto& p : c.ports)
      ports.push_back({{"containerPort", p.container_port},
                       {"name", fmt::format("{}-{}", lower(p.protocol), p.container_port)},
                       {"protocol", p.protocol}});
    j["ports"] = ports;
  }
  auto [req, lim] = effective_resources(s, i);
  json res{{"requests", json::object()}, {"limits", json::object()}};
  for (const auto& [k, v] : req) res["requests"][k] = quantity_json(v);
  for (const auto& [k, v] : lim) res["limits"][k] = quantity_json(v);
  if (i == 0)  // one virtual function per SR-IOV network, requested by the first container
    for (const auto& n : s.networks)
      if (n.type == "sriov") {
        int count = 1;
        if (res["limits"].contains(n.resource))
          count += std::stoi(res["limits"][n.resource].get<std::string>());
        res["requests"][n.resource] = std::to_string(count);
        res["limits"][n.resource] = std::to_string(count);
      }
  j["resources"] = res;
  if (!c.command.empty()) j["command"] = c.command;
  if (!c.args.empty()) j["args"] = c.args;
  json env = json::array();
  for (const auto& e : c.env)
    env.push_back(
        !e.field.empty()
            ? json{{"name", e.name}, {"valueFrom", {{"fieldRef", {{"fieldPath", e.field}}}}}}
        : e.secret.empty()
            ? json{{"name", e.name}, {"value", e.value}}
            : json{{"name", e.name},
                   {"valueFrom", {{"secretKeyRef", {{"name", e.secret}, {"key", e.name}}}}}});
  if (rt) {
    for (const auto& [k, v] : rt->env) env.push_back({{"name", k}, {"value", v}});
    env.push_back({{"name", "GEDGE_RUNTIME"}, {"value", rt->mount_path}});
    j["volumeMounts"] = json::array(
        {{{"name", "gedge-runtime"}, {"mountPath", rt->mount_path}, {"readOnly", true}}});
  } else if (!s.runtime.empty()) {
    env.push_back(
        {{"name", "GEDGE_RUNTIME"}, {"value", fmt::format("{}/{}", kRuntimeRoot, s.runtime)}});
    j["volumeMounts"] = json::array({{{"name", "gedge-runtime"},
                                      {"mountPath", fmt::format("{}/{}", kRuntimeRoot, s.runtime)},
                                      {"readOnly", true}}});
  }
  if (!env.empty()) j["env"] = env;
  for (const auto& v : s.volumes) {
    json m{{"name", v.name}, {"mountPath", v.mount_path}};
    if (v.read_only) m["readOnly"] = true;
    j["volumeMounts"].push_back(m);
  }
  return j;
}

json pod_volume(const Volume& v) {
  json j{{"name", v.name}};
  if (!v.claim.empty()) {
    j["persistentVolumeClaim"] = {{"claimName", v.claim}};
    if (v.read_only) j["persistentVolumeClaim"]["readOnly"] = true;
  } else if (!v.nfs_server.empty()) {
    j["nfs"] = {{"server", v.nfs_server}, {"path", v.nfs_path}};
    if (v.read_only) j["nfs"]["readOnly"] = true;
  } else if (v.empty_dir) {
    j["emptyDir"] = json::object();
    if (!v.medium.empty()) j["emptyDir"]["medium"] = v.medium;
    if (!v.size_limit.empty()) j["emptyDir"]["sizeLimit"] = v.size_limit;
  } else {
    j["hostPath"] = {{"path", v.host_path}};
  }
  return j;
}

json render_claim(const Service& s, const Volume& v) {
  json spec{{"accessModes", json::array({v.access_mode.empty() ? "ReadWriteOnce" : v.access_mode})},
            {"resources", {{"requests", {{"storage", v.size}}}}}};
  if (!v.storage_class.empty()) spec["storageClassName"] = v.storage_class;
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolumeClaim"},
          {"metadata",
           {{"name", v.claim},
            {"namespace", s.namespace_},
            {"labels", {{"app.kubernetes.io/managed-by", "gedge"}}}}},
          {"spec", spec}};
}

// A Multus NetworkAttachmentDefinition; its CNI config is JSON text.
json render_network(const Service& s, const Network& n) {
  json cfg{{"cniVersion", "0.3.1"}, {"name", n.name}, {"type", n.type}};
  if (n.type == "macvlan") cfg["mode"] = "bridge";
  if (n.type == "ipvlan") cfg["mode"] = "l2";
  if (!n.master.empty()) cfg[n.type == "bridge" ? "bridge" : "master"] = n.master;
  cfg["ipam"] =
      n.subnet.empty() ? json::object() : json{{"type", "host-local"}, {"subnet", n.subnet}};
  json md{{"name", n.name},
          {"namespace", s.namespace_},
          {"labels", {{"app.kubernetes.io/managed-by", "gedge"}}}};
  if (n.type == "sriov") md["annotations"] = {{"k8s.v1.cni.cncf.io/resourceName", n.resource}};
  return {{"apiVersion", "k8s.cni.cncf.io/v1"},
          {"kind", "NetworkAttachmentDefinition"},
          {"metadata", md},
          {"spec", {{"config", cfg.dump()}}}};
}

json tier_affinity(const std::string& preferred) {
  static const std::vector<std::string> tiers = {"local", "neighbor", "cloud"};
  static const int weights[] = {100, 50, 10};
  std::size_t p = 0;
  while (p < tiers.size() && tiers[p] != preferred) ++p;
  json terms = json::array();
  std::vector<std::pair<int, std::string>> order;
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    std::size_t dist = i > p ? i - p : p - i;
    order.push_back({weights[dist], tiers[i]});
  }
  std::stable_sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (const auto& [w, t] : order)
    terms.push_back(
        {{"weight", w},
         {"preference",
          {{"matchExpressions",
            json::array({{{"key", kTierLabel}, {"operator", "In"}, {"values", {t}}}})}}}});
  return {{"nodeAffinity", {{"preferredDuringSchedulingIgnoredDuringExecution", terms}}}};
}

json metadata(const Service& s, const std::map<std::string, std::string>& labels) {
  auto l = labels;
  l["app.kubernetes.io/managed-by"] = "gedge";
  return {{"name", s.name}, {"namespace", s.namespace_}, {"labels", labels_json(l)}};
}

json render_deployment(const Service& s, const RuntimeMount* rt) {
  auto labels = pod_labels(s);
  json pod_spec{{"containers", json::array()}};
  for (std::size_t i = 0; i < s.containers.size(); ++i)
    pod_spec["containers"].push_back(container_json(s, i, rt));
  // GS-Engine wrote nodeSelector to spec.nodeSelector (ignored by Kubernetes); it belongs here.
  std::map<std::string, std::string> selector;
  if (s.schedule_hint) selector = s.schedule_hint->node_selector;
  if (needs_numa_node(s)) selector["gse-resalloc"] = "numa";
  if (!selector.empty()) pod_spec["nodeSelector"] = labels_json(selector);
  if (s.schedule_hint && !s.schedule_hint->preferred.empty())
    pod_spec["affinity"] = tier_affinity(s.schedule_hint->preferred);
  if (rt)
    pod_spec["volumes"] =
        json::array({{{"name", "gedge-runtime"},
                      {"hostPath", {{"path", rt->host_dir}, {"type", "Directory"}}}}});
  else if (!s.runtime.empty())
    pod_spec["volumes"] = json::array(
        {{{"name", "gedge-runtime"},
          {"hostPath",
           {{"path", fmt::format("{}/{}", kRuntimeRoot, s.runtime)}, {"type", "Directory"}}}}});
  for (const auto& v : s.volumes) pod_spec["volumes"].push_back(pod_volume(v));
  json tmeta{{"labels", labels_json(labels)}};
  if (!s.networks.empty()) {
    std::string names;
    for (const auto& n : s.networks) names += (names.empty() ? "" : ", ") + n.name;
    tmeta["annotations"] = {{"k8s.v1.cni.cncf.io/networks", names}};
  }
  json spec{{"selector", {{"matchLabels", labels_json(labels)}}},
            {"template", {{"metadata", tmeta}, {"spec", pod_spec}}}};
  // Under autoscale the HPA owns replicas: emitting it would fight the HPA on every apply.
  if (!s.autoscale) spec["replicas"] = s.desired_replicas();
  if (s.form == 2) spec["progressDeadlineSeconds"] = 3600;
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", metadata(s, labels)},
          {"spec", spec}};
}

bool has_ports(const Service& s) {
  if (!s.service_ports.empty()) return true;
  for (const auto& c : s.containers)
    if (!c.ports.empty()) return true;
  return false;
}

json render_service(const Service& s) {
  std::map<std::string, std::string> labels{{"app", s.name}};
  json ports = json::array();
  if (s.form == 1) {
    for (int p : s.service_ports) ports.push_back({{"name", std::to_string(p)}, {"port", p}});
  } else {
    labels["service"] = s.name;
    for (const auto& c : s.containers)
      for (const auto& p : c.ports)
        ports.push_back({{"name", std::to_string(p.container_port)},
                         {"port", p.external_port},
                         {"targetPort", p.container_port},
                         {"protocol", p.protocol}});
  }
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", metadata(s, labels)},
          {"spec", {{"type", s.type}, {"selector", {{"app", s.name}}}, {"ports", ports}}}};
}

json render_service_monitor(const Service& s) {
  json endpoints = json::array();
  for (int p : s.monitor_ports) endpoints.push_back({{"port", std::to_string(p)}});
  return {{"apiVersion", "monitoring.coreos.com/v1"},
          {"kind", "ServiceMonitor"},
          {"metadata", metadata(s, {{"app", s.name}})},
          {"spec", {{"selector", {{"matchLabels", {{"app", s.name}}}}}, {"endpoints", endpoints}}}};
}

// The short schema's metrics as autoscaling/v2 MetricSpecs (types Resource, Pods, External:
// GS-Engine wrote "Pod", which the API server refuses).
json hpa_metrics(const Autoscale& a) {
  json out = json::array();
  if (a.metrics.empty()) {
    out.push_back({{"type", "Resource"},
                   {"resource",
                    {{"name", "cpu"},
                     {"target", {{"type", "Utilization"}, {"averageUtilization", a.cpu}}}}}});
    return out;
  }
  for (const auto& m : a.metrics) {
    if (m.type == "resource")
      out.push_back(
          {{"type", "Resource"},
           {"resource",
            {{"name", m.name},
             {"target", {{"type", "Utilization"}, {"averageUtilization", std::stoi(m.target)}}}}}});
    else if (m.type == "pods")
      out.push_back({{"type", "Pods"},
                     {"pods",
                      {{"metric", {{"name", m.name}}},
                       {"target", {{"type", "AverageValue"}, {"averageValue", m.target}}}}}});
    else
      out.push_back({{"type", "External"},
                     {"external",
                      {{"metric", {{"name", m.name}}},
                       {"target", {{"type", "AverageValue"}, {"averageValue", m.target}}}}}});
  }
  return out;
}

// vpa.mode -> updateMode: auto is Recreate (what "Auto" always meant; newer VPA CRDs drop "Auto").
json render_vpa(const Service& s) {
  std::string mode = s.vpa_mode == "auto"      ? "Recreate"
                     : s.vpa_mode == "initial" ? "Initial"
                                               : "Off";
  return {{"apiVersion", "autoscaling.k8s.io/v1"},
          {"kind", "VerticalPodAutoscaler"},
          {"metadata", metadata(s, {{"app", s.name}})},
          {"spec",
           {{"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", s.name}}},
            {"updatePolicy", {{"updateMode", mode}}}}}};
}

json render_limit_range(const Service& s) {
  json item{{"type", "Container"}};
  if (!s.limits->first.empty()) item["min"] = labels_json(s.limits->first);
  if (!s.limits->second.empty()) item["max"] = labels_json(s.limits->second);
  return {{"apiVersion", "v1"},
          {"kind", "LimitRange"},
          {"metadata", metadata(s, {{"app", s.name}})},
          {"spec", {{"limits", json::array({item})}}}};
}

json render_hpa(const Service& s) {
  const auto& a = *s.autoscale;
  return {
      {"apiVersion", "autoscaling/v2"},
      {"kind", "HorizontalPodAutoscaler"},
      {"metadata", metadata(s, {{"app", s.name}})},
      {"spec",
       {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", s.name}}},
        {"minReplicas", a.min},
        {"maxReplicas", a.max},
        {"metrics", hpa_metrics(a)},
        {"behavior",
         {{"scaleDown", {{"stabilizationWindowSeconds", a.scale_down_window_s}}},
          {"scaleUp", {{"stabilizationWindowSeconds", a.scale_up_window_s}}}}}}}};
}

}  // namespace

std::vector<json> render_kubernetes(const Service& s, const RuntimeMount* rt) {
  std::vector<json> out;
  for (const auto& v : s.volumes)
    if (!v.claim.empty() && !v.size.empty()) out.push_back(render_claim(s, v));
  for (const auto& n : s.networks) out.push_back(render_network(s, n));
  out.push_back(render_deployment(s, rt));
  if (has_ports(s)) out.push_back(render_service(s));
  if (!s.monitor_ports.empty()) out.push_back(render_service_monitor(s));
  if (s.autoscale) out.push_back(render_hpa(s));
  if (!s.vpa_mode.empty()) out.push_back(render_vpa(s));
  if (s.limits) out.push_back(render_limit_range(s));
  return out;
}

std::vector<json> manifest_objects(const Spec& spec, const std::string& default_namespace) {
  std::vector<json> out;
  for (const auto& o : spec.manifest.objects) {
    json j = o.json();
    json& md = j["metadata"];
    // PersistentVolumes are cluster-scoped; unknown kinds may be: both keep what they say.
    if (o.namespace_.empty() && o.kind != "PersistentVolume" && o.role != manifest::Role::unknown)
      md["namespace"] = default_namespace;
    if (!md.contains("labels") || !md["labels"].is_object()) md["labels"] = json::object();
    md["labels"]["app.kubernetes.io/managed-by"] = "gedge";
    out.push_back(std::move(j));
  }
  return out;
}

std::vector<json> render_all(const Spec& spec) {
  if (spec.is_manifest) return manifest_objects(spec);
  std::vector<json> out;
  auto order = spec.ordered();
  std::set<std::string> seen;  // a claim or network shared by stages is rendered once
  for (const auto* s : order)
    for (auto& o : render_kubernetes(*s)) {
      std::string kind = o["kind"];
      if ((kind == "PersistentVolumeClaim" || kind == "NetworkAttachmentDefinition") &&
          !seen.insert(kind + "/" + o["metadata"]["name"].get<std::string>()).second)
        continue;
      out.push_back(std::move(o));
    }
  for (const auto* s : order) out.push_back(render_host_plan(*s));
  return out;
}

std::string to_multidoc_yaml(const std::vector<json>& docs) {
  std::string out;
  for (const auto& d : docs) out += "---\n" + to_yaml(d);
  return out;
}
}  // namespace gedge::svc
