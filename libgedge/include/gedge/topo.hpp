// Hardware topology (hwloc), cpuset planning, binding with read-back, container pins and the
// A/B pinning benchmark. Planning is pure (topology + request -> plan); binding touches the kernel.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/report.hpp"

struct hwloc_topology;

namespace gedge::topo {

// A set of OS indexes (PUs or NUMA nodes), as Linux prints them: "2-5,8".
using IndexSet = std::set<unsigned>;

// Parses a Linux list ("0-3,8,10-11"; "" is the empty set). usage error on anything else,
// including reversed ranges and indexes past 1<<20.
Result<IndexSet> parse_list(std::string_view s);
// Formats a set as the shortest Linux list ("2-5,8"; "" for the empty set).
std::string format_list(const IndexSet& s);

// Where a topology comes from.
struct TopologySource {
  enum class Kind { local, xml_file, xml_buffer, synthetic };
  Kind kind = Kind::local;
  std::string value;  // file path, XML text or synthetic description
  std::string label;  // how outputs name it: "local", the path, "device edge1"
  // `--topology ARG`: an existing file (or a name ending in .xml) is XML, anything else synthetic.
  static TopologySource from_arg(const std::string& arg);
};

// A loaded topology. The whole machine is loaded (disallowed PUs included) so that outputs can
// show the cgroup-allowed set next to it; I/O devices (PCI, GPUs, NICs, disks) are kept.
class Topology {
 public:
  // usage error for a malformed, oversized or hostile XML file / synthetic string;
  // not_found for a missing file.
  static Result<Topology> load(const TopologySource& src);
  Topology(Topology&&) noexcept;
  Topology& operator=(Topology&&) noexcept;
  ~Topology();

  // True for the local machine (binding possible), false for XML/synthetic.
  bool is_this_system() const;
  const TopologySource& source() const;
  // `tune show`: packages, NUMA nodes, cores, PUs, caches, I/O devices, allowed vs complete sets.
  nlohmann::json describe() const;
  // A few counts and sets, embedded in plans and benchmarks.
  nlohmann::json summary() const;
  // The PUs (OS indexes) and NUMA nodes in the machine, and those the cgroup allows.
  IndexSet all_pus() const;
  IndexSet allowed_pus() const;
  IndexSet all_nodes() const;
  // NUMA nodes local to the given PUs (every node whose CPUs intersect them).
  IndexSet nodes_near(const IndexSet& pus) const;
  hwloc_topology* raw() const;

 private:
  struct Impl;
  explicit Topology(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

enum class Policy { compact, scatter };
Result<Policy> parse_policy(std::string_view s);

// One intent. Either `cores` > 0 (let the planner choose) or `cpuset` (explicit OS-index list).
struct PlanRequest {
  int cores = 0;
  std::optional<std::string> cpuset;
  // An I/O device: gpuN (N-th GPU-like PCI device), an OS device name (cuda0, nvml0, card0,
  // eth0, sda), nic:NAME, pci:BUS (e.g. 84:00.0 or 0000:84:00.0).
  std::string near;
  std::optional<unsigned> numa;  // NUMA node by OS index
  bool no_smt = false;
  IndexSet exclude;  // PUs (OS indexes) never used
  // Work already pinned on this machine: owner -> its PUs. Avoided.
  std::vector<std::pair<std::string, IndexSet>> pinned;
  Policy policy = Policy::compact;
};

// The plan request as `tune plan|pin|bench` take it from flags.
struct PlanFlags {
  int cores = 0;
  std::string cpuset;
  std::string near;
  int numa = -1;  // -1: any
  bool no_smt = false;
  std::string exclude;  // a list for parse_list
  std::string policy = "compact";
  bool membind = false;
};
// The validated PlanRequest: exactly one of cores and cpuset (usage error otherwise), the
// exclude list and policy parsed.
Result<PlanRequest> plan_request(const PlanFlags& f);

struct Plan {
  IndexSet cpus;          // PUs, OS indexes
  IndexSet memory_nodes;  // NUMA nodes, OS indexes
  std::vector<unsigned> cpus_logical;
  nlohmann::json objects = nlohmann::json::array();  // chosen objects: scope and cores
  std::vector<std::string> why;                      // one line per decision
  nlohmann::json request;                            // the request as understood
  nlohmann::json to_json() const;  // {cpuset, memory_nodes, cpus_logical, objects, why, ...}
};

// The planner: pure, deterministic. failure (exit 1) when the request cannot be met, with what
// is available in the message; not_found for an unknown --near device; usage for a malformed or
// out-of-machine explicit cpuset.
Result<Plan> plan(const Topology& topo, const PlanRequest& req);

// Backends: the same plan as podman flags, Kubernetes resources + kubelet notes, systemd drop-in.
std::string render_podman(const Plan& p);
std::string render_k8s(const Plan& p, const std::string& memory = "1Gi");
std::string render_systemd(const Plan& p);

// What the kernel says a process (or one of its threads) may run on.
struct Applied {
  IndexSet cpus;  // the process (main thread)
  IndexSet mems;
  std::vector<std::pair<pid_t, IndexSet>> threads;  // every thread and its CPUs
  std::optional<IndexSet> membind;                  // memory policy nodes, when gedge set one
  nlohmann::json to_json() const;
};

// Reads /proc/PID/status (Cpus_allowed_list, Mems_allowed_list) of a process and
// /proc/PID/task/*/status of each thread. not_found when the process does not exist.
Result<Applied> read_back(pid_t pid);

// Binds the calling process (CPU, and memory when membind) through hwloc and verifies it by
// reading back /proc/self/status and the memory policy. The topology must be this system.
Result<Applied> bind_self(const Topology& topo, const Plan& p, bool membind);

// Rebinds every thread of a running process (threads that appear while doing so are caught by
// re-listing until stable), then reads back each thread. not_found if the process is or goes away.
Result<Applied> bind_pid(const Topology& topo, const Plan& p, pid_t pid);

// Compares what was applied with the plan; failure naming both sets if the CPUs of the process or
// of any thread differ, or (when check_mems) the memory policy nodes differ.
Result<void> verify_applied(const Plan& p, const Applied& a, bool check_mems);

// A command run on a remote machine: argv (never a shell line), its exit status and output.
struct RemoteOutput {
  int rc = 0;
  std::string out;
  std::string err;
};
using RemoteRun = std::function<Result<RemoteOutput>(const std::vector<std::string>& argv)>;

// A device's topology through `run`: lstopo's XML, or, on a device without hwloc, a flat
// synthetic topology from /sys (online CPUs as single-PU cores over the online NUMA nodes),
// labelled so and warned about on `reporter`. failure with an install hint when neither works.
Result<TopologySource> remote_topology(const RemoteRun& run, const std::string& device,
                                       Reporter& reporter);

// The argv that pins a container: sudo -n podman update --cpuset-cpus L --cpuset-mems M NAME.
std::vector<std::string> podman_update_argv(const Plan& p, const std::string& container);
// Pins a running podman container through `run` and reads back `podman inspect`; failure if the
// runtime refused or applied something else. Returns {container, cpuset, memory_nodes, applied}.
Result<nlohmann::json> pin_container(const Plan& p, const std::string& container,
                                     const RemoteRun& run);

// The A/B harness: runs argv `runs` times unpinned and `runs` times pinned, interleaved
// (ABBA order), output discarded; failure if a run exits non-zero. Returns medians, p95,
// speedup with a bootstrap 95% interval, and every sample.
struct BenchRequest {
  std::vector<std::string> argv;
  int runs = 10;
  int warmup = 1;
  IndexSet baseline_cpus;  // the unpinned run's affinity (usually everything allowed)
  Plan pinned;
  bool membind = false;
};
Result<nlohmann::json> bench(const BenchRequest& req, Reporter& reporter);
// The table of a bench result (rows unpinned and pinned: cpuset, median_s, p95_s, as text)
// and its footer line (the speedup with its 95% interval).
nlohmann::json bench_rows(const nlohmann::json& result, const Plan& p);
std::string bench_footer(const nlohmann::json& result, int runs);

// Statistics helpers (exposed for tests).
double median(std::vector<double> v);
double percentile(std::vector<double> v, double p);  // nearest-rank, p in [0,100]

}  // namespace gedge::topo
