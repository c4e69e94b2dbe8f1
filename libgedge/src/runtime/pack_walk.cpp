#include "pack_walk.hpp"

#include <dirent.h>
#include <fcntl.h>
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
bool stays_inside(std::string_view link_dir_rel, const std::string& target) {
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

void Walker::walk(const fs::path& src, const std::string& role) {
  struct stat st {};
  if (::lstat(src.c_str(), &st) != 0) {
    unreadable.push_back(fmt::format("{}: {}", printable(src.string()), detail::errno_text(errno)));
    return;
  }
  visit(AT_FDCWD, src.c_str(), st, src.string(), role);
}

void Walker::visit(int dirfd, const char* name, const struct stat& st, const std::string& src,
                   const std::string& rel) {
  if (!valid_utf8(rel)) {
    bad_names.push_back(printable(src));
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
    entries.push_back(std::move(e));
    int dfd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR* d = dfd < 0 ? nullptr : ::fdopendir(dfd);
    if (!d) {
      int err = errno;
      if (dfd >= 0) ::close(dfd);
      unreadable.push_back(fmt::format("{}: {}", printable(src), detail::errno_text(err)));
      return;
    }
    std::vector<std::string> names;
    while (auto* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n == "." || n == "..") continue;
      names.push_back(n);
    }
    std::sort(names.begin(), names.end());
    // The directory stays open while its entries are visited (one descriptor per level).
    for (const auto& n : names) {
      std::string child = src.ends_with('/') ? src + n : src + '/' + n;
      struct stat cst {};
      if (::fstatat(dfd, n.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0) {
        unreadable.push_back(fmt::format("{}: {}", printable(child), detail::errno_text(errno)));
        continue;
      }
      visit(dfd, n.c_str(), cst, child, rel + "/" + n);
    }
    ::closedir(d);
  } else if (S_ISREG(st.st_mode)) {
    if (st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = inodes.find(key);
      if (it != inodes.end()) {
        e.type = 'h';
        e.link = it->second;
        entries.push_back(std::move(e));
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
    entries.push_back(std::move(e));
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
    ssize_t n = ::readlinkat(dirfd, name, target.data(), target.size());
    if (n < 0) {
      unreadable.push_back(fmt::format("{}: {}", printable(src), detail::errno_text(errno)));
      return;
    }
    target.resize(static_cast<std::size_t>(n));
    if (!valid_utf8(target)) {
      bad_names.push_back(printable(src) + " -> " + printable(target));
      return;
    }
    e.type = 'l';
    e.mode = 0777;
    // Absolute links into a component are relocated like file contents.
    std::string relocated = target;
    relocate(relocated, rewrites);
    e.link = relocated;
    // The link's directory inside the component: `rel` less its role and its own name.
    std::string_view dir = rel;
    auto first = dir.find('/'), last = dir.rfind('/');
    dir = first == last ? std::string_view() : dir.substr(first + 1, last - first - 1);
    e.outside = relocated == target ? !stays_inside(dir, target) : false;
    entries.push_back(std::move(e));
  } else {
    const char* what = S_ISCHR(st.st_mode)    ? "character device"
                       : S_ISBLK(st.st_mode)  ? "block device"
                       : S_ISSOCK(st.st_mode) ? "socket"
                       : S_ISFIFO(st.st_mode) ? "fifo"
                                              : "special file";
    refused.push_back(fmt::format("{} ({})", printable(src), what));
  }
}

}  // namespace gedge::runtime::detail
