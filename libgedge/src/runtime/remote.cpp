// push --device/--cluster: over SSH, ask the target which chunks it lacks, stream only those (with
// the manifest) to a small python3 materialiser passed as argv (`python3 -c`, data on stdin; no
// shell string is built from input), which stores them under ROOT/.gedge/rawchunks, builds
// ROOT/<id> in a staging dir through hardlinked objects, verifies every hash and renames it into
// place; an existing copy is verified and repaired. The materialiser and the check of its replies
// are in remote_materialiser.cpp.
#include <fmt/format.h>
#include <sys/stat.h>
#include <zstd.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "chunk_store.hpp"
#include "gedge/progress_bytes.hpp"
#include "gedge/runtime.hpp"
#include "gedge/ssh.hpp"
#include "gedge/stores.hpp"
#include "manifest.hpp"
#include "remote_materialiser.hpp"

namespace gedge::runtime {

namespace {

Result<nlohmann::json> last_json_line(const ExecResult& r, const std::string& device,
                                      std::string_view mode) {
  return detail::materialiser_reply(device, mode, r.out, r.err, r.exit_code);
}

// What the target says before anything is sent (read-only on the target).
struct Have {
  std::vector<std::string> missing;
  bool zstd = false;     // the target can decompress zstd (the zstd CLI is installed)
  bool present = false;  // ROOT/<id> exists
};

Result<Have> ask_have(SshSession& s, const std::string& root, const Bundle& b,
                      const std::vector<std::pair<std::string, uint64_t>>& chunks) {
  std::string want;
  for (const auto& [h, n] : chunks) want += h + "\n";
  GEDGE_TRY_ASSIGN(auto r,
                   s.exec(detail::materialiser_argv("have", root, b.id), want, /*sudo=*/true));
  GEDGE_TRY_ASSIGN(auto j, last_json_line(r, s.target().name, "have"));
  Have out;
  // Only chunks of this bundle: a device never names what is read from the local store.
  std::unordered_map<std::string, bool> wanted;
  for (const auto& [h, n] : chunks) wanted[h] = true;
  for (const auto& h : j["missing"]) {
    const auto& x = h.get_ref<const std::string&>();
    if (!wanted.count(x))
      return fail(ErrorCode::failure,
                  fmt::format("{}: the target asked for a chunk the bundle does not have",
                              s.target().name));
    out.missing.push_back(x);
  }
  out.zstd = j["zstd"].get<bool>();
  out.present = j["present"].get<bool>();
  return out;
}

// The bytes of one chunk as sent: the stored zstd frame when the target decompresses, else the
// raw content. Checks the frame's declared size against the manifest.
Result<std::string> chunk_payload(const Paths& paths, const std::string& h, uint64_t size,
                                  bool compressed) {
  auto path = detail::chunk_path(paths.runtimes / "chunks", h);
  auto bad = [&] {
    return fail(ErrorCode::failure,
                fmt::format("chunk {} is missing or corrupted in the local store", h),
                "run gedge runtime verify on the bundle and pack it again");
  };
  if (!compressed) {
    auto data = detail::read_chunk(path);
    if (!data || data->size() != size) return bad();
    return std::move(*data);
  }
  auto raw = detail::slurp(path);
  if (!raw || ZSTD_getFrameContentSize(raw->data(), raw->size()) != size) return bad();
  return std::move(*raw);
}

// One progress line for a push to every device: bytes sent of bytes planned (a device's payload
// counts once it is known; what a failed device did not send is taken back out) and devices
// finished. Reporter calls are serialised by `mu`.
struct PushProgress {
  Reporter& rep;
  std::mutex mu;
  bool draw_bytes = true;  // not for dry runs
  std::size_t devices = 0, done = 0;
  uint64_t planned = 0, sent = 0;
  void draw() {  // mu held
    if (!draw_bytes) return;
    rep.progress(bytes_task(fmt::format("pushing ({}/{} devices done)", done, devices)), sent,
                 planned);
  }
};

Result<PushResult> push_one(SshSession& s, const Paths& paths, const Bundle& b,
                            const std::string& root, bool dry_run, PushProgress& prog) {
  Reporter& rep = prog.rep;
  std::mutex& rep_mu = prog.mu;
  PushResult res;
  res.target = s.target().name;
  res.root = root;
  res.dry_run = dry_run;
  auto chunks = manifest_chunks(b.manifest);
  std::unordered_map<std::string, uint64_t> sizes(chunks.begin(), chunks.end());
  GEDGE_TRY_ASSIGN(auto have, ask_have(s, root, b, chunks));
  res.compressed = have.zstd;
  res.chunks_sent = have.missing.size();
  res.chunks_skipped = chunks.size() - have.missing.size();
  if (dry_run) {
    for (const auto& h : have.missing) {
      uint64_t n = sizes[h];
      if (have.zstd) {
        struct stat st {};
        if (::stat(detail::chunk_path(paths.runtimes / "chunks", h).c_str(), &st) == 0)
          n = static_cast<uint64_t>(st.st_size);
      }
      res.bytes_sent += n;
      res.chunks_to_send.push_back(h);
    }
    res.state = have.present ? "would_verify" : "would_create";
    for (const auto& e : b.manifest["entries"])
      if (e["type"] == "file") ++res.files;
    return res;
  }

  std::string text = canonical_manifest(b.manifest);
  std::string payload = fmt::format("{}\n", text.size()) + text;
  for (const auto& h : have.missing) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "push interrupted");
    GEDGE_TRY_ASSIGN(auto data, chunk_payload(paths, h, sizes[h], have.zstd));
    payload += fmt::format("{} {}{}\n", h, data.size(), have.zstd ? " z" : "");
    payload += data;
    res.bytes_sent += data.size();
  }
  payload += "\n";
  {
    std::lock_guard lk(rep_mu);
    rep.step(res.target,
             fmt::format("sending {} chunks ({} bytes{}), {} already there", res.chunks_sent,
                         res.bytes_sent, have.zstd ? ", zstd" : ", uncompressed: no zstd there",
                         res.chunks_skipped));
    prog.planned += payload.size();
    prog.draw();
  }
  std::size_t mine = 0;  // of this payload, sent
  auto sent = s.exec(detail::materialiser_argv("apply", root, b.id), payload, /*sudo=*/true,
                     [&](std::size_t n) {
                       std::lock_guard lk(rep_mu);
                       prog.sent += n - mine;
                       mine = n;
                       prog.draw();
                     });
  if (!sent) {
    std::lock_guard lk(rep_mu);
    prog.planned -= payload.size() - mine;
    return std::unexpected(sent.error());
  }
  auto& r = *sent;
  GEDGE_TRY_ASSIGN(auto j, last_json_line(r, res.target, "apply"));
  res.state = j["state"].get<std::string>();  // types checked by materialiser_reply
  res.files = j["files"].get<uint64_t>();
  for (const auto& p : j["repaired"]) res.repaired.push_back(p.get<std::string>());
  res.files_repaired = res.repaired.size();
  {
    std::lock_guard lk(rep_mu);
    rep.step(res.target, fmt::format("{} {} under {}", res.state, b.id.substr(0, 12), root));
  }
  return res;
}

}  // namespace

Result<std::vector<std::string>> cluster_devices(Inventory& inv, const std::string& cluster) {
  ClusterStore clusters(inv);
  GEDGE_TRY_ASSIGN(bool known, clusters.exists(cluster));
  if (!known)
    return fail(ErrorCode::not_found, fmt::format("cluster '{}' not found", cluster),
                "see gedge cluster ls");
  GEDGE_TRY_ASSIGN(auto rows, clusters.members(cluster));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r["device"].get<std::string>());
  std::sort(out.begin(), out.end());
  if (out.empty())
    return fail(ErrorCode::not_found, fmt::format("cluster '{}' has no members", cluster));
  return out;
}

std::vector<RemoteOutcome> push_remote(const Paths& paths, Inventory& inv, const Bundle& b,
                                       const RemotePushRequest& req, Reporter& rep) {
  std::vector<RemoteOutcome> out;
  std::vector<SshTarget> targets;
  std::vector<std::size_t> slot;
  for (const auto& d : req.devices) {
    auto t = device_target(inv, paths, d);
    out.push_back({d, std::nullopt, std::nullopt});
    if (!t) {
      out.back().error = t.error();
      continue;
    }
    targets.push_back(*t);
    slot.push_back(out.size() - 1);
  }
  FanOutOptions fo;
  fo.parallel = req.parallel;
  fo.ssh = default_ssh_options(paths, req.timeout_s);
  fo.ssh.connect_timeout_s = std::min(req.timeout_s, 30.0);
  fo.ssh.timeout_s = std::max(req.timeout_s, 1800.0);  // a push moves bundles, not one-liners
  PushProgress prog{rep};
  prog.draw_bytes = !req.dry_run;
  prog.devices = targets.size();
  fo.on_done = [&prog](std::size_t done, std::size_t, const std::string&, bool) {
    std::lock_guard lk(prog.mu);
    prog.done = done;
    prog.draw();
  };
  auto local_lock = detail::StoreLock::take(paths.runtimes / "lock", /*exclusive=*/false);
  auto results = fan_out<PushResult>(targets, fo, [&](SshSession& s) {
    return push_one(s, paths, b, req.root, req.dry_run, prog);
  });
  for (std::size_t i = 0; i < results.size(); ++i) {
    auto& o = out[slot[i]];
    if (results[i].result) {
      o.result = *results[i].result;
      if (!req.dry_run) (void)record_push(inv, b, *o.result);
    } else {
      o.error = results[i].result.error();
    }
  }
  return out;
}

Result<VerifyResult> verify_remote(const Paths& paths, Inventory& inv, const Bundle& b,
                                   const std::string& device, const std::string& root,
                                   double timeout_s) {
  GEDGE_TRY_ASSIGN(auto t, device_target(inv, paths, device));
  auto opts = default_ssh_options(paths, timeout_s);
  opts.timeout_s = std::max(timeout_s, 600.0);
  GEDGE_TRY_ASSIGN(auto s, SshSession::connect(t, opts));
  GEDGE_TRY_ASSIGN(auto r, s->exec(detail::materialiser_argv("verify", root, b.id), std::nullopt,
                                   /*sudo=*/true));
  GEDGE_TRY_ASSIGN(auto j, last_json_line(r, device, "verify"));
  VerifyResult v;
  v.id = b.id;
  v.chunks = manifest_chunks(b.manifest).size();
  for (const auto& p : j["bad_files"]) v.bad_files.push_back(p.get<std::string>());
  return v;
}

}  // namespace gedge::runtime
