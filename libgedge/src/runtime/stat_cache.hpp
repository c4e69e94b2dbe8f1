// pack's stat cache (GEDGE_HOME/runtimes/statcache): for each set of relocation rewrites, the
// source path with its size, mtime, ctime, inode and device -> the relocated file's size, hash
// and chunks, so a re-pack does not read unchanged files again. A compact length-prefixed text
// format (paths may hold any byte); a file that cannot be parsed is treated as empty.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gedge/error.hpp"

namespace gedge::runtime::detail {

struct StatRecord {
  uint64_t size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  uint64_t ino = 0, dev = 0;
  uint64_t out_size = 0;  // after relocation
  std::string sha256;
  bool relocated = false;
  std::vector<std::pair<std::string, uint64_t>> chunks;
};

class StatCache {
 public:
  // Loads the set for `key` (other sets are kept verbatim for save).
  static StatCache load(const std::filesystem::path& file, const std::string& key);
  const StatRecord* find(const std::string& path) const;
  std::size_t size() const { return set_.size(); }
  // Replaces this key's set with `records` (written first), keeping up to max_sets - 1 others.
  Result<void> save(const std::filesystem::path& file,
                    const std::vector<std::pair<std::string, StatRecord>>& records,
                    std::size_t max_sets) const;

 private:
  std::string key_;
  std::unordered_map<std::string, StatRecord> set_;
  std::vector<std::pair<std::string, std::string>> others_;  // key -> raw records
};

}  // namespace gedge::runtime::detail
