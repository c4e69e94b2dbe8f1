// Recorded bundles: lookup, listing, local-store verification and garbage collection.
#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>

#include "chunk_store.hpp"
#include "gedge/runtime.hpp"
#include "gedge/stores.hpp"
#include "manifest.hpp"

namespace fs = std::filesystem;

namespace gedge::runtime {

std::string canonical_manifest(const nlohmann::json& manifest) {
  return manifest.dump();
}

std::string canonical_manifest_with_entries(nlohmann::json manifest,
                                            std::string_view entries_text) {
  // An empty array in its place, then the text spliced in: keys are unique and every '"' inside
  // a dumped string is escaped, so the first '"entries":[]' is the key's.
  manifest["entries"] = nlohmann::json::array();
  std::string text = manifest.dump();
  constexpr std::string_view kSlot = "\"entries\":[]";
  std::size_t at = text.find(kSlot);
  text.replace(at + kSlot.size() - 2, 2, entries_text);
  return text;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t plain = 0;  // the start of the run not yet appended
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s, plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s, plain, std::string_view::npos);
  out += '"';
}

namespace {

bool is_hex64(const nlohmann::json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// A bundle-relative path: components that are neither empty, '.' nor '..'; no NUL; bounded.
bool safe_relative(std::string_view p) {
  if (p.empty() || p.size() > 4096 || p.front() == '/' || p.find('\0') != std::string_view::npos)
    return false;
  std::size_t i = 0;
  while (i <= p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view c = p.substr(i, j - i);
    if (c.empty() || c == "." || c == ".." || c.size() > 255) return false;
    i = j + 1;
  }
  return true;
}

std::vector<std::pair<std::string, uint64_t>> manifest_chunks_of(const nlohmann::json& e) {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const auto& c : e["chunks"])
    out.emplace_back(c["sha256"].get<std::string>(), c["size"].get<uint64_t>());
  return out;
}

Result<void> check_entries(const nlohmann::json& j, std::string_view what) {
  auto bad = [&](std::size_t i, const std::string& why) {
    return fail(ErrorCode::failure, fmt::format("manifest of {}: entry {}: {}", what, i, why),
                "the recorded manifest was altered or is damaged; pack the bundle again");
  };
  if (!j.contains("entries") || !j["entries"].is_array())
    return fail(ErrorCode::failure, fmt::format("manifest of {} has no entries array", what));
  if (j.contains("keep_special_modes") && !j["keep_special_modes"].is_boolean())
    return fail(ErrorCode::failure,
                fmt::format("manifest of {}: keep_special_modes is not a boolean", what));
  std::map<std::string, std::string> seen;  // path -> type
  std::size_t i = 0;
  for (const auto& e : j["entries"]) {
    ++i;
    if (!e.is_object() || !e.contains("path") || !e["path"].is_string() || !e.contains("type") ||
        !e["type"].is_string())
      return bad(i, "not an object with a path and a type");
    const auto& path = e["path"].get_ref<const std::string&>();
    std::string shown = fmt::format("'{}'", path.substr(0, 200));
    if (!safe_relative(path))
      return bad(i, fmt::format("path {} is not a plain relative path", shown));
    const auto& type = e["type"].get_ref<const std::string&>();
    if (type != "dir" && type != "file" && type != "symlink" && type != "hardlink")
      return bad(i, fmt::format("{}: unknown type '{}'", shown, type.substr(0, 40)));
    if (!e.contains("mode") || !e["mode"].is_number_unsigned() || e["mode"].get<uint64_t>() > 07777)
      return bad(i, fmt::format("{}: mode is not an integer in 0..07777", shown));
    auto slash = path.rfind('/');
    if (slash == std::string::npos) {
      if (type != "dir")
        return bad(i, fmt::format("{}: a top-level entry must be a directory", shown));
    } else {
      auto parent = seen.find(path.substr(0, slash));
      if (parent == seen.end() || parent->second != "dir")
        return bad(i, fmt::format("{}: its parent is not an earlier directory entry", shown));
    }
    if (type == "file") {
      if (!is_hex64(e.value("sha256", nlohmann::json())) || !e.contains("size") ||
          !e["size"].is_number_unsigned() || !e.contains("chunks") || !e["chunks"].is_array())
        return bad(i, fmt::format("{}: a file needs sha256, size and chunks", shown));
      for (const auto& c : e["chunks"])
        if (!c.is_object() || !is_hex64(c.value("sha256", nlohmann::json())) ||
            !c.contains("size") || !c["size"].is_number_unsigned())
          return bad(i, fmt::format("{}: a chunk needs a 64-hex sha256 and a size", shown));
      if (named_by_chunks(j, e)) {
        uint64_t sum = 0;
        for (const auto& c : e["chunks"]) sum += c["size"].get<uint64_t>();
        if (sum != e["size"].get<uint64_t>() || e["sha256"] != file_id(manifest_chunks_of(e)))
          return bad(i, fmt::format("{}: its sha256 or size is not its chunk list's", shown));
      }
    } else if (type == "symlink") {
      if (!e.contains("target") || !e["target"].is_string() ||
          e["target"].get_ref<const std::string&>().empty() ||
          e["target"].get_ref<const std::string&>().find('\0') != std::string::npos)
        return bad(i, fmt::format("{}: a symlink needs a target", shown));
    } else if (type == "hardlink") {
      if (!e.contains("link") || !e["link"].is_string())
        return bad(i, fmt::format("{}: a hardlink needs a link", shown));
      auto first = seen.find(e["link"].get<std::string>());
      if (first == seen.end() || first->second != "file")
        return bad(i, fmt::format("{}: a hardlink must name an earlier file entry", shown));
    }
    if (!seen.emplace(path, type).second)
      return bad(i, fmt::format("path {} appears twice", shown));
  }
  return {};
}

}  // namespace

Result<nlohmann::json> parse_manifest(const std::string& text, std::string_view what) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("format") ||
      !j["format"].is_number_integer())
    return fail(ErrorCode::failure, fmt::format("manifest of {} is not valid", what));
  int f = j["format"].get<int>();
  if (f > kManifestFormat)
    return fail(ErrorCode::failure,
                fmt::format("manifest of {} has format {}, newer than this gedge reads ({})", what,
                            f, kManifestFormat),
                "upgrade gedge to use this bundle");
  GEDGE_TRY(check_entries(j, what));
  return j;
}

std::string file_id(const std::vector<std::pair<std::string, uint64_t>>& chunks) {
  if (chunks.size() == 1) return chunks[0].first;
  std::string list = "gedge-chunks\n";
  list.reserve(list.size() + chunks.size() * 65);
  for (const auto& [h, n] : chunks) {
    list += h;
    list += '\n';
  }
  return sha256_hex(list);
}

bool named_by_chunks(const nlohmann::json& manifest, const nlohmann::json& e) {
  return manifest.value("format", 1) >= 2 && e["chunks"].size() > 1;
}

bool file_matches(const nlohmann::json& manifest, const nlohmann::json& e,
                  std::string_view content) {
  if (!named_by_chunks(manifest, e)) return sha256_hex(content) == e["sha256"];
  std::size_t off = 0;
  for (const auto& c : e["chunks"]) {
    auto n = c["size"].get<uint64_t>();
    if (n > content.size() - off || sha256_hex(content.substr(off, n)) != c["sha256"]) return false;
    off += n;
  }
  return off == content.size();
}

unsigned applied_mode(const nlohmann::json& manifest, const nlohmann::json& entry) {
  bool keep = manifest.value("keep_special_modes", false);
  unsigned m = recorded_mode(entry["mode"].get<unsigned>(), keep);
  return entry["type"] == "dir" ? m : (m & ~0222u);
}

nlohmann::json derive_env(const nlohmann::json& manifest, const std::vector<ComponentSpec>& comps) {
  std::string prefix = manifest["prefix"].get<std::string>();
  nlohmann::json path = nlohmann::json::array(), ld = nlohmann::json::array();
  nlohmann::json env = nlohmann::json::object();
  std::error_code ec;
  for (const auto& c : comps) {
    std::string base = prefix + "/" + c.role;
    if (fs::is_directory(c.dir / "bin", ec)) path.push_back(base + "/bin");
    for (const char* l : {"lib64", "lib"})
      if (fs::is_directory(c.dir / l, ec)) ld.push_back(base + "/" + l);
    if (fs::exists(c.dir / "conda-meta", ec) && !env.contains("CONDA_PREFIX"))
      env["CONDA_PREFIX"] = base;
    if (fs::exists(c.dir / "pyvenv.cfg", ec) && !env.contains("VIRTUAL_ENV"))
      env["VIRTUAL_ENV"] = base;
    if (c.role == "cuda" && !env.contains("CUDA_HOME")) env["CUDA_HOME"] = base;
    if (c.role == "env" && !env.contains("CONDA_PREFIX") && !env.contains("VIRTUAL_ENV"))
      env["CONDA_PREFIX"] = base;
  }
  env["PATH"] = path;
  env["LD_LIBRARY_PATH"] = ld;
  return env;
}

std::vector<std::pair<std::string, uint64_t>> manifest_chunks(const nlohmann::json& manifest) {
  std::vector<std::pair<std::string, uint64_t>> out;
  std::set<std::string> seen;
  for (const auto& e : manifest["entries"]) {
    if (e.value("type", "") != "file") continue;
    for (const auto& c : e["chunks"]) {
      std::string h = c["sha256"].get<std::string>();
      if (seen.insert(h).second) out.emplace_back(h, c["size"].get<uint64_t>());
    }
  }
  return out;
}

Result<Bundle> find_bundle(Inventory& inv, std::string_view ref) {
  std::string r(ref);
  if (r.empty()) return fail(ErrorCode::usage, "empty bundle id");
  RuntimeStore runtimes(inv);
  GEDGE_TRY_ASSIGN(auto row, runtimes.get(r));
  if (!row && r.size() >= 4 && r.find_first_not_of("0123456789abcdef") == std::string::npos) {
    GEDGE_TRY_ASSIGN(auto rows, runtimes.with_prefix(r, 3));
    if (rows.size() > 1)
      return fail(ErrorCode::conflict, fmt::format("bundle id prefix '{}' is ambiguous", r),
                  "give more characters of the id (gedge runtime ls)");
    if (!rows.empty()) row = std::move(rows.front());
  }
  if (!row) {
    GEDGE_TRY_ASSIGN(row, runtimes.newest(r));
  }
  if (!row)
    return fail(ErrorCode::not_found, fmt::format("runtime bundle '{}' not found", r),
                "see gedge runtime ls");
  Bundle b;
  b.id = row->id;
  b.name = row->name;
  b.created_at = row->created_at;
  GEDGE_TRY_ASSIGN(b.manifest, parse_manifest(row->manifest, "bundle " + b.id.substr(0, 12)));
  return b;
}

nlohmann::json bundle_summary(const Bundle& b) {
  const auto& m = b.manifest;
  uint64_t files = 0, bytes = 0;
  for (const auto& e : m["entries"])
    if (e.value("type", "") == "file") {
      ++files;
      bytes += e.value("size", uint64_t{0});
    }
  nlohmann::json roles = nlohmann::json::array();
  for (const auto& c : m["components"]) roles.push_back(c["role"]);
  auto v = m.value("versions", nlohmann::json::object());
  return {{"id", b.id},
          {"short_id", b.id.substr(0, 12)},
          {"name", b.name},
          {"created_at", b.created_at},
          {"prefix", m.value("prefix", "")},
          {"components", roles},
          {"files", files},
          {"bytes", bytes},
          {"chunks", manifest_chunks(m).size()},
          {"cuda", v.value("cuda", "")},
          {"versions", v},
          {"requires", m.value("requires", nlohmann::json::object())},
          {"env", m.value("env", nlohmann::json::object())}};
}

Result<nlohmann::json> list_bundles(Inventory& inv) {
  GEDGE_TRY_ASSIGN(auto rows, RuntimeStore(inv).all());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    Bundle b;
    b.id = r.id;
    b.name = r.name;
    b.created_at = r.created_at;
    auto m = parse_manifest(r.manifest, "bundle " + b.id.substr(0, 12));
    if (!m) {
      out.push_back({{"id", b.id},
                     {"short_id", b.id.substr(0, 12)},
                     {"name", b.name},
                     {"created_at", b.created_at},
                     {"error", m.error().message}});
      continue;
    }
    b.manifest = *m;
    auto s = bundle_summary(b);
    s.erase("env");
    s.erase("versions");
    out.push_back(s);
  }
  return out;
}

nlohmann::json VerifyResult::to_json() const {
  return {{"id", id},
          {"chunks", chunks},
          {"ok", corrupted.empty() && missing.empty() && bad_files.empty()},
          {"corrupted", corrupted},
          {"missing", missing},
          {"bad_files", bad_files}};
}

Result<VerifyResult> verify(const Paths& paths, const Bundle& b, Reporter& rep) {
  VerifyResult out;
  out.id = b.id;
  fs::path store = paths.runtimes / "chunks";
  auto chunks = manifest_chunks(b.manifest);
  out.chunks = chunks.size();
  std::set<std::string> bad;
  std::size_t i = 0;
  for (const auto& [h, size] : chunks) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "verify interrupted");
    rep.progress("verifying chunks", ++i, chunks.size());
    fs::path p = detail::chunk_path(store, h);
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      out.missing.push_back(h);
      bad.insert(h);
      continue;
    }
    auto data = detail::read_chunk(p);
    if (!data || data->size() != size || sha256_hex(*data) != h) {
      out.corrupted.push_back(h);
      bad.insert(h);
    }
  }
  if (!bad.empty())
    for (const auto& e : b.manifest["entries"]) {
      if (e.value("type", "") != "file") continue;
      for (const auto& c : e["chunks"])
        if (bad.count(c["sha256"].get<std::string>())) {
          out.bad_files.push_back(e["path"].get<std::string>());
          break;
        }
    }
  return out;
}

nlohmann::json GcResult::to_json() const {
  return {{"kept", kept}, {"removed", removed}, {"bytes_freed", bytes_freed}, {"dry_run", dry_run}};
}

nlohmann::json RemoveResult::to_json() const {
  return {{"removed", removed}, {"kept", kept}, {"dry_run", dry_run}};
}

Result<RemoveResult> remove_bundles(Inventory& inv, const RemoveRequest& req) {
  RemoveResult out;
  out.dry_run = req.dry_run;
  if (req.keep && *req.keep < 0) return fail(ErrorCode::usage, "--keep must be 0 or more");
  auto row_json = [](const RuntimeRecord& r) {
    return nlohmann::json{{"id", r.id}, {"name", r.name}, {"created_at", r.created_at}};
  };
  RuntimeStore runtimes(inv);
  std::vector<RuntimeRecord> rows;
  GEDGE_TRY_ASSIGN(auto by_name, runtimes.named(req.ref));
  if (!by_name.empty()) {
    rows = std::move(by_name);
  } else if (req.keep) {
    return fail(ErrorCode::not_found, fmt::format("no runtime bundle is named '{}'", req.ref),
                "--keep takes a name (see gedge runtime ls)");
  } else {
    GEDGE_TRY_ASSIGN(auto b, find_bundle(inv, req.ref));
    rows.push_back({b.id, b.name, "", b.created_at});
  }
  std::size_t keep = req.keep ? static_cast<std::size_t>(*req.keep) : 0;
  std::set<std::string> going;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i < keep) {
      out.kept.push_back(row_json(rows[i]));
    } else {
      out.removed.push_back(row_json(rows[i]));
      going.insert(rows[i].id);
    }
  }
  if (!req.force) {
    // A service's runtime: must still resolve after the removal (re-deploys and new replicas).
    GEDGE_TRY_ASSIGN(auto services, ServiceStore(inv).all());
    for (const auto& s : services) {
      auto spec = nlohmann::json::parse(s.spec, nullptr, false);
      std::string ref = spec.is_object() && spec.value("runtime", nlohmann::json()).is_string()
                            ? spec["runtime"].get<std::string>()
                            : "";
      if (ref.empty()) continue;
      auto b = find_bundle(inv, ref);
      if (!b || !going.contains(b->id)) continue;
      bool other = false;  // a name keeps resolving when a bundle of that name stays
      if (b->name == ref) {
        GEDGE_TRY_ASSIGN(auto same, runtimes.named(ref));
        for (const auto& r : same) other = other || !going.contains(r.id);
      }
      if (!other)
        return fail(
            ErrorCode::conflict,
            fmt::format("service '{}' on cluster '{}' uses runtime '{}'", s.name, s.cluster, ref),
            "remove the service first, or pass --force");
    }
  }
  if (req.dry_run || going.empty()) return out;
  GEDGE_TRY(runtimes.remove(going));
  return out;
}

Result<GcResult> gc(const Paths& paths, Inventory& inv, bool dry_run, Reporter& rep) {
  GcResult out;
  out.dry_run = dry_run;
  // The exclusive lock waits for running packs, so no chunk of an unrecorded bundle is taken.
  GEDGE_TRY_ASSIGN(auto lock, detail::StoreLock::take(paths.runtimes / "lock", /*exclusive=*/true));
  std::set<std::string> referenced;
  GEDGE_TRY_ASSIGN(auto rows, RuntimeStore(inv).all());
  for (const auto& r : rows) {
    auto m = parse_manifest(r.manifest, "bundle " + r.id.substr(0, 12));
    if (!m)
      return fail(
          ErrorCode::failure, fmt::format("gc refused: {}", m.error().message),
          "a bundle gedge cannot read may reference chunks; upgrade gedge before collecting");
    for (const auto& [h, n] : manifest_chunks(*m)) referenced.insert(h);
  }
  fs::path store = paths.runtimes / "chunks";
  std::error_code ec;
  if (!fs::exists(store, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(store, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string name = it->path().filename().string();
    bool tmp = name.rfind(".tmp.", 0) == 0;
    if (!tmp && referenced.count(name)) {
      ++out.kept;
      continue;
    }
    uint64_t size = it->file_size(ec);
    ++out.removed;
    out.bytes_freed += size;
    if (!dry_run) fs::remove(it->path(), ec);
  }
  rep.info(fmt::format("gc: kept {} chunks, removed {} ({} bytes)", out.kept, out.removed,
                       out.bytes_freed));
  return out;
}

}  // namespace gedge::runtime

namespace gedge::runtime {

Result<nlohmann::json> check_on_device(Inventory& inv, const Bundle& b, const std::string& device) {
  GEDGE_TRY_ASSIGN(auto row, DeviceStore(inv).row(device));
  if (!row)
    return fail(ErrorCode::not_found, fmt::format("device '{}' not found", device),
                "see gedge device ls");
  auto facts = nlohmann::json::parse(row->value("facts", "{}"), nullptr, false);
  if (facts.is_discarded()) facts = nlohmann::json::object();
  auto out = check_driver(b.manifest, facts);
  out["id"] = b.id;
  out["name"] = b.name;
  out["device"] = device;
  return out;
}

Result<void> record_push(Inventory& inv, const Bundle& b, const PushResult& r) {
  return RuntimeStore(inv).record_push(b.id, {r.target, r.root, now_rfc3339()});
}

}  // namespace gedge::runtime

namespace gedge::runtime {

Result<nlohmann::json> bundle_pushes(Inventory& inv, const std::string& id) {
  GEDGE_TRY_ASSIGN(auto rows, RuntimeStore(inv).pushes(id));
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows)
    out.push_back({{"target", r.target}, {"root", r.root}, {"pushed_at", r.pushed_at}});
  return out;
}

}  // namespace gedge::runtime
