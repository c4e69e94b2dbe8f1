// Shared by the placement sources: a flattened view of the world and the per-stage filters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gedge/sched.hpp"

namespace gedge::sched::detail {

// The number `s` spells in full ("2.5", "1e3"); nullopt when empty or when anything is left over.
inline std::optional<double> whole_double(const std::string& s) {
  std::size_t used = 0;
  try {
    double d = std::stod(s, &used);
    if (!s.empty() && used == s.size()) return d;
  } catch (...) {
  }
  return std::nullopt;
}

struct FlatNode {
  int cluster = 0;  // index into World::clusters
  const Cluster* c = nullptr;
  const Node* n = nullptr;
};

struct Flat {
  std::vector<FlatNode> nodes;   // in (cluster, node) name order
  std::vector<Resources> alloc;  // current allocation (starts as the world's)
  std::vector<std::string> ids;  // "cluster/node" per node; empty when flattened without ids
};
Flat flatten(const World& w);
// Refills `f` (keeping its buffers); `ids` = false leaves Flat::ids empty (the pipeline hot
// path builds a "cluster/node" string only for the few nodes that need one: node_id()).
void flatten_into(const World& w, Flat& f, bool ids);
inline std::string node_id(const FlatNode& fn) {
  return fn.c->name + "/" + fn.n->name;
}

// One way to run a stage on a node.
struct Option {
  int node = 0;
  bool gpu = false;
  double compute = 0;
  Resources need;
};

double stage_compute(const Stage& s, bool gpu);
Resources stage_need(const Stage& s, bool gpu);
bool fits(const Node& n, const Resources& alloc, const Resources& need);

// Why a node cannot take a stage (the first failing filter); ok = it can.
enum class Why : std::uint8_t { ok, not_ready, selector, affinity, taint, cpu, memory, gpu };
inline constexpr std::string_view kWhyText[] = {"",
                                                "not ready",
                                                "node selector not matched",
                                                "node affinity not matched",
                                                "untolerated taint",
                                                "insufficient cpu",
                                                "insufficient memory",
                                                "insufficient gpu"};
inline std::string_view why_text(Why w) {
  return kWhyText[static_cast<int>(w)];
}

inline Why resource_why(const Node& n, const Resources& alloc, const Resources& need) {
  constexpr double eps = 1e-9;
  if (alloc.cpu + need.cpu > n.capacity.cpu + eps) return Why::cpu;
  if (alloc.memory + need.memory > n.capacity.memory + eps) return Why::memory;
  if (alloc.gpu + need.gpu > n.capacity.gpu + eps) return Why::gpu;
  return Why::ok;
}

// A stage's filter inputs, computed once per stage rather than once per node.
struct StageFilter {
  explicit StageFilter(const Stage& s);
  // Hard filters (ready, node selector, fit, GPU) on node `n` (flat index `k`) under `alloc`.
  // Appends the feasible options (GPU variant when a GPU is free; with `all_variants`, the CPU
  // variant of a {gpu, cpu} stage too) and returns ok, or the first failing reason.
  // Inline: the pipeline calls it once per (node, stage), 15,000 times a request at 5000 nodes.
  Why check(const Node& n, int k, const Resources& alloc, std::vector<Option>* out,
            bool all_variants) const {
    return check_into(n, k, alloc, all_variants, [out](const Option& o) { out->push_back(o); });
  }
  // The same, handing each option to `emit`.
  template <class Emit>
  Why check_into(const Node& n, int k, const Resources& alloc, bool all_variants,
                 Emit&& emit) const {
    if (!n.ready) return Why::not_ready;
    if (!s->node_selector.empty() && !selector_matches(n)) return Why::selector;
    if (!s->affinity.empty() && !affinity_matches(n)) return Why::affinity;
    if (!n.taints.empty() && !tolerates(n)) return Why::taint;
    if (split) {
      bool gpu_ok = resource_why(n, alloc, need_gpu) == Why::ok;
      Why cpu_why = resource_why(n, alloc, need_cpu);
      if (gpu_ok) emit(Option{k, true, compute_gpu, need_gpu});
      if (cpu_why == Why::ok && (all_variants || !gpu_ok))
        emit(Option{k, false, compute_cpu, need_cpu});
      return gpu_ok ? Why::ok : cpu_why;
    }
    Why r = resource_why(n, alloc, need);
    if (r != Why::ok) return r;
    emit(Option{k, need.gpu > 0, compute, need});
    return Why::ok;
  }
  bool selector_matches(const Node& n) const;
  // Required node affinity: some term whose every requirement holds (Kubernetes' semantics;
  // matchFields metadata.name is the node's name).
  bool affinity_matches(const Node& n) const;
  // Every NoSchedule/NoExecute taint of `n` is tolerated.
  bool tolerates(const Node& n) const;

  const Stage* s;
  bool split;  // compute_ms is {gpu, cpu}
  Resources need, need_gpu, need_cpu;
  double compute, compute_gpu, compute_cpu;
};

// Hard filters (ready, node selector, fit, GPU) of stage `s` on node `k` under `alloc`.
// Returns "" and appends the feasible options (GPU variant when a GPU is free; with
// `all_variants`, the CPU variant of a {gpu, cpu} stage too), or the first failing reason.
std::string_view filter(const Stage& s, const Flat& f, int k, const Resources& alloc,
                        std::vector<Option>* out, bool all_variants);

// "0/24 nodes fit stage 'infer': 12 insufficient gpu, 9 not in --clusters, 3 not ready"
std::string summary(const std::string& stage, std::size_t total, std::size_t feasible,
                    const std::vector<Rejection>& rejected);

// Joint placement of the pipeline policy (pipeline.cpp).
Result<Placement> place_pipeline(const World& w, const Workload& wl, const Request& req,
                                 const std::string& source);

}  // namespace gedge::sched::detail
