// device rm and rekey (both move known_hosts pins).
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "device_detail.hpp"
#include "gedge/device.hpp"
#include "gedge/keys.hpp"
#include "gedge/known_hosts.hpp"
#include "gedge/openssh.hpp"
#include "gedge/stores.hpp"

namespace gedge {

using namespace detail;

Result<nlohmann::json> device_remove(Inventory& inv, const Paths& paths, std::string_view name,
                                     bool force) {
  nlohmann::json removed;
  GEDGE_TRY(inv.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY_ASSIGN(auto row, load_device(db, name));
    GEDGE_TRY_ASSIGN(auto clusters, ClusterStore(db).of_device(std::string(name)));
    if (!clusters.empty() && !force)
      return fail(ErrorCode::conflict,
                  fmt::format("device '{}' is a member of cluster '{}'", name, clusters.front()),
                  "remove it from the cluster first (gedge cluster leave), or pass --force");
    removed = device_json(row);
    GEDGE_TRY(DeviceStore(db).remove(std::string(name)));
    return {};
  }));
  SshTarget kh;
  kh.host = removed["host"].get<std::string>();
  kh.port = removed["port"].get<int>();
  GEDGE_TRY(known_hosts_update(paths.known_hosts, name, ""));
  std::vector<std::pair<std::string, std::string>> hop_lines = {{jump_alias(name), ""}};
  for (std::size_t i = 0; i < kMaxJumpHops; ++i)
    hop_lines.emplace_back(fmt::format("{}/jump-{}", name, i + 1), "");
  GEDGE_TRY(known_hosts_set(paths.known_hosts, hop_lines));
  GEDGE_TRY(release_known_host(inv, paths, kh));
  return removed;
}

Result<RekeyPlan> device_rekey_probe(Inventory& inv, const Paths& paths, std::string_view name,
                                     double timeout_s) {
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, name));
  auto t = target_of(row);
  RekeyPlan plan;
  plan.name = std::string(name);
  plan.old_key = t.host_key;
  GEDGE_TRY_ASSIGN(plan.new_key, probe_host_key(t, default_ssh_options(paths, timeout_s)));
  plan.changed = plan.new_key.fingerprint != plan.old_key.fingerprint;
  return plan;
}

Result<void> device_rekey_apply(Inventory& inv, const Paths& paths, const RekeyPlan& plan,
                                double timeout_s) {
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, plan.name));
  auto t = target_of(row);
  t.host_key = plan.new_key;
  // Prove the new key and our login before pinning it.
  GEDGE_TRY_ASSIGN(auto sess, SshSession::connect(t, default_ssh_options(paths, timeout_s)));
  sess.reset();
  std::string now = now_rfc3339();
  int port = row["port"].get<int>();
  const std::string chain = chain_key(t.jump);
  // This device as a hop of other devices' chains: its chain plus its own address.
  const std::string as_hop =
      (chain.empty() ? std::string() : chain + ",") + fmt::format("{}:{}", t.host, port);
  std::vector<std::string> moved;
  std::vector<std::pair<std::string, std::string>> jumped;  // (device, hop alias)
  GEDGE_TRY(inv.write([&](Inventory& db) -> Result<void> {
    moved = {plan.name};
    jumped.clear();
    // The pin belongs to the address (behind the same jump host, if any): every device
    // registered at it moves to the new key.
    DeviceStore devices(db);
    GEDGE_TRY_ASSIGN(auto same, devices.at_address(t.host, port));
    for (const auto& r : same)
      if (r["name"] != plan.name && chain_key_of(r["proxy_jump"]) == chain)
        moved.push_back(r["name"].get<std::string>());
    GEDGE_TRY(devices.rekey(moved, plan.new_key.type, plan.new_key.fingerprint, now));
    // Devices reached through this address (a hop of their ProxyJump chain, behind the same
    // hops as this device) pinned its key as <device>/jump or <device>/jump-N when they were
    // added: those pins move with it.
    GEDGE_TRY_ASSIGN(auto behind, devices.behind_jumps());
    for (const auto& r : behind) {
      std::string n = r["name"].get<std::string>();
      auto dt = target_of(r);
      if (!dt.jump) continue;
      auto hops = jump_hops(*dt.jump);
      bool hit = false;
      for (std::size_t i = 0; i < hops.size(); ++i) {
        std::vector<JumpHost> upto(hops.begin(), hops.begin() + static_cast<long>(i) + 1);
        if (chain_key(jump_chain(upto, n)) != as_hop) continue;
        hops[i].host_key = plan.new_key;
        jumped.emplace_back(n, hops[i].alias);
        hit = true;
      }
      if (!hit) continue;
      GEDGE_TRY(devices.set_proxy_jump(n, jump_record(jump_chain(hops, n)).dump(), now));
    }
    return {};
  }));
  for (const auto& n : moved)
    GEDGE_TRY(known_hosts_update(paths.known_hosts, n, plan.new_key.public_key,
                                 legacy_marker(t.host, port)));
  std::vector<std::pair<std::string, std::string>> jump_lines;
  for (const auto& [n, alias] : jumped) jump_lines.emplace_back(alias, plan.new_key.public_key);
  GEDGE_TRY(known_hosts_set(paths.known_hosts, jump_lines));
  return {};
}

}  // namespace gedge
