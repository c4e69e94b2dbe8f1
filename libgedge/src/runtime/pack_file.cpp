#include "pack_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cstring>

#include "chunk_store.hpp"
#include "gedge/fd.hpp"
#include "manifest.hpp"

namespace fs = std::filesystem;

namespace gedge::runtime::detail {

namespace {
// At the default level (3), a chunk above this size is compressed with level 2's smaller match
// tables: on the 1.5 GB bench tree (bench/pack_bench.sh, 1.3 GB of it in such chunks) 8 % less
// user CPU for 0.7 % more stored bytes, the store still below the tree's .tar.zst.
constexpr std::size_t kSmallTablesAbove = 256u << 10;
}  // namespace

ChunkSink::ChunkSink(fs::path store, int level, bool dry_run)
    : store_(std::move(store)), level_(level), dry_run_(dry_run) {
  if (dry_run_) return;
  // Every chunk directory up front, instead of a create_directories per chunk.
  std::error_code ec;
  fs::create_directories(store_, ec);
  for (int i = 0; i < 256; ++i) ::mkdir((store_ / fmt::format("{:02x}", i)).c_str(), 0755);
}

bool ChunkSink::claim(const std::string& hash) {
  std::lock_guard lk(mu_);
  return seen_.insert(hash).second;
}

FilePacker::FilePacker(ChunkSink& sink, const std::vector<Rewrite>& rewrites)
    : sink_(sink), rewrites_(rewrites), cctx_(ZSTD_createCCtx()) {
  for (const auto& r : rewrites_)
    if (r.from != r.to) max_from_ = std::max(max_from_, r.from.size());
}

FilePacker::~FilePacker() {
  ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_));
}

Result<std::size_t> FilePacker::read_block(int fd, const fs::path& src, char* buf, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail(ErrorCode::failure,
                  fmt::format("cannot read {}: {}", src.string(), errno_text(errno)));
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

Result<void> FilePacker::store_chunk(std::string_view piece, const std::string& hash,
                                     PackedFile& o) {
  o.chunks.emplace_back(hash, piece.size());
  if (!sink_.claim(hash)) return {};  // another file of this pack has (or is storing) it
  fs::path p = chunk_path(sink_.store(), hash);
  struct stat st {};
  if (::stat(p.c_str(), &st) == 0) return {};
  if (sink_.dry_run()) {
    ++o.chunks_new;
    o.bytes_new += piece.size();
    return {};
  }
  std::size_t bound = ZSTD_compressBound(piece.size());
  if (zbuf_.size() < bound) zbuf_.resize(bound);
  note(zbuf_.size());
  auto* cctx = static_cast<ZSTD_CCtx*>(cctx_);
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, sink_.level());
  if (sink_.level() == 3 && piece.size() > kSmallTablesAbove) {
    // Level 2's table sizes (17 -> 16, 16 -> 15): fewer cache misses, see kSmallTablesAbove.
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_hashLog, 16);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_chainLog, 15);
  }
  std::size_t n = ZSTD_compress2(cctx, zbuf_.data(), zbuf_.size(), piece.data(), piece.size());
  if (ZSTD_isError(n))
    return fail(ErrorCode::internal, fmt::format("zstd: {}", ZSTD_getErrorName(n)));
  auto ok = write_atomic(p, std::string_view(zbuf_.data(), n), 0644);
  if (!ok && errno == ENOENT) {  // the store's directories went away under us: make them again
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    ok = write_atomic(p, std::string_view(zbuf_.data(), n), 0644);
  }
  if (!ok) return std::unexpected(ok.error());
  o.bytes_stored += n;
  o.bytes_new += piece.size();
  ++o.chunks_new;
  return {};
}

Result<void> FilePacker::pack_whole(int fd, const fs::path& src, std::size_t size_hint,
                                    PackedFile& o) {
  // Read to the end (the file may have grown since the walk).
  data_.clear();
  for (;;) {
    std::size_t have = data_.size();
    // The size from fstat plus one byte, to see the end in one read; doubling if it grew.
    std::size_t want =
        have == 0 ? size_hint + 1 : std::max<std::size_t>(have + (1u << 16), have * 2);
    std::size_t got = 0;
    Result<std::size_t> r = 0;
    data_.resize_and_overwrite(want, [&](char* p, std::size_t) {
      r = read_block(fd, src, p + have, want - have);
      got = r ? *r : 0;
      return have + got;
    });
    if (!r) return std::unexpected(r.error());
    if (data_.size() < want) break;
  }
  note(data_.capacity());
  o.bytes_read = data_.size();
  auto rel = relocate(data_, rewrites_);
  o.relocated = rel.changed;
  if (!rel.fits) {
    o.too_long = true;
    return {};
  }
  o.size = data_.size();
  auto ends = chunk_boundaries(data_);
  if (ends.size() == 1) {  // one chunk: the file's hash is the chunk's
    o.sha256 = sha256_hex(data_);
    return store_chunk(data_, o.sha256, o);
  }
  std::size_t start = 0;
  for (std::size_t end : ends) {
    std::string_view piece(data_.data() + start, end - start);
    if (auto ok = store_chunk(piece, sha256_hex(piece), o); !ok) return ok;
    start = end;
  }
  o.sha256 = file_id(o.chunks);  // each byte hashed once (manifest format 2)
  return {};
}

Result<bool> FilePacker::has_nul(int fd, const fs::path& src) {
  data_.resize(kPackBlock);
  for (;;) {
    auto n = read_block(fd, src, data_.data(), data_.size());
    if (!n) return std::unexpected(n.error());
    if (*n == 0) return false;
    if (std::memchr(data_.data(), 0, *n)) return true;
  }
}

Result<void> FilePacker::pack_stream(int fd, const fs::path& src, bool relocating, PackedFile& o,
                                     bool& needs_relocation) {
  chunker_.reset();
  std::optional<Relocator> rel;
  if (relocating) {
    auto binary = has_nul(fd, src);
    if (!binary) return std::unexpected(binary.error());
    if (::lseek(fd, 0, SEEK_SET) != 0)
      return fail(ErrorCode::failure,
                  fmt::format("cannot read {}: {}", src.string(), errno_text(errno)));
    rel.emplace(rewrites_, *binary);
  }
  std::optional<Error> failed;
  auto emit = [&](std::string_view piece) {
    if (failed) return;
    if (auto ok = store_chunk(piece, sha256_hex(piece), o); !ok) failed = ok.error();
  };
  std::string tail;  // optimistic: the last max_from_ - 1 bytes of the previous block
  data_.resize(kPackBlock);
  note(data_.capacity());
  for (;;) {
    auto got = read_block(fd, src, data_.data(), data_.size());
    if (!got) return std::unexpected(got.error());
    std::size_t n = *got;
    if (n == 0) break;
    std::string_view block(data_.data(), n);
    o.bytes_read += n;
    std::string_view out = block;
    if (rel) {
      rel_.clear();
      rel->feed(block, rel_);
      note(rel_.capacity());
      out = rel_;
    } else if (max_from_ > 0) {
      std::string seam = tail;
      seam.append(block.substr(0, max_from_ - 1));
      for (const auto& r : rewrites_) {
        if (r.from.empty() || r.from == r.to) continue;
        if (::memmem(block.data(), block.size(), r.from.data(), r.from.size()) ||
            ::memmem(seam.data(), seam.size(), r.from.data(), r.from.size())) {
          needs_relocation = true;
          return {};
        }
      }
      std::size_t keep = max_from_ - 1;
      if (block.size() >= keep) {
        tail.assign(block.substr(block.size() - keep));
      } else {
        tail.append(block);
        if (tail.size() > keep) tail.erase(0, tail.size() - keep);
      }
    }
    o.size += out.size();
    chunker_.feed(out, emit);
    note(chunker_.buffered_capacity());
    if (failed) return std::unexpected(*failed);
  }
  if (rel) {
    rel_.clear();
    rel->finish(rel_);
    o.size += rel_.size();
    chunker_.feed(rel_, emit);
    o.relocated = rel->changed();
    if (!rel->fits()) {
      o.too_long = true;
      return {};
    }
  }
  chunker_.finish(emit);
  if (failed) return std::unexpected(*failed);
  o.sha256 = file_id(o.chunks);
  return {};
}

Result<PackedFile> FilePacker::pack(const fs::path& src) {
  int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int e = errno;
    return fail(
        ErrorCode::failure, fmt::format("cannot read {}: {}", src.string(), errno_text(e)),
        e == EACCES ? "make the file readable by this user, or remove it from the tree" : "");
  }
  UniqueFd closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return fail(ErrorCode::failure,
                fmt::format("cannot read {}: {}", src.string(), errno_text(errno)));
  PackedFile o;
  if (static_cast<uint64_t>(st.st_size) <= kPackInMemoryMax) {
    if (auto ok = pack_whole(fd, src, static_cast<std::size_t>(st.st_size), o); !ok)
      return std::unexpected(ok.error());
    return o;
  }
  bool needs_relocation = false;
  if (auto ok = pack_stream(fd, src, false, o, needs_relocation); !ok)
    return std::unexpected(ok.error());
  if (!needs_relocation) return o;
  // A prefix turned up: start again, relocating. Chunks already stored for the raw bytes stay
  // unreferenced until `runtime gc`; they are not counted for this file.
  if (::lseek(fd, 0, SEEK_SET) != 0)
    return fail(ErrorCode::failure,
                fmt::format("cannot read {}: {}", src.string(), errno_text(errno)));
  o = PackedFile{};
  if (auto ok = pack_stream(fd, src, true, o, needs_relocation); !ok)
    return std::unexpected(ok.error());
  return o;
}

}  // namespace gedge::runtime::detail
