// Shared by the placement sources: a flattened view of the world and the per-stage filters.
#pragma once

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
  std::string id;  // "cluster/node"
};

struct Flat {
  std::vector<FlatNode> nodes;  // in (cluster, node) name order
  std::vector<Resources> alloc;  // current allocation (starts as the world's)
};
Flat flatten(const World& w);

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
