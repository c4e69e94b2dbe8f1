// Running ansible-playbook for gedge: a private inventory rendered from the SQLite inventory
// (host-key checking ON against a known_hosts file built from the pinned fingerprints), the
// playbook run by fork/execve (no shell), and per-host per-task events read as they happen from
// the JSON-lines callback plugin shipped in playbooks/callback_plugins/gedge_events.py.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/ssh.hpp"

namespace gedge::ansible {

// One host of a rendered inventory.
struct InventoryHost {
  std::string name;                                // inventory_hostname = gedge device name
  std::string address;                             // ansible_host
  int port = 22;                                   // ansible_port
  std::string user;                                // ansible_user
  std::string identity;                            // ansible_ssh_private_key_file
  nlohmann::json vars = nlohmann::json::object();  // extra host vars (role, ...)
  // OpenSSH options of this host (ansible_ssh_extra_args): the known_hosts line is looked up by
  // HostKeyAlias; IdentitiesOnly unless the device logs in with an agent key.
  std::string host_key_alias;
  bool identities_only = true;
  std::string identity_agent;
  std::string certificate;
  std::string proxy_command;  // the ProxyJump hop as a ProxyCommand (jump_proxy_command)
};

// The inventory host for a registered device (device_target): address, user, its key or
// gedge's (none for agent-only devices), HostKeyAlias = the device name, the jump hop verified
// against `known_hosts` (the file the run's ssh reads).
InventoryHost inventory_host(const SshTarget& t, const std::filesystem::path& gedge_key,
                             const std::filesystem::path& known_hosts, double connect_timeout_s,
                             nlohmann::json vars = nlohmann::json::object());

struct InventorySpec {
  std::string group = "gedge_members";  // the group every host is in
  std::vector<InventoryHost> hosts;
  std::filesystem::path known_hosts;  // the verified known_hosts file for these hosts
  double connect_timeout_s = 10;
  nlohmann::json group_vars = nlohmann::json::object();  // extra vars for the group
};

// Renders an Ansible YAML inventory: every host with address/port/user/key, host-key checking
// on (StrictHostKeyChecking=yes against spec.known_hosts, BatchMode, IdentitiesOnly,
// ServerAliveInterval so a link that drops mid-run ends as unreachable) and
// ansible_python_interpreter=/usr/bin/python3. Deterministic (golden-tested).
std::string render_inventory(const InventorySpec& spec);

// One ssh "-o OPTION=PATH" for ansible_ssh_common_args. Plain paths are written as they are;
// others (spaces, quotes, '%') are quoted so that Ansible's shell-like split and then ssh's own
// word splitting and %-token expansion both give back exactly PATH.
std::string ssh_file_option(const std::string& option, const std::string& path);

// A k3s/kubeadm kubeconfig fetched from the server names it https://127.0.0.1:PORT; every such
// server URL is pointed at `host` (an IPv6 literal bracketed), in one pass (host may itself be
// 127.0.0.1, e.g. behind an SSH tunnel).
std::string point_kubeconfig_at(std::string_view text, const std::string& host);

// The known_hosts marker older gedge versions wrote for host:port ("h" for 22, "[h]:p" otherwise).
std::string known_hosts_marker(const std::string& host, int port);

// Picks, from OpenSSH known_hosts text, the lines for `device` (its HostKeyAlias, or the
// [host]:port marker of older gedge versions) whose key's SHA256 fingerprint equals
// `pinned_fp`, written under the alias. host_key when there is no such line (either absent or
// a different key).
Result<std::string> verified_known_hosts_lines(std::string_view known_hosts_text,
                                               const std::string& host, int port,
                                               const std::string& pinned_fp,
                                               const std::string& device);

// The run's known_hosts lines for a device: verified_known_hosts_lines plus its jump hop's
// pinned key under the jump's alias.
Result<std::string> device_known_hosts_lines(std::string_view known_hosts_text, const SshTarget& t);

// SHA256 fingerprint ("SHA256:...") of a base64 public key blob; usage when it does not parse.
Result<std::string> key_fingerprint(const std::string& key_type, const std::string& base64);

// One event written by the callback plugin (one JSON object per line).
struct Event {
  std::string type;  // play_start | task_start | ok | failed | unreachable | skipped | stats
  std::string host;  // device name (empty for play/task/stats events)
  std::string task;  // task name, "role : task" inside roles
  bool changed = false;
  std::string msg;               // short message (module msg, stderr, or unreachable reason)
  std::string diff;              // unified-ish diff text in --diff mode ("" when none)
  bool check_mode_skip = false;  // skipped only because the module cannot run in check mode
  nlohmann::json stats;  // for "stats": {host: {ok, changed, failures, unreachable, skipped}}
};

// Parses one JSON line from the callback. nullopt for lines that are not gedge events.
// A "failed" whose message is Ansible's become-prompt timeout (a connection that stopped
// answering mid-run) is returned as "unreachable".
std::optional<Event> parse_event(std::string_view line);

struct RunSpec {
  std::filesystem::path playbook;      // playbooks/<profile>.yml
  std::filesystem::path playbook_dir;  // playbooks/ (callback_plugins/, roles/)
  std::filesystem::path run_dir;       // private dir: inventory.yml, ansible.cfg, vars.json, log
  std::string inventory_text;          // rendered inventory
  nlohmann::json extra_vars = nlohmann::json::object();
  std::vector<std::string> limit;  // --limit hosts (empty: all)
  std::vector<std::string> skip_tags;
  bool check = false;  // --check --diff
  int forks = 5;
  // Ansible's own connection timeout (ansible.cfg `timeout`): the ConnectTimeout it passes to ssh
  // ahead of the inventory's, and (plus 2 s) how long it waits for the become prompt.
  int timeout_s = 10;
  std::string ansible_playbook = "ansible-playbook";  // resolved on PATH unless absolute
};

// The argv gedge executes (pure; golden-tested): ansible-playbook -i INV -e @vars.json ... PB.
std::vector<std::string> playbook_argv(const RunSpec& spec);
// The environment additions (ANSIBLE_CONFIG, ANSIBLE_STDOUT_CALLBACK, ...).
std::map<std::string, std::string> playbook_env(const RunSpec& spec, int events_fd);
// The ansible.cfg written into the run directory.
std::string render_ansible_cfg(const RunSpec& spec);

struct RunResult {
  int exit_code = -1;                               // ansible-playbook's exit status (-1: killed)
  bool stopped = false;                             // stopped by should_stop or Ctrl-C
  bool interrupted = false;                         // Ctrl-C
  nlohmann::json stats = nlohmann::json::object();  // from the final stats event
  std::filesystem::path log;                        // ansible's own stdout/stderr
  std::string log_tail;                             // last lines of that log (for error messages)
};

// Writes the run directory and runs ansible-playbook (fork/execve, no shell), calling
// `on_event` for each event as it arrives. `should_stop` is polled between events; when it
// returns true (or Ctrl-C is requested) the run is stopped (SIGINT, then SIGKILL after 10 s).
// failure when ansible-playbook cannot be started.
Result<RunResult> run_playbook(const RunSpec& spec,
                               const std::function<void(const Event&)>& on_event,
                               const std::function<bool()>& should_stop = {});

// Where the playbooks live: $GEDGE_PLAYBOOK_DIR, else <exe>/../share/gedge/playbooks, else the
// install prefix configured at build time, else the source tree the binary was built from.
Result<std::filesystem::path> find_playbook_dir();

}  // namespace gedge::ansible
