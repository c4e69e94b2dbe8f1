// Typed stores over the inventory (issue 12 item 2): each table's queries live in one place,
// libgedge/src/inventory/, and every write runs in one transaction (Inventory::write; a store
// used inside a caller's write joins that transaction). Other modules and the cli call these
// instead of writing SQL.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
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
  // Records a pin, replacing the owner's earlier one on that device (created_at: now). An empty
  // `mems` keeps the memory nodes recorded before.
  Result<void> put(const Pin& pin);
  // Forgets one pin; true when there was one.
  Result<bool> remove(const std::string& device, const std::string& owner);

 private:
  Inventory& inv_;
};

// Registered devices (table devices). Only what callers outside the ssh module need so far.
class DeviceStore {
 public:
  explicit DeviceStore(Inventory& inv) : inv_(inv) {}
  // The stored hwloc topology XML of a device ("" when none was recorded); not_found when the
  // device is not registered.
  Result<std::string> topology_xml(const std::string& name);
  // Every device: its name, its host and status.
  Result<std::vector<Completion>> completions();

 private:
  Inventory& inv_;
};

// Clusters (tables clusters, cluster_members).
class ClusterStore {
 public:
  explicit ClusterStore(Inventory& inv) : inv_(inv) {}
  Result<bool> exists(const std::string& name);
  // Every cluster: its name and kind.
  Result<std::vector<Completion>> completions();

 private:
  Inventory& inv_;
};

// Deployed services (table services).
class ServiceStore {
 public:
  explicit ServiceStore(Inventory& inv) : inv_(inv) {}
  // Whether a service NAME is recorded, on `cluster` or ("") on any cluster.
  Result<bool> exists(const std::string& name, const std::string& cluster);
  // Every service name and its cluster.
  Result<std::vector<Completion>> completions();

 private:
  Inventory& inv_;
};

// Packed runtimes (tables runtimes, runtime_pushes).
class RuntimeStore {
 public:
  explicit RuntimeStore(Inventory& inv) : inv_(inv) {}
  // Every runtime name (with its newest id) and every id's 12-character prefix (name, created).
  Result<std::vector<Completion>> completions();

 private:
  Inventory& inv_;
};

// The scheduler's durable request queue (table sched_requests).
class RequestQueue {
 public:
  explicit RequestQueue(Inventory& inv) : inv_(inv) {}
  // Requests not finished yet (enqueued, dispatched, scheduling): id and state.
  Result<std::vector<Completion>> completions();

 private:
  Inventory& inv_;
};

}  // namespace gedge
