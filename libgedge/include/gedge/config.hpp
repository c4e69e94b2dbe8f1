// Optional user configuration: $GEDGE_CONFIG, else $XDG_CONFIG_HOME/gedge/config.yaml.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "gedge/error.hpp"

namespace gedge {

struct Config {
  std::optional<std::string> output;  // default -o for verbs that show state: table|json|yaml
  std::optional<double> timeout_s;    // default --timeout: 0.1..86400
  std::optional<int> parallel;        // default --parallel: 1..4096
  std::optional<std::string> color;   // auto|always|never
  // known_hosts files device add/import read when no --known-hosts is given (each readable;
  // ~/ is $HOME, a relative path is relative to the config file's directory)
  std::vector<std::string> known_hosts_files;
  std::vector<std::string> warnings;  // "FILE:LINE: unknown key 'k' ignored" (the rest applies)
};

// A missing file gives an empty Config. Each value is checked as its flag checks it: a wrong type
// or value is a usage error naming file, line and key; an unknown key is a warning and the rest
// of the file still applies.
Result<Config> load_config(const std::filesystem::path& file);

}  // namespace gedge
