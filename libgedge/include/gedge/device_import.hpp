// `gedge device import`: bringing in fleets from the files operators already have: Ansible
// inventories (INI and YAML: groups, :vars, :children, ansible_host/port/user/
// ansible_ssh_private_key_file, other variables kept as labels) and ssh_config Host blocks.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gedge/device.hpp"

namespace gedge {

// One host read from an inventory file, with its group and host variables applied.
struct ImportHost {
  std::string name;                           // the inventory host name (the device name)
  std::string host;                           // ansible_host, else the name
  int port = 0;                               // ansible_port, or name:port; 0 = ssh config / 22
  std::string user;                           // ansible_user
  std::string identity;                       // ansible_ssh_private_key_file
  std::map<std::string, std::string> labels;  // every other variable
  std::vector<std::string> groups;   // every group it is in, ancestors (":children") included
  std::vector<std::string> secrets;  // password variables seen: never stored
  std::string file;
  int line = 0;  // where it was first named
};

// Ansible INI inventory. Errors (usage, exit 2) name FILE:LINE: a malformed section, host line
// or variable, a host range ("web[01:10]"), an invalid device name, a child group that is never
// defined, a group that is its own ancestor.
Result<std::vector<ImportHost>> parse_ansible_ini(std::string_view text, const std::string& file);
// Ansible YAML inventory (all: {hosts, vars, children}); errors name FILE:LINE and the field.
Result<std::vector<ImportHost>> parse_ansible_yaml(const std::string& text,
                                                   const std::string& file);
// ssh_config: every Host pattern without wildcards or negation becomes a host named by it (the
// values are resolved later with ssh -G -F FILE).
Result<std::vector<ImportHost>> parse_ssh_config_hosts(std::string_view text,
                                                       const std::string& file);

struct DeviceImportRequest {
  std::vector<std::string> files;
  std::string format;  // ini | yaml | ssh-config | "" (by extension: .yml/.yaml = yaml, else ini)
  bool no_connect = false;                     // record only (status unknown), one transaction
  bool accept_new = false;                     // trust presented host keys (TOFU)
  std::vector<std::string> known_hosts_files;  // --known-hosts (see DeviceAddRequest)
  std::string ssh_config;  // for --format ssh-config: the file itself; else the global --ssh-config
  double timeout_s = 30;
  int parallel = 16;
};

// Imports every host: parsed from all files first (a parse error stores nothing), then each
// contacted in parallel like `device add` (facts, token, pinned key) with one result per host,
// or with no_connect recorded in one transaction. A host that fails is not stored; the report's
// error is partial (exit 3) when some failed. Hosts already registered identically are "unchanged".
Result<FanOutReport> device_import(Inventory& inv, const Paths& paths,
                                   const DeviceImportRequest& req, Reporter& rep);

}  // namespace gedge
