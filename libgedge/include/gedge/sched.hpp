// gedge sched: where services and pipeline stages run across clusters and nodes.
//
// The placement core is pure: a World (clusters, nodes, capacity, latency and bandwidth links)
// and a Workload (stages with requests, compute times, payloads) go in, a Placement comes out.
// Same input, same output, byte for byte; every tie breaks by name. The request queue and the
// inventory-backed world live at the bottom of this header (they touch SQLite).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/manifest.hpp"

namespace gedge {
class Inventory;
}

namespace gedge::sched {

// ---------------------------------------------------------------------------------------------
// The world

struct Resources {
  double cpu = 0;     // cores
  double memory = 0;  // bytes
  double gpu = 0;     // devices
};

struct Taint {
  std::string key, value, effect;  // effect NoSchedule | PreferNoSchedule | NoExecute
};

struct Node {
  std::string name;
  bool ready = true;
  std::map<std::string, std::string> labels;
  std::vector<Taint> taints;  // NoSchedule/NoExecute ones keep out stages that do not tolerate them
  Resources capacity;
  Resources allocated;  // running/pending work only
};

struct Cluster {
  std::string name;
  std::string tier;  // local | neighbor | cloud | "" (unknown)
  std::vector<Node> nodes;
};

// A symmetric link between two endpoints: a device, a cluster (all its nodes) or "cluster/node".
struct Link {
  std::string a, b;
  double value = 0;  // ms for latency, Mbit/s for bandwidth
};

struct LinkTable {
  std::optional<double> intra_cluster;  // between two nodes of one cluster
  std::vector<Link> links;
  std::unordered_map<std::string, double> index;  // "a\x1fb" both ways; built by finalize()
};

struct World {
  std::vector<Cluster> clusters;     // sorted by name after load; nodes sorted by name
  std::vector<std::string> devices;  // registered devices (the inventory's world): valid sources
  LinkTable latency;
  std::optional<LinkTable> bandwidth;  // absent: transfer time is not modelled (0)

  // Derived by finalize() (caches for the optimiser; never read from input):
  std::vector<double> cluster_latency;    // C x C; diagonal = intra_cluster; NaN = no link
  std::vector<double> cluster_bandwidth;  // C x C Mbit/s; 0 = no link
  std::unordered_map<std::string, char> node_endpoints;  // "c/n" named by any link (2: with
                                                         // a cluster or node at the other end)
};

// Sorts clusters and nodes by name and indexes the links. parse_state and
// world_from_inventory call it; call it after building a World by hand.
void finalize(World& w);

// Parses --state FILE contents (schemas/sched-state.schema.json). Strict: unknown fields,
// negative or non-finite or absurd (> 1e12) numbers, duplicate names, links naming unknown
// clusters/nodes are usage errors whose message names the JSON path.
Result<World> parse_state(std::string_view json_text, std::string_view origin = "state");

// Latency in ms between two endpoints (device, cluster, or cluster/node), most specific link
// first; same node = 0; two nodes of one cluster = intra_cluster. nullopt when no link says.
std::optional<double> latency_ms(const World& w, std::string_view from, std::string_view to);
// Bandwidth in Mbit/s between two nodes ("c/n"); nullopt when no link says.
std::optional<double> bandwidth_mbps(const World& w, std::string_view from, std::string_view to);

// Quantities (Kubernetes' grammar, gedge/quantity.hpp): cpu "500m" | "2" | 2.5; memory "512Mi" |
// "1.5Gi" | "1e9" | bytes. usage on garbage, negative or out-of-range amounts.
Result<double> parse_cpu(const nlohmann::json& v);
Result<double> parse_memory(const nlohmann::json& v);

// ---------------------------------------------------------------------------------------------
// What to place

struct Stage {
  std::string name;
  Resources request;                     // on its node: all its replicas (they are placed together)
  int replicas = 1;                      // Kubernetes workloads: replicas / parallelism
  std::optional<double> compute_ms;      // plain number
  std::optional<double> compute_gpu_ms;  // {gpu: X, cpu: Y} form
  std::optional<double> compute_cpu_ms;
  double output_mb = 0;            // sent to the next stage(s)
  std::vector<std::string> after;  // predecessors (empty: previous stage in file order)
  std::map<std::string, std::string> node_selector;
  std::vector<std::vector<manifest::Requirement>> affinity;  // required node affinity (any term)
  std::vector<manifest::Toleration> tolerations;
  std::string tier_hint;  // scheduleHint.preferred (soft: used when it can be met)
};

struct Workload {
  std::string kind;  // Pipeline | Service
  std::string name;
  std::string source;  // file's source: (may be empty)
  std::vector<Stage> stages;
  // Filled by resolve(): predecessor indices per stage and a topological order (ties: file order).
  std::vector<std::vector<int>> preds;
  std::vector<int> order;
  bool is_chain() const;  // every stage's only predecessor is the previous one
};

// Resolves `after` names (default: the previous stage) into preds/order. usage error for an
// unknown stage, a duplicate name or a cycle.
Result<void> resolve(Workload& wl);

// Loads the scheduling fields of a service or pipeline file (YAML). Other service fields are
// tolerated; wrong types in the scheduling fields, unknown `after` targets, cycles and
// duplicate stage names are usage errors naming the file and field.
Result<Workload> parse_workload(std::string_view yaml_text, std::string_view origin = "file");

// The workload of any input (gedge's format or Kubernetes manifests): each Kubernetes workload
// (Pod, Deployment, StatefulSet, DaemonSet, Job) is a stage demanding what kube-scheduler would
// (manifest::demand_of) times its replicas, in file order unless `gedge.io/after` says
// otherwise. An input without a workload is a usage error (exit 2), never a placement.
Result<Workload> workload_from(const manifest::Input& in);
// The same from stored text (a queued request): gedge's format or a manifest stream.
Result<Workload> workload_from_text(const std::string& text, const std::string& origin);

// GS-Scheduler's request as it applies to an input: the policy and cluster levels a workload's
// gschConfig env names (first workload carrying one); nullopt when none does.
struct GschRequest {
  std::string policy;    // gedge's policy name ("" when not given)
  std::string clusters;  // a list literal for parse_levels ("" when absent)
  std::string from;      // the source node
  std::string node;      // cluster/node (mode node)
};
Result<std::optional<GschRequest>> gsch_request(const manifest::Input& in);
// GS-Scheduler's request options (`sched place|submit --request FILE`, JSON): the v4 form
// {"priority": P, "option": {"mode": "default|fromnode|cluster|node", "parameters":
// {"source_node", "select_clusters", "select_cluster", "select_node"}}} and the flat form
// {"priority": P, "select_clusters": [...]}; `origin` names the file in messages.
Result<GschRequest> gs_request(const nlohmann::json& j, const std::string& origin);

// ---------------------------------------------------------------------------------------------
// Policies and placement

enum class Policy { low_latency, least_allocated, most_allocated, select_clusters, node, pipeline };
// gedge's names, and GS-Scheduler's as aliases: GLowLatencyPriority (low-latency),
// GMostRequestedPriority / GMostRequestPriority (least-allocated: what its code does),
// GSelectedCluster (select-clusters).
Result<Policy> parse_policy(std::string_view s);
std::string_view policy_name(Policy p);

// One level of --clusters: a plain string is a level of one cluster; a nested list is a level
// whose members are ranked by the secondary policy.
using Levels = std::vector<std::vector<std::string>>;
// A list of cluster names and nested lists, by a real parser (never evaluated): JSON
// '["c1", ["c2", "c3"], "c4"]', GS-Scheduler's Python literal "['c1', ['c2', 'c3'], 'c4']", or
// the bare form [c1,[c2,c3],c4]. Usage error on anything else.
Result<Levels> parse_levels(std::string_view text);

struct Weights {
  double cpu = 1, memory = 1, gpu = 200;  // GS MostRequest's score
};

struct Request {
  Policy policy = Policy::pipeline;
  std::string source;                 // --from (overrides the file's source)
  Levels levels;                      // --clusters
  Policy rank = Policy::low_latency;  // secondary policy for nested levels
  std::string node;                   // --node cluster/node
  Weights weights;
  bool explain = false;
  int top_k = 5;
  // Capacity-coupled pipelines: branch-and-bound expansions before settling for the best
  // feasible plan found (the result then says method "bnb-limited").
  int max_expansions = 4000;
  // Record every filtered (stage, node) in Placement::rejected (the summary needs them).
  bool record_rejections = true;
};

// The request as `sched place` and `sched submit` take it from flags, and as a queued request
// keeps it: one path from flags to a Request for both commands and for the queue.
struct RequestFlags {
  std::string policy = "pipeline";
  std::string rank = "low-latency";
  std::string from;      // the source ("" : the file's source:)
  std::string clusters;  // a list literal for parse_levels
  std::string node;      // CLUSTER/NODE (policy node)
  std::string weights;   // "cpu=1,memory=1,gpu=200" ("" : the defaults)
  bool explain = false;
  int top = 5;
};
// --weights: K=V items (cpu, memory, gpu), each finite and within 0..1e6; usage error naming
// the item otherwise.
Result<Weights> parse_weights(std::string_view s);
// The validated Request: policy, rank (one that can rank clusters), levels, node (only with and
// required by policy node; no levels with policy pipeline) and weights.
Result<Request> build_request(const RequestFlags& f);
// Fills what the flags left out from GS-Scheduler's request (--request FILE or a gschConfig):
// the policy unless `policy_given`, the clusters, source and node unless set.
void fill_from(RequestFlags& f, const GschRequest& g, bool policy_given);
// What a queued request keeps of the flags (SubmitRequest::options; weights as numbers), and the
// flags back from it (the queue builds the request with build_request, as place does).
Result<nlohmann::json> request_options(const RequestFlags& f);
RequestFlags flags_from_options(const nlohmann::json& o);
// The input of `sched place|submit` (gedge's format or Kubernetes manifests, manifest::load) and
// the flags it implies: GS-Scheduler's `request_file` (JSON, gs_request), else, unless
// `policy_given`, a workload's gschConfig env fills what the flags left out (fill_from).
Result<manifest::Input> load_input(const std::string& file, bool allow_unknown_kinds,
                                   const std::string& request_file, bool policy_given,
                                   RequestFlags& f);
// A --state file: a regular file of at most 16 MiB, parsed by parse_state.
Result<World> read_state(const std::string& path);

struct StageTerms {
  double compute_ms = 0;
  double link_ms = 0;      // from the source (first stage) or from the predecessor(s)
  double transfer_ms = 0;  // payload from the predecessor(s)
};

struct StagePlacement {
  std::string stage, cluster, node;
  bool gpu = false;  // runs its GPU variant / holds a GPU
  double score = 0;  // policy score (higher better) or, for pipeline, its E2E contribution
  StageTerms terms;
  nlohmann::json policy_terms = nlohmann::json::object();  // e.g. rtt_ms, cpu_pct, free_gpus
};

struct Rejection {
  std::string stage, cluster, node, reason;
};

struct Candidate {  // --explain: one feasible candidate and its terms
  std::string stage, cluster, node;
  double score = 0;
  nlohmann::json terms;
};

struct Placement {
  Policy policy = Policy::pipeline;
  std::string source;
  std::vector<StagePlacement> placements;
  std::optional<double> e2e_ms;  // the one cost model, for every policy
  std::string e2e_note;          // why e2e_ms is absent, if it is
  std::string method;            // pipeline: dp | bnb | bnb-limited | exhaustive | local-search
  std::vector<Rejection> rejected;
  std::vector<Candidate> candidates;  // filled with Request::explain
  std::string summary;                // "0/24 nodes: 12 insufficient gpu, ..." for a failed stage
};

// Places every stage of `wl` on `w` according to `req`. Errors: usage (missing --clusters,
// --node, a source for a latency policy, a missing link), not_found (unknown cluster/node in
// --clusters/--node), failure (fits nowhere: the message is the summary).
Result<Placement> place(const World& w, const Workload& wl, const Request& req);

// The request checks place() starts with, for `sched submit` too (nothing is queued that can
// never be placed): usage for a missing --clusters/--node/source, not_found for a cluster, node
// or --from source the world does not know.
Result<void> check_request(const World& w, const Workload& wl, const Request& req);

// End-to-end latency of an assignment under the cost model (longest path for DAGs).
// `gpu[i]` says whether stage i runs its GPU variant. usage error when a needed link is missing.
struct Assignment {
  std::vector<std::string> node;  // "cluster/node" per stage
  std::vector<bool> gpu;
};
Result<double> e2e_ms(const World& w, const Workload& wl, const std::string& source,
                      const Assignment& a, std::vector<StageTerms>* terms = nullptr);

// The optimum by exhaustive search over every (node, variant) per stage, capacity-checked.
// For tests and the benchmark; nullopt when nothing fits. Limit: product of candidates.
Result<std::optional<std::pair<Assignment, double>>> place_exhaustive(
    const World& w, const Workload& wl, const std::string& source,
    std::uint64_t max_combos = 5'000'000);

// Adds a placement's requests to the world's allocated capacity (online placement).
void commit(World& w, const Workload& wl, const Placement& p);

// The machine-readable shape of a placement (`sched place -o json`); with Request::explain it
// carries "explain" (explain_json).
nlohmann::json to_json(const Placement& p);

// --explain of a placement: per stage {stage, fit, total, rejected_by: [{reason, nodes}], summary
// (the "3/6 nodes fit stage 'x': ..." line), ranking: the feasible candidates in the policy's
// order, best first}.
nlohmann::json explain_json(const Placement& p);
// --explain when nothing fits: per stage every node with every failing filter (not only the
// first), {stage, fit, total, rejected_by, summary, nodes: [{cluster, node, fits, reasons}]}, each
// stage against the world's free capacity on its own.
nlohmann::json explain_unplaced(const World& w, const Workload& wl, const Request& req);
// The table's rendering of an explanation (explain_json or explain_unplaced): each stage's
// summary line and, up to `top` per stage, its ranked candidates with their terms.
std::string explain_text(const nlohmann::json& explain, int top);
// explain_unplaced's nodes as table rows: {stage, cluster, node, fits, reasons}.
nlohmann::json unplaced_rows(const nlohmann::json& unplaced);
// The one cluster `sched place --apply` deploys to: `wanted`, or the only one the placement
// (to_json) uses; usage error when its stages use two.
Result<std::string> apply_cluster(const nlohmann::json& placement, const std::string& wanted);
// Every filter node `n` fails for stage `s` under `alloc` (empty: it fits).
std::vector<std::string> all_reasons(const Stage& s, const Node& n, const Resources& alloc);

// ---------------------------------------------------------------------------------------------
// The durable request queue (SQLite table sched_requests). GS-Scheduler's lifecycle:
// enqueued -> dispatched -> scheduling -> completed | failed | canceled; a failed attempt is
// re-queued (front of the queue after more than 2 failures) until more than 5 failures.

inline constexpr int kFrontAfterFailures = 2;
inline constexpr int kFailForGoodAfter = 5;

struct QueueDecision {
  std::string state;  // "enqueued" (re-queued) or "failed"
  bool front = false;
};
// What happens to a request after its `attempts`-th failure (pure; the rule above).
QueueDecision after_failure(int attempts);
// A permanent error (the request or the world it names is wrong: usage, not_found) fails the
// request at once; only transient ones (nothing fits now, the world could not be read) are retried.
bool permanent_failure(ErrorCode code);
// Seconds a request waits after its `attempts`-th transient failure before a run takes it again:
// 30 s doubling per attempt, at most 10 min (across runs: cron's `sched run --once`).
int retry_backoff_s(int attempts);

struct SubmitRequest {
  std::string spec;        // the service/pipeline file text
  std::string origin;      // file name, for messages
  nlohmann::json options;  // policy, from, state, clusters, node, rank, weights
  int priority = 0;        // 0 normal, 1 high (front of the queue)
};

// Validates the spec and options (same checks as place), stores the request; returns its row.
Result<nlohmann::json> submit(Inventory& inv, const SubmitRequest& r);

// Claims the next due enqueued request atomically (BEGIN IMMEDIATE): enqueued -> dispatched.
// Skips `skip` (taken earlier in this run) and, unless `retry_now`, requests whose retry backoff
// has not passed at `now` (seconds since the epoch). nullopt when none is due.
Result<std::optional<nlohmann::json>> claim_next(Inventory& inv, const std::string& worker,
                                                 const std::set<std::int64_t>& skip = {},
                                                 std::int64_t now = 0, bool retry_now = false);

// The World for a queued request or a place call without --state: the inventory's clusters,
// members, facts, tiers, labels, RTTs and the services already placed.
Result<World> world_from_inventory(Inventory& inv);

struct RunOptions {
  bool once = false;       // process what is queued now, then stop (default behaviour too)
  int max = 0;             // at most N requests (0: no limit)
  std::string worker;      // claimed_by
  bool retry_now = false;  // take requests still waiting out their retry backoff too
  std::int64_t now = 0;    // seconds since the epoch for the backoff (0: the clock); tests set it
};
// A runner's identity, recorded with each claim (its lease): host name, boot id
// (/proc/sys/kernel/random/boot_id), PID and the process start time (/proc/PID/stat field 22),
// so a PID reused after the runner died is not taken for it.
nlohmann::json runner_identity();
// The start time of process PID ("" when it does not run).
std::string process_start(std::int64_t pid);
enum class RunnerLiveness { alive, dead, unknown };
// Whether the runner of a lease still runs: dead when this machine rebooted since or the PID is
// gone or reused; unknown for another host (or a label without an identity), which is never
// re-queued. `claimed_by` is consulted only for claims recorded before leases ("pid-N").
RunnerLiveness runner_liveness(const nlohmann::json& runner, const std::string& claimed_by);
// Re-queues (at the front) every dispatched or scheduling request whose runner is dead; returns
// their ids. `run_queue` does this first.
Result<std::vector<std::int64_t>> requeue_dead_claims(Inventory& inv);

// Processes queued requests: dispatched -> scheduling -> completed | failed (re-queued per
// after_failure, or failed at once for a permanent error). One run takes each request at most
// once, and a re-queued request only once its backoff has passed. Returns the rows processed.
Result<nlohmann::json> run_queue(Inventory& inv, const RunOptions& o);
// The error of a run whose rows (run_queue's) hold requests that failed for good: partial,
// counting them; nullopt when none did.
std::optional<Error> run_error(const nlohmann::json& rows);

// Rows, oldest first (optionally only one state).
Result<nlohmann::json> list_requests(Inventory& inv, const std::string& state);
// enqueued|dispatched -> canceled. not_found for an unknown id; conflict when already finished.
Result<nlohmann::json> cancel(Inventory& inv, int64_t id);

// Records measured RTTs (src device -> dst device, ms) in the inventory's rtts table.
Result<void> record_rtts(Inventory& inv, const std::string& src,
                         const std::vector<std::pair<std::string, double>>& rtts);

}  // namespace gedge::sched
