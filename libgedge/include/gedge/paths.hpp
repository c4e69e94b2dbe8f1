// Where gedge keeps its state: GEDGE_HOME and the files inside it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "gedge/error.hpp"

namespace gedge {

struct Paths {
  std::filesystem::path home;         // GEDGE_HOME, mode 0700
  std::filesystem::path db;           // gedge.db (SQLite inventory, 0600)
  std::filesystem::path key;          // id_ed25519 (0600); key + ".pub" is the public half
  std::filesystem::path known_hosts;  // gedge-managed known_hosts (OpenSSH format)
  std::filesystem::path runtimes;     // runtime chunk store
  std::filesystem::path log_dir;      // log/
  std::filesystem::path config_file;  // $XDG_CONFIG_HOME/gedge/config.yaml (optional)
};

// Resolves paths: --home flag, then $GEDGE_HOME, then $XDG_DATA_HOME/gedge, then
// ~/.local/share/gedge. Touches nothing on disk.
Result<Paths> resolve_paths(const std::optional<std::string>& home_flag);

// Creates GEDGE_HOME (0700) and log/ if missing; tightens the mode of an existing home.
Result<void> ensure_home(const Paths& paths);

// Writes `content` to `path` atomically (temp file + rename) with the given mode.
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content,
                               unsigned mode = 0600);

// Reads a whole file; not_found when it does not exist.
Result<std::string> read_file(const std::filesystem::path& path);

}  // namespace gedge
