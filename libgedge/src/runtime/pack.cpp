// runtime pack: walk the component trees, relocate, chunk, hash, compress, store, record.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <regex>
#include <set>
#include <thread>
#include <unordered_set>

#include "chunk_store.hpp"
#include "gedge/fd.hpp"
#include "gedge/progress_bytes.hpp"
#include "gedge/runtime.hpp"
#include "gedge/stores.hpp"
#include "manifest.hpp"
#include "pack_file.hpp"
#include "pack_walk.hpp"
#include "stat_cache.hpp"

namespace fs = std::filesystem;

namespace gedge::runtime {

nlohmann::json PackResult::to_json() const {
  double ratio =
      bytes_unique ? static_cast<double>(bytes_read) / static_cast<double>(bytes_unique) : 1.0;
  double compression = bytes_unique && chunks_new == chunks && bytes_stored
                           ? static_cast<double>(bytes_unique) / static_cast<double>(bytes_stored)
                           : 0.0;
  nlohmann::json j{{"id", id},
                   {"short_id", id.substr(0, 12)},
                   {"name", name},
                   {"prefix", prefix},
                   {"created", created},
                   {"files", files},
                   {"dirs", dirs},
                   {"symlinks", symlinks},
                   {"hardlinks", hardlinks},
                   {"bytes_read", bytes_read},
                   {"bytes_unique", bytes_unique},
                   {"bytes_stored", bytes_stored},
                   {"chunks", chunks},
                   {"chunks_new", chunks_new},
                   {"bytes_new", bytes_new},
                   {"files_cached", files_cached},
                   {"bytes_cached", bytes_cached},
                   {"dedupe_ratio", ratio},
                   {"relocated", relocated},
                   {"outside_links", outside_links},
                   {"versions", versions},
                   {"env", env},
                   {"requires", requires_}};
  if (compression > 0) j["compression_ratio"] = compression;
  j["modes_stripped"] = modes_stripped;
  if (keep_special_modes) j["keep_special_modes"] = true;
  if (dry_run) j["dry_run"] = true;
  return j;
}

namespace {

using detail::printable;
using detail::WalkEntry;
using detail::Walker;

std::string list_some(const std::vector<std::string>& v, std::size_t max = 10) {
  std::string out;
  for (std::size_t i = 0; i < v.size() && i < max; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > max) out += fmt::format(" (and {} more)", v.size() - max);
  return out;
}

struct FileOut {
  std::string sha256;
  uint64_t size = 0;
  std::vector<std::pair<std::string, uint64_t>> chunks;
  bool relocated = false;
  bool too_long = false;
  bool cached = false;  // from the stat cache, not read
  std::optional<Error> error;
};

// Files changed less than kRacyNs before the pack started are not cached: a change within the
// same timestamp tick would go unnoticed.
constexpr int64_t kRacyNs = 2'000'000'000;
constexpr std::size_t kCacheSets = 16;

std::string cache_set_key(const std::vector<Rewrite>& rewrites) {
  std::string k;
  for (const auto& r : rewrites) k += r.from + '\0' + r.to + '\0';
  return sha256_hex(k);
}

// The cached outcome for `e`, when its stat matches and every chunk is still in the store
// (`store_fd`, the chunks directory: each chunk stat resolves two names, not the whole path).
std::optional<FileOut> cache_lookup(const detail::StatCache& cache, const WalkEntry& e,
                                    int store_fd) {
  const auto* c = cache.find(e.src);
  if (!c || c->size != e.size || c->mtime_ns != e.mtime_ns || c->ctime_ns != e.ctime_ns ||
      c->ino != e.ino || c->dev != e.dev)
    return std::nullopt;
  std::string rel;
  for (const auto& [h, n] : c->chunks) {
    rel.assign(h, 0, 2);
    rel += '/';
    rel += h;
    struct stat st {};
    if (::fstatat(store_fd, rel.c_str(), &st, 0) != 0) return std::nullopt;
  }
  FileOut o;
  o.size = c->out_size;
  o.sha256 = c->sha256;
  o.relocated = c->relocated;
  o.chunks = c->chunks;
  o.cached = true;
  return o;
}

detail::StatRecord cache_record(const WalkEntry& e, const FileOut& o) {
  detail::StatRecord r;
  r.size = e.size;
  r.mtime_ns = e.mtime_ns;
  r.ctime_ns = e.ctime_ns;
  r.ino = e.ino;
  r.dev = e.dev;
  r.out_size = o.size;
  r.sha256 = o.sha256;
  r.relocated = o.relocated;
  r.chunks = o.chunks;
  return r;
}

// One pack, step by step: each step reads and fills the fields it names.
struct Pack {
  const Paths& paths;
  Inventory& inv;
  const PackRequest& req;
  Reporter& rep;

  std::string prefix;
  std::vector<ComponentSpec> comps;
  Walker w;
  fs::path store, cache_file;
  // A dry run writes nothing, not even the lock file (the store may not exist yet).
  std::optional<detail::StoreLock> lock;
  int64_t started_ns = 0;
  detail::StatCache cache;
  std::future<detail::StatCache> cache_loading;  // the stat cache, read during the walk
  // Regular files are processed in parallel; each worker fills its own slot of `outs`, so the
  // manifest does not depend on scheduling.
  std::vector<std::size_t> todo;  // the regular files' indexes in w.entries
  uint64_t total_bytes = 0;
  std::vector<FileOut> outs;
  std::atomic<std::size_t> next{0};
  std::atomic<uint64_t> bytes_read{0}, bytes_stored{0}, chunks_new{0}, bytes_new{0},
      bytes_cached{0};
  std::atomic<bool> stop{false};
  std::mutex rep_mu;
  PackResult res;
  std::unordered_set<std::string> unique;  // the bundle's distinct chunks
  std::string text;                        // the canonical manifest

  // The bundle name, that something is given, the prefix (trailing '/' dropped) and the level.
  Result<void> check_request() {
    static const std::regex name_re(R"(^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$)");
    if (!std::regex_match(req.name, name_re))
      return fail(ErrorCode::usage, fmt::format("invalid bundle name '{}'", printable(req.name)),
                  "names use letters, digits and '._@+-', e.g. pt2.1-cuda12.1");
    if (req.components.empty())
      return fail(ErrorCode::usage, "nothing to pack",
                  "give at least one DIR or --component ROLE=DIR");
    prefix = req.prefix.empty() ? "/opt/gedge/rt/" + req.name : req.prefix;
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    if (prefix.empty() || prefix[0] != '/' || prefix.find("/../") != std::string::npos ||
        prefix.find('\n') != std::string::npos)
      return fail(ErrorCode::usage,
                  fmt::format("--prefix '{}' must be an absolute path", printable(prefix)));
    if (req.level < 1 || req.level > 19) return fail(ErrorCode::usage, "--level must be 1..19");
    return {};
  }

  // The components' roles checked and directories resolved, with the rewrites of their paths to
  // the prefix; then their trees walked, refusing special files, non-UTF-8 and unreadable names.
  Result<void> walk_components() {
    static const std::regex role_re(R"(^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$)");
    std::set<std::string> roles;
    w.keep_special = req.keep_special_modes;
    for (const auto& c : req.components) {
      if (!std::regex_match(c.role, role_re))
        return fail(
            ErrorCode::usage, fmt::format("invalid component role '{}'", printable(c.role)),
            "roles are env, cuda, cudnn, tensorrt, nccl, data or a word of letters, digits, '._-'");
      if (!roles.insert(c.role).second)
        return fail(ErrorCode::usage, fmt::format("component role '{}' given twice", c.role),
                    "use --component ROLE=DIR with distinct roles");
      std::error_code ec;
      fs::path abs = fs::absolute(c.dir, ec);
      fs::path canon = fs::canonical(c.dir, ec);
      if (ec || !fs::is_directory(canon))
        return fail(ErrorCode::usage,
                    fmt::format("component '{}': {} is not a directory", c.role, c.dir.string()));
      comps.push_back({c.role, canon});
      std::string to = prefix + "/" + c.role;
      w.rewrites.push_back({canon.string(), to});
      std::string a = abs.lexically_normal().string();
      while (a.size() > 1 && a.back() == '/') a.pop_back();
      if (a != canon.string()) w.rewrites.push_back({a, to});
    }
    // The stat cache is read while the trees are walked (it depends on the rewrites only).
    cache_file = paths.runtimes / "statcache";
    if (req.use_cache)
      cache_loading = std::async(std::launch::async, detail::StatCache::load, cache_file,
                                 cache_set_key(w.rewrites));
    for (const auto& c : comps) w.walk(c.dir, c.role);
    if (!w.refused.empty())
      return fail(
          ErrorCode::usage,
          fmt::format("refusing to pack device files, sockets or fifos: {}", list_some(w.refused)),
          "a runtime bundle holds files, directories and links only; remove these from the tree");
    if (!w.bad_names.empty())
      return fail(ErrorCode::usage,
                  fmt::format("file names that are not valid UTF-8: {}", list_some(w.bad_names)),
                  "manifests store names as UTF-8; rename these files (e.g. with convmv)");
    if (!w.unreadable.empty())
      return fail(ErrorCode::failure, fmt::format("cannot read: {}", list_some(w.unreadable)),
                  "make them readable by this user, or remove them from the tree");
    return {};
  }

  // The store's shared lock (not for a dry run), the time the pack starts and the stat cache.
  Result<void> open_store() {
    store = paths.runtimes / "chunks";
    if (!req.dry_run) {
      GEDGE_TRY_ASSIGN(auto l,
                       detail::StoreLock::take(paths.runtimes / "lock", /*exclusive=*/false));
      lock.emplace(std::move(l));
    }
    started_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    if (cache_loading.valid()) cache = cache_loading.get();
    return {};
  }

  // The regular files, from the stat cache or read, relocated, chunked, compressed and stored by
  // worker threads (--jobs, else one per CPU); progress in bytes. A worker's error stops the rest.
  void pack_files() {
    detail::ChunkSink sink(store, req.level, req.dry_run);
    // -1 when there is no store yet (a dry run's): then nothing is cached.
    UniqueFd store_fd(::open(store.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    for (std::size_t i = 0; i < w.entries.size(); ++i)
      if (w.entries[i].type == 'f') {
        todo.push_back(i);
        total_bytes += w.entries[i].size;
      }
    outs.resize(todo.size());
    unsigned jobs = req.jobs ? req.jobs : std::max(1u, std::thread::hardware_concurrency());
    jobs = std::min<unsigned>(jobs, std::max<std::size_t>(1, todo.size()));
    auto worker = [&] {
      detail::FilePacker packer(sink, w.rewrites);
      for (;;) {
        if (stop || cancel_requested()) return;
        std::size_t k = next++;
        if (k >= todo.size()) return;
        const WalkEntry& e = w.entries[todo[k]];
        FileOut& o = outs[k];
        if (auto hit = cache_lookup(cache, e, store_fd.get())) {
          o = std::move(*hit);
          bytes_read += e.size;
          bytes_cached += e.size;
          std::lock_guard lk(rep_mu);  // read under the lock: the reported bytes never go back
          rep.progress(bytes_task("packing"), bytes_read.load(), total_bytes);
          continue;
        }
        auto packed = packer.pack(e.src);
        if (!packed) {
          o.error = packed.error();
          stop = true;
          return;
        }
        bytes_read += packed->bytes_read;
        bytes_stored += packed->bytes_stored;
        chunks_new += packed->chunks_new;
        bytes_new += packed->bytes_new;
        o.size = packed->size;
        o.sha256 = std::move(packed->sha256);
        o.chunks = std::move(packed->chunks);
        o.relocated = packed->relocated;
        o.too_long = packed->too_long;
        std::lock_guard lk(rep_mu);
        rep.progress(bytes_task("packing"), bytes_read.load(), total_bytes);
      }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < jobs; ++t) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }

  // Ctrl-C, the first worker's error, and binaries whose build prefix is shorter than the prefix.
  Result<void> check_files() const {
    if (cancel_requested())
      return fail(ErrorCode::interrupted, "pack interrupted; nothing was recorded");
    for (const auto& o : outs)
      if (o.error) return std::unexpected(*o.error);
    std::vector<std::string> too_long;
    for (std::size_t k = 0; k < todo.size(); ++k)
      if (outs[k].too_long) too_long.push_back(w.entries[todo[k]].rel);
    if (too_long.empty()) return {};
    std::size_t shortest = SIZE_MAX;
    for (const auto& c : comps)
      shortest = std::min(shortest, c.dir.string().size() - c.role.size() - 1);
    return fail(
        ErrorCode::usage,
        fmt::format("the prefix '{}' does not fit in {} binary file(s) built under a shorter "
                    "prefix: {}",
                    prefix, too_long.size(), list_some(too_long)),
        fmt::format("binaries can only be relocated to a prefix no longer than the build "
                    "prefix: use a shorter --prefix (at most {} characters before the role), "
                    "or rebuild the environment under a longer path",
                    shortest));
  }

  // The manifest's entries in walk order, as their canonical JSON text (an array: what
  // canonical_manifest writes for the same entries, keys sorted, without building a JSON tree of
  // 20 000 objects); `res` started and the entries counted in it (kinds, relocated files, links
  // out of the bundle, distinct chunks and their bytes).
  std::string manifest_entries() {
    res.name = req.name;
    res.prefix = prefix;
    res.keep_special_modes = req.keep_special_modes;
    std::size_t n_chunks = 0;
    for (const auto& o : outs) n_chunks += o.chunks.size();
    unique.reserve(n_chunks);
    std::string t;
    t.reserve(w.entries.size() * 160 + n_chunks * 90);
    auto str = [&t](std::string_view key, std::string_view v) {
      t += '"';
      t += key;
      t += "\":";
      append_json_string(t, v);
    };
    auto num = [&t](std::string_view key, uint64_t v) {
      t += '"';
      t += key;
      t += "\":";
      t += std::to_string(v);
    };
    t += '[';
    std::size_t k = 0;
    for (const auto& e : w.entries) {
      if (t.size() > 1) t += ',';
      t += '{';
      // Keys in the order a sorted JSON object writes them.
      switch (e.type) {
        case 'd':
          num("mode", e.mode), t += ',', str("path", e.rel), t += ',', str("type", "dir");
          ++res.dirs;
          break;
        case 'l':
          num("mode", e.mode), t += ',';
          if (e.outside) {
            t += "\"outside\":true,";
            res.outside_links.push_back(e.rel + " -> " + e.link);
          }
          str("path", e.rel), t += ',', str("target", e.link), t += ',', str("type", "symlink");
          ++res.symlinks;
          break;
        case 'h':
          str("link", e.link), t += ',', num("mode", e.mode), t += ',', str("path", e.rel);
          t += ',', str("type", "hardlink");
          ++res.hardlinks;
          break;
        default: {
          const FileOut& o = outs[k++];
          t += "\"chunks\":[";
          bool first = true;
          for (const auto& [h, n] : o.chunks) {
            if (!first) t += ',';
            first = false;
            t += '{', str("sha256", h), t += ',', num("size", n), t += '}';
            if (unique.insert(h).second) res.bytes_unique += n;
          }
          t += "],", num("mode", e.mode), t += ',', str("path", e.rel), t += ',';
          str("sha256", o.sha256), t += ',', num("size", o.size), t += ',', str("type", "file");
          if (o.relocated) res.relocated.push_back(e.rel);
          ++res.files;
        }
      }
      t += '}';
    }
    t += ']';
    return t;
  }

  // Warnings: the mode bits dropped, the symlinks that point out of the bundle.
  void warn_entries() {
    res.modes_stripped = w.stripped;
    if (!w.stripped.empty())
      rep.warn(fmt::format(
          "setuid/setgid/sticky or group/other-write bits dropped from {} entr{}: {}",
          w.stripped.size(), w.stripped.size() == 1 ? "y" : "ies", list_some(w.stripped, 5)));
    for (const auto& l : res.outside_links)
      rep.warn(fmt::format("symlink points outside the bundle (kept as is, not followed): {}", l));
  }

  // The manifest (versions, driver requirements, env) as canonical text, the bundle id, and the
  // pack's totals in `res`.
  void make_manifest(const std::string& entries) {
    res.versions = detect_versions(comps);
    if (res.versions.contains("cuda")) {
      auto [full, compat] = min_driver_for_cuda(res.versions["cuda"].get<std::string>());
      res.requires_ = nlohmann::json::object();
      if (!full.empty()) res.requires_["cuda_driver_min"] = full;
      if (!compat.empty()) res.requires_["cuda_driver_min_compat"] = compat;
    } else {
      res.requires_ = nlohmann::json::object();
    }
    nlohmann::json comp_json = nlohmann::json::array();
    for (const auto& c : comps) comp_json.push_back({{"role", c.role}, {"path", c.role}});
    nlohmann::json manifest{{"format", kManifestFormat}, {"name", req.name},
                            {"prefix", prefix},          {"components", comp_json},
                            {"versions", res.versions},  {"requires", res.requires_}};
    if (req.keep_special_modes) manifest["keep_special_modes"] = true;
    manifest["env"] = derive_env(manifest, comps);
    res.env = manifest["env"];
    text = canonical_manifest_with_entries(std::move(manifest), entries);
    res.id = sha256_hex(text);
    res.bytes_read = bytes_read;
    res.bytes_stored = bytes_stored;
    res.chunks = unique.size();
    res.chunks_new = chunks_new;
    res.bytes_new = bytes_new;
    res.bytes_cached = bytes_cached;
    for (const auto& o : outs) res.files_cached += o.cached ? 1 : 0;
  }

  // A dry run's result: would the bundle be new?
  Result<PackResult> dry_run_result() {
    res.dry_run = true;
    GEDGE_TRY_ASSIGN(bool known, RuntimeStore(inv).exists(res.id));
    res.created = !known;
    return std::move(res);
  }

  // The stat cache with this pack's files (not those changed just before it started), unless it
  // is already that (nothing read: `files_cached` of every file). Runs beside record(): it reads
  // only the walk, the outputs and the loaded cache. A failure is the caller's warning.
  Result<void> save_cache(std::size_t files_cached) const {
    std::vector<std::pair<std::string, detail::StatRecord>> records;
    records.reserve(todo.size());
    for (std::size_t k2 = 0; k2 < todo.size(); ++k2) {
      const WalkEntry& e = w.entries[todo[k2]];
      if (e.mtime_ns > started_ns - kRacyNs || e.ctime_ns > started_ns - kRacyNs) continue;
      records.emplace_back(e.src, cache_record(e, outs[k2]));
    }
    if (files_cached == todo.size() && records.size() == cache.size()) return {};
    return cache.save(cache_file, records, kCacheSets);
  }

  // The bundle recorded in the inventory (created, or already known) and logged.
  Result<PackResult> record() {
    GEDGE_TRY_ASSIGN(res.created, RuntimeStore(inv).add({res.id, req.name, text, now_rfc3339()},
                                                        static_cast<int64_t>(res.files),
                                                        static_cast<int64_t>(total_bytes)));
    log_line("info", fmt::format("runtime pack name={} id={} files={} read={} stored={}", req.name,
                                 res.id, res.files, res.bytes_read, res.bytes_stored));
    return std::move(res);
  }
};

}  // namespace

Result<PackResult> pack(const Paths& paths, Inventory& inv, const PackRequest& req, Reporter& rep) {
  Pack p{paths, inv, req, rep};
  GEDGE_TRY(p.check_request());
  GEDGE_TRY(p.walk_components());
  GEDGE_TRY(p.open_store());
  p.pack_files();
  GEDGE_TRY(p.check_files());
  auto entries = p.manifest_entries();
  p.warn_entries();
  p.make_manifest(entries);
  if (req.dry_run) return p.dry_run_result();
  // The stat cache is written while the bundle is recorded; it only saves time, so failing to
  // write it does not fail the pack.
  std::future<Result<void>> saving;
  if (req.use_cache)
    saving =
        std::async(std::launch::async, [&p, n = p.res.files_cached] { return p.save_cache(n); });
  auto recorded = p.record();
  if (saving.valid())
    if (auto saved = saving.get(); !saved)
      rep.warn(fmt::format("stat cache not saved: {}", saved.error().message));
  return recorded;
}

}  // namespace gedge::runtime
