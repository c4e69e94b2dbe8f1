// gedge svc: the service schema (GS-Engine v1 short form and v2 container form, gedge's
// extensions, kind: Pipeline), normalised into one model, rendered for Kubernetes and for
// container hosts, and deployed.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gedge/error.hpp"

namespace gedge::svc {

struct PortSpec {
  int container_port = 0;
  std::string protocol = "TCP";
  int external_port = 0;  // defaults to container_port
};

struct EnvVar {
  std::string name;
  std::string value;
};

struct ContainerSpec {
  std::string name;   // GS-Engine: v1 image basename; v2 <svc>, <svc><i>
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

struct Autoscale {
  int min = 1;
  int max = 1;
  int cpu = 80;                   // target average utilisation, % of the CPU request
  int scale_down_window_s = 300;  // HPA defaults
  int scale_up_window_s = 0;
};

struct Pin {
  int cores = 0;
  std::string near;  // gpu0 | numa:N | "" (see gedge tune)
  bool no_smt = false;
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

// A loaded file: one service or one pipeline. `json` is the validated document as parsed.
struct Spec {
  std::string file;
  bool is_pipeline = false;
  Service service;    // when !is_pipeline
  Pipeline pipeline;  // when is_pipeline
  nlohmann::json json;

  // The services to deploy, in dependency order (a single service: just it).
  std::vector<const Service*> ordered() const;
};

struct LoadLimits {
  std::size_t max_bytes = 1 << 20;    // file size
  std::size_t max_nodes = 100000;     // YAML nodes after alias expansion (YAML bombs)
  std::size_t max_depth = 64;         // nesting
};

// Loads, validates (schemas/service.schema.json via valijson, then the rules a schema cannot
// say: duplicate names, cycles, pipeline-only fields) and normalises a YAML or JSON file.
// Errors are usage (exit 2) and read "FILE:LINE: field.path: what".
Result<Spec> load_spec(const std::filesystem::path& file, const LoadLimits& limits = {});
// Same, from text; `file` is used in messages only.
Result<Spec> parse_spec(const std::string& text, const std::string& file,
                        const LoadLimits& limits = {});

// The embedded JSON schema (identical to schemas/service.schema.json; a unit test checks).
const std::string& schema_text();

// Offline rendering. Kubernetes objects for one service, in this order: Deployment, Service
// (when it has ports), ServiceMonitor (monitorPorts), HorizontalPodAutoscaler (autoscale).
std::vector<nlohmann::json> render_kubernetes(const Service& s);
// The container-host run plan for one service: per replica the podman argv (without the host
// part), labels and the spec hash that makes deploys idempotent.
nlohmann::json render_host_plan(const Service& s);
// Everything for a spec (every stage of a pipeline in order): K8s objects then host plans.
std::vector<nlohmann::json> render_all(const Spec& spec);
// Multi-document YAML ("---" separated) or a JSON array of the documents.
std::string to_multidoc_yaml(const std::vector<nlohmann::json>& docs);

// Stable hash of what a replica runs (image, ports, env, resources...), hex.
std::string spec_hash(const Service& s);

// Kubernetes quantity helpers: "500m" -> 0.5 cores; "1Gi" -> bytes. nullopt when malformed.
std::optional<double> parse_cpu(const std::string& q);
std::optional<double> parse_bytes(const std::string& q);

// Deploying (svc deploy/ls/status/scale/rm) is not implemented yet: see the issue. The
// Kubernetes side will use gedge/k8s.hpp (server-side apply, fieldManager=gedge).

}  // namespace gedge::svc
