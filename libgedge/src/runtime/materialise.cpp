// push --to DIR: copy the chunks the target store lacks, build the tree in a hidden staging dir
// (identical files hardlinked through a content-addressed object dir), verify, rename into place.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "chunk_store.hpp"
#include "gedge/runtime.hpp"
#include "manifest.hpp"

namespace fs = std::filesystem;

namespace gedge::runtime {

nlohmann::json PushResult::to_json() const {
  nlohmann::json j{{"target", target},         {"root", root},
          {"state", state},           {"bytes_sent", bytes_sent},
          {"chunks_sent", chunks_sent}, {"chunks_skipped", chunks_skipped},
          {"files", files},           {"files_linked", files_linked},
          {"files_repaired", files_repaired}, {"repaired", repaired}};
  if (compressed) j["compressed"] = *compressed;
  if (dry_run) {
    j["dry_run"] = true;
    j["chunks_to_send"] = chunks_to_send;
  }
  return j;
}

namespace {

struct Target {
  fs::path root;
  fs::path meta;     // root/.gedge
  fs::path chunks;   // root/.gedge/chunks
  fs::path objects;  // root/.gedge/objects
  fs::path local_store;
  PushResult* res = nullptr;  // null: read-only verification
};

Error io_error(const std::string& what, const fs::path& p, int err) {
  return Error{ErrorCode::failure, fmt::format("{} {}: {}", what, p.string(), detail::errno_text(err)),
               err == ENOSPC ? "the target is full: free space there (nothing was made visible), then push again"
                             : ""};
}

Result<void> mkdirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) return std::unexpected(io_error("cannot create", p, ec.value()));
  return {};
}

Result<std::string> file_sha(const fs::path& p) {
  GEDGE_TRY_ASSIGN(auto data, detail::slurp(p));
  return sha256_hex(data);
}

// Copies one chunk from the local store to the target store (atomically).
Result<void> send_chunk(Target& t, const std::string& h) {
  fs::path src = detail::chunk_path(t.local_store, h);
  fs::path dst = detail::chunk_path(t.chunks, h);
  GEDGE_TRY(mkdirs(dst.parent_path()));
  auto n = detail::copy_atomic(src, dst);
  if (!n) {
    struct stat st {};
    if (::stat(src.c_str(), &st) != 0)
      return fail(ErrorCode::failure, fmt::format("chunk {} is missing from the local store", h),
                  "run gedge runtime verify on the bundle and pack it again");
    return std::unexpected(n.error());
  }
  t.res->bytes_sent += *n;
  t.res->chunks_sent += 1;
  return {};
}

// The object (a file with this content and mode) under root/.gedge/objects, built from chunks
// when missing or when its content no longer matches.
Result<fs::path> ensure_object(Target& t, const nlohmann::json& e) {
  std::string sha = e["sha256"].get<std::string>();
  unsigned mode = e["mode"].get<unsigned>();
  fs::path obj = t.objects / sha.substr(0, 2) / fmt::format("{}.{:o}", sha, mode);
  struct stat st {};
  if (::lstat(obj.c_str(), &st) == 0) {
    auto h = file_sha(obj);
    if (h && *h == sha && (st.st_mode & 07777) == mode) return obj;
  }
  std::string content;
  content.reserve(e.value("size", uint64_t{0}));
  for (const auto& c : e["chunks"]) {
    std::string h = c["sha256"].get<std::string>();
    fs::path cp = detail::chunk_path(t.chunks, h);
    auto data = detail::read_chunk(cp);
    if (!data || sha256_hex(*data) != h) {
      // A corrupted or lost chunk on the target: send it again from the local store.
      ::unlink(cp.c_str());
      GEDGE_TRY(send_chunk(t, h));
      data = detail::read_chunk(cp);
      if (!data || sha256_hex(*data) != h)
        return fail(ErrorCode::failure, fmt::format("chunk {} does not match its hash after sending", h));
    }
    content += *data;
  }
  if (sha256_hex(content) != sha)
    return fail(ErrorCode::failure, fmt::format("file {} does not match its hash", e["path"].get<std::string>()));
  GEDGE_TRY(mkdirs(obj.parent_path()));
  GEDGE_TRY(detail::write_atomic(obj, content, mode));
  return obj;
}

// Makes `dst` a hardlink of `obj` (a copy when links are impossible), replacing what is there.
Result<void> place(const fs::path& obj, const fs::path& dst, bool replace) {
  fs::path tmp = replace ? dst.parent_path() / (".gedge-repair." + dst.filename().string()) : dst;
  ::unlink(tmp.c_str());
  if (::link(obj.c_str(), tmp.c_str()) != 0) {
    if (errno != EXDEV && errno != EMLINK) return std::unexpected(io_error("cannot link", tmp, errno));
    GEDGE_TRY_ASSIGN(auto data, detail::slurp(obj));
    struct stat st {};
    ::stat(obj.c_str(), &st);
    GEDGE_TRY(detail::write_atomic(tmp, data, st.st_mode & 07777));
  }
  if (replace && ::rename(tmp.c_str(), dst.c_str()) != 0) return std::unexpected(io_error("cannot replace", dst, errno));
  return {};
}

// Checks (and with t.res set, repairs) an existing tree at `dir`. Returns the bad paths.
Result<std::vector<std::string>> check_tree(Target& t, const nlohmann::json& m, const fs::path& dir) {
  std::vector<std::string> bad;
  std::map<std::string, const nlohmann::json*> by_path;
  for (const auto& e : m["entries"]) by_path[e["path"].get<std::string>()] = &e;
  for (const auto& e : m["entries"]) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
    std::string rel = e["path"].get<std::string>();
    std::string type = e["type"].get<std::string>();
    fs::path p = dir / rel;
    struct stat st {};
    bool exists = ::lstat(p.c_str(), &st) == 0;
    bool ok = false;
    const nlohmann::json* fe = &e;
    if (type == "hardlink") fe = by_path.count(e["link"].get<std::string>()) ? by_path[e["link"].get<std::string>()] : nullptr;
    if (type == "dir") {
      ok = exists && S_ISDIR(st.st_mode);
      if (ok && (st.st_mode & 07777) != e["mode"].get<unsigned>()) {
        if (t.res) ::chmod(p.c_str(), e["mode"].get<unsigned>());
        else ok = false;
      }
      if (!ok && t.res) {
        if (exists) {
          std::error_code ec;
          fs::remove_all(p, ec);
        }
        if (::mkdir(p.c_str(), e["mode"].get<unsigned>()) != 0) return std::unexpected(io_error("cannot create", p, errno));
      }
    } else if (type == "symlink") {
      if (exists && S_ISLNK(st.st_mode)) {
        std::error_code ec;
        ok = fs::read_symlink(p, ec).string() == e["target"].get<std::string>();
      }
      if (!ok && t.res) {
        std::error_code ec;
        fs::remove_all(p, ec);
        if (::symlink(e["target"].get<std::string>().c_str(), p.c_str()) != 0)
          return std::unexpected(io_error("cannot create symlink", p, errno));
      }
    } else if (fe) {
      if (exists && S_ISREG(st.st_mode) && (st.st_mode & 07777) == (*fe)["mode"].get<unsigned>() &&
          static_cast<uint64_t>(st.st_size) == (*fe)["size"].get<uint64_t>()) {
        auto h = file_sha(p);
        ok = h && *h == (*fe)["sha256"].get<std::string>();
      }
      if (!ok && t.res) {
        if (exists && S_ISDIR(st.st_mode)) {
          std::error_code ec;
          fs::remove_all(p, ec);
        }
        GEDGE_TRY_ASSIGN(auto obj, ensure_object(t, *fe));
        GEDGE_TRY(place(obj, p, /*replace=*/true));
      }
    }
    if (!ok) bad.push_back(rel);
  }
  return bad;
}

Result<void> build_tree(Target& t, const nlohmann::json& m, const fs::path& stage, Reporter& rep) {
  const auto& entries = m["entries"];
  std::size_t n = 0, total = entries.size();
  std::map<std::string, fs::path> objects;  // sha.mode -> object, hardlinked within the bundle too
  for (const auto& e : entries) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "push interrupted; nothing was made visible");
    rep.progress("materialising", ++n, total);
    std::string type = e["type"].get<std::string>();
    fs::path p = stage / e["path"].get<std::string>();
    if (type == "dir") {
      if (::mkdir(p.c_str(), 0700) != 0) return std::unexpected(io_error("cannot create", p, errno));
    } else if (type == "symlink") {
      if (::symlink(e["target"].get<std::string>().c_str(), p.c_str()) != 0)
        return std::unexpected(io_error("cannot create symlink", p, errno));
    } else if (type == "hardlink") {
      fs::path first = stage / e["link"].get<std::string>();
      if (::link(first.c_str(), p.c_str()) != 0) return std::unexpected(io_error("cannot link", p, errno));
      ++t.res->files_linked;
    } else {
      GEDGE_TRY_ASSIGN(auto obj, ensure_object(t, e));
      GEDGE_TRY(place(obj, p, /*replace=*/false));
      ++t.res->files;
      ++t.res->files_linked;
    }
  }
  // Directory modes last (deepest first), so read-only dirs do not block their own filling.
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if ((*it)["type"] == "dir") {
      fs::path p = stage / (*it)["path"].get<std::string>();
      if (::chmod(p.c_str(), (*it)["mode"].get<unsigned>()) != 0) return std::unexpected(io_error("cannot chmod", p, errno));
    }
  return {};
}

Target make_target(const fs::path& root, const Paths* paths, PushResult* res) {
  Target t;
  t.root = root;
  t.meta = root / ".gedge";
  t.chunks = t.meta / "chunks";
  t.objects = t.meta / "objects";
  if (paths) t.local_store = paths->runtimes / "chunks";
  t.res = res;
  return t;
}

}  // namespace

Result<PushResult> push_to_dir(const Paths& paths, const Bundle& b, const fs::path& root_in, Reporter& rep,
                               bool dry_run) {
  std::error_code ec;
  fs::path root = fs::absolute(root_in, ec).lexically_normal();
  PushResult res;
  res.target = "dir:" + root.string();
  res.root = root.string();
  res.compressed = true;  // the target store keeps the zstd frames as they are
  Target t = make_target(root, &paths, &res);
  if (dry_run) {
    // Only look: which chunks the target store lacks, and whether root/<id> is already there.
    res.dry_run = true;
    for (const auto& [h, size] : manifest_chunks(b.manifest)) {
      struct stat st {};
      if (::stat(detail::chunk_path(t.chunks, h).c_str(), &st) == 0) {
        ++res.chunks_skipped;
        continue;
      }
      ++res.chunks_sent;
      res.chunks_to_send.push_back(h);
      if (::stat(detail::chunk_path(t.local_store, h).c_str(), &st) == 0) res.bytes_sent += static_cast<uint64_t>(st.st_size);
    }
    for (const auto& e : b.manifest["entries"])
      if (e["type"] == "file") ++res.files;
    res.state = fs::is_directory(root / b.id, ec) ? "would_verify" : "would_create";
    return res;
  }
  GEDGE_TRY(mkdirs(t.chunks));
  GEDGE_TRY(mkdirs(t.objects));
  GEDGE_TRY(mkdirs(t.meta / "tmp"));
  GEDGE_TRY(mkdirs(t.meta / "manifests"));
  GEDGE_TRY_ASSIGN(auto lock, detail::StoreLock::take(t.meta / "lock", /*exclusive=*/true));
  GEDGE_TRY_ASSIGN(auto local_lock, detail::StoreLock::take(paths.runtimes / "lock", /*exclusive=*/false));

  // 1. Send only the chunks the target lacks.
  auto chunks = manifest_chunks(b.manifest);
  std::size_t i = 0;
  for (const auto& [h, size] : chunks) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "push interrupted; sent chunks are kept for the next push");
    rep.progress(fmt::format("{}: sending chunks", res.target), ++i, chunks.size());
    struct stat st {};
    if (::stat(detail::chunk_path(t.chunks, h).c_str(), &st) == 0) {
      ++res.chunks_skipped;
      continue;
    }
    GEDGE_TRY(send_chunk(t, h));
  }

  fs::path final_dir = root / b.id;
  auto manifest_text = canonical_manifest(b.manifest);
  if (fs::exists(final_dir, ec)) {
    // 2a. Already there: verify every file, repair what differs.
    GEDGE_TRY_ASSIGN(auto bad, check_tree(t, b.manifest, final_dir));
    res.repaired = bad;
    res.files_repaired = bad.size();
    res.state = bad.empty() ? "verified" : "repaired";
    for (const auto& e : b.manifest["entries"])
      if (e["type"] == "file") ++res.files;
  } else {
    // 2b. Build in a hidden staging dir, then one rename makes it visible.
    fs::path stage = t.meta / "tmp" / fmt::format("{}.{}", b.id, ::getpid());
    fs::remove_all(stage, ec);
    auto built = [&]() -> Result<void> {
      if (::mkdir(stage.c_str(), 0755) != 0) return std::unexpected(io_error("cannot create", stage, errno));
      GEDGE_TRY(build_tree(t, b.manifest, stage, rep));
      Target check = make_target(root, nullptr, nullptr);
      GEDGE_TRY_ASSIGN(auto bad, check_tree(check, b.manifest, stage));
      if (!bad.empty())
        return fail(ErrorCode::failure, fmt::format("materialised tree does not verify: {}", bad.front()));
      GEDGE_TRY(detail::write_atomic(t.meta / "manifests" / (b.id + ".json"), manifest_text, 0644));
      if (::rename(stage.c_str(), final_dir.c_str()) != 0) return std::unexpected(io_error("cannot rename into", final_dir, errno));
      return {};
    }();
    if (!built) {
      fs::remove_all(stage, ec);
      return std::unexpected(built.error());
    }
    res.state = "created";
  }
  if (!fs::exists(t.meta / "manifests" / (b.id + ".json"), ec))
    GEDGE_TRY(detail::write_atomic(t.meta / "manifests" / (b.id + ".json"), manifest_text, 0644));
  rep.step(res.target, fmt::format("{} {} ({} chunks sent, {} skipped)", res.state, b.id.substr(0, 12),
                                   res.chunks_sent, res.chunks_skipped));
  return res;
}

Result<VerifyResult> verify_dir(const Bundle& b, const fs::path& root, Reporter& rep) {
  (void)rep;
  VerifyResult out;
  out.id = b.id;
  out.chunks = manifest_chunks(b.manifest).size();
  fs::path dir = root / b.id;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return fail(ErrorCode::not_found, fmt::format("bundle {} is not materialised under {}", b.id.substr(0, 12), root.string()),
                "gedge runtime push ID --to DIR");
  Target t = make_target(root, nullptr, nullptr);
  GEDGE_TRY_ASSIGN(out.bad_files, check_tree(t, b.manifest, dir));
  return out;
}

}  // namespace gedge::runtime
