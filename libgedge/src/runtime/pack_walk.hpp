// pack's walk of the component trees: every entry in sorted order, hardlinks and symlinks
// recognised, absolute links into a component relocated, and what a bundle cannot hold collected
// for the error (special files, names that are not UTF-8, what cannot be read).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gedge/runtime.hpp"

namespace gedge::runtime::detail {

struct WalkEntry {
  std::string rel;  // bundle path: <role>/<relative>
  std::string src;  // the path read (a string: a std::filesystem::path splits its components)
  char type;        // 'd' dir, 'f' file, 'l' symlink, 'h' hardlink
  unsigned mode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;  // for the stat cache
  uint64_t ino = 0, dev = 0;
  std::string link;  // symlink target / hardlink first path
  bool outside = false;
};

struct Walker {
  std::vector<WalkEntry> entries;
  std::vector<std::string> refused;    // device files, sockets, fifos
  std::vector<std::string> bad_names;  // non-UTF-8
  std::vector<std::string> unreadable;
  std::map<std::pair<dev_t, ino_t>, std::string> inodes;
  std::vector<Rewrite> rewrites;
  bool keep_special = false;
  std::vector<std::string>
      stripped;  // entries whose special or group/other-write bits were dropped

  // Adds the component root `src` (bundle path `role`) and everything below it.
  void walk(const std::filesystem::path& src, const std::string& role);

 private:
  // One entry whose lstat is `st`: `name` relative to the open directory `dirfd` (AT_FDCWD and
  // the whole path for a walk's root), so the kernel resolves one name, not the whole path.
  void visit(int dirfd, const char* name, const struct stat& st, const std::string& src,
             const std::string& rel);
};

// Shows a name with control and non-UTF-8 bytes escaped, for messages.
std::string printable(std::string_view s);

}  // namespace gedge::runtime::detail
