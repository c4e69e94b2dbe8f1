// Typed stores over the inventory (issue 12 item 2): each table's queries live in one place,
// libgedge/src/inventory/, and every write runs in one transaction (Inventory::write; a store
// used inside a caller's write joins that transaction). Other modules and the cli call these
// instead of writing SQL.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gedge/inventory.hpp"

namespace gedge {

// A name to complete on the command line and a few words about it.
struct Completion {
  std::string value;
  std::string description;
};

// What gedge pinned where (table pins): a container's or workload's CPUs on a device, written by
// `tune pin --container` and by `svc deploy` for pinned replicas.
struct Pin {
  std::string device;
  std::string owner;   // container name or workload
  std::string cpuset;  // a Linux CPU list, "2-5,8"
  std::string mems;    // memory nodes; "" when not recorded
};

class PinStore {
 public:
  explicit PinStore(Inventory& inv) : inv_(inv) {}
  // The pins on a device, by owner.
  Result<std::vector<Pin>> on_device(const std::string& device);
  // The pins on the devices that are members of `cluster`, by device and owner.
  Result<std::vector<Pin>> on_cluster(const std::string& cluster);
  // Records a pin, replacing the owner's earlier one on that device (created_at: now). An empty
  // `mems` keeps the memory nodes recorded before.
  Result<void> put(const Pin& pin);
  // Forgets one pin; true when there was one.
  Result<bool> remove(const std::string& device, const std::string& owner);

 private:
  Inventory& inv_;
};

// Which devices `device ls` and the fan-out verbs take: every condition must hold. A label
// matches a string value equal to it, a group a string element of the groups array; a column
// that is not valid JSON matches nothing.
struct DeviceFilter {
  std::string tier;  // "" = any
  std::vector<std::string> groups;
  std::vector<std::pair<std::string, std::string>> labels;
};

// One devices row as `device add` writes it; nullopt columns are NULL. The row's status is ok
// and `now` is its last_seen and updated_at (and created_at when inserted).
struct DeviceRecord {
  std::string name;
  std::string host;
  int64_t port = 22;
  std::string user;
  std::optional<std::string> identity;
  std::optional<std::string> tier;
  std::optional<std::string> site;
  std::string labels = "{}";  // JSON text
  std::string host_key_type;
  std::string host_key_fp;
  std::string token_hash;
  std::string facts = "{}";  // JSON text
  std::optional<std::string> topology_xml;
  double rtt_ms = 0;
  std::optional<std::string> alias;
  std::optional<std::string> certificate;
  std::optional<std::string> identity_agent;
  std::string auth;
  std::optional<std::string> proxy_jump;  // JSON text
  std::string groups = "[]";              // JSON text
  std::string now;
};

// A device recorded by `device import --no-connect`: status unknown, pinned when the key is
// known (host_key_type and host_key_fp both set or both nullopt).
struct ImportedDevice {
  std::string name;
  std::string host;
  int64_t port = 22;
  std::string user;
  std::optional<std::string> identity;
  std::string labels = "{}";  // JSON text
  std::string groups = "[]";  // JSON text
  std::optional<std::string> host_key_type;
  std::optional<std::string> host_key_fp;
  std::string now;
};

// What one `device check` found on a device. status ok: rtt_ms, facts and topology_xml are
// recorded with last_seen; token_mismatch: rtt_ms and last_seen; any other: the status alone.
struct DeviceCheck {
  std::string name;
  std::string status;
  double rtt_ms = 0;
  std::string facts;  // JSON text
  std::optional<std::string> topology_xml;
};

// A devices row read in place by DeviceStore::scan: a column's value as DeviceStore::row reads
// it, valid until the next value() call with a string column or the next row.
class DeviceRowView {
 public:
  virtual ~DeviceRowView() = default;
  // The column's index, -1 when the table has no such column.
  virtual int column(std::string_view name) const = 0;
  // null for -1.
  virtual const SqlRow& value(int column) = 0;
};

// Registered devices (table devices). Every write is one transaction (or part of the caller's).
class DeviceStore {
 public:
  explicit DeviceStore(Inventory& inv) : inv_(inv) {}
  // The facts gathered from a device (JSON text, "{}" before any were); nullopt when the device
  // is not registered.
  Result<std::optional<std::string>> facts(const std::string& name);
  // The rows (every column) of the devices registered at host:port, by name.
  Result<std::vector<SqlRow>> at_address(const std::string& host, int64_t port);
  // The rows (every column) of the devices reached through a ProxyJump, by name.
  Result<std::vector<SqlRow>> behind_jumps();
  // The first device by name other than `except` whose device token hashes to `token_hash`.
  Result<std::optional<std::string>> with_token(const std::string& token_hash,
                                                const std::string& except);
  // The rows (every column) of the devices `filter` takes, by name.
  Result<std::vector<SqlRow>> rows(const DeviceFilter& filter);
  // The rows (every column) of the registered devices among `names`, in one query; unordered.
  Result<std::vector<SqlRow>> rows_named(const std::vector<std::string>& names);
  // Calls `row` for each device `filter` takes, by name, without building the rows: for
  // `device ls -o json` at ten thousand devices. An exception from `row` ends the scan and
  // passes on.
  Result<void> scan(const DeviceFilter& filter, const std::function<void(DeviceRowView&)>& row);
  // Registers a device (device add).
  Result<void> insert(const DeviceRecord& d);
  // Rewrites a registered device's row (device add again, --force); created_at stays.
  Result<void> update(const DeviceRecord& d);
  // Registers a device without connecting (device import).
  Result<void> insert_imported(const ImportedDevice& d);
  // Sets a device's groups (JSON text) and updated_at.
  Result<void> set_groups(const std::string& name, const std::string& groups,
                          const std::string& now);
  // Pins a device's host key when it had none (import); updated_at stays.
  Result<void> pin_key(const std::string& name, const std::string& type,
                       const std::string& fingerprint);
  // Moves the devices to a new host key (rekey): status unknown until checked again.
  Result<void> rekey(const std::vector<std::string>& names, const std::string& type,
                     const std::string& fingerprint, const std::string& now);
  // Sets a device's proxy_jump (JSON text) and updated_at.
  Result<void> set_proxy_jump(const std::string& name, const std::string& proxy_jump,
                              const std::string& now);
  // Records what `device check` found, every device in one transaction.
  Result<void> record_checks(const std::vector<DeviceCheck>& checks, const std::string& now);
  // Records a `device exec` run: a device that ran the command (status ok or failed) was seen
  // at `now` and is ok; any other status is recorded as it is. One transaction.
  Result<void> record_exec(const std::vector<std::pair<std::string, std::string>>& statuses,
                           const std::string& now);
  // Forgets a device; false when there was none.
  Result<bool> remove(const std::string& name);
  // The stored hwloc topology XML of a device ("" when none was recorded); not_found when the
  // device is not registered.
  Result<std::string> topology_xml(const std::string& name);
  // The names of the devices `filter` takes (every device when empty), sorted.
  Result<std::vector<std::string>> names(const DeviceFilter& filter = {});
  // The device's row (every column), or nullopt.
  Result<std::optional<SqlRow>> row(const std::string& name);
  // Every device: its name, its host and status.
  Result<std::vector<Completion>> completions();

 private:
  Inventory& inv_;
};

struct ClusterSummary {
  std::string name;
  std::string kind;  // devices | kubernetes
  std::string tier;  // "" when not set
};

// A cluster member with its device's row: what the scheduler's world is built from.
struct MemberDevice {
  std::string cluster;
  std::string device;
  std::string member_state;  // the membership's state (pending, ready, failed, left, ...)
  std::string tier;          // the device's tier; "" when not set
  std::string labels;        // JSON text
  std::string facts;         // JSON text
  std::string status;        // the device's status
};

// One line of a device cluster's build journal (table build_journal).
struct JournalLine {
  std::string device;
  std::string step;
  std::string status;  // ok | changed | failed | unreachable
  std::string message;
};

// What `cluster build` and `join` record before the playbook runs.
struct BuildStart {
  std::string name;
  std::string profile;
  std::string server;  // "" when none
  std::string registry;
  bool monitoring = false;
  std::string prometheus;            // the Prometheus host; "" when none
  std::vector<std::string> devices;  // members, added as pending unless already members
  std::vector<JournalLine> failed;   // devices failed before the run: journalled and failed
};

// How a run ended for one device.
struct MemberOutcome {
  std::string device;
  std::string state;                   // ready | failed | unreachable
  std::string metrics_url;             // ready: the exporter's URL, "" when none
  std::optional<JournalLine> journal;  // a line to journal, if the run has not already
};

// Clusters (tables clusters, cluster_members).
class ClusterStore {
 public:
  explicit ClusterStore(Inventory& inv) : inv_(inv) {}
  Result<bool> exists(const std::string& name);
  // Every cluster, by name.
  Result<std::vector<ClusterSummary>> list();
  // Every member of every cluster with its device's row, by cluster and device.
  Result<std::vector<MemberDevice>> member_devices();
  // The devices that are a member of any cluster, sorted, each once.
  Result<std::vector<std::string>> member_names();
  // The clusters row (every column), or nullopt.
  Result<std::optional<SqlRow>> get(const std::string& name);
  // Every clusters row, by name.
  Result<std::vector<SqlRow>> rows();
  // A cluster's member rows (device, role, metrics_url, state) in join order.
  Result<std::vector<SqlRow>> members(const std::string& name);
  // The cluster other than `except` that `device` is a member of, if any.
  Result<std::optional<std::string>> other_cluster_of(const std::string& device,
                                                      const std::string& except);
  // Devices leave a cluster: their member rows and journal entries go and the cluster's
  // updated_at moves, in one transaction.
  Result<void> remove_members(const std::string& name, const std::vector<std::string>& devices);
  // Forgets a cluster, its members and its build journal, in one transaction.
  Result<void> remove(const std::string& name);
  // Records a registered Kubernetes cluster, or (`known`) its kubeconfig, context and server.
  Result<void> put_kubernetes(const std::string& name, const std::string& kubeconfig,
                              const std::string& context, const std::string& api_server,
                              bool known);
  // The clusters `device` is a member of, sorted.
  Result<std::vector<std::string>> of_device(const std::string& device);
  // Before a build's run, in one transaction: creates the cluster (building) or marks it
  // building with the new registry and monitoring, records its Prometheus host, adds the devices
  // as pending members (the server's role is server) and journals and fails `failed`.
  Result<void> begin_build(const BuildStart& b, const std::string& run_id);
  // After a build's run, in one transaction: each outcome's journal line and member state, the
  // cluster's state from all its members (ready when all are, failed when none is, else partial)
  // and, when given, its Kubernetes endpoint (kubeconfig path, API server URL). Returns the state.
  Result<std::string> finish_build(
      const std::string& name, const std::string& run_id,
      const std::vector<MemberOutcome>& outcomes,
      const std::optional<std::pair<std::string, std::string>>& endpoint);
  // Every cluster: its name and kind.
  Result<std::vector<Completion>> completions();

 private:
  Inventory& inv_;
};

// Device clusters' build journal (table build_journal).
class JournalStore {
 public:
  explicit JournalStore(Inventory& inv) : inv_(inv) {}
  // A cluster's journal rows (id, device, run_id, step, status, message, at), oldest first.
  Result<std::vector<SqlRow>> entries(const std::string& cluster);
  // Appends a line to a cluster's journal for run `run_id` (at: now).
  Result<void> append(const std::string& cluster, const std::string& run_id,
                      const JournalLine& line);

 private:
  Inventory& inv_;
};

// A deployed service's record; spec and placement are JSON text (placement nullopt when NULL).
struct ServiceRecord {
  std::string name;
  std::string cluster;
  std::string spec;
  std::optional<std::string> placement;
  std::string state;
  std::string namespace_ = "default";
  int64_t replicas = 0;    // 0 when not recorded
  std::string updated_at;  // set by put
};

// Deployed services (table services).
class ServiceStore {
 public:
  explicit ServiceStore(Inventory& inv) : inv_(inv) {}
  // Whether a service NAME is recorded, on `cluster` or ("") on any cluster.
  Result<bool> exists(const std::string& name, const std::string& cluster);
  // Every service record.
  Result<std::vector<ServiceRecord>> all();
  // The records of service `name` on `cluster` or ("") on every cluster, by cluster.
  Result<std::vector<ServiceRecord>> find(const std::string& name, const std::string& cluster);
  // The records on `cluster` or ("") on every cluster, by cluster and name.
  Result<std::vector<ServiceRecord>> list(const std::string& cluster);
  // Records a deployed service, replacing its record on that cluster (created_at kept,
  // updated_at now).
  Result<void> put(const ServiceRecord& rec);
  // Sets a record's state (updated_at now); false when there is no such record.
  Result<bool> set_state(const std::string& name, const std::string& cluster,
                         const std::string& state);
  // Forgets a record; false when there was none.
  Result<bool> remove(const std::string& name, const std::string& cluster);
  // Every service name and its cluster.
  Result<std::vector<Completion>> completions();

 private:
  Inventory& inv_;
};

// A packed runtime bundle's record; manifest is JSON text ("" where a method says so).
struct RuntimeRecord {
  std::string id;
  std::string name;
  std::string manifest;
  std::string created_at;
};

// Where a bundle was pushed: a device or cluster target and its root there.
struct RuntimePush {
  std::string target;
  std::string root;
  std::string pushed_at;
};

// Packed runtimes (tables runtimes, runtime_pushes). Newest first: by created_at, then the
// later recorded.
class RuntimeStore {
 public:
  explicit RuntimeStore(Inventory& inv) : inv_(inv) {}
  Result<bool> exists(const std::string& id);
  // Records a packed bundle unless its id is recorded; true when it was new. One transaction.
  Result<bool> add(const RuntimeRecord& r, int64_t files, int64_t bytes);
  Result<std::optional<RuntimeRecord>> get(const std::string& id);
  // The bundles whose id starts with `prefix`, at most `limit`.
  Result<std::vector<RuntimeRecord>> with_prefix(const std::string& prefix, int64_t limit);
  // The newest bundle named `name`.
  Result<std::optional<RuntimeRecord>> newest(const std::string& name);
  // The bundles named `name`, newest first, without their manifests.
  Result<std::vector<RuntimeRecord>> named(const std::string& name);
  // Every bundle, newest first.
  Result<std::vector<RuntimeRecord>> all();
  // Forgets bundles and their pushes, in one transaction.
  Result<void> remove(const std::set<std::string>& ids);
  // Records (or moves) a bundle's push to `target`.
  Result<void> record_push(const std::string& id, const RuntimePush& push);
  // A bundle's pushes, by target.
  Result<std::vector<RuntimePush>> pushes(const std::string& id);
  // Every runtime name (with its newest id) and every id's 12-character prefix (name, created).
  Result<std::vector<Completion>> completions();

 private:
  Inventory& inv_;
};

// A round-trip time measured from one device to another (table rtts).
struct Rtt {
  std::string src;
  std::string dst;
  double ms = 0;
};

class RttStore {
 public:
  explicit RttStore(Inventory& inv) : inv_(inv) {}
  // Records the RTTs measured from `src`, replacing earlier ones, in one transaction.
  Result<void> record(const std::string& src,
                      const std::vector<std::pair<std::string, double>>& rtts);
  // Every measurement, by src and dst.
  Result<std::vector<Rtt>> all();

 private:
  Inventory& inv_;
};

// One row of the scheduler's request queue (table sched_requests). options, placements and
// runner hold JSON text; the optional columns are nullopt when NULL.
struct QueuedRequest {
  int64_t id = 0;
  std::string state;  // enqueued | dispatched | scheduling | completed | failed | canceled
  int64_t priority = 0;
  std::string policy;
  std::string spec;
  std::string options;
  int64_t attempts = 0;
  std::optional<std::string> placements;
  std::optional<std::string> error;
  std::optional<std::string> claimed_by;
  std::optional<std::string> claimed_at;
  std::optional<std::string> runner;
  double queue_pos = 0;
  int64_t not_before = 0;  // seconds since the epoch before which a run does not take it
  std::string created_at;
  std::string updated_at;
};

// The scheduler's durable request queue. Each call is one transaction (or part of the caller's).
class RequestQueue {
 public:
  explicit RequestQueue(Inventory& inv) : inv_(inv) {}
  // Appends an enqueued request, at the front of the queue when `front`; returns its id.
  Result<int64_t> enqueue(int64_t priority, const std::string& policy, const std::string& spec,
                          const std::string& options, bool front);
  // not_found (hint: sched ls) for an unknown id.
  Result<QueuedRequest> get(int64_t id);
  // Every request by id, or those in one state.
  Result<std::vector<QueuedRequest>> list(const std::string& state = "");
  // The first enqueued request in queue order not in `skip` whose not_before has passed at `now`
  // (any, when now is nullopt); one indexed query that stops at the first due row.
  Result<std::optional<int64_t>> next_due(const std::set<int64_t>& skip,
                                          std::optional<int64_t> now);
  // enqueued -> dispatched under a lease (worker, runner JSON); false when no longer enqueued.
  Result<bool> claim(int64_t id, const std::string& worker, const std::string& runner);
  // dispatched -> scheduling while the lease is still this worker's and runner's.
  Result<bool> start(int64_t id, const std::string& worker, const std::string& runner);
  // -> completed with the placements (JSON text).
  Result<void> complete(int64_t id, const std::string& placements);
  // A failed attempt back in the queue (front or back), not taken before `not_before`; the lease
  // is dropped. Only while the request is claimed (dispatched or scheduling): false otherwise.
  Result<bool> requeue(int64_t id, int64_t attempts, const std::string& error, bool front,
                       int64_t not_before);
  // -> failed for good after `attempts`; the lease is dropped.
  Result<void> fail(int64_t id, int64_t attempts, const std::string& error);
  // -> canceled.
  Result<void> cancel(int64_t id);
  // Requests not finished yet (enqueued, dispatched, scheduling): id and state.
  Result<std::vector<Completion>> completions();

 private:
  Result<double> position(bool front);
  Inventory& inv_;
};

}  // namespace gedge
