// Clusters: device clusters built with Ansible (profiles containers, k3s, k8s; optional
// monitoring) with a per-host step journal and --resume, and registered Kubernetes clusters.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gedge/error.hpp"
#include "gedge/inventory.hpp"
#include "gedge/paths.hpp"
#include "gedge/report.hpp"

namespace gedge::cluster {

// "--max-fail N" or "N%": how many devices may fail before the build is stopped.
struct MaxFail {
  int value = -1;        // -1: no limit
  bool percent = false;
  // Whether `failed` of `total` devices exceeds the limit.
  bool exceeded(int failed, int total) const;
};
// Parses "3" or "25%"; usage for anything else (negative, >100 %, junk).
Result<MaxFail> parse_max_fail(const std::string& text);

struct BuildRequest {
  std::string name;
  std::string profile;                 // containers | k3s | k8s
  std::vector<std::string> devices;    // may be empty with --resume (the existing members)
  std::string server;                  // k3s/k8s: the server device (default: first device)
  bool monitoring = false;
  std::string registry;                // HOST:PORT
  std::string smoke_image;             // default: REGISTRY/gedge/busybox:1.0 when a registry is set
  std::string artifacts;               // k3s: directory with the k3s binary and airgap images
  bool dry_run = false;
  bool resume = false;
  MaxFail max_fail;
  int parallel = 64;
  double timeout_s = 30;               // SSH connect timeout for Ansible and probes
};

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
// leave: removes devices from the cluster (membership and journal; the hosts are untouched).
Result<nlohmann::json> leave(Inventory& inv, const std::string& name,
                             const std::vector<std::string>& devices);

// register: a Kubernetes cluster known by kubeconfig path + context (never its credentials).
// Checks that the kubeconfig parses and the API answers (GET /version).
Result<nlohmann::json> register_kubernetes(Inventory& inv, const std::string& name,
                                           const std::string& kubeconfig, const std::string& context,
                                           double timeout_s, Reporter& rep);

Result<nlohmann::json> list(Inventory& inv);
Result<nlohmann::json> show(Inventory& inv, const std::string& name);
// Live status: device clusters, reachability and node-exporter metrics per member; Kubernetes
// clusters, nodes/pods/deployments/PVs/storage classes through the API.
struct StatusOutcome {
  nlohmann::json result;
  std::optional<Error> partial;  // some members unreachable
};
Result<StatusOutcome> status(Inventory& inv, const Paths& paths, const std::string& name,
                             int parallel, double timeout_s, Reporter& rep);
Result<nlohmann::json> remove(Inventory& inv, const std::string& name);

// export: "ansible" (YAML inventory using gedge's verified known_hosts) or "prometheus"
// (a scrape_configs block for the members' node-exporters).
Result<std::string> export_text(Inventory& inv, const Paths& paths, const std::string& name,
                                const std::string& format);

}  // namespace gedge::cluster
