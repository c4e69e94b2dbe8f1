#include "gedge/paths.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "gedge/fd.hpp"

namespace gedge {

namespace fs = std::filesystem;

namespace {
std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}
}  // namespace

Result<Paths> resolve_paths(const std::optional<std::string>& home_flag) {
  Paths p;
  auto user_home = env("HOME");
  if (home_flag && !home_flag->empty()) {
    p.home = *home_flag;
  } else if (auto h = env("GEDGE_HOME")) {
    p.home = *h;
  } else if (auto x = env("XDG_DATA_HOME")) {
    p.home = fs::path(*x) / "gedge";
  } else if (user_home) {
    p.home = fs::path(*user_home) / ".local/share/gedge";
  } else {
    return fail(ErrorCode::usage, "cannot locate gedge's home: HOME is not set",
                "set GEDGE_HOME or pass --home DIR");
  }
  p.home = fs::absolute(p.home).lexically_normal();
  p.db = p.home / "gedge.db";
  p.key = p.home / "id_ed25519";
  p.known_hosts = p.home / "known_hosts";
  p.runtimes = p.home / "runtimes";
  p.log_dir = p.home / "log";
  if (auto c = env("GEDGE_CONFIG"))
    p.config_file = fs::absolute(*c);
  else if (auto x = env("XDG_CONFIG_HOME"))
    p.config_file = fs::path(*x) / "gedge/config.yaml";
  else if (user_home)
    p.config_file = fs::path(*user_home) / ".config/gedge/config.yaml";
  return p;
}

Result<void> ensure_home(const Paths& paths) {
  std::error_code ec;
  // An existing directory is made gedge's (mode 0700) only when it is empty or already gedge's:
  // `init --home ~/projects` must not lock the owner's group out of their own files.
  if (fs::is_directory(paths.home, ec) && !fs::is_empty(paths.home, ec)) {
    bool ours = false;
    for (const auto& p : {paths.db, paths.key, paths.known_hosts, paths.runtimes, paths.log_dir})
      if (!p.empty() && p.parent_path() == paths.home && fs::exists(fs::symlink_status(p, ec)))
        ours = true;
    if (!ours)
      return fail(
          ErrorCode::usage,
          fmt::format(
              "{} is not empty and holds no gedge home (no gedge.db, id_ed25519, known_hosts, "
              "runtimes/ or log/)",
              paths.home.string()),
          "give an empty or new directory, e.g. --home " + (paths.home / "gedge").string());
  }
  fs::create_directories(paths.home, ec);
  if (ec)
    return fail(ErrorCode::failure,
                fmt::format("cannot create {}: {}", paths.home.string(), ec.message()));
  if (::chmod(paths.home.c_str(), 0700) != 0)
    return fail(ErrorCode::failure, fmt::format("cannot set mode 0700 on {}: {}",
                                                paths.home.string(), strerror(errno)));
  fs::create_directories(paths.log_dir, ec);
  if (ec)
    return fail(ErrorCode::failure,
                fmt::format("cannot create {}: {}", paths.log_dir.string(), ec.message()));
  ::chmod(paths.log_dir.c_str(), 0700);
  return {};
}

Result<void> write_file_atomic(const fs::path& path, std::string_view content, unsigned mode) {
  std::random_device rd;
  fs::path tmp = path;
  tmp += fmt::format(".tmp.{}.{:x}", ::getpid(), rd());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd)
    return fail(ErrorCode::failure,
                fmt::format("cannot write {}: {}", tmp.string(), strerror(errno)));
  ::fchmod(fd.get(), mode);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      fd.reset();
      ::unlink(tmp.c_str());
      return fail(ErrorCode::failure,
                  fmt::format("cannot write {}: {}", path.string(), strerror(e)));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0 || fd.close() != 0) {
    ::unlink(tmp.c_str());
    return fail(ErrorCode::failure,
                fmt::format("cannot write {}: {}", path.string(), strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return fail(ErrorCode::failure,
                fmt::format("cannot rename into {}: {}", path.string(), strerror(e)));
  }
  return {};
}

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!fs::exists(path))
      return fail(ErrorCode::not_found, fmt::format("{}: no such file", path.string()));
    return fail(ErrorCode::failure,
                fmt::format("cannot read {}: {}", path.string(), strerror(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace gedge
