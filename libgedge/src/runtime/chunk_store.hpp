// The chunk store: zstd-compressed chunks named by the SHA-256 of their uncompressed bytes,
// at <store>/<first two hex>/<hash>. Writes are atomic (temp file + rename).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "gedge/error.hpp"
#include "gedge/fd.hpp"

namespace gedge::runtime::detail {

std::filesystem::path chunk_path(const std::filesystem::path& store, std::string_view hash);

// Reads and decompresses a chunk; failure when missing or not valid zstd.
Result<std::string> read_chunk(const std::filesystem::path& path);

// Writes bytes to path through a temp file in the same directory and rename (mode applied).
Result<void> write_atomic(const std::filesystem::path& path, std::string_view data, unsigned mode);

// Copies a file atomically (temp + rename); returns bytes copied.
Result<uint64_t> copy_atomic(const std::filesystem::path& from, const std::filesystem::path& to);

// Reads a whole file (failure naming it on error).
Result<std::string> slurp(const std::filesystem::path& path);

// Decompresses one chunk's stored bytes (`name` for messages); failure when not valid zstd.
Result<std::string> decode_chunk(const std::string& raw, std::string_view name);

// A directory held open by descriptor, reached without following any symbolic link: the
// materialisers work relative to it (openat and friends), so a link planted in a target tree
// can never redirect a write outside it.
class Dir {
 public:
  // Opens `rel` ('/'-separated, relative) under `at` (AT_FDCWD: the working directory), one
  // component at a time with O_NOFOLLOW, creating missing ones (0755) when `create`. `shown` names
  // `at` in messages. A symlink on the way is a failure naming it.
  static Result<Dir> open(int at, std::string_view rel, bool create,
                          const std::filesystem::path& shown);
  // Opens a directory the user named (links in `path` itself are the user's choice and followed).
  static Result<Dir> at_path(const std::filesystem::path& path);
  Dir(Dir&&) noexcept = default;
  Dir& operator=(Dir&&) noexcept = default;
  int fd() const { return fd_.get(); }
  const std::filesystem::path& path() const { return path_; }  // for messages only

 private:
  Dir(UniqueFd fd, std::filesystem::path p) : fd_(std::move(fd)), path_(std::move(p)) {}
  UniqueFd fd_;
  std::filesystem::path path_;
};

// Reads the regular file `name` in `dir` (O_NOFOLLOW: a symlink there is a failure).
Result<std::string> slurp_at(const Dir& dir, const std::string& name);

// Writes `name` in `dir` through a temp file in the same directory and renameat (mode applied).
Result<void> write_atomic_at(const Dir& dir, const std::string& name, std::string_view data,
                             unsigned mode);

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  std::string hex();

 private:
  void* ctx_;
};

// "No space left on device (errno 28)"-style text.
std::string errno_text(int err);

// A POSIX advisory lock on a file (shared for pack/push, exclusive for gc).
class StoreLock {
 public:
  static Result<StoreLock> take(const std::filesystem::path& file, bool exclusive);
  StoreLock(StoreLock&&) noexcept = default;
  StoreLock& operator=(StoreLock&&) = delete;

 private:
  explicit StoreLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // the lock goes with the descriptor
};

}  // namespace gedge::runtime::detail
