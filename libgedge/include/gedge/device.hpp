// The device registry: registering, listing, checking and commanding edge devices over SSH.
// Every inventory write runs in one transaction; remote work goes through the ssh fan-out.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gedge/digest.hpp"
#include "gedge/error.hpp"
#include "gedge/inventory.hpp"
#include "gedge/paths.hpp"
#include "gedge/report.hpp"
#include "gedge/ssh.hpp"

namespace gedge {

// Where the device token lives on the device, relative to the login user's home.
inline constexpr const char* kDeviceTokenPath = ".config/gedge/device-token";

struct DeviceAddRequest {
  std::string name;
  std::string host;  // HOST, USER@HOST, HOST:PORT, USER@HOST:PORT; HOST may be an ssh config alias
  int port = 0;      // 0: from --host, the ssh config, or 22
  std::string user;  // empty: from --host, the ssh config, or the local user
  std::string ssh_config;  // ssh config file for `ssh -G` (empty: OpenSSH's default, ~/.ssh/config)
  std::string identity;    // private key file
  std::map<std::string, std::string> labels;
  std::optional<std::vector<std::string>> groups;  // Ansible groups (device import); nullopt: keep
  std::string tier;                                // local | neighbor | cloud | "" (unset)
  std::string site;
  std::string host_key;  // "SHA256:..." to accept on first contact
  std::vector<std::string>
      known_hosts_files;    // --known-hosts: a matching line pins the key; another key is refused
  bool accept_new = false;  // trust on first use
  std::function<bool(const HostKey&)> confirm_new_key;  // TTY prompt (CLI)
  std::optional<std::string> password;  // bootstrap: install gedge's key with this password once
  bool force = false;
  double timeout_s = 30;
};

struct DeviceAddResult {
  nlohmann::json device;      // the device object (same shape as one `device ls -o json` element)
  bool changed = false;       // false: re-add of an identical registration
  bool bootstrapped = false;  // gedge's key was installed with the password
  bool token_issued = false;  // a new device token was written to the device
};

// Registers (or re-verifies) a device. --host is resolved once with `ssh -G` (HostName, Port,
// User, IdentityFile, ProxyJump, IdentityAgent) and the resolved values are stored, so later
// commands need no ssh config. A ProxyJump hop's host key is pinned too: it must match a
// registered device at that address, or be accepted like the device's (--accept-new, prompt).
// Errors: usage (bad name/tier/host key), host_key (unknown
// key without policy, or a changed key), auth, unreachable, conflict (different registration
// under the same name, or the machine already registered under another name; --force overrides).
Result<DeviceAddResult> device_add(Inventory& inv, const Paths& paths, const DeviceAddRequest& req,
                                   Reporter& rep);

// Which devices a fan-out verb targets.
struct DeviceSelector {
  std::vector<std::string> names;  // explicit names (unknown -> not_found)
  bool all = false;
  std::vector<std::pair<std::string, std::string>> labels;  // all must match
  std::string tier;
  std::vector<std::string> groups;  // in every one of these groups (":children" already expanded)
};

// Device names chosen by `sel`, in name order (explicit names: in the order given). Usage error
// when nothing selects (no names, no --all, no --label/--tier/--group); not_found for an unknown
// name.
Result<std::vector<std::string>> select_devices(Inventory& inv, const DeviceSelector& sel);
// True when a device's groups (JSON array) hold every group in `want`.
bool in_groups(const nlohmann::json& groups, const std::vector<std::string>& want);
// True when a device's labels (JSON object) carry every k=v in `want`.
bool labels_match(const nlohmann::json& labels,
                  const std::vector<std::pair<std::string, std::string>>& want);

// `device ls`: devices matching the label/tier filters (names ignored), as JSON objects.
Result<nlohmann::json> device_list(Inventory& inv, const DeviceSelector& filter);
// `device ls -o json` for a large fleet: appends to `out` exactly the text `-o json` prints for
// device_list's result (dump(2), no trailing newline), written row by row from SQLite without
// building the whole document. false (and `out` unusable) when a stored string is not UTF-8:
// render device_list's result instead, which keeps such bytes (`<key>_base64`).
Result<bool> device_list_json(Inventory& inv, const DeviceSelector& filter, std::string& out);
// `device show`: one device, plus identity/token/topology presence. not_found when unknown.
Result<nlohmann::json> device_show(Inventory& inv, std::string_view name);
// `device rm`: removes the row and its known_hosts line. conflict when a cluster still uses it
// (unless force).
Result<nlohmann::json> device_remove(Inventory& inv, const Paths& paths, std::string_view name,
                                     bool force);

// Status of one device after a failed connection: unreachable, auth_failed, host_key_mismatch,
// interrupted, failed. (token_mismatch is decided by check, not by the error code.)
std::string device_status_for(const Error& e);

struct FanOutRequest {
  DeviceSelector select;
  double timeout_s = 30;
  int parallel = 64;
};

// The result of a fan-out verb: {results: [...], summary: {ok, failed, unreachable}} and the
// error deciding the exit status (nullopt: all ok; partial; or the most specific code).
struct FanOutReport {
  nlohmann::json json;
  std::optional<Error> error;
};

// Decides the exit error from per-device results (each with "status" and optional "code").
std::optional<Error> fan_out_error(const nlohmann::json& results, std::string_view verb);

// `device check`: connect, verify host key and token, refresh facts, measure RTT; records status,
// last_seen and rtt in the inventory.
Result<FanOutReport> device_check(Inventory& inv, const Paths& paths, const FanOutRequest& req,
                                  Reporter& rep);

// `device exec`: runs argv on every selected device; per-device exit code, stdout, stderr.
Result<FanOutReport> device_exec(Inventory& inv, const Paths& paths, const FanOutRequest& req,
                                 const std::vector<std::string>& argv, bool sudo, Reporter& rep);

struct RekeyPlan {
  std::string name;
  HostKey old_key;
  HostKey new_key;
  bool changed = false;
};
// `device rekey`, step 1: what the device presents now versus what is pinned.
Result<RekeyPlan> device_rekey_probe(Inventory& inv, const Paths& paths, std::string_view name,
                                     double timeout_s);
// Step 2 (after the operator confirmed): pins `plan.new_key` and updates known_hosts.
Result<void> device_rekey_apply(Inventory& inv, const Paths& paths, const RekeyPlan& plan,
                                double timeout_s);

// Parses the facts script's output into the facts object (+ "topology_xml", "token" side fields).
nlohmann::json parse_facts(std::string_view out);
// The remote script that prints every fact in one round trip.
const std::string& facts_script();

// sched probe: from device `from`, a TCP connect + SSH banner round trip (min of 3) to each of
// `to` (default: every cluster member but `from`), measured on that device over gedge's SSH.
struct ProbeReport {
  std::string from;
  std::vector<std::pair<std::string, double>> rtts;  // measured, ms
  std::vector<std::string> unreachable;              // no answer
  nlohmann::json rows;                               // [{from, to, rtt_ms|null}] in `to` order
};
Result<ProbeReport> device_probe(Inventory& inv, const Paths& paths, const std::string& from,
                                 std::vector<std::string> to, double timeout_s);

}  // namespace gedge
