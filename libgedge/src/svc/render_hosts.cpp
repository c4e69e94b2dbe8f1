// Offline, deterministic rendering of the container-host run plan: podman argv per replica,
// the spec hash that says whether a replica changed, and what container hosts cannot honour.
// Pure: model in, JSON out.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "deploy_internal.hpp"
#include "gedge/quantity.hpp"
#include "gedge/svc.hpp"
#include "gedge/text.hpp"
#include "render_internal.hpp"

namespace gedge::svc {
namespace {

using detail::render::effective_resources;
using detail::render::kRuntimeRoot;
using detail::render::labels_json;
using nlohmann::json;

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
