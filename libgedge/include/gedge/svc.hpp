// gedge svc: the service schema (GS-Engine v1 short form and v2 container form, gedge's
// extensions, kind: Pipeline), normalised into one model, rendered for Kubernetes and for
// container hosts, and deployed.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gedge/document.hpp"
#include "gedge/error.hpp"
#include "gedge/inventory.hpp"
#include "gedge/manifest.hpp"
#include "gedge/paths.hpp"
#include "gedge/report.hpp"

namespace gedge::svc {

struct PortSpec {
  int container_port = 0;
  std::string protocol = "TCP";
  int external_port = 0;  // defaults to container_port
};

struct EnvVar {
  std::string name;
  std::string value;
  // The value of a secret instead: on container hosts the podman secret of this name on the
  // device (podman run --secret NAME,type=env,target=VAR); on Kubernetes key VAR of the Secret
  // NAME. gedge creates the podman secrets of a manifest's secretKeyRef (gedge-SVC-DIGEST).
  std::string secret;
  // The downward API instead: metadata.name (the pod; on container hosts the replica,
  // gedge-SVC-R), spec.nodeName (the node; the device's name) or status.hostIP (the node's
  // address; the device's, as gedge reaches it).
  std::string field;
};

struct ContainerSpec {
  std::string name;  // GS-Engine: v1 image basename; v2 <svc>, <svc><i>
  std::string image;
  std::vector<PortSpec> ports;
  std::map<std::string, std::string> requests;  // normalised quantities ("200m", "500Mi", "1")
  std::map<std::string, std::string> limits;
  bool accelerated = false;     // resources.acceleration present: requests = limits
  bool topology_aware = false;  // Guaranteed QoS, integer CPU, nodeSelector gse-resalloc=numa
  int gpu = 0;                  // nvidia.com/gpu
  std::vector<std::string> command, args;
  std::vector<EnvVar> env;
};

// One HPA metric of the short schema: resource (averageUtilization, percent), pods or external
// (AverageValue, a quantity).
struct AutoscaleMetric {
  std::string type;    // resource | pods | external
  std::string name;    // cpu, memory, or the metric's name
  std::string target;  // percent (resource) or quantity text
};

struct Autoscale {
  int min = 1;
  int max = 1;
  int cpu = 80;                          // target average utilisation, % of the CPU request (also
                                         // the resource cpu metric's, when metrics has one)
  std::vector<AutoscaleMetric> metrics;  // given instead of cpu: the HPA's metrics as listed
  int scale_down_window_s = 300;         // HPA defaults
  int scale_up_window_s = 0;
};

struct Pin {
  int cores = 0;
  std::string near;  // gpu0 | numa:N | "" (see gedge tune)
  bool no_smt = false;
};

// A volume mounted in every container of the service (exactly one source).
struct Volume {
  std::string name, mount_path;
  bool read_only = false;
  std::string claim, size, access_mode, storage_class;  // a PersistentVolumeClaim (size: render it)
  std::string nfs_server, nfs_path;                     // NFS
  bool empty_dir = false;
  std::string medium, size_limit;  // emptyDir
  std::string host_path;           // hostPath
};

// An extra pod network (Multus): macvlan | ipvlan | bridge | sriov.
struct Network {
  std::string name, type, master, subnet, resource;
};

struct ScheduleHint {
  std::string preferred;  // local | neighbor | cloud | ""
  std::map<std::string, std::string> node_selector;
};

struct Service {
  int form = 2;  // 1: GS-Engine v1 short form, 2: v2 container form
  std::string name;
  std::string namespace_ = "default";
  std::string type = "ClusterIP";
  std::optional<int> replicas;  // absent: 1 (and omitted from the Deployment under autoscale)
  std::map<std::string, std::string> labels;
  std::vector<ContainerSpec> containers;
  std::vector<int> service_ports;  // v1 top-level ports
  std::vector<int> monitor_ports;
  std::optional<ScheduleHint> schedule_hint;
  std::optional<Autoscale> autoscale;
  std::string runtime;  // runtime bundle id or name ("" = none)
  std::optional<Pin> pin;
  std::vector<Volume> volumes;
  std::vector<Network> networks;
  std::string vpa_mode;  // auto | initial | off; "" = no VerticalPodAutoscaler
  std::optional<std::pair<std::map<std::string, std::string>, std::map<std::string, std::string>>>
      limits;  // LimitRange (type Container) min, max
  // Stage / placement fields (read by gedge sched): verbatim JSON, null when absent.
  nlohmann::json resources;   // {cpu, memory, gpu}
  nlohmann::json compute_ms;  // number or {gpu, cpu}
  nlohmann::json output_mb;
  std::vector<std::string> after;  // pipeline stages this one waits for (resolved: chain default)
  int line = 0;                    // where it starts in the file

  int desired_replicas() const { return replicas.value_or(autoscale ? autoscale->min : 1); }
};

struct Pipeline {
  std::string name;
  std::string namespace_ = "default";
  std::string source;           // device the data comes from ("" = none)
  std::vector<Service> stages;  // file order; `after` resolved
};

// A loaded input: one service or one pipeline in gedge's format, or Kubernetes manifests.
// `json` is the validated gedge document as parsed.
struct Spec {
  std::string file;
  bool is_pipeline = false;
  Service service;    // when !is_pipeline
  Pipeline pipeline;  // when is_pipeline
  nlohmann::json json;
  // Kubernetes manifests (svc render / deploy FILE|DIR with apiVersion/kind documents): applied
  // as they are to Kubernetes clusters. is_pipeline is false and `service` unused.
  bool is_manifest = false;
  manifest::Input manifest;

  // The services to deploy, in dependency order (a single service: just it).
  std::vector<const Service*> ordered() const;
};

using LoadLimits = DocumentLimits;  // size, nodes after alias expansion (YAML bombs), nesting

// Loads a file or directory (gedge/manifest.hpp): gedge's format is validated
// (schemas/service.schema.json via valijson, then the rules a schema cannot say: duplicate
// names, cycles, pipeline-only fields) and normalised; Kubernetes manifests are read as they are
// (unknown kinds refused unless `allow_unknown_kinds`). Errors are usage (exit 2) and read
// "FILE:LINE: field.path: what".
Result<Spec> load_spec(const std::filesystem::path& file, const LoadLimits& limits = {},
                       bool allow_unknown_kinds = false);
// A loaded manifest input as a Spec.
Spec spec_from_manifest(manifest::Input in);
// Same, from text; `file` is used in messages only.
Result<Spec> parse_spec(const std::string& text, const std::string& file,
                        const LoadLimits& limits = {});

// The embedded JSON schema (identical to schemas/service.schema.json; a unit test checks).
const std::string& schema_text();

// A runtime bundle resolved for deployment: where it lives on the host and where it is mounted
// (read-only) in the container, with its env wiring. Offline rendering (nullptr) mounts
// /var/lib/gedge/runtimes/<runtime> as written in the file.
struct RuntimeMount {
  std::string id;          // bundle id
  std::string host_dir;    // <root>/<id> on the device / node
  std::string mount_path;  // the bundle's prefix (/opt/gedge/rt/<name>)
  std::vector<std::pair<std::string, std::string>> env;  // PATH, LD_LIBRARY_PATH, ...
};

// Offline rendering. Kubernetes objects for one service, in this order: PersistentVolumeClaims
// (claim volumes with a size), NetworkAttachmentDefinitions (networks), Deployment, Service
// (when it has ports), ServiceMonitor (monitorPorts), HorizontalPodAutoscaler (autoscale).
std::vector<nlohmann::json> render_kubernetes(const Service& s, const RuntimeMount* rt = nullptr);
// The container-host run plan for one service: per replica the podman argv (without the host
// part), labels and the spec hash that makes deploys idempotent. Volumes: claim -> a named podman
// volume, hostPath -> a bind mount, emptyDir -> tmpfs; what container hosts cannot do (NFS
// volumes, networks) is listed under spec.unsupportedOnHosts and refused by deploy.
// hosts_unsupported: those fields ("volumes[1].nfs"), empty when the service runs on hosts.
nlohmann::json render_host_plan(const Service& s, const RuntimeMount* rt = nullptr);
std::vector<std::string> hosts_unsupported(const Service& s);
// Everything for a spec (every stage of a pipeline in order): K8s objects then host plans.
// Manifests: the objects as `svc deploy` applies them (manifest_objects).
std::vector<nlohmann::json> render_all(const Spec& spec);
// A manifest input's objects as gedge applies them: namespace defaulted (namespaced kinds),
// gedge's ownership label added (app.kubernetes.io/managed-by: gedge), everything else as
// written.
std::vector<nlohmann::json> manifest_objects(const Spec& spec,
                                             const std::string& default_namespace = "default");
// Multi-document YAML ("---" separated) or a JSON array of the documents.
std::string to_multidoc_yaml(const std::vector<nlohmann::json>& docs);

// Stable hash of what a replica runs (image, ports, env, resources...), hex.
std::string spec_hash(const Service& s);
// Same, for a deploy with a resolved runtime mount (nullptr: as spec_hash).
std::string spec_hash_with(const Service& s, const RuntimeMount* rt);

// Kubernetes quantities (gedge/quantity.hpp): "500m" -> 0.5 cores; "1Gi" -> bytes. nullopt when
// malformed, negative or out of range.
std::optional<double> parse_cpu(const std::string& q);
std::optional<double> parse_bytes(const std::string& q);

// ---- deploying ---------------------------------------------------------------------------
// Container-host clusters (kind devices): podman over SSH on the members, one container per
// replica and container, named gedge-<svc>-<i>[-<container>], labelled gedge.service,
// gedge.replica and gedge.spec (the hash that makes re-deploys idempotent). Kubernetes clusters
// (registered kubeconfig): server-side apply with fieldManager=gedge. Every deploy is recorded in
// the inventory's services table (spec, where each replica runs, state).

struct DeployRequest {
  std::string cluster;
  // A `gedge sched place -o json` result ({placements: [{stage, cluster, node}]}); stages it
  // names go to that node, the others are spread. Null: spread over members by free capacity.
  nlohmann::json placement;
  bool dry_run = false;          // plan only (hosts: what would change; Kubernetes: dryRun=All)
  bool wait = true;              // wait for running / available (and ports answering)
  bool force_conflicts = false;  // Kubernetes: take fields owned by another manager
  double timeout_s = 120;        // per service: running + ports answering / Deployment available
  double ssh_timeout_s = 30;     // connect timeout
  int parallel = 16;
  std::string runtime_root = "/var/lib/gedge/runtimes";
  std::optional<int> replicas_override;  // scale: replaces the file's replicas
  // Manifests on container hosts: a ConfigMap, Secret or claim no workload uses is deployed
  // without (listed under `unused` and warned about) instead of exit 2.
  bool allow_unused = false;
  // scale on container hosts: the Kubernetes manifests the service was deployed from, read again
  // for the ConfigMap/Secret contents a device without them needs (gedge keeps no copy).
  std::string contents_file;
};

struct DeployOutcome {
  nlohmann::json result;         // {cluster, kind, dry_run, services: [...]}
  std::optional<Error> partial;  // some replicas/devices failed (exit 3), the rest converged
};

Result<DeployOutcome> deploy(Inventory& inv, const Paths& paths, const Spec& spec,
                             const DeployRequest& req, Reporter& rep);

// Recorded services: [{name, cluster, namespace, kind, state, replicas, placement, updated_at}].
Result<nlohmann::json> list_services(Inventory& inv, const std::string& cluster = "");

// The recorded service `name` (cluster "" = the only cluster that has it; conflict if several).
struct ServiceRecord {
  std::string name, cluster, cluster_kind, namespace_, state;
  nlohmann::json spec;       // the service's document (one service, even for a pipeline stage)
  nlohmann::json placement;  // {placements: [{stage, cluster, node, replica}]}
  int replicas = 0;
};
Result<ServiceRecord> find_service(Inventory& inv, const std::string& name,
                                   const std::string& cluster);

struct StatusOutcome {
  nlohmann::json result;  // {name, cluster, kind, desired, ready, replicas: [{replica, device|pod,
                          // state, restarts, ports}]}
  std::optional<Error> partial;
};
Result<StatusOutcome> status(Inventory& inv, const Paths& paths, const std::string& name,
                             const std::string& cluster, double ssh_timeout_s);

struct LogsRequest {
  std::string name, cluster;
  std::optional<int> replica;   // container hosts: the replica number
  std::string pod;              // Kubernetes: only this pod (--replica POD)
  std::string container;        // Kubernetes: only this container (default: every container)
  int tail = -1;                // all
  std::optional<long> since_s;  // only lines newer than this many seconds
  bool follow = false;
  double ssh_timeout_s = 30;
};
// --replica of `svc logs`: a replica number on container hosts (up to 8 digits), a pod name on
// Kubernetes.
void set_replica(LogsRequest& req, const std::string& text);

// A duration as kubectl takes it ("30s", "5m", "2h", "1h30m"; at least 1 s) in seconds; usage
// naming `what` otherwise.
Result<long> parse_duration_s(const std::string& text, const std::string& what);

// Container-host services: `podman logs` of each replica, prefixed "[<replica> <device>] ".
// Kubernetes services: the pod log API for every container of every pod of the service, prefixed
// "[pod/POD/CONTAINER] " when there are several (as `kubectl logs -l app=NAME --prefix`), all
// streams followed at once with --follow.
// `sink` receives the text as it arrives, whole lines (follow streams until Ctrl-C).
Result<void> logs(Inventory& inv, const Paths& paths, const LogsRequest& req,
                  const std::function<void(std::string_view)>& sink);

// Changes the replica count of a recorded service and converges it (hosts: starts or removes
// replicas; Kubernetes: applies spec.replicas).
Result<DeployOutcome> scale(Inventory& inv, const Paths& paths, const std::string& name,
                            const std::string& cluster, int replicas, const DeployRequest& base,
                            Reporter& rep);

// Removes exactly what gedge created for the service (containers with its labels; the
// Kubernetes objects it rendered) and the record.
Result<DeployOutcome> remove(Inventory& inv, const Paths& paths, const std::string& name,
                             const std::string& cluster, double ssh_timeout_s, Reporter& rep);

// One step of the container-host autoscaler for services with `autoscale`: reads each
// replica's CPU use (podman top: %CPU over its lifetime), and moves the replica count toward
// ceil(current * used / target) within [min, max] (Kubernetes clusters: the HPA does this).
Result<DeployOutcome> autoscale_once(Inventory& inv, const Paths& paths, const std::string& cluster,
                                     const DeployRequest& base, Reporter& rep);
// The autoscaler's arithmetic (pure): desired replicas for `current` replicas using
// `cpu_percent` of their request on average, toward `target` percent, within [min, max];
// a 10 % tolerance band keeps the count (the HPA's rule).
int autoscale_desired(int current, double cpu_percent, int target, int min, int max);

// Docker Registry v2 catalog (plain HTTP for a lab registry, HTTPS verified otherwise):
// [{repository, tags: [...]}], sorted.
Result<nlohmann::json> catalog(const std::string& registry, bool plain_http, double timeout_s);

// The rows and footers the cli's tables show (views.cpp; the JSON output is the result itself).
// A deploy, scale or autoscale result: one row per replica action and per applied object
// {service, replica, target, action, state, error}; the footer, one line per service.
nlohmann::json deploy_rows(const nlohmann::json& result);
std::string deploy_summary(const nlohmann::json& result);
// `svc status`: each replica with `where` (device or node) and `what` (container or pod); the
// footer "NAME: R of D ready (STATE)".
nlohmann::json status_rows(const nlohmann::json& result);
std::string status_summary(const nlohmann::json& result);
// `svc rm`: each removal with `where` (device or namespace) and `what` (containers or KIND/name).
nlohmann::json removed_rows(const nlohmann::json& result);

}  // namespace gedge::svc
