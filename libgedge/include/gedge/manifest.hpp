// gedge manifest: Kubernetes manifests as input, wherever a service file is read (svc render,
// svc deploy, sched place, sched submit, pipelines).
//
// An input is a file (a YAML stream of any number of documents, or a JSON object or List) or a
// directory (every *.yaml, *.yml and *.json in it, sorted by name). A document with an
// `apiVersion` other than gedge/v1 is a Kubernetes object; anything else is gedge's own service
// or pipeline format, which keeps working unchanged (one document per file). Pure: no I/O but
// reading the input.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gedge/document.hpp"
#include "gedge/error.hpp"

namespace gedge::manifest {

enum class Role {
  workload,   // Pod, Deployment, StatefulSet, DaemonSet, Job: placed, deployed
  companion,  // Service, ConfigMap, Secret, PVC, PV, NetworkAttachmentDefinition, HPA,
              // ServiceMonitor, Ingress: passed through to Kubernetes
  unknown,    // any other kind: an error unless allowed (then passed through to Kubernetes)
};

struct Object {
  Document source;                                  // the object as parsed, with its file and lines
  std::string api_version, kind, name, namespace_;  // namespace_ "" when the object has none
  Role role = Role::unknown;
  const nlohmann::json& json() const { return source.doc; }
  // "app.yaml:12: Deployment/infer"
  std::string where() const;
};

struct Input {
  std::string path;             // as given
  bool is_gedge = false;        // a gedge/v1 service or pipeline (one document)
  std::string gedge_text;       // its text, for svc::parse_spec / sched::parse_workload
  std::string gedge_file;       // its file (a directory's only file, or `path`)
  std::vector<Object> objects;  // Kubernetes objects in file order (List items expanded)

  std::vector<const Object*> workloads() const;
  // The objects as one JSON List ({apiVersion: v1, kind: List, items}); with the text of a gedge
  // input, what `sched submit` stores so a queued request reads the same input later.
  std::string canonical_text() const;
};

struct LoadOptions {
  DocumentLimits limits;
  bool allow_unknown_kinds = false;  // pass unknown kinds through instead of exit 2
};

// Reads a file or directory. Errors (usage, exit 2) name file, line and what: an unknown kind
// ("app.yaml:7: unknown kind 'example.com/v1 Widget'"), an object without apiVersion/kind or
// metadata.name, a gedge document mixed with Kubernetes objects, an empty input.
Result<Input> load(const std::filesystem::path& path, const LoadOptions& o = {});
// The same from text (`file` is used in messages).
Result<Input> parse(const std::string& text, const std::string& file, const LoadOptions& o = {});

Role role_of(const std::string& api_version, const std::string& kind);

// The pod spec of a workload (Pod: spec; the others: spec.template.spec) and its JSON pointer;
// nullptr when absent.
const nlohmann::json* pod_spec(const Object& w);
std::string pod_spec_pointer(const Object& w);

// ---------------------------------------------------------------------------------------------
// What a workload asks of the node it runs on, as Kubernetes' scheduler computes it.

struct Requirement {    // a node selector requirement (required node affinity)
  std::string key, op;  // In | NotIn | Exists | DoesNotExist | Gt | Lt
  std::vector<std::string> values;
};

struct Toleration {
  std::string key, op = "Equal", value, effect;  // op Equal | Exists; effect "" = all
};

// GS-Scheduler's gschConfig env ({"type": "global", "targetClusters": "[c1,[c2,c3]]",
// "priority": "GLowLatencyPriority"}) from the workload's first container.
struct GschConfig {
  std::string type, priority;
  std::string target_clusters;  // as written (a list literal), parsed by sched::parse_levels
  std::string source_cluster, source_node;
};

struct Demand {
  // Per replica: max(Σ containers, max over init containers) per resource, requests with
  // limits standing in for missing requests, plus the pod overhead.
  double cpu = 0;                          // cores
  double memory = 0;                       // bytes
  double gpu = 0;                          // nvidia.com/gpu
  std::map<std::string, double> extended;  // other resources (SR-IOV VFs, hugepages, ...)
  int replicas = 1;  // Deployment/StatefulSet spec.replicas, Job parallelism; Pod and DaemonSet 1
  std::map<std::string, std::string> node_selector;
  // requiredDuringSchedulingIgnoredDuringExecution: any term matches; within a term, all.
  std::vector<std::vector<Requirement>> affinity;
  std::vector<Toleration> tolerations;
  std::vector<std::string> after;  // annotation gedge.io/after: a,b (empty: file order)
  std::optional<GschConfig> gsch;
};

// The demand of workload `w` (usage errors name file, line and field: bad quantities,
// negative or out-of-range amounts, malformed affinity).
Result<Demand> demand_of(const Object& w);

}  // namespace gedge::manifest
