// pack's per-file work: read (streamed past a bound), relocate, hash, chunk, compress, store.
// One FilePacker per worker thread (its buffers and zstd context are reused from file to file);
// one ChunkSink per pack, shared by the workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/runtime.hpp"

namespace gedge::runtime::detail {

// Files up to this size are read whole (relocated like relocate() does); larger ones are streamed
// through Relocator and Chunker, in blocks of kPackBlock.
inline constexpr std::size_t kPackInMemoryMax = 8u << 20;
inline constexpr std::size_t kPackBlock = 4u << 20;

struct PackedFile {
  std::string sha256;
  uint64_t size = 0;  // after relocation
  std::vector<std::pair<std::string, uint64_t>> chunks;
  bool relocated = false;
  bool too_long = false;  // a binary holds a prefix longer than its build prefix
  uint64_t bytes_read = 0, bytes_stored = 0, chunks_new = 0, bytes_new = 0;
};

// Where chunks go: the store (compressed, each distinct chunk written once per pack, even when
// several workers meet it), or nowhere for a dry run (only counted when not in the store).
class ChunkSink {
 public:
  ChunkSink(std::filesystem::path store, int level, bool dry_run);
  const std::filesystem::path& store() const { return store_; }
  int level() const { return level_; }
  bool dry_run() const { return dry_run_; }
  // True the first time `hash` is claimed in this pack (the caller then stores it).
  bool claim(const std::string& hash);

 private:
  std::filesystem::path store_;
  int level_;
  bool dry_run_;
  std::mutex mu_;
  std::unordered_set<std::string> seen_;
};

class FilePacker {
 public:
  FilePacker(ChunkSink& sink, const std::vector<Rewrite>& rewrites);
  ~FilePacker();
  FilePacker(const FilePacker&) = delete;
  FilePacker& operator=(const FilePacker&) = delete;
  Result<PackedFile> pack(const std::filesystem::path& src);
  // The largest buffer this packer holds (for the bounded-memory test).
  std::size_t buffer_high_water() const { return high_water_; }

 private:
  Result<void> store_chunk(std::string_view piece, const std::string& hash, PackedFile& o);
  Result<void> pack_whole(int fd, const std::filesystem::path& src, std::size_t size_hint,
                          PackedFile& o);
  // optimistic: no rewrite expected (stops with `needs_relocation` at the first `from` seen).
  Result<void> pack_stream(int fd, const std::filesystem::path& src, bool relocating, PackedFile& o,
                           bool& needs_relocation);
  Result<bool> has_nul(int fd, const std::filesystem::path& src);
  Result<std::size_t> read_block(int fd, const std::filesystem::path& src, char* buf,
                                 std::size_t n);
  void note(std::size_t n) { high_water_ = std::max(high_water_, n); }

  ChunkSink& sink_;
  const std::vector<Rewrite>& rewrites_;
  std::size_t max_from_ = 0;
  void* cctx_;
  std::string data_;  // the whole file (small files) or one block (streamed)
  std::string zbuf_;  // compressed chunk
  std::string rel_;   // relocated block
  Chunker chunker_;
  std::size_t high_water_ = 0;
};

}  // namespace gedge::runtime::detail
