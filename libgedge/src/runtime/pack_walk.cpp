#include "pack_walk.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "chunk_store.hpp"
#include "manifest.hpp"

namespace fs = std::filesystem;

namespace gedge::runtime::detail {

namespace {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

// Lexically resolves a symlink target relative to the link's directory inside the bundle; true
// when it stays inside the component root.
bool stays_inside(const std::string& link_dir_rel, const std::string& target) {
  if (!target.empty() && target[0] == '/') return false;
  std::vector<std::string> parts;
  auto push = [&](std::string_view path) {
    std::size_t i = 0;
    while (i <= path.size()) {
      std::size_t j = path.find('/', i);
      if (j == std::string_view::npos) j = path.size();
      std::string_view p = path.substr(i, j - i);
      if (p == "..") {
        if (parts.empty()) return false;
        parts.pop_back();
      } else if (!p.empty() && p != ".") {
        parts.emplace_back(p);
      }
      i = j + 1;
    }
    return true;
  };
  if (!push(link_dir_rel)) return false;
  return push(target);
}

}  // namespace

// Shows a name with control and non-UTF-8 bytes escaped, for messages.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c < 0x20 || c >= 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

void Walker::walk(const fs::path& src, const std::string& rel, const std::string& comp_rel_dir) {
  struct stat st {};
  if (::lstat(src.c_str(), &st) != 0) {
    unreadable.push_back(fmt::format("{}: {}", printable(src.string()), detail::errno_text(errno)));
    return;
  }
  if (!valid_utf8(rel)) {
    bad_names.push_back(printable(src.string()));
    return;
  }
  WalkEntry e;
  e.rel = rel;
  e.src = src;
  e.mode = recorded_mode(st.st_mode, keep_special);
  if (e.mode != (st.st_mode & 07777) && !S_ISLNK(st.st_mode))
    stripped.push_back(fmt::format("{} ({:04o} -> {:04o})", rel, st.st_mode & 07777, e.mode));
  if (S_ISDIR(st.st_mode)) {
    e.type = 'd';
    entries.push_back(e);
    DIR* d = ::opendir(src.c_str());
    if (!d) {
      unreadable.push_back(
          fmt::format("{}: {}", printable(src.string()), detail::errno_text(errno)));
      return;
    }
    std::vector<std::string> names;
    while (auto* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n == "." || n == "..") continue;
      names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names)
      walk(src / n, rel + "/" + n, comp_rel_dir.empty() ? n : comp_rel_dir + "/" + n);
  } else if (S_ISREG(st.st_mode)) {
    if (st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = inodes.find(key);
      if (it != inodes.end()) {
        e.type = 'h';
        e.link = it->second;
        entries.push_back(e);
        return;
      }
      inodes[key] = rel;
    }
    e.type = 'f';
    e.size = static_cast<uint64_t>(st.st_size);
    e.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    e.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
    e.ino = st.st_ino;
    e.dev = st.st_dev;
    entries.push_back(e);
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
    ssize_t n = ::readlink(src.c_str(), target.data(), target.size());
    if (n < 0) {
      unreadable.push_back(
          fmt::format("{}: {}", printable(src.string()), detail::errno_text(errno)));
      return;
    }
    target.resize(static_cast<std::size_t>(n));
    if (!valid_utf8(target)) {
      bad_names.push_back(printable(src.string()) + " -> " + printable(target));
      return;
    }
    e.type = 'l';
    e.mode = 0777;
    // Absolute links into a component are relocated like file contents.
    std::string relocated = target;
    relocate(relocated, rewrites);
    e.link = relocated;
    std::string dir = comp_rel_dir.find('/') == std::string::npos
                          ? std::string()
                          : comp_rel_dir.substr(0, comp_rel_dir.rfind('/'));
    e.outside = relocated == target ? !stays_inside(dir, target) : false;
    entries.push_back(e);
  } else {
    const char* what = S_ISCHR(st.st_mode)    ? "character device"
                       : S_ISBLK(st.st_mode)  ? "block device"
                       : S_ISSOCK(st.st_mode) ? "socket"
                       : S_ISFIFO(st.st_mode) ? "fifo"
                                              : "special file";
    refused.push_back(fmt::format("{} ({})", printable(src.string()), what));
  }
}

}  // namespace gedge::runtime::detail
