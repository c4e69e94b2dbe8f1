// Internals shared by the device registry files (not public API).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gedge/device.hpp"

namespace gedge::detail {

// A TEXT column holding JSON, parsed; `fallback` when NULL or invalid.
nlohmann::json parse_json_text(const nlohmann::json& v, nlohmann::json fallback);
// One devices row as the public device object (`device ls -o json` element); the rvalue form
// moves the row's values instead of copying them.
nlohmann::json device_json(const SqlRow& r);
nlohmann::json device_json(SqlRow&& r);
// The devices row for `name`; not_found (exit 4) when unknown.
Result<SqlRow> load_device(Inventory& inv, std::string_view name);
SshTarget target_of(const SqlRow& r);
// select_devices' devices as rows (every column), in its order, from one query: not one per
// device.
Result<std::vector<SqlRow>> select_device_rows(Inventory& inv, const DeviceSelector& sel);
// The HostKeyAlias a device's ProxyJump hop is pinned under: "<device>/jump" ('/' is not
// allowed in device names, so it never collides with a device).
std::string jump_alias(std::string_view device);
// The HostKeyAlias of hop `index` (outermost first) of a chain of `count`: the last hop, the one
// that reaches the device, is "<device>/jump"; the hops before it "<device>/jump-1", "-2", ...
std::string jump_alias(std::string_view device, std::size_t index, std::size_t count);
// The chain's last hop with the hops before it as its via, every alias set for `device`.
JumpHost jump_chain(std::vector<JumpHost> hops, std::string_view device);
// "host:port,host:port" of every hop, outermost first; "" when reached directly. An address is
// one machine only behind one chain: pins and rekeys compare these.
std::string chain_key(const std::optional<JumpHost>& jump);
// The same from a stored proxy_jump column (JSON text or null).
std::string chain_key_of(const nlohmann::json& proxy_jump_column);
// The stored proxy_jump JSON of a chain (the last hop, with "via": the hops before it).
nlohmann::json jump_record(const JumpHost& jump);
// The known_hosts marker older gedge versions wrote ("host" or "[host]:port").
std::string legacy_marker(const std::string& host, int port);
// 32 random bytes as hex (the device token).
std::string random_token();

// The public `facts` object from the stored facts text: the well-known facts first (null or []
// when missing), then whatever else the facts script reported.
nlohmann::json facts_object(nlohmann::json facts);
// The public `proxy_jump` object (no identity or public key) from the stored JSON, null if none:
// the hop that reaches the device, and in "via" the hops before it, outermost first.
nlohmann::json jump_object(nlohmann::json j);
// Removes the legacy [host]:port known_hosts line once no device is registered at the address
// (device.cpp).
Result<void> release_known_host(Inventory& inv, const Paths& paths, const SshTarget& at);

// The resolved connection record for --host: `ssh -G` (HostName, Port, User, IdentityFile,
// IdentityAgent, ProxyJump with the jump resolved the same way). Flags win over --host's
// user@/:port, which win over the ssh config.
struct Resolved {
  SshTarget target;   // no host key yet
  std::string alias;  // --host's host part when ssh config renamed it
};

// device add's resolution of --host, and the trust decisions (device_add_trust.cpp).
Result<Resolved> resolve_target(const DeviceAddRequest& req);
Result<std::optional<std::string>> trust_from_known_hosts(
    const std::vector<std::string>& files, const SshTarget& t, const std::string& alias,
    const HostKey& presented, const std::string& who, const SshOptions& opts);
// Pins every hop of target.jump in order, each probed through the hops before it.
Result<void> pin_jump_keys(Inventory& inv, SshTarget& target, const std::optional<SqlRow>& existing,
                           const SshOptions& opts, const DeviceAddRequest& req, Reporter& rep);

}  // namespace gedge::detail
