// What `gedge tune` does with a registered device: its topology (recorded or fetched over SSH),
// the pins gedge recorded on it, and pinning one of its containers (applied, verified, recorded).
// Part of the svc module (it needs topo, ssh and the inventory); cli/tune*.cpp only binds flags.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/inventory.hpp"
#include "gedge/paths.hpp"
#include "gedge/report.hpp"
#include "gedge/topo.hpp"

namespace gedge::svc {

// Where a topology comes from: a file or buffer (`topology`), a registered device (its topology
// recorded at `device add`, or fetched over SSH when `live` or none is recorded), else this
// machine.
struct TopologySourceRequest {
  std::string topology;
  std::string device;
  bool live = false;
  double timeout_s = 30;
};
Result<topo::Topology> load_topology(Inventory& inv, const Paths& paths,
                                     const TopologySourceRequest& req, Reporter& rep);

// The CPUs gedge recorded as pinned on `device`, by owner, except `skip_owner` (being re-pinned):
// what a new plan on that device avoids.
Result<std::vector<std::pair<std::string, topo::IndexSet>>> recorded_pins(
    Inventory& inv, const std::string& device, const std::string& skip_owner = "");

// Pins `container` on `device` to plan `p` (podman update, read back and verified through
// `remote`), then records the pin (one transaction) so later plans on the device avoid it.
// Nothing is recorded when applying or verifying fails. Returns topo::pin_container's report.
Result<nlohmann::json> pin_and_record(Inventory& inv, const std::string& device,
                                      const std::string& container, const topo::Plan& p,
                                      const topo::RemoteRun& remote);
// The same over a new SSH session to the registered device.
Result<nlohmann::json> pin_device_container(Inventory& inv, const Paths& paths, double timeout_s,
                                            const std::string& device, const std::string& container,
                                            const topo::Plan& p);

}  // namespace gedge::svc
