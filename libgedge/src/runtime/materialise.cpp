// push --to DIR: copy the chunks the target store lacks, build the tree in a hidden staging dir
// (identical files hardlinked through a content-addressed object dir), verify, rename into place.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <optional>

#include "chunk_store.hpp"
#include "gedge/progress_bytes.hpp"
#include "gedge/runtime.hpp"
#include "manifest.hpp"

namespace fs = std::filesystem;

namespace gedge::runtime {

nlohmann::json PushResult::to_json() const {
  nlohmann::json j{{"target", target},
                   {"root", root},
                   {"state", state},
                   {"bytes_sent", bytes_sent},
                   {"chunks_sent", chunks_sent},
                   {"chunks_skipped", chunks_skipped},
                   {"files", files},
                   {"files_linked", files_linked},
                   {"files_repaired", files_repaired},
                   {"repaired", repaired}};
  if (compressed) j["compressed"] = *compressed;
  if (dry_run) {
    j["dry_run"] = true;
    j["chunks_to_send"] = chunks_to_send;
  }
  return j;
}

namespace {

using detail::Dir;

// Everything below `root` is reached through descriptors opened without following links
// (detail::Dir), and every manifest path was checked on load (parse_manifest): nothing planted
// in a shared target, and nothing in a manifest, can make a write land outside the target.
struct Target {
  fs::path root;
  std::optional<Dir> top;                              // root itself
  std::optional<Dir> chunks, objects, tmp, manifests;  // root/.gedge/...
  fs::path local_store;
  PushResult* res = nullptr;  // null: read-only verification
};

Error io_error(const std::string& what, const fs::path& p, int err) {
  return Error{
      ErrorCode::failure, fmt::format("{} {}: {}", what, p.string(), detail::errno_text(err)),
      err == ENOSPC
          ? "the target is full: free space there (nothing was made visible), then push again"
          : ""};
}

Result<void> mkdirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) return std::unexpected(io_error("cannot create", p, ec.value()));
  return {};
}

std::pair<std::string, std::string> split_rel(const std::string& rel) {
  auto slash = rel.rfind('/');
  if (slash == std::string::npos) return {"", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

bool lstat_at(const Dir& d, const std::string& name, struct stat& st) {
  return ::fstatat(d.fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

// Removes whatever is at `name` in `d` (a directory recursively, never following a link: the
// /proc path resolves `d` itself, then remove_all does not follow).
void remove_at(const Dir& d, const std::string& name) {
  struct stat st {};
  if (!lstat_at(d, name, st)) return;
  if (!S_ISDIR(st.st_mode)) {
    ::unlinkat(d.fd(), name.c_str(), 0);
    return;
  }
  std::error_code ec;
  fs::remove_all(fs::path("/proc/self/fd") / std::to_string(d.fd()) / name, ec);
}

// The directory holding an entry, reopened only when it changes (entries come in walk order).
struct ParentCache {
  std::string rel;
  std::optional<Dir> dir;
  Result<const Dir*> get(const Dir& top, const std::string& parent) {
    if (!dir || rel != parent) {
      dir.reset();
      GEDGE_TRY_ASSIGN(auto d, Dir::open(top.fd(), parent, /*create=*/false, top.path()));
      dir.emplace(std::move(d));
      rel = parent;
    }
    return &*dir;
  }
  void forget() { dir.reset(); }
};

// Copies one chunk from the local store to the target store (atomically).
Result<void> send_chunk(Target& t, const std::string& h) {
  fs::path src = detail::chunk_path(t.local_store, h);
  auto data = detail::slurp(src);
  if (!data) {
    struct stat st {};
    if (::stat(src.c_str(), &st) != 0)
      return fail(ErrorCode::failure, fmt::format("chunk {} is missing from the local store", h),
                  "run gedge runtime verify on the bundle and pack it again");
    return std::unexpected(data.error());
  }
  GEDGE_TRY_ASSIGN(auto sub,
                   Dir::open(t.chunks->fd(), h.substr(0, 2), /*create=*/true, t.chunks->path()));
  GEDGE_TRY(detail::write_atomic_at(sub, h, *data, 0644));
  t.res->bytes_sent += data->size();
  t.res->chunks_sent += 1;
  return {};
}

Result<std::string> target_chunk(const Dir& sub, const std::string& h) {
  GEDGE_TRY_ASSIGN(auto raw, detail::slurp_at(sub, h));
  return detail::decode_chunk(raw, h);
}

struct Object {
  Dir dir;
  std::string name;
  unsigned mode;
};

// The object (a read-only file with this content and mode) under root/.gedge/objects, built
// from chunks when missing or when its content no longer matches.
Result<Object> ensure_object(Target& t, const nlohmann::json& m, const nlohmann::json& e,
                             unsigned mode) {
  std::string sha = e["sha256"].get<std::string>();
  GEDGE_TRY_ASSIGN(
      auto od, Dir::open(t.objects->fd(), sha.substr(0, 2), /*create=*/true, t.objects->path()));
  std::string name = fmt::format("{}.{:o}", sha, mode);
  struct stat st {};
  if (lstat_at(od, name, st) && S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode) {
    auto data = detail::slurp_at(od, name);
    if (data && file_matches(m, e, *data)) return Object{std::move(od), name, mode};
  }
  std::string content;
  content.reserve(e.value("size", uint64_t{0}));
  for (const auto& c : e["chunks"]) {
    std::string h = c["sha256"].get<std::string>();
    GEDGE_TRY_ASSIGN(auto sub,
                     Dir::open(t.chunks->fd(), h.substr(0, 2), /*create=*/true, t.chunks->path()));
    auto data = target_chunk(sub, h);
    if (!data || sha256_hex(*data) != h) {
      // A corrupted or lost chunk on the target: send it again from the local store.
      remove_at(sub, h);
      GEDGE_TRY(send_chunk(t, h));
      data = target_chunk(sub, h);
      if (!data || sha256_hex(*data) != h)
        return fail(ErrorCode::failure,
                    fmt::format("chunk {} does not match its hash after sending", h));
    }
    content += *data;
  }
  // Each chunk matched its id above: a file named by its chunk list (checked against the list on
  // load) is verified; one named by its bytes is hashed whole.
  if (!named_by_chunks(m, e) && sha256_hex(content) != sha)
    return fail(ErrorCode::failure,
                fmt::format("file {} does not match its hash", e["path"].get<std::string>()));
  remove_at(od, name);  // whatever was there (a directory, a link): replaced by the object
  GEDGE_TRY(detail::write_atomic_at(od, name, content, mode));
  return Object{std::move(od), name, mode};
}

// Makes `name` in `dir` a hardlink of the object (a copy when links are impossible), replacing
// what is there.
Result<void> place(const Object& obj, const Dir& dir, const std::string& name, bool replace) {
  std::string tmp = replace ? ".gedge-repair." + name : name;
  ::unlinkat(dir.fd(), tmp.c_str(), 0);
  if (::linkat(obj.dir.fd(), obj.name.c_str(), dir.fd(), tmp.c_str(), 0) != 0) {
    if (errno != EXDEV && errno != EMLINK && errno != EPERM)
      return std::unexpected(io_error("cannot link", dir.path() / tmp, errno));
    GEDGE_TRY_ASSIGN(auto data, detail::slurp_at(obj.dir, obj.name));
    GEDGE_TRY(detail::write_atomic_at(dir, tmp, data, obj.mode));
  }
  if (replace && ::renameat(dir.fd(), tmp.c_str(), dir.fd(), name.c_str()) != 0)
    return std::unexpected(io_error("cannot replace", dir.path() / name, errno));
  return {};
}

Result<void> chmod_dir(const Dir& top, const std::string& rel, unsigned mode) {
  GEDGE_TRY_ASSIGN(auto d, Dir::open(top.fd(), rel, /*create=*/false, top.path()));
  if (::fchmod(d.fd(), mode) != 0)
    return std::unexpected(io_error("cannot chmod", d.path(), errno));
  return {};
}

// Checks (and with t.res set, repairs) an existing tree at `top`. Returns the bad paths.
Result<std::vector<std::string>> check_tree(Target& t, const nlohmann::json& m, const Dir& top) {
  std::vector<std::string> bad;
  std::map<std::string, const nlohmann::json*> by_path;
  for (const auto& e : m["entries"]) by_path[e["path"].get<std::string>()] = &e;
  ParentCache parents;
  for (const auto& e : m["entries"]) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
    std::string rel = e["path"].get<std::string>();
    std::string type = e["type"].get<std::string>();
    auto [parent_rel, name] = split_rel(rel);
    auto parent = parents.get(top, parent_rel);
    if (!parent) {
      if (t.res) return std::unexpected(parent.error());
      bad.push_back(rel);  // read-only: a missing or replaced parent dir is a bad entry
      continue;
    }
    const Dir& dir = **parent;
    struct stat st {};
    bool exists = lstat_at(dir, name, st);
    bool ok = false;
    const nlohmann::json* fe = &e;
    if (type == "hardlink")
      fe = by_path.count(e["link"].get<std::string>()) ? by_path[e["link"].get<std::string>()]
                                                       : nullptr;
    if (type == "dir") {
      unsigned mode = applied_mode(m, e);
      ok = exists && S_ISDIR(st.st_mode);
      if (ok && (st.st_mode & 07777) != mode) {
        if (t.res)
          GEDGE_TRY(chmod_dir(top, rel, mode));
        else
          ok = false;
      }
      if (!ok && t.res) {
        if (exists) remove_at(dir, name);
        if (::mkdirat(dir.fd(), name.c_str(), mode) != 0)
          return std::unexpected(io_error("cannot create", dir.path() / name, errno));
        GEDGE_TRY(chmod_dir(top, rel, mode));
      }
    } else if (type == "symlink") {
      std::string target = e["target"].get<std::string>();
      if (exists && S_ISLNK(st.st_mode)) {
        std::string got(static_cast<std::size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlinkat(dir.fd(), name.c_str(), got.data(), got.size());
        ok = n >= 0 && static_cast<std::size_t>(n) == target.size() &&
             got.compare(0, target.size(), target) == 0;
      }
      if (!ok && t.res) {
        remove_at(dir, name);
        if (::symlinkat(target.c_str(), dir.fd(), name.c_str()) != 0)
          return std::unexpected(io_error("cannot create symlink", dir.path() / name, errno));
      }
    } else if (fe) {
      unsigned mode = applied_mode(m, *fe);
      if (exists && S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode &&
          static_cast<uint64_t>(st.st_size) == (*fe)["size"].get<uint64_t>()) {
        auto data = detail::slurp_at(dir, name);
        ok = data && file_matches(m, *fe, *data);
      }
      if (!ok && t.res) {
        if (exists && S_ISDIR(st.st_mode)) remove_at(dir, name);
        GEDGE_TRY_ASSIGN(auto obj, ensure_object(t, m, *fe, mode));
        GEDGE_TRY(place(obj, dir, name, /*replace=*/true));
      }
    }
    if (!ok) bad.push_back(rel);
  }
  return bad;
}

Result<void> build_tree(Target& t, const nlohmann::json& m, const Dir& stage, Reporter& rep) {
  const auto& entries = m["entries"];
  std::size_t n = 0, total = entries.size();
  ParentCache parents;
  for (const auto& e : entries) {
    if (cancel_requested())
      return fail(ErrorCode::interrupted, "push interrupted; nothing was made visible");
    rep.progress("materialising", ++n, total);
    std::string type = e["type"].get<std::string>();
    auto [parent_rel, name] = split_rel(e["path"].get<std::string>());
    GEDGE_TRY_ASSIGN(const Dir* dir, parents.get(stage, parent_rel));
    if (type == "dir") {
      if (::mkdirat(dir->fd(), name.c_str(), 0700) != 0)
        return std::unexpected(io_error("cannot create", dir->path() / name, errno));
    } else if (type == "symlink") {
      if (::symlinkat(e["target"].get<std::string>().c_str(), dir->fd(), name.c_str()) != 0)
        return std::unexpected(io_error("cannot create symlink", dir->path() / name, errno));
    } else if (type == "hardlink") {
      auto [first_rel, first_name] = split_rel(e["link"].get<std::string>());
      GEDGE_TRY_ASSIGN(auto first,
                       Dir::open(stage.fd(), first_rel, /*create=*/false, stage.path()));
      if (::linkat(first.fd(), first_name.c_str(), dir->fd(), name.c_str(), 0) != 0)
        return std::unexpected(io_error("cannot link", dir->path() / name, errno));
      ++t.res->files_linked;
    } else {
      GEDGE_TRY_ASSIGN(auto obj, ensure_object(t, m, e, applied_mode(m, e)));
      GEDGE_TRY(place(obj, *dir, name, /*replace=*/false));
      ++t.res->files;
      ++t.res->files_linked;
    }
  }
  parents.forget();
  // Directory modes last (deepest first), so read-only dirs do not block their own filling.
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if ((*it)["type"] == "dir")
      GEDGE_TRY(chmod_dir(stage, (*it)["path"].get<std::string>(), applied_mode(m, *it)));
  return {};
}

// Opens root/.gedge and its stores (creating them), never following a link below root.
Result<void> open_stores(Target& t) {
  GEDGE_TRY_ASSIGN(auto meta, Dir::open(t.top->fd(), ".gedge", /*create=*/true, t.root));
  GEDGE_TRY_ASSIGN(auto chunks, Dir::open(meta.fd(), "chunks", true, meta.path()));
  GEDGE_TRY_ASSIGN(auto objects, Dir::open(meta.fd(), "objects", true, meta.path()));
  GEDGE_TRY_ASSIGN(auto tmp, Dir::open(meta.fd(), "tmp", true, meta.path()));
  GEDGE_TRY_ASSIGN(auto manifests, Dir::open(meta.fd(), "manifests", true, meta.path()));
  t.chunks.emplace(std::move(chunks));
  t.objects.emplace(std::move(objects));
  t.tmp.emplace(std::move(tmp));
  t.manifests.emplace(std::move(manifests));
  return {};
}

}  // namespace

Result<PushResult> push_to_dir(const Paths& paths, const Bundle& b, const fs::path& root_in,
                               Reporter& rep, bool dry_run) {
  std::error_code ec;
  fs::path root = fs::absolute(root_in, ec).lexically_normal();
  PushResult res;
  res.target = "dir:" + root.string();
  res.root = root.string();
  res.compressed = true;  // the target store keeps the zstd frames as they are
  Target t;
  t.root = root;
  t.local_store = paths.runtimes / "chunks";
  t.res = &res;
  fs::path chunks_path = root / ".gedge" / "chunks";
  if (dry_run) {
    // Only look: which chunks the target store lacks, and whether root/<id> is already there.
    res.dry_run = true;
    for (const auto& [h, size] : manifest_chunks(b.manifest)) {
      struct stat st {};
      if (::stat(detail::chunk_path(chunks_path, h).c_str(), &st) == 0) {
        ++res.chunks_skipped;
        continue;
      }
      ++res.chunks_sent;
      res.chunks_to_send.push_back(h);
      if (::stat(detail::chunk_path(t.local_store, h).c_str(), &st) == 0)
        res.bytes_sent += static_cast<uint64_t>(st.st_size);
    }
    for (const auto& e : b.manifest["entries"])
      if (e["type"] == "file") ++res.files;
    res.state = fs::is_directory(root / b.id, ec) ? "would_verify" : "would_create";
    return res;
  }
  GEDGE_TRY(mkdirs(root));
  GEDGE_TRY_ASSIGN(auto top, Dir::at_path(root));
  t.top.emplace(std::move(top));
  GEDGE_TRY(open_stores(t));
  GEDGE_TRY_ASSIGN(auto lock,
                   detail::StoreLock::take(root / ".gedge" / "lock", /*exclusive=*/true));
  GEDGE_TRY_ASSIGN(auto local_lock,
                   detail::StoreLock::take(paths.runtimes / "lock", /*exclusive=*/false));

  // 1. Send only the chunks the target lacks.
  auto chunks = manifest_chunks(b.manifest);
  uint64_t bytes_total = 0, bytes_done = 0;
  for (const auto& c : chunks) bytes_total += c.second;
  const std::string task = bytes_task(fmt::format("{}: sending", res.target));
  for (const auto& [h, size] : chunks) {
    if (cancel_requested())
      return fail(ErrorCode::interrupted,
                  "push interrupted; sent chunks are kept for the next push");
    rep.progress(task, bytes_done, bytes_total);
    bytes_done += size;
    struct stat st {};
    if (::fstatat(t.chunks->fd(), (h.substr(0, 2) + "/" + h).c_str(), &st, AT_SYMLINK_NOFOLLOW) ==
            0 &&
        S_ISREG(st.st_mode)) {
      ++res.chunks_skipped;
      continue;
    }
    GEDGE_TRY(send_chunk(t, h));
  }
  rep.progress(task, bytes_total, bytes_total);

  auto manifest_text = canonical_manifest(b.manifest);
  std::string manifest_name = b.id + ".json";
  struct stat st {};
  bool exists = lstat_at(*t.top, b.id, st);
  if (exists && S_ISDIR(st.st_mode)) {
    // 2a. Already there: verify every file, repair what differs.
    GEDGE_TRY_ASSIGN(auto dir, Dir::open(t.top->fd(), b.id, /*create=*/false, root));
    GEDGE_TRY_ASSIGN(auto bad, check_tree(t, b.manifest, dir));
    res.repaired = bad;
    res.files_repaired = bad.size();
    res.state = bad.empty() ? "verified" : "repaired";
    for (const auto& e : b.manifest["entries"])
      if (e["type"] == "file") ++res.files;
  } else {
    // 2b. Build in a hidden staging dir, then one rename makes it visible (over anything that is
    // not a directory there, e.g. a planted link, which is removed, never followed).
    std::string stage_name = fmt::format("{}.{}", b.id, ::getpid());
    remove_at(*t.tmp, stage_name);
    auto built = [&]() -> Result<void> {
      if (::mkdirat(t.tmp->fd(), stage_name.c_str(), 0755) != 0)
        return std::unexpected(io_error("cannot create", t.tmp->path() / stage_name, errno));
      GEDGE_TRY_ASSIGN(auto stage,
                       Dir::open(t.tmp->fd(), stage_name, /*create=*/false, t.tmp->path()));
      GEDGE_TRY(build_tree(t, b.manifest, stage, rep));
      Target check;
      GEDGE_TRY_ASSIGN(auto bad, check_tree(check, b.manifest, stage));
      if (!bad.empty())
        return fail(ErrorCode::failure,
                    fmt::format("materialised tree does not verify: {}", bad.front()));
      GEDGE_TRY(detail::write_atomic_at(*t.manifests, manifest_name, manifest_text, 0644));
      if (exists) remove_at(*t.top, b.id);
      if (::renameat(t.tmp->fd(), stage_name.c_str(), t.top->fd(), b.id.c_str()) != 0)
        return std::unexpected(io_error("cannot rename into", root / b.id, errno));
      return {};
    }();
    if (!built) {
      remove_at(*t.tmp, stage_name);
      return std::unexpected(built.error());
    }
    res.state = "created";
  }
  if (!lstat_at(*t.manifests, manifest_name, st))
    GEDGE_TRY(detail::write_atomic_at(*t.manifests, manifest_name, manifest_text, 0644));
  rep.step(res.target, fmt::format("{} {} ({} chunks sent, {} skipped)", res.state,
                                   b.id.substr(0, 12), res.chunks_sent, res.chunks_skipped));
  return res;
}

Result<VerifyResult> verify_dir(const Bundle& b, const fs::path& root, Reporter& rep) {
  (void)rep;
  VerifyResult out;
  out.id = b.id;
  out.chunks = manifest_chunks(b.manifest).size();
  auto not_there = [&] {
    return fail(
        ErrorCode::not_found,
        fmt::format("bundle {} is not materialised under {}", b.id.substr(0, 12), root.string()),
        "gedge runtime push ID --to DIR");
  };
  auto top = Dir::at_path(root);
  if (!top) return not_there();
  struct stat st {};
  if (!lstat_at(*top, b.id, st) || !S_ISDIR(st.st_mode)) return not_there();
  GEDGE_TRY_ASSIGN(auto dir, Dir::open(top->fd(), b.id, /*create=*/false, root));
  Target t;
  GEDGE_TRY_ASSIGN(out.bad_files, check_tree(t, b.manifest, dir));
  return out;
}

}  // namespace gedge::runtime
