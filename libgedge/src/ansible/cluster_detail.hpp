// Internal helpers shared by the cluster build and the other cluster verbs.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gedge/cluster.hpp"
#include "gedge/ssh.hpp"

namespace gedge::cluster::detail {

// A device row as the cluster code needs it.
struct DeviceRow {
  std::string name, host, user, identity, host_key_type, host_key_fp;
  int port = 22;
  SshTarget target;  // the whole connection record (jump hop, agent, certificate)
};

// usage unless NAME is 1-63 of [A-Za-z0-9._-] starting with a letter or digit.
Result<void> check_name(const std::string& what, const std::string& name);
// not_found when the device is not registered.
Result<DeviceRow> load_device(Inventory& inv, const std::string& name);
// The clusters row, or nullopt.
Result<std::optional<nlohmann::json>> load_cluster(Inventory& inv, const std::string& name);
// not_found when the cluster does not exist.
Result<nlohmann::json> require_cluster(Inventory& inv, const std::string& name);
// Members in join order (rowid).
Result<std::vector<nlohmann::json>> load_members(Inventory& inv, const std::string& name);
// The journal rows of a cluster (optionally one device).
Result<std::vector<JournalEntry>> load_journal(Inventory& inv, const std::string& cluster);
// conflict when a device is a member of a cluster other than `cluster`.
Result<void> check_not_elsewhere(Inventory& inv, const std::string& cluster,
                                 const std::vector<std::string>& devices);
// The metrics URL gedge records for a member with node-exporter.
std::string metrics_url_for(const DeviceRow& d);
// The profile's playbook variables for a build of `targets`, after its checks (the registry's
// trust, k3s artifacts), made before anything touches a device (cluster_build_vars.cpp).
Result<nlohmann::json> profile_vars(const BuildRequest& req,
                                    const std::vector<std::string>& targets, Reporter& rep);

// The Prometheus server step of a build (--prometheus-on): playbooks/prometheus.yml on one host,
// a device or "localhost", in run_dir/prometheus.
struct PrometheusStep {
  std::string host;
  std::string state;  // ready | failed | unreachable | planned | probe-failed
  std::vector<std::string> changed;
  std::vector<nlohmann::json> plan;  // dry run: {step, action, diff}
  std::string failed_step, message;
  nlohmann::json to_json() const;
};
Result<PrometheusStep> run_prometheus_playbook(Inventory& inv, const Paths& paths,
                                               const std::string& host,
                                               const std::filesystem::path& run_dir, bool check,
                                               double timeout_s, Reporter& rep);
// usage unless HOST is "localhost" or a registered device.
Result<void> check_prometheus_host(Inventory& inv, const std::string& host);
// "host:port,host:port": the jump hosts a device is reached through, outermost first ("" when
// reached directly).
std::string jump_chain_text(const SshTarget& t);
// Members of cluster `name` behind jump hosts that the Prometheus server on `prom_host` (a
// device or "localhost") is not known to reach: it scrapes their address directly, and only a
// server behind the same jump hosts, or on their last jump host, is on their network (gedge
// does not tunnel scrapes). {device, message} each.
Result<std::vector<std::pair<std::string, std::string>>> unscrapable_members(
    Inventory& inv, const std::string& name, const std::string& prom_host);

// Rewrites (or deletes) cluster `name`'s target file on Prometheus host `host` (see
// sync_prometheus, which uses the cluster's own host).
nlohmann::json sync_targets_on(Inventory& inv, const Paths& paths, const std::string& name,
                               const std::string& host, double timeout_s, Reporter& rep,
                               bool remove);

// `cluster status` read from the cluster's Prometheus server at `base`: per member up/down
// (its scrape target's health), CPU and memory 5-minute averages, disk free, load, the last
// hour's CPU and the cluster's alerts. unreachable when the server does not answer.
Result<StatusOutcome> prometheus_status(const nlohmann::json& cluster,
                                        const std::vector<nlohmann::json>& members,
                                        const std::string& host, const std::string& base,
                                        double timeout_s);

}  // namespace gedge::cluster::detail
