// Clusters: device clusters built with Ansible (profiles containers, k3s, k8s; optional
// monitoring) with a per-host step journal and --resume, and registered Kubernetes clusters.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/inventory.hpp"
#include "gedge/paths.hpp"
#include "gedge/report.hpp"

namespace gedge::cluster {

// "--max-fail N" or "N%": how many devices may fail before the build is stopped.
struct MaxFail {
  int value = -1;  // -1: no limit
  bool percent = false;
  // Whether `failed` of `total` devices exceeds the limit.
  bool exceeded(int failed, int total) const;
};
// Parses "3" or "25%"; usage for anything else (negative, >100 %, junk).
Result<MaxFail> parse_max_fail(const std::string& text);

struct BuildRequest {
  std::string name;
  std::string profile;               // containers | k3s | k8s
  std::vector<std::string> devices;  // may be empty with --resume (the existing members)
  std::string server;                // k3s/k8s: the server device (default: first device)
  bool monitoring = false;
  std::string prometheus_on;       // a device, or "localhost": runs the cluster's Prometheus
  std::string registry;            // HOST:PORT
  std::string registry_ca;         // CA (PEM file) for the registry, installed on every device
  bool insecure_registry = false;  // allow plain HTTP / unverified TLS for it (warns)
  std::string smoke_image;         // pulled and run; "": the devices check the registry instead
  std::string artifacts;           // k3s: directory with the k3s binary and airgap images
  bool dry_run = false;
  bool resume = false;
  MaxFail max_fail;
  int parallel = 64;
  double timeout_s = 30;  // SSH connect timeout for Ansible and probes
};

// How devices are told to trust the cluster's registry.
struct RegistryTrust {
  bool insecure = false;  // podman's insecure = true (plain HTTP or unverified TLS)
  std::string ca_pem;     // installed as /etc/containers/certs.d/HOST:PORT/ca.crt
};
// Probes https://REGISTRY/v2/ from here with the CA in `ca_file` (or the system store): any HTTP
// answer (a 401 included) means TLS works. A certificate failure is auth (exit 6) with a hint
// (--registry-ca) and a registry speaking plain HTTP is auth too, unless `insecure_ok`
// (--insecure-registry), which warns; a registry that does not answer from here is trusted with
// TLS required on the devices (warns).
Result<RegistryTrust> registry_trust(const std::string& registry, const std::string& ca_file,
                                     bool insecure_ok, double timeout_s, Reporter& rep);

// A journal row (build_journal) as the resume logic sees it.
struct JournalEntry {
  int64_t id = 0;
  std::string device;
  std::string run_id;
  std::string step;
  std::string status;  // ok | changed | failed | unreachable | skipped
};

// The step written when a device finished every step of a run without failure.
inline constexpr const char* kStepComplete = "build complete";

// Devices (from `members`, in order) that a --resume must run: those whose latest journal row
// is not a successful kStepComplete (failed, unreachable, interrupted, or never started).
std::vector<std::string> select_resume(const std::vector<std::string>& members,
                                       const std::vector<JournalEntry>& journal);

// Builds (or converges, or resumes) a device cluster. The result's JSON is the `-o json`
// output (schemas/cluster-build.json). A build where some devices failed returns the result
// with `partial` set (exit 3 naming them); usage/not_found/conflict errors come first.
struct BuildOutcome {
  nlohmann::json result;
  std::optional<Error> partial;
};
Result<BuildOutcome> build(Inventory& inv, const Paths& paths, const BuildRequest& req,
                           Reporter& rep);

// join: adds devices to a device cluster and provisions them with the cluster's profile.
Result<BuildOutcome> join(Inventory& inv, const Paths& paths, const std::string& name,
                          const std::vector<std::string>& devices, int parallel, double timeout_s,
                          Reporter& rep);
// leave: removes devices from the cluster (membership and journal; the hosts are untouched) and
// rewrites the target file on the cluster's Prometheus server, if it has one.
Result<nlohmann::json> leave(Inventory& inv, const Paths& paths, const std::string& name,
                             const std::vector<std::string>& devices, double timeout_s,
                             Reporter& rep);

// register: a Kubernetes cluster known by where its kubeconfig is (the file paths, or
// "in-cluster") + context, never its credentials. `kubeconfig` "" = kubectl's order (KUBECONFIG,
// ~/.kube/config, in-cluster). Checks that the kubeconfig loads and the API answers (GET /version).
Result<nlohmann::json> register_kubernetes(Inventory& inv, const std::string& name,
                                           const std::string& kubeconfig,
                                           const std::string& context, double timeout_s,
                                           Reporter& rep);

Result<nlohmann::json> list(Inventory& inv);
Result<nlohmann::json> show(Inventory& inv, const std::string& name);
// Live status: device clusters, reachability and node-exporter metrics per member (from the
// cluster's Prometheus server when it has one: up/down, 5-minute averages, the last hour of CPU,
// alerts; live scrapes otherwise, or when it does not answer); Kubernetes
// clusters, nodes/pods/deployments/PVs/storage classes through the API.
struct StatusOutcome {
  nlohmann::json result;
  std::optional<Error> partial;  // some members unreachable
};
Result<StatusOutcome> status(Inventory& inv, const Paths& paths, const std::string& name,
                             int parallel, double timeout_s, Reporter& rep);
// rm: forgets the cluster; its target file on its Prometheus server is deleted first.
Result<nlohmann::json> remove(Inventory& inv, const Paths& paths, const std::string& name,
                              double timeout_s, Reporter& rep);

// export: "ansible" (YAML inventory using gedge's verified known_hosts), "prometheus" (a
// scrape_configs block for the members' node-exporters), "prometheus-sd" (the file_sd target
// file gedge keeps on the cluster's Prometheus server), "prometheus-rules" (the alert rules it
// loads) or "grafana" (a dashboard JSON for the same metrics).
Result<std::string> export_text(Inventory& inv, const Paths& paths, const std::string& name,
                                const std::string& format);

// ---- What the cli shows of these results (the JSON output is the result itself) -------------

// A build request's devices from the command line: `devices` (comma-separated), then each of
// `groups`' devices (device import groups; not_found for an unknown one) not named already. A new
// cluster without a profile (and not --resume) gets the containers profile.
Result<void> complete_build_request(Inventory& inv, BuildRequest& req, const std::string& devices,
                                    const std::vector<std::string>& groups);
// The footer of a build or join result: the dry run's count, the message, "up to date", or the
// changed steps and the cluster's state.
std::string build_summary(const nlohmann::json& result);
// `cluster show`'s footer: "cluster NAME (KIND PROFILE), state STATE".
std::string show_summary(const nlohmann::json& result);
// A Kubernetes cluster's status footer: deployments, PVs and storage classes counted.
std::string kubernetes_status_summary(const nlohmann::json& result);
// A status read from the cluster's Prometheus server: its members, each with `cpu_1h` (the last
// hour of CPU as a sparkline) when `sparkline`; and the footer: the server and the alerts firing.
nlohmann::json prometheus_status_rows(const nlohmann::json& result, bool sparkline);
std::string prometheus_status_summary(const nlohmann::json& result);

// ---- Monitoring with a Prometheus server (`cluster build --monitoring --prometheus-on`) -----

inline constexpr int kPrometheusPort = 9090;
inline constexpr const char* kPrometheusJob = "gedge";  // the scrape job
inline constexpr const char* kPrometheusTargetsDir = "/etc/prometheus/gedge/targets";

// One node-exporter as the file_sd target file lists it.
struct SdTarget {
  std::string address;                        // HOST:PORT
  std::map<std::string, std::string> labels;  // gedge_cluster, gedge_device, site, tier, labels
};

// A Prometheus label name for any key: characters outside [A-Za-z0-9_] become '_', a leading
// digit gets a '_' in front.
std::string prom_label_name(std::string_view key);
// The file_sd target file (JSON array, deterministic, newline-terminated).
std::string render_sd(const std::vector<SdTarget>& targets);
// The alert rules gedge ships (playbooks/roles/prometheus_server/files/gedge.rules.yml): device
// down, disk nearly full, memory pressure, node-exporter missing.
Result<std::string> prometheus_rules();
// A Grafana dashboard (classic JSON model) for cluster `name`'s node-exporters.
nlohmann::json grafana_dashboard(const std::string& name);
// The cluster's targets: every member with a registered device, labelled gedge_cluster,
// gedge_device, site, tier (when set) and the device's labels (names made Prometheus-safe;
// gedge's own names win).
Result<std::vector<SdTarget>> prometheus_targets(Inventory& inv, const std::string& name);
// The target file's path on the Prometheus host.
std::string sd_path(const std::string& cluster);
// The Prometheus base URL (http://HOST:9090) of the cluster's server; nullopt without one.
Result<std::optional<std::string>> prometheus_url(Inventory& inv, const std::string& name);

// Rewrites the cluster's target file on its Prometheus host (a temporary file renamed over it,
// over SFTP, or locally for "localhost"), or deletes it (`remove`). Prometheus' file_sd watches
// the directory: no reload. Returns null when the cluster has no Prometheus server, else
// {host, file, targets, synced, error}; a failure is reported there (and warned), not returned,
// because the membership change it follows has already happened.
nlohmann::json sync_prometheus(Inventory& inv, const Paths& paths, const std::string& name,
                               double timeout_s, Reporter& rep, bool remove = false);
// The clusters that list `device` as a member (for `device rm --force`, before the row goes).
Result<std::vector<std::string>> clusters_of(Inventory& inv, const std::string& device);
// `device rm`: device_remove, then each cluster that listed it (--force) resyncs its Prometheus
// targets. {removed, device, prometheus: {CLUSTER: sync_prometheus's object}} (no prometheus key
// when no cluster has a server).
Result<nlohmann::json> remove_device(Inventory& inv, const Paths& paths, const std::string& device,
                                     bool force, double timeout_s, Reporter& rep);

}  // namespace gedge::cluster
