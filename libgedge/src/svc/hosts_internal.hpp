// The container-host back end's parts, shared by its files: the podman client over SSH
// (hosts_podman.cpp), the objects a replica needs besides its containers (hosts_objects.cpp),
// readiness (hosts_ready.cpp), planning (hosts_plan.cpp), converging replicas (hosts.cpp) and
// status, logs and removal (hosts_status.cpp).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deploy_internal.hpp"
#include "gedge/ssh.hpp"

namespace gedge::svc::detail::hosts {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

inline constexpr const char* kOldSuffix = "-gedge-old";

struct Ctr {
  std::string name;
  std::string service;
  int replica = -1;
  std::string hash;
  std::string state;  // running | exited | created | ...
  std::string image;
  json ports = json::array();  // podman's [{host_port, container_port, protocol}]
};

struct Device {
  std::string name;
  SshTarget target;
  std::unique_ptr<SshSession> session;
  std::optional<Error> down;  // could not connect
  std::vector<Ctr> managed;   // every gedge-managed container on it
  json facts;
  int assigned = 0;  // replicas given to it in this run
};

// One connection per device for the whole run.
class Fleet {
 public:
  Fleet(Inventory& inv, const Paths& paths, double timeout_s)
      : inv_(inv), paths_(paths), timeout_s_(timeout_s) {}

  Result<Device*> get(const std::string& name);

 private:
  Inventory& inv_;
  const Paths& paths_;
  double timeout_s_;
  std::map<std::string, Device> devs_;
};

// hosts_podman.cpp: the podman client.
std::string trim(std::string s);
// The non-empty lines of a command's output.
std::vector<std::string> split_lines(const std::string& text);
std::string last_lines(const std::string& text, int n);
Result<ExecResult> podman(Device& d, std::vector<std::string> args);
// podman failed: a message naming the device and the command's last stderr lines.
Error podman_error(const Device& d, const std::string& what, const ExecResult& r);
// Reads every gedge-managed container on the device.
Result<void> refresh(Device& d);
// Containers of replica `r` of service `svc` on the device (canonical names, not the -old ones).
std::vector<Ctr> replica_ctrs(const Device& d, const std::string& svc, int r, bool old = false);
Result<void> remove_ctrs(Device& d, const std::vector<std::string>& names);

// hosts_ready.cpp: readiness.
Result<std::string> container_state(Device& d, const std::string& name);
bool has_tcp_ports(const Service& s);
std::vector<int> tcp_host_ports(const Service& s);
// One TCP connect with a short timeout from this machine to `host`: an IPv4 or IPv6 address
// (bare or in brackets) or a name, each address it resolves to tried in turn.
bool port_answers(const std::string& host, int port);
// Waits until every container runs (and still runs a second later) and every TCP host port
// answers from here. failure with the container's last log lines when it exits.
Result<void> wait_up(Device& d, const std::vector<std::string>& names,
                     const std::vector<int>& ports, Clock::time_point deadline);

// hosts_plan.cpp: planning.
struct Action {
  int replica = 0;
  std::string device;
  std::string action;  // create | start | replace | unchanged | remove | move
  std::string from;    // move: the device it leaves
  bool from_placement = false;
};

struct Plan {
  Unit* unit = nullptr;
  std::string hash;
  json host_plan;                    // render_host_plan
  std::vector<std::string> members;  // the cluster's, sorted (each one's block of a network)
  std::vector<Action> actions;
  struct Removal {
    std::string device;
    std::vector<std::string> names;
    int replica =
        -1;  // >= 0: a stale copy of a wanted replica (removed only if that replica converged)
  };
  std::vector<Removal> removals;
  std::optional<Error> error;  // planning failed for this service
};

// The cpuset for a pinned replica: `cores` CPUs of the device not pinned to anything else,
// highest first (CPU 0 stays with the system). conflict when the device has too few.
Result<std::string> plan_cpuset(Inventory& inv, const Device& d, const std::string& owner,
                                int cores);
// Reads the state of every member and decides, per replica, where it goes and what changes.
Result<Plan> plan_unit(Inventory& inv, Fleet& fleet, const ClusterInfo& cl, Unit& u);
// The podman argv of container `ci` of a replica on device `d`: the plan's, with the cpuset and
// the env values only the device knows (deviceEnv: spec.nodeName, status.hostIP).
Result<std::vector<std::string>> argv_for(const Plan& p, int replica, std::size_t ci,
                                          const std::string& cpuset, const Device& d);
std::vector<std::string> names_for(const Plan& p, int replica);

// hosts_objects.cpp: files, podman secrets and volumes on the device.
// The unit's ConfigMap/Secret files on the device: each set's directory is written once (its
// name carries the contents' digest) into a temporary directory, then renamed into place. Every
// step is an argv under sudo; the contents go on stdin, never on a command line.
Result<void> ensure_files(Device& d, const Unit& u);
// podman secrets gedge made for service `svc` (gedge-SVC-DIGEST, 16 hex digits): only those
// are ever removed (another service's name may extend this one's: "web" and "web-api").
bool service_secret(const std::string& name, const std::string& svc);
// The unit's podman secrets on the device: created once (the name carries the value's digest)
// with `podman secret create NAME -`, the value on stdin, never on a command line.
Result<void> ensure_secrets(Device& d, const Unit& u);
// The service's gedge-made podman secrets on the device other than `keep` (all when empty).
Result<void> remove_secrets(Device& d, const std::string& svc,
                            const std::vector<PodmanSecret>& keep);
// The plan's podman volumes (NFS exports) on the device, created once with gedge's label; the
// name carries a digest of server, path and access mode, so an existing one is the same.
Result<void> ensure_volumes(Device& d, const Plan& p);
// The plan's podman networks (macvlan) on the device, created once with gedge's label and the
// device's own block of the subnet (member_ip_range: every member's podman assigns addresses on
// its own), recorded in the label gedge.ip-range. One with another block (the cluster's
// membership changed) is made again when no container uses it, else conflict.
Result<void> ensure_networks(Device& d, const Plan& p);
// After a replace: directories of earlier contents of this unit's volumes, no longer mounted.
void prune_files(Device& d, const Unit& u);

}  // namespace gedge::svc::detail::hosts
