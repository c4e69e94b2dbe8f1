#include "gedge/tune.hpp"

#include <fmt/format.h>

#include "gedge/ssh.hpp"
#include "gedge/stores.hpp"

namespace gedge::svc {

namespace {

Result<std::unique_ptr<SshSession>> connect(Inventory& inv, const Paths& paths,
                                            const std::string& device, double timeout_s) {
  GEDGE_TRY_ASSIGN(auto target, device_target(inv, paths, device));
  return SshSession::connect(target, default_ssh_options(paths, timeout_s));
}

topo::RemoteRun remote_of(SshSession& session) {
  return [&session](const std::vector<std::string>& argv) -> Result<topo::RemoteOutput> {
    GEDGE_TRY_ASSIGN(auto r, session.exec(argv));
    return topo::RemoteOutput{r.exit_code, r.out, r.err};
  };
}

}  // namespace

Result<topo::Topology> load_topology(Inventory& inv, const Paths& paths,
                                     const TopologySourceRequest& req, Reporter& rep) {
  if (!req.topology.empty() && !req.device.empty())
    return fail(ErrorCode::usage, "--topology and --device are exclusive");
  if (!req.topology.empty())
    return topo::Topology::load(topo::TopologySource::from_arg(req.topology));
  if (req.device.empty()) return topo::Topology::load({});
  GEDGE_TRY_ASSIGN(std::string xml, DeviceStore(inv).topology_xml(req.device));
  if (!req.live && !xml.empty())
    return topo::Topology::load(
        {topo::TopologySource::Kind::xml_buffer, xml, fmt::format("device {}", req.device)});
  rep.info(fmt::format("fetching the topology of '{}' over SSH", req.device));
  GEDGE_TRY_ASSIGN(auto session, connect(inv, paths, req.device, req.timeout_s));
  GEDGE_TRY_ASSIGN(auto fetched, topo::remote_topology(remote_of(*session), req.device, rep));
  return topo::Topology::load(std::move(fetched));
}

Result<std::vector<std::pair<std::string, topo::IndexSet>>> recorded_pins(
    Inventory& inv, const std::string& device, const std::string& skip_owner) {
  std::vector<std::pair<std::string, topo::IndexSet>> out;
  if (device.empty()) return out;
  GEDGE_TRY_ASSIGN(auto pins, PinStore(inv).on_device(device));
  for (const auto& pin : pins) {
    if (pin.owner == skip_owner) continue;
    if (auto set = topo::parse_list(pin.cpuset)) out.emplace_back(pin.owner, *set);
  }
  return out;
}

Result<nlohmann::json> pin_and_record(Inventory& inv, const std::string& device,
                                      const std::string& container, const topo::Plan& p,
                                      const topo::RemoteRun& remote) {
  GEDGE_TRY_ASSIGN(auto res, topo::pin_container(p, container, remote));
  GEDGE_TRY(PinStore(inv).put(
      {device, container, topo::format_list(p.cpus), topo::format_list(p.memory_nodes)}));
  log_line("info",
           fmt::format("tune pin device={} container={} cpuset={} mems={}", device, container,
                       topo::format_list(p.cpus), topo::format_list(p.memory_nodes)));
  return res;
}

Result<nlohmann::json> pin_device_container(Inventory& inv, const Paths& paths, double timeout_s,
                                            const std::string& device, const std::string& container,
                                            const topo::Plan& p) {
  GEDGE_TRY_ASSIGN(auto session, connect(inv, paths, device, timeout_s));
  return pin_and_record(inv, device, container, p, remote_of(*session));
}

}  // namespace gedge::svc
