#include "chunk_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "gedge/runtime.hpp"

namespace fs = std::filesystem;

namespace gedge::runtime {

namespace detail {

std::string errno_text(int err) {
  return std::strerror(err);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Sha256::~Sha256() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}
void Sha256::update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}
std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &n);
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

fs::path chunk_path(const fs::path& store, std::string_view hash) {
  return store / std::string(hash.substr(0, 2)) / std::string(hash);
}

namespace {
std::string temp_name(const fs::path& path) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format(".tmp.{}.{}.{}", path.filename().string(), ::getpid(), counter++);
}

Result<void> write_all(int fd, std::string_view data, const fs::path& what) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      return fail(ErrorCode::failure,
                  fmt::format("cannot write {}: {}", what.string(), errno_text(e)),
                  e == ENOSPC ? "free space on the target or choose another --to/--root" : "");
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return {};
}
}  // namespace

Result<void> write_atomic(const fs::path& path, std::string_view data, unsigned mode) {
  fs::path tmp = path.parent_path() / temp_name(path);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    int e = errno;
    return fail(ErrorCode::failure,
                fmt::format("cannot create {}: {}", tmp.string(), errno_text(e)),
                e == ENOSPC ? "free space on the target" : "");
  }
  auto ok = write_all(fd.get(), data, path);
  if (ok && ::fchmod(fd.get(), mode) != 0)
    ok = fail(ErrorCode::failure, fmt::format("cannot chmod {}", tmp.string()));
  if (fd.close() != 0 && ok) {
    int e = errno;
    ok = fail(ErrorCode::failure, fmt::format("cannot write {}: {}", path.string(), errno_text(e)));
  }
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ok = fail(ErrorCode::failure,
              fmt::format("cannot rename into {}: {}", path.string(), errno_text(e)));
  }
  if (!ok) ::unlink(tmp.c_str());
  return ok;
}

namespace {
// Reads an open regular file to its end and closes it; `shown` names it in messages.
Result<std::string> read_and_close(UniqueFd fd, const fs::path& shown) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return fail(ErrorCode::failure,
                fmt::format("cannot read {}: not a regular file", shown.string()));
  }
  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      return fail(ErrorCode::failure,
                  fmt::format("cannot read {}: {}", shown.string(), errno_text(e)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}
}  // namespace

Result<std::string> slurp(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    int e = errno;
    return fail(
        ErrorCode::failure, fmt::format("cannot read {}: {}", path.string(), errno_text(e)),
        e == EACCES ? "make the file readable by this user, or remove it from the tree" : "");
  }
  return read_and_close(std::move(fd), path);
}

Result<std::string> decode_chunk(const std::string& raw, std::string_view name) {
  unsigned long long size = ZSTD_getFrameContentSize(raw.data(), raw.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1ull << 32))
    return fail(ErrorCode::failure, fmt::format("chunk {} is corrupted (not a zstd frame)", name));
  std::string out(size, '\0');
  std::size_t n = ZSTD_decompress(out.data(), out.size(), raw.data(), raw.size());
  if (ZSTD_isError(n) || n != size)
    return fail(ErrorCode::failure, fmt::format("chunk {} is corrupted ({})", name,
                                                ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
  return out;
}

Result<std::string> read_chunk(const fs::path& path) {
  auto raw = slurp(path);
  if (!raw)
    return fail(ErrorCode::failure,
                fmt::format("chunk {} is missing or unreadable", path.filename().string()));
  return decode_chunk(*raw, path.filename().string());
}

Result<Dir> Dir::open(int at, std::string_view rel, bool create, const fs::path& shown) {
  UniqueFd fd(::openat(at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd)
    return fail(ErrorCode::failure,
                fmt::format("cannot open {}: {}", shown.string(), errno_text(errno)));
  fs::path where = shown;
  std::size_t i = 0;
  while (i <= rel.size()) {
    std::size_t j = rel.find('/', i);
    if (j == std::string_view::npos) j = rel.size();
    std::string name(rel.substr(i, j - i));
    i = j + 1;
    if (name.empty() || name == ".") continue;
    where /= name;
    if (name == "..") {
      return fail(ErrorCode::failure, fmt::format("refusing '..' in {}", where.string()));
    }
    if (create && ::mkdirat(fd.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
      int e = errno;
      return fail(ErrorCode::failure,
                  fmt::format("cannot create {}: {}", where.string(), errno_text(e)),
                  e == ENOSPC ? "free space on the target" : "");
    }
    UniqueFd next(
        ::openat(fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    int e = errno;
    fd.reset();
    if (!next) {
      struct stat st {};
      if ((e == ELOOP || e == ENOTDIR) &&
          ::fstatat(at, std::string(rel.substr(0, j)).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode))
        return fail(ErrorCode::failure,
                    fmt::format("refusing to follow the symbolic link {}", where.string()),
                    "a link was planted where gedge expects a directory; remove it and try again");
      return fail(ErrorCode::failure,
                  fmt::format("cannot open directory {}: {}", where.string(), errno_text(e)));
    }
    fd = std::move(next);
  }
  return Dir(std::move(fd), where);
}

Result<Dir> Dir::at_path(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    int e = errno;
    return fail(e == ENOENT ? ErrorCode::not_found : ErrorCode::failure,
                fmt::format("cannot open directory {}: {}", path.string(), errno_text(e)));
  }
  return Dir(std::move(fd), path);
}

Result<std::string> slurp_at(const Dir& dir, const std::string& name) {
  fs::path shown = dir.path() / name;
  UniqueFd fd(::openat(dir.fd(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd)
    return fail(ErrorCode::failure,
                fmt::format("cannot read {}: {}", shown.string(), errno_text(errno)));
  return read_and_close(std::move(fd), shown);
}

Result<void> write_atomic_at(const Dir& dir, const std::string& name, std::string_view data,
                             unsigned mode) {
  fs::path shown = dir.path() / name;
  std::string tmp = temp_name(name);
  UniqueFd fd(
      ::openat(dir.fd(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) {
    int e = errno;
    return fail(ErrorCode::failure,
                fmt::format("cannot create {}: {}", (dir.path() / tmp).string(), errno_text(e)),
                e == ENOSPC ? "free space on the target" : "");
  }
  auto ok = write_all(fd.get(), data, shown);
  if (ok && ::fchmod(fd.get(), mode) != 0)
    ok = fail(ErrorCode::failure, fmt::format("cannot chmod {}", shown.string()));
  if (fd.close() != 0 && ok) {
    int e = errno;
    ok =
        fail(ErrorCode::failure, fmt::format("cannot write {}: {}", shown.string(), errno_text(e)));
  }
  if (ok && ::renameat(dir.fd(), tmp.c_str(), dir.fd(), name.c_str()) != 0) {
    int e = errno;
    ok = fail(ErrorCode::failure,
              fmt::format("cannot rename into {}: {}", shown.string(), errno_text(e)));
  }
  if (!ok) ::unlinkat(dir.fd(), tmp.c_str(), 0);
  return ok;
}

Result<uint64_t> copy_atomic(const fs::path& from, const fs::path& to) {
  GEDGE_TRY_ASSIGN(auto data, slurp(from));
  GEDGE_TRY(write_atomic(to, data, 0644));
  return uint64_t{data.size()};
}

Result<StoreLock> StoreLock::take(const fs::path& file, bool exclusive) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd)
    return fail(ErrorCode::failure,
                fmt::format("cannot open lock {}: {}", file.string(), errno_text(errno)));
  while (::flock(fd.get(), exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno == EINTR) continue;
    return fail(ErrorCode::conflict, fmt::format("cannot lock {}", file.string()));
  }
  return StoreLock(std::move(fd));
}

}  // namespace detail
}  // namespace gedge::runtime
