// Offline, deterministic rendering: Kubernetes objects (GS-Engine's shapes with its bugs fixed)
// and the container-host run plan. Pure: model in, JSON out.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <set>

#include "deploy_internal.hpp"
#include "gedge/output.hpp"
#include "gedge/quantity.hpp"
#include "gedge/svc.hpp"

namespace gedge::svc {
namespace {

using nlohmann::json;

constexpr const char* kTierLabel = "gedge.io/tier";
constexpr const char* kRuntimeRoot = "/var/lib/gedge/runtimes";

json labels_json(const std::map<std::string, std::string>& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::map<std::string, std::string> pod_labels(const Service& s) {
  auto m = s.labels;
  m["app"] = s.name;
  return m;
}

json quantity_json(const std::string& q) {
  return q;
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

std::string fnv1a_hex(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

std::string cpus_text(double cores) {
  std::string t = fmt::format("{:.3f}", cores);
  while (t.back() == '0') t.pop_back();
  if (t.back() == '.') t.pop_back();
  return t;
}

// The podman volume of an NFS export on container hosts: one per export and access mode, shared
// by the services that mount it (removed with the last one).
std::string nfs_volume_name(const Volume& v) {
  return "gedge-nfs-" +
         fnv1a_hex(v.nfs_server + "\n" + v.nfs_path + "\n" + (v.read_only ? "ro" : "rw"));
}

// The podman network of a macvlan network on container hosts: one per parent interface and
// subnet, shared by the services that join it (removed with the last one).
std::string host_network_name(const Network& n) {
  return "gedge-net-" + fnv1a_hex(n.type + "\n" + n.master + "\n" + n.subnet);
}

// An IPv4 network address with its prefix ("192.168.50.0/24"; host bits zero).
std::optional<std::pair<uint32_t, int>> parse_subnet4(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos || slash + 1 >= text.size() || text.size() - slash > 3)
    return std::nullopt;
  in_addr a{};
  if (inet_pton(AF_INET, text.substr(0, slash).c_str(), &a) != 1) return std::nullopt;
  int prefix = 0;
  for (std::size_t i = slash + 1; i < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    prefix = prefix * 10 + (text[i] - '0');
  }
  if (prefix < 1 || prefix > 32) return std::nullopt;
  uint32_t addr = ntohl(a.s_addr);
  uint32_t mask = prefix == 32 ? 0xffffffffU : ~(0xffffffffU >> prefix);
  if ((addr & ~mask) != 0) return std::nullopt;
  return std::pair{addr, prefix};
}

// Why network `n` cannot be a podman network on container hosts ("" when it can).
std::string host_network_problem(const Network& n) {
  if (n.type != "macvlan")
    return fmt::format("{}: only a macvlan network is a podman network on container hosts", n.type);
  if (n.subnet.empty()) return "macvlan without subnet: podman's address management needs one";
  if (!parse_subnet4(n.subnet))
    return fmt::format("subnet '{}' is not an IPv4 network address such as 192.168.50.0/24",
                       n.subnet);
  return "";
}

// podman argv for container `ci` of replica `r`, without "sudo" and without the cpuset (the
// cpuset is planned on the device at deploy time).
// `device_env` (when given) receives the argv index and field of each --env value that only
// the device knows (spec.nodeName, status.hostIP): set at deploy time (svc deploy).
json podman_argv(const Service& s, std::size_t ci, int r, const std::string& hash,
                 const RuntimeMount* rt, json* device_env = nullptr) {
  const auto& c = s.containers[ci];
  std::string cname = ci == 0 ? fmt::format("gedge-{}-{}", s.name, r)
                              : fmt::format("gedge-{}-{}-{}", s.name, r, c.name);
  json argv = json::array({"podman", "run", "-d", "--name", cname, "--label", "gedge.managed=true",
                           "--label", "gedge.service=" + s.name, "--label",
                           fmt::format("gedge.replica={}", r), "--label", "gedge.spec=" + hash,
                           "--restart", "on-failure"});
  if (s.form == 1 && ci == 0)
    for (int p : s.service_ports) {
      argv.push_back("-p");
      argv.push_back(fmt::format("{}:{}/tcp", p, p));
    }
  for (const auto& p : c.ports) {
    argv.push_back("-p");
    argv.push_back(fmt::format("{}:{}/{}", p.external_port, p.container_port, lower(p.protocol)));
  }
  bool joined = false;  // the default network (ports are published there), then each one
  for (const auto& n : s.networks) {
    if (!host_network_problem(n).empty()) continue;  // refused on hosts (hosts_unsupported)
    if (!joined) argv.insert(argv.end(), {"--network", "podman"});
    joined = true;
    argv.push_back("--network");
    argv.push_back(host_network_name(n));
  }
  for (const auto& e : c.env) {
    if (!e.field.empty()) {  // the downward API: the replica's name, or its device's
      argv.push_back("--env");
      if (e.field == "metadata.name") {
        argv.push_back(e.name + "=" + fmt::format("gedge-{}-{}", s.name, r));
      } else {
        if (device_env) device_env->push_back({{"arg", argv.size()}, {"field", e.field}});
        argv.push_back(fmt::format("{}=<{}: set on the device at deploy time>", e.name, e.field));
      }
      continue;
    }
    if (!e.secret.empty()) {  // the value stays in podman's secret store, off the command line
      argv.push_back("--secret");
      argv.push_back(e.secret + ",type=env,target=" + e.name);
      continue;
    }
    argv.push_back("--env");
    argv.push_back(e.name + "=" + e.value);
  }
  auto [req, lim] = effective_resources(s, ci);
  if (auto it = lim.find("cpu"); it != lim.end())
    if (auto cores = parse_cpu(it->second)) {
      argv.push_back("--cpus");
      argv.push_back(cpus_text(*cores));
    }
  if (auto it = lim.find("memory"); it != lim.end())
    if (auto bytes = parse_bytes(it->second)) {
      argv.push_back("--memory");
      argv.push_back(fmt::format("{}", whole_bytes(*bytes)));
    }
  if (c.gpu > 0) {
    argv.push_back("--device");
    argv.push_back("nvidia.com/gpu=all");
  }
  if (rt) {
    argv.push_back("-v");
    argv.push_back(rt->host_dir + ":" + rt->mount_path + ":ro");
    for (const auto& [k, v] : rt->env) {
      argv.push_back("--env");
      argv.push_back(k + "=" + v);
    }
    argv.push_back("--env");
    argv.push_back("GEDGE_RUNTIME=" + rt->mount_path);
  } else if (!s.runtime.empty()) {
    std::string root = fmt::format("{}/{}", kRuntimeRoot, s.runtime);
    argv.push_back("-v");
    argv.push_back(root + ":" + root + ":ro");
    argv.push_back("--env");
    argv.push_back("GEDGE_RUNTIME=" + root);
  }
  for (const auto& v : s.volumes) {
    std::string ro = v.read_only ? ":ro" : "";
    if (!v.claim
             .empty()) {  // a named podman volume (created on first use, kept by svc rm like a PVC)
      argv.push_back("-v");
      argv.push_back(v.claim + ":" + v.mount_path + ro);
    } else if (!v.host_path.empty()) {
      argv.push_back("-v");
      argv.push_back(v.host_path + ":" + v.mount_path + ro);
    } else if (!v.nfs_server.empty()) {  // a podman volume of the local driver that mounts it
      argv.push_back("-v");
      argv.push_back(nfs_volume_name(v) + ":" + v.mount_path + ro);
    } else if (v.empty_dir) {  // scratch that goes with the container
      argv.push_back("--tmpfs");
      std::string opts = v.mount_path + ":" + (v.read_only ? "ro" : "rw");
      if (!v.size_limit.empty())
        if (auto b = parse_bytes(v.size_limit)) opts += fmt::format(",size={}", whole_bytes(*b));
      argv.push_back(opts);
    }
  }
  if (!c.command.empty()) {
    argv.push_back("--entrypoint");
    argv.push_back(json(c.command).dump());
  }
  argv.push_back("--");  // the image is an operand even if it starts with '-'
  argv.push_back(c.image);
  for (const auto& a : c.args) argv.push_back(a);
  return argv;
}

json host_plan_body(const Service& s, const std::string& hash, const RuntimeMount* rt) {
  json replicas = json::array();
  for (int r = 0; r < s.desired_replicas(); ++r) {
    json containers = json::array();
    for (std::size_t ci = 0; ci < s.containers.size(); ++ci) {
      json device_env = json::array();
      json argv = podman_argv(s, ci, r, hash, rt, &device_env);
      json entry{{"name", argv[4]}, {"image", s.containers[ci].image}, {"argv", argv}};
      if (!device_env.empty()) entry["deviceEnv"] = device_env;
      containers.push_back(std::move(entry));
    }
    replicas.push_back({{"replica", r}, {"containers", containers}});
  }
  json ports = json::array();
  for (int p : s.service_ports)
    ports.push_back({{"host", p}, {"container", p}, {"protocol", "TCP"}});
  for (const auto& c : s.containers)
    for (const auto& p : c.ports)
      ports.push_back(
          {{"host", p.external_port}, {"container", p.container_port}, {"protocol", p.protocol}});
  json spec{{"service", s.name},
            {"specHash", hash},
            {"replicas", s.desired_replicas()},
            {"hostPorts", ports},
            {"placement",
             "one replica per device, spread over the cluster's members by free capacity unless "
             "--placement is given"},
            {"containers", replicas}};
  json volumes = json::array();  // created on each device before the replicas (svc deploy)
  for (const auto& v : s.volumes)
    if (!v.nfs_server.empty())
      volumes.push_back({{"name", nfs_volume_name(v)},
                         {"driver", "local"},
                         {"options",
                          {{"type", "nfs"},
                           {"o", "addr=" + v.nfs_server + (v.read_only ? ",ro" : "")},
                           {"device", v.nfs_server + ":" + v.nfs_path}}}});
  if (!volumes.empty()) spec["volumes"] = volumes;
  json networks = json::array();  // created on each device before the replicas (svc deploy)
  for (const auto& n : s.networks)
    if (host_network_problem(n).empty())
      networks.push_back(
          {{"name", host_network_name(n)},
           {"network", n.name},
           {"driver", "macvlan"},
           {"parent", n.master},
           {"subnet", n.subnet},
           {"ipRange",
            "a block of the subnet per device, planned at deploy time: the subnet split into the "
            "next power of two at or above the cluster's member count, block i for the i-th "
            "member in name order"}});
  if (!networks.empty()) spec["networks"] = networks;
  if (s.pin)
    spec["pin"] = {{"cores", s.pin->cores},
                   {"near", s.pin->near},
                   {"noSmt", s.pin->no_smt},
                   {"cpuset", "planned on each device at deploy time (gedge tune plan)"}};
  if (s.autoscale)
    spec["autoscale"] = {{"min", s.autoscale->min},
                         {"max", s.autoscale->max},
                         {"cpu", s.autoscale->cpu},
                         {"scaleDownWindow", s.autoscale->scale_down_window_s},
                         {"scaleUpWindow", s.autoscale->scale_up_window_s}};
  if (s.schedule_hint) {
    spec["scheduleHint"] = {{"preferred", s.schedule_hint->preferred},
                            {"nodeSelector", labels_json(s.schedule_hint->node_selector)}};
  }
  return {{"apiVersion", "gedge/v1"},
          {"kind", "ContainerHostPlan"},
          {"metadata", {{"name", s.name}, {"namespace", s.namespace_}}},
          {"spec", spec}};
}

}  // namespace

std::string spec_hash(const Service& s) {
  return spec_hash_with(s, nullptr);
}

std::string spec_hash_with(const Service& s, const RuntimeMount* rt) {
  // What a replica runs; replicas and autoscale bounds are not part of it (scaling is not a
  // change).
  json j = json::array();
  for (std::size_t ci = 0; ci < s.containers.size(); ++ci)
    j.push_back(podman_argv(s, ci, 0, "", rt));
  if (s.pin) j.push_back({s.pin->cores, s.pin->near, s.pin->no_smt});
  return fnv1a_hex(j.dump());
}

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

std::vector<std::string> hosts_unsupported(const Service& s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.networks.size(); ++i)
    if (auto why = host_network_problem(s.networks[i]); !why.empty())
      out.push_back(fmt::format("networks[{}] ({})", i, why));
  if (s.autoscale)  // the container-host autoscaler reads CPU only
    for (std::size_t i = 0; i < s.autoscale->metrics.size(); ++i) {
      const auto& m = s.autoscale->metrics[i];
      if (!(m.type == "resource" && m.name == "cpu"))
        out.push_back(fmt::format(
            "autoscale.metrics[{}] ({} {}: the container-host autoscaler scales on CPU only)", i,
            m.type, m.name));
    }
  if (!s.vpa_mode.empty()) out.push_back("vpa");
  if (s.limits) out.push_back("limits");
  return out;
}

json render_host_plan(const Service& s, const RuntimeMount* rt) {
  json plan = host_plan_body(s, spec_hash_with(s, rt), rt);
  if (auto u = hosts_unsupported(s); !u.empty()) plan["spec"]["unsupportedOnHosts"] = u;
  return plan;
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

namespace detail {

Result<std::string> member_ip_range(const std::string& subnet, std::size_t index,
                                    std::size_t members) {
  auto net = parse_subnet4(subnet);
  if (!net)
    return fail(
        ErrorCode::usage,
        fmt::format("subnet '{}' is not an IPv4 network address such as 192.168.50.0/24", subnet));
  int bits = 0;
  while ((std::size_t{1} << bits) < std::max<std::size_t>(members, 1)) ++bits;
  int prefix = net->second + bits;
  if (prefix > 29)
    return fail(ErrorCode::usage,
                fmt::format("subnet {} is too small to give each of the cluster's {} devices its "
                            "own range of 8 addresses or more",
                            subnet, members),
                "use a larger subnet (a /24 serves 32 devices), or fewer devices");
  uint32_t start = net->first + static_cast<uint32_t>(index) * (1U << (32 - prefix));
  in_addr a{};
  a.s_addr = htonl(start);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, text, sizeof text);
  return fmt::format("{}/{}", text, prefix);
}

}  // namespace detail
}  // namespace gedge::svc
