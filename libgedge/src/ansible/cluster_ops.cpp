// The cluster verbs other than build/join: ls, show, status, leave, rm, export, register.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <thread>

#include "cluster_detail.hpp"
#include "gedge/ansible.hpp"
#include "gedge/device.hpp"
#include "gedge/k8s.hpp"
#include "gedge/metrics.hpp"
#include "gedge/output.hpp"
#include "gedge/ssh.hpp"
#include "gedge/stores.hpp"

namespace gedge::cluster {

using namespace detail;

namespace {

nlohmann::json cluster_summary(Inventory& inv, const nlohmann::json& c) {
  auto members = load_members(inv, c["name"].get<std::string>());
  nlohmann::json j = {{"name", c["name"]},
                      {"kind", c["kind"]},
                      {"profile", c["profile"]},
                      {"state", c["state"]},
                      {"registry", c["registry"]},
                      {"monitoring", c["monitoring"] == 1},
                      {"server", c["server"]},
                      {"kubeconfig", c["kubeconfig"]},
                      {"context", c["context"]},
                      {"api_server", c["api_server"]},
                      {"created_at", c["created_at"]},
                      {"updated_at", c["updated_at"]}};
  j["prometheus"] = c.contains("prometheus") ? c["prometheus"] : nlohmann::json(nullptr);
  j["members"] = members ? static_cast<int>(members->size()) : 0;
  return j;
}

}  // namespace

Result<nlohmann::json> list(Inventory& inv) {
  GEDGE_TRY_ASSIGN(auto rows, ClusterStore(inv).rows());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : rows) out.push_back(cluster_summary(inv, c));
  return out;  // a bare array, as every `ls` prints (schemas/ls.schema.json)
}

Result<nlohmann::json> show(Inventory& inv, const std::string& name) {
  GEDGE_TRY_ASSIGN(auto c, require_cluster(inv, name));
  auto j = cluster_summary(inv, c);
  nlohmann::json members = nlohmann::json::array();
  GEDGE_TRY_ASSIGN(auto journal, JournalStore(inv).entries(name));
  GEDGE_TRY_ASSIGN(auto member_rows, load_members(inv, name));
  for (const auto& m : member_rows) {
    std::string dev = m["device"].get<std::string>();
    nlohmann::json steps = nlohmann::json::array();
    std::string last_run;
    for (const auto& r : journal)
      if (r["device"] == dev) last_run = r["run_id"].get<std::string>();
    for (const auto& r : journal)
      if (r["device"] == dev && r["run_id"] == last_run)
        steps.push_back({{"step", r["step"]},
                         {"status", r["status"]},
                         {"message", r["message"]},
                         {"at", r["at"]}});
    members.push_back(
        {{"device", dev},
         {"role", m["role"]},
         {"state", m["state"]},
         {"metrics_url", m["metrics_url"]},
         {"last_run", last_run.empty() ? nlohmann::json(nullptr) : nlohmann::json(last_run)},
         {"steps", steps}});
  }
  j["members"] = members;
  return j;
}

Result<nlohmann::json> leave(Inventory& inv, const Paths& paths, const std::string& name,
                             const std::vector<std::string>& devices, double timeout_s,
                             Reporter& rep) {
  GEDGE_TRY_ASSIGN(auto c, require_cluster(inv, name));
  if (c["kind"] != "devices")
    return fail(ErrorCode::usage,
                fmt::format("cluster '{}' is a registered Kubernetes cluster", name));
  if (devices.empty()) return fail(ErrorCode::usage, "leave needs at least one DEVICE");
  std::vector<std::string> members;
  GEDGE_TRY_ASSIGN(auto member_rows, load_members(inv, name));
  for (const auto& m : member_rows) members.push_back(m["device"].get<std::string>());
  for (const auto& d : devices)
    if (std::find(members.begin(), members.end(), d) == members.end())
      return fail(ErrorCode::not_found,
                  fmt::format("device '{}' is not a member of cluster '{}'", d, name),
                  fmt::format("gedge cluster show {}", name));
  GEDGE_TRY(ClusterStore(inv).remove_members(name, devices));
  nlohmann::json left = devices;
  nlohmann::json out = {{"cluster", name},
                        {"left", left},
                        {"members", static_cast<int>(members.size() - devices.size())}};
  if (auto p = sync_prometheus(inv, paths, name, timeout_s, rep); !p.is_null())
    out["prometheus"] = p;
  return out;
}

Result<nlohmann::json> remove(Inventory& inv, const Paths& paths, const std::string& name,
                              double timeout_s, Reporter& rep) {
  GEDGE_TRY_ASSIGN(auto c, require_cluster(inv, name));
  GEDGE_TRY_ASSIGN(auto members, load_members(inv, name));
  // Its Prometheus server stops scraping the members: the target file goes first.
  auto prom = sync_prometheus(inv, paths, name, timeout_s, rep, /*remove=*/true);
  GEDGE_TRY(ClusterStore(inv).remove(name));
  nlohmann::json out = {{"cluster", name},
                        {"removed", true},
                        {"kind", c["kind"]},
                        {"members", static_cast<int>(members.size())}};
  if (!prom.is_null()) out["prometheus"] = prom;
  return out;
}

Result<nlohmann::json> remove_device(Inventory& inv, const Paths& paths, const std::string& device,
                                     bool force, double timeout_s, Reporter& rep) {
  GEDGE_TRY_ASSIGN(auto clusters, clusters_of(inv, device));  // --force: still a member
  GEDGE_TRY_ASSIGN(auto d, device_remove(inv, paths, device, force));
  nlohmann::json j{{"removed", device}, {"device", d}};
  // Its clusters' Prometheus servers stop scraping it.
  for (const auto& c : clusters)
    if (auto p = sync_prometheus(inv, paths, c, timeout_s, rep); !p.is_null())
      j["prometheus"][c] = p;
  return j;
}

Result<std::string> export_text(Inventory& inv, const Paths& paths, const std::string& name,
                                const std::string& format) {
  GEDGE_TRY_ASSIGN(auto c, require_cluster(inv, name));
  static const std::vector<std::string> kFormats = {"ansible", "prometheus", "prometheus-sd",
                                                    "prometheus-rules", "grafana"};
  if (std::find(kFormats.begin(), kFormats.end(), format) == kFormats.end())
    return fail(ErrorCode::usage, fmt::format("unknown export format '{}': use {}", format,
                                              fmt::join(kFormats, ", ")));
  if (c["kind"] != "devices")
    return fail(ErrorCode::usage,
                fmt::format("cluster '{}' is a Kubernetes cluster; use its kubeconfig", name));
  if (format == "prometheus-rules") return prometheus_rules();
  if (format == "prometheus-sd") {
    GEDGE_TRY_ASSIGN(auto targets, prometheus_targets(inv, name));
    return render_sd(targets);
  }
  if (format == "grafana") return grafana_dashboard(name).dump(2) + "\n";
  GEDGE_TRY_ASSIGN(auto members, load_members(inv, name));
  if (format == "prometheus") {
    nlohmann::json targets = nlohmann::json::array();
    std::string left_out;  // members with no recorded endpoint, said in a comment
    for (const auto& m : members) {
      if (!m["metrics_url"].is_string()) {
        left_out += fmt::format(
            "# not listed: {} (no metrics endpoint recorded: built without "
            "--monitoring, or its node-exporter did not answer from here, as "
            "for a device behind jump hosts)\n",
            m["device"].get<std::string>());
        continue;
      }
      auto url = m["metrics_url"].get<std::string>();  // http://HOST:PORT/metrics
      auto hostport = url.substr(url.find("//") + 2);
      hostport = hostport.substr(0, hostport.find('/'));
      targets.push_back({{"targets", {hostport}},
                         {"labels", {{"gedge_device", m["device"]}, {"gedge_cluster", name}}}});
    }
    nlohmann::json cfg = {{"scrape_configs",
                           {{{"job_name", "gedge-" + name},
                             {"metrics_path", "/metrics"},
                             {"static_configs", targets}}}}};
    return "# Prometheus scrape configuration for the node-exporters of gedge cluster " + name +
           "\n" + left_out + to_yaml(cfg);
  }
  ansible::InventorySpec spec;
  spec.group = "gedge_" + name;
  for (char& ch : spec.group)
    if (ch == '-' || ch == '.') ch = '_';
  spec.known_hosts = paths.known_hosts;
  for (const auto& m : members) {
    GEDGE_TRY_ASSIGN(auto d, load_device(inv, m["device"].get<std::string>()));
    spec.hosts.push_back(ansible::inventory_host(d.target, paths.key, spec.known_hosts,
                                                 spec.connect_timeout_s,
                                                 {{"gedge_role", m["role"]}}));
  }
  return ansible::render_inventory(spec);
}

// ---- register and Kubernetes status -----------------------------------------------------------

Result<nlohmann::json> register_kubernetes(Inventory& inv, const std::string& name,
                                           const std::string& kubeconfig,
                                           const std::string& context, double timeout_s,
                                           Reporter& rep) {
  GEDGE_TRY(check_name("cluster", name));
  // kubectl's order (--kubeconfig, KUBECONFIG, ~/.kube/config, in-cluster); what is stored is
  // where it came from (the file paths or "in-cluster") and the context, never a credential.
  GEDGE_TRY_ASSIGN(auto cfg, k8s::resolve_kubeconfig(kubeconfig, context));
  for (const auto& w : cfg.warnings) rep.warn(w);
  GEDGE_TRY_ASSIGN(auto client, k8s::Client::create(cfg, {timeout_s}));
  GEDGE_TRY_ASSIGN(auto version, client.version());
  GEDGE_TRY_ASSIGN(auto existing, load_cluster(inv, name));
  if (existing) {
    if ((*existing)["kind"] != "kubernetes")
      return fail(ErrorCode::conflict,
                  fmt::format("cluster '{}' already exists as a device cluster", name));
  }
  const std::string& stored = cfg.path;
  bool changed = !existing || (*existing)["kubeconfig"] != stored ||
                 (*existing)["context"] != cfg.context || (*existing)["api_server"] != cfg.server;
  if (changed)
    GEDGE_TRY(ClusterStore(inv).put_kubernetes(name, stored, cfg.context, cfg.server,
                                               existing.has_value()));
  return nlohmann::json{{"name", name},
                        {"kind", "kubernetes"},
                        {"kubeconfig", stored},
                        {"kubeconfig_paths", cfg.paths},
                        {"source", cfg.source},
                        {"context", cfg.context},
                        {"api_server", cfg.server},
                        {"changed", changed},
                        {"version", version.value("gitVersion", "")}};
}

namespace {

// Fields of objects read from the API: any of them may be missing or of another type (a Node
// without status, a Deployment without spec). operator[] on a const json with a missing key is
// undefined behaviour and value() throws on a type mismatch, so every read goes through these.
const nlohmann::json& sub(const nlohmann::json& j, const char* key) {
  static const nlohmann::json empty = nlohmann::json::object();
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_object() ? *it : empty;
}
const nlohmann::json& list_of(const nlohmann::json& j, const char* key) {
  static const nlohmann::json empty = nlohmann::json::array();
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_array() ? *it : empty;
}
std::string text_of(const nlohmann::json& j, const char* key, const char* dflt = "") {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_string() ? it->get<std::string>() : dflt;
}
int64_t count_of(const nlohmann::json& j, const char* key, int64_t dflt) {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : dflt;
}

Result<nlohmann::json> kubernetes_status(const nlohmann::json& c, double timeout_s, Reporter& rep) {
  GEDGE_TRY_ASSIGN(auto cfg, k8s::load_registered(
                                 c["kubeconfig"].get<std::string>(),
                                 c["context"].is_string() ? c["context"].get<std::string>() : ""));
  for (const auto& w : cfg.warnings) rep.warn(w);
  GEDGE_TRY_ASSIGN(auto client, k8s::Client::create(cfg, {timeout_s}));
  nlohmann::json out = {{"name", c["name"]},
                        {"kind", "kubernetes"},
                        {"api_server", cfg.server},
                        {"context", cfg.context}};
  GEDGE_TRY_ASSIGN(auto version, client.version());
  out["version"] = text_of(version, "gitVersion");
  nlohmann::json nodes = nlohmann::json::array();
  GEDGE_TRY_ASSIGN(auto node_list, client.list("v1", "Node"));
  for (const auto& n : list_of(node_list, "items")) {
    bool ready = false;
    const auto& st = sub(n, "status");
    for (const auto& cond : list_of(st, "conditions"))
      if (text_of(cond, "type") == "Ready") ready = text_of(cond, "status") == "True";
    nodes.push_back({{"name", text_of(sub(n, "metadata"), "name")},
                     {"ready", ready},
                     {"capacity", sub(st, "capacity")},
                     {"allocatable", sub(st, "allocatable")}});
  }
  out["nodes"] = nodes;
  std::map<std::string, std::map<std::string, int>> phases;
  GEDGE_TRY_ASSIGN(auto pod_list, client.list("v1", "Pod"));
  for (const auto& p : list_of(pod_list, "items"))
    ++phases[text_of(sub(p, "metadata"), "namespace", "default")]
            [text_of(sub(p, "status"), "phase", "Unknown")];
  out["pods"] = phases;
  nlohmann::json deps = nlohmann::json::array();
  GEDGE_TRY_ASSIGN(auto deployment_list, client.list("apps/v1", "Deployment"));
  for (const auto& d : list_of(deployment_list, "items"))
    deps.push_back({{"namespace", text_of(sub(d, "metadata"), "namespace")},
                    {"name", text_of(sub(d, "metadata"), "name")},
                    {"desired", count_of(sub(d, "spec"), "replicas", 1)},
                    {"ready", count_of(sub(d, "status"), "readyReplicas", 0)}});
  out["deployments"] = deps;
  nlohmann::json pvs = nlohmann::json::array();
  GEDGE_TRY_ASSIGN(auto persistentVolume_list, client.list("v1", "PersistentVolume"));
  for (const auto& pv : list_of(persistentVolume_list, "items"))
    pvs.push_back({{"name", text_of(sub(pv, "metadata"), "name")},
                   {"capacity", text_of(sub(sub(pv, "spec"), "capacity"), "storage")},
                   {"phase", text_of(sub(pv, "status"), "phase")},
                   {"storage_class", text_of(sub(pv, "spec"), "storageClassName")}});
  out["persistent_volumes"] = pvs;
  nlohmann::json scs = nlohmann::json::array();
  GEDGE_TRY_ASSIGN(auto storageClass_list, client.list("storage.k8s.io/v1", "StorageClass"));
  for (const auto& sc : list_of(storageClass_list, "items"))
    scs.push_back({{"name", text_of(sub(sc, "metadata"), "name")},
                   {"provisioner", text_of(sc, "provisioner")}});
  out["storage_classes"] = scs;
  return out;
}

}  // namespace

Result<StatusOutcome> status(Inventory& inv, const Paths& paths, const std::string& name,
                             int parallel, double timeout_s, Reporter& rep) {
  GEDGE_TRY_ASSIGN(auto c, require_cluster(inv, name));
  if (c["kind"] == "kubernetes") {
    GEDGE_TRY_ASSIGN(auto ks, kubernetes_status(c, timeout_s, rep));
    return StatusOutcome{std::move(ks), std::nullopt};
  }

  GEDGE_TRY_ASSIGN(auto members, load_members(inv, name));
  // With a Prometheus server the numbers come from it (averages, history, alerts); when it does
  // not answer, from live scrapes as without one.
  std::optional<std::string> prom_error;
  GEDGE_TRY_ASSIGN(auto prom_base, prometheus_url(inv, name));
  if (prom_base) {
    auto s =
        prometheus_status(c, members, c["prometheus"].get<std::string>(), *prom_base, timeout_s);
    if (s) return s;
    prom_error = s.error().message;
    rep.warn(fmt::format("Prometheus of cluster {} does not answer ({}); reading the members live",
                         name, *prom_error));
  }
  std::vector<SshTarget> targets;
  for (const auto& m : members) {
    GEDGE_TRY_ASSIGN(auto target, device_target(inv, paths, m["device"].get<std::string>()));
    targets.push_back(std::move(target));
  }
  FanOutOptions fo;
  fo.parallel = std::max(1, parallel);
  fo.ssh = default_ssh_options(paths, timeout_s);
  fo.ssh.connect_timeout_s = std::min(timeout_s, 10.0);
  fo.ssh.timeout_s = std::min(timeout_s, 15.0);
  std::string task = fmt::format("cluster {}: members answered", name);
  fo.on_done = [&rep, &task](std::size_t done, std::size_t total, const std::string&, bool) {
    rep.progress(task, done, total);
  };
  // Reachability: an authenticated session with a verified host key; metrics: two live scrapes.
  struct Live {
    bool reachable = false;
    std::string reach_error;
    std::optional<metrics::NodeSummary> metrics;
    std::string metrics_error;
  };
  std::vector<Live> live(members.size());
  auto results =
      fan_out<double>(targets, fo, [](SshSession& s) -> Result<double> { return s.rtt_ms(); });
  std::vector<std::thread> scrapers;
  for (std::size_t i = 0; i < members.size(); ++i) {
    live[i].reachable = static_cast<bool>(results[i].result);
    if (!results[i].result) live[i].reach_error = results[i].result.error().message;
    if (!members[i]["metrics_url"].is_string()) continue;
    std::string url = members[i]["metrics_url"].get<std::string>();
    scrapers.emplace_back([&live, i, url, timeout_s] {
      auto s = metrics::scrape_node(url, std::min(timeout_s, 5.0), std::chrono::milliseconds(1000));
      if (s)
        live[i].metrics = *s;
      else
        live[i].metrics_error = s.error().message;
    });
  }
  for (auto& t : scrapers) t.join();

  nlohmann::json out = {{"name", name},
                        {"kind", "devices"},
                        {"profile", c["profile"]},
                        {"state", c["state"]},
                        {"monitoring", c["monitoring"] == 1},
                        {"source", "scrape"}};
  if (prom_error)
    out["prometheus"] = {
        {"host", c["prometheus"]}, {"url", prom_base.value_or("")}, {"error", *prom_error}};
  nlohmann::json ms = nlohmann::json::array();
  std::vector<std::string> down;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto& m = members[i];
    nlohmann::json j = {
        {"device", m["device"]},
        {"state", m["state"]},
        {"reachable", live[i].reachable},
        {"rtt_ms", live[i].reachable ? nlohmann::json(std::round(*results[i].result * 10) / 10)
                                     : nlohmann::json(nullptr)},
        {"error", live[i].reach_error.empty() ? nlohmann::json(nullptr)
                                              : nlohmann::json(live[i].reach_error)},
        {"metrics_url", m["metrics_url"]},
        {"metrics", live[i].metrics ? live[i].metrics->to_json() : nlohmann::json(nullptr)}};
    if (!live[i].metrics_error.empty()) j["metrics_error"] = live[i].metrics_error;
    if (!live[i].reachable) down.push_back(m["device"].get<std::string>());
    ms.push_back(j);
  }
  out["members"] = ms;
  std::optional<Error> partial;
  if (!down.empty()) {
    std::string list;
    for (const auto& d : down) list += (list.empty() ? "" : ", ") + d;
    partial =
        Error{down.size() == members.size() ? ErrorCode::unreachable : ErrorCode::partial,
              fmt::format("{} of {} member(s) unreachable: {}", down.size(), members.size(), list),
              "gedge device check " + down.front()};
  }
  return StatusOutcome{out, partial};
}

}  // namespace gedge::cluster
