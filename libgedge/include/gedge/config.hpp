// Optional user configuration: $XDG_CONFIG_HOME/gedge/config.yaml.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "gedge/error.hpp"

namespace gedge {

struct Config {
  std::optional<std::string> output;  // default -o
  std::optional<double> timeout_s;    // default --timeout
  std::optional<int> parallel;        // default --parallel
  std::optional<std::string> color;   // auto|always|never
};

// A missing file gives an empty Config; unknown keys and wrong types are usage errors naming
// the file and line.
Result<Config> load_config(const std::filesystem::path& file);

}  // namespace gedge
