// Shared between the deploy front (deploy.cpp) and its two back ends (hosts.cpp: podman over
// SSH; kube.cpp: server-side apply).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gedge/svc.hpp"

namespace gedge::svc::detail {

struct ClusterInfo {
  std::string name;
  std::string kind;  // devices | kubernetes
  std::string profile, registry, kubeconfig, context;
  std::vector<std::string> members;  // device clusters, sorted
};
Result<ClusterInfo> load_cluster(Inventory& inv, const std::string& name);

// A ConfigMap or Secret volume of a manifest on container hosts: files written on each device
// that runs a replica (over SSH: argv, contents on stdin) into `dir`, bind-mounted read-only.
// `dir` ends in a digest of the contents, so a change is a new directory and a replace. The
// contents are never recorded, logged or put on a command line.
struct FileSet {
  std::string dir;      // /var/lib/gedge/svc/SERVICE/VOLUME-DIGEST
  bool secret = false;  // files 0600 in a 0700 dir, else 0644 in 0755; root-owned
  std::vector<std::pair<std::string, std::string>> files;  // relative path -> bytes
};
inline constexpr const char* kFilesRoot = "/var/lib/gedge/svc";

// A podman secret that a manifest's env secretKeyRef needs on each device that runs a replica:
// created with `podman secret create NAME -`, the value on stdin, never on a command line. NAME
// is gedge-SERVICE-DIGEST (a slow salted digest of the value), so a changed value is a new
// secret and a replace, an unchanged one a no-op; `svc rm` removes the service's gedge-* ones.
struct PodmanSecret {
  std::string name, value;
};

// What a workload of a manifest needs on container hosts besides its containers.
struct HostObjects {
  std::vector<FileSet> files;
  std::vector<PodmanSecret> secrets;
};

// One service to converge, with everything resolved up front.
struct Unit {
  const Service* svc = nullptr;
  nlohmann::json doc;  // standalone service document (recorded; re-loaded by scale)
  std::optional<RuntimeMount> runtime;
  int replicas = 1;
  std::vector<std::string> placed;    // nodes from --placement for this stage (may be empty)
  std::vector<FileSet> files;         // ConfigMap/Secret volumes (manifests only)
  std::vector<PodmanSecret> secrets;  // env secretKeyRef values (manifests only)
};

// What the back ends report per service (the `services[]` entries of the deploy result) and
// what is recorded.
struct UnitResult {
  nlohmann::json out;                                   // {name, ..., actions: [...]}
  nlohmann::json placements = nlohmann::json::array();  // [{stage, cluster, node, replica}]
  bool ok = true;                                       // every replica converged
  std::optional<Error> error;  // first failure (its code decides the exit status)
};

// Container hosts: plan every unit first (read-only), pull every image that will be needed
// (an image or registry error stops the deploy before anything changed), then converge unit by
// unit. An error that stops everything (an image or registry error, Ctrl-C) is the Result's error.
Result<std::vector<UnitResult>> deploy_hosts(Inventory& inv, const Paths& paths,
                                             const ClusterInfo& cl, std::vector<Unit>& units,
                                             const DeployRequest& req, Reporter& rep);
Result<std::vector<UnitResult>> deploy_kube(Inventory& inv, const ClusterInfo& cl,
                                            std::vector<Unit>& units, const DeployRequest& req,
                                            Reporter& rep);

// Kubernetes manifests to a Kubernetes cluster: every object applied as written (namespace
// defaulted, ownership label added), the placement injected into each placed workload as
// required node affinity on kubernetes.io/hostname. One result per workload, its `doc` the
// record: references to the workload and (on the first workload) the companions, never their
// contents (Secret values are not stored).
struct ManifestResult {
  std::string name, namespace_;
  int replicas = 1;
  nlohmann::json doc;  // {apiVersion: gedge/v1, kind: Manifest, workload: ref, objects: [ref...]}
  UnitResult res;
};
Result<std::vector<ManifestResult>> deploy_manifest_kube(const ClusterInfo& cl, const Spec& spec,
                                                         const DeployRequest& req, Reporter& rep);
// Kubernetes manifests for container hosts: each workload's Pod template as a gedge service (a
// pipeline of them); what podman cannot honour is a usage error naming the field. `placed`: a
// placement decides the nodes (nodeSelector/affinity/tolerations were honoured by it).
// `extras` (when given) receives each workload's ConfigMap/Secret files and podman secrets by
// service name. A ConfigMap, Secret or PersistentVolumeClaim that no workload uses is a usage
// error naming it, unless `unused` is given: then it is listed there ("FILE:LINE: Kind/name").
Result<Spec> hosts_spec(const Spec& spec, bool placed,
                        std::map<std::string, HostObjects>* extras = nullptr,
                        std::vector<std::string>* unused = nullptr);
// The nodes --placement gives workload/stage `name` (empty: none), checked against the cluster.
Result<std::vector<std::string>> placed_nodes(const nlohmann::json& placement,
                                              const std::string& name, const ClusterInfo& cl);

// Status / logs / removal for one recorded service.
Result<StatusOutcome> status_hosts(Inventory& inv, const Paths& paths, const ServiceRecord& rec,
                                   double ssh_timeout_s);
Result<StatusOutcome> status_kube(Inventory& inv, const ClusterInfo& cl, const ServiceRecord& rec);
Result<void> logs_hosts(Inventory& inv, const Paths& paths, const ServiceRecord& rec,
                        const LogsRequest& req, const std::function<void(std::string_view)>& sink);
Result<nlohmann::json> remove_hosts(Inventory& inv, const Paths& paths, const ClusterInfo& cl,
                                    const ServiceRecord& rec, double ssh_timeout_s, Reporter& rep);
Result<void> logs_kube(const ClusterInfo& cl, const ServiceRecord& rec, const LogsRequest& req,
                       const std::function<void(std::string_view)>& sink);
Result<nlohmann::json> remove_kube(Inventory& inv, const ClusterInfo& cl, const ServiceRecord& rec);
// Average CPU use of the service's replicas as a percentage of their CPU request (or of one
// core when none), from `podman top` (%CPU over each process lifetime); nullopt when no replica
// reported.
Result<std::optional<double>> cpu_usage_hosts(Inventory& inv, const Paths& paths,
                                              const ServiceRecord& rec, double ssh_timeout_s);

// The document of one service or pipeline stage as a standalone service (namespace filled in,
// pipeline-only fields dropped), and the model loaded back from it.
nlohmann::json standalone_doc(const Spec& spec, const Service& s);
Result<Spec> spec_from_doc(const nlohmann::json& doc, const std::string& what);

// The address range (CIDR, podman's --ip-range) of the `index`-th of `members` devices in a
// macvlan network's IPv4 `subnet`: the subnet split into the next power of two at or above
// `members` equal blocks, so every member of a cluster hands out addresses of its own (each
// device's podman assigns them independently). usage when a block would hold fewer than 8.
Result<std::string> member_ip_range(const std::string& subnet, std::size_t index,
                                    std::size_t members);

}  // namespace gedge::svc::detail
