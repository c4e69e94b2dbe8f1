// What the cli's runtime verbs show (gedge/runtime_views.hpp).
#include <fmt/format.h>

#include "gedge/runtime_views.hpp"

namespace gedge::runtime {

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[u]);
}

Result<std::vector<ComponentSpec>> pack_components(const std::vector<std::string>& dirs,
                                                   const std::vector<std::string>& components) {
  std::vector<ComponentSpec> out;
  for (const auto& d : dirs) {
    std::filesystem::path p(d);
    std::string role = p.lexically_normal().filename().string();
    if (role.empty()) role = p.lexically_normal().parent_path().filename().string();
    out.push_back({role, p});
  }
  for (const auto& c : components) {
    auto eq = c.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == c.size())
      return fail(ErrorCode::usage, fmt::format("malformed --component '{}'", c),
                  "use --component ROLE=DIR");
    out.push_back({c.substr(0, eq), c.substr(eq + 1)});
  }
  return out;
}

std::string pack_summary(const PackResult& r) {
  auto j = r.to_json();
  return fmt::format(
      "{} {}: {} files ({} unchanged since the last pack), read {}, {} {} new ({} of {} chunks "
      "new), dedupe ratio {:.2f}{}",
      r.dry_run   ? "dry run, nothing written:"
      : r.created ? "packed"
                  : "unchanged (already recorded)",
      r.id.substr(0, 12), r.files, r.files_cached, human_bytes(r.bytes_read),
      r.dry_run ? "would store" : "stored", human_bytes(r.dry_run ? r.bytes_new : r.bytes_stored),
      r.chunks_new, r.chunks, j["dedupe_ratio"].get<double>(),
      r.outside_links.empty()
          ? ""
          : fmt::format("; {} symlink(s) point outside", r.outside_links.size()));
}

std::string verify_summary(const Bundle& b, const VerifyResult& r) {
  bool ok = r.to_json()["ok"].get<bool>();
  return ok ? fmt::format("{}: all {} chunks verified", b.id.substr(0, 12), r.chunks)
            : fmt::format("{}: {} corrupted, {} missing chunks; {} bad files", b.id.substr(0, 12),
                          r.corrupted.size(), r.missing.size(), r.bad_files.size());
}

std::optional<Error> verify_error(const Bundle& b, const VerifyResult& r, bool copy) {
  if (r.to_json()["ok"].get<bool>()) return std::nullopt;
  std::string what;
  for (const auto& c : r.corrupted) what += (what.empty() ? "" : ", ") + c.substr(0, 16);
  for (const auto& c : r.missing)
    what += (what.empty() ? "" : ", ") + c.substr(0, 16) + " (missing)";
  for (std::size_t i = 0; i < r.bad_files.size() && i < 10; ++i)
    what += (what.empty() ? "" : ", ") + r.bad_files[i];
  return Error{ErrorCode::failure,
               fmt::format("bundle {} does not verify: {}", b.id.substr(0, 12), what),
               copy ? "push the bundle again to repair the copy"
                    : "pack the source trees again to restore the chunks"};
}

std::string gc_summary(const GcResult& r) {
  return fmt::format("{} {} chunks ({}), kept {}", r.dry_run ? "would remove" : "removed",
                     r.removed, human_bytes(r.bytes_freed), r.kept);
}

nlohmann::json remove_rows(const RemoveResult& r) {
  nlohmann::json rows = nlohmann::json::array();
  auto row = [&rows](const nlohmann::json& b, const char* action) {
    rows.push_back({{"id", b["id"].get<std::string>().substr(0, 12)},
                    {"name", b["name"]},
                    {"created", b["created_at"]},
                    {"action", action}});
  };
  for (const auto& b : r.removed) row(b, r.dry_run ? "would remove" : "removed");
  for (const auto& b : r.kept) row(b, "kept");
  return rows;
}

std::string remove_summary(const RemoveResult& r) {
  return r.removed.empty() ? "nothing to remove"
         : r.dry_run       ? fmt::format("would remove {} bundle(s)", r.removed.size())
                     : fmt::format("removed {} bundle(s); 'gedge runtime gc' frees their chunks",
                                   r.removed.size());
}

PushReport remote_push_report(const Bundle& b, const RemotePushRequest& req,
                              const std::vector<RemoteOutcome>& outs) {
  nlohmann::json targets = nlohmann::json::array();
  std::size_t ok = 0;
  std::optional<Error> first;
  uint64_t sent = 0;
  for (const auto& o : outs) {
    if (o.result) {
      ++ok;
      sent += o.result->bytes_sent;
      targets.push_back(o.result->to_json());
    } else {
      if (!first) first = o.error;
      targets.push_back({{"target", o.device},
                         {"root", req.root},
                         {"state", "failed"},
                         {"error", o.error->message},
                         {"code", std::string(error_name(o.error->code))}});
    }
  }
  PushReport out;
  if (first && ok > 0)
    out.error = Error{ErrorCode::partial,
                      fmt::format("push failed on {} of {} devices: {}", outs.size() - ok,
                                  outs.size(), first->message),
                      first->hint};
  else if (first)
    out.error = first;
  out.json = {{"id", b.id}, {"name", b.name}, {"dry_run", req.dry_run}, {"targets", targets}};
  out.summary = fmt::format("{} {} {} {} of {} devices, {} {}", b.name, b.id.substr(0, 12),
                            req.dry_run ? "dry run, nothing written: checked" : "pushed to", ok,
                            outs.size(), human_bytes(sent), req.dry_run ? "would be sent" : "sent");
  return out;
}

PushReport dir_push_report(const Bundle& b, const PushResult& r) {
  PushReport out;
  out.json = {{"id", b.id},
              {"name", b.name},
              {"dry_run", r.dry_run},
              {"targets", nlohmann::json::array({r.to_json()})}};
  out.summary = fmt::format("{} {} on {}: {} {} ({} chunks), {} chunks already there", r.state,
                            b.id.substr(0, 12), r.target, r.dry_run ? "would send" : "sent",
                            human_bytes(r.bytes_sent), r.chunks_sent, r.chunks_skipped);
  return out;
}

Result<PushReport> push(const Paths& paths, Inventory& inv, const Bundle& b, PushTargets t,
                        Reporter& rep) {
  if (t.to.empty()) {
    if (!t.cluster.empty()) {
      GEDGE_TRY_ASSIGN(t.remote.devices, cluster_devices(inv, t.cluster));
    }
    return remote_push_report(b, t.remote, push_remote(paths, inv, b, t.remote, rep));
  }
  GEDGE_TRY_ASSIGN(auto r, push_to_dir(paths, b, t.to, rep, t.remote.dry_run));
  if (!t.remote.dry_run) GEDGE_TRY(record_push(inv, b, r));
  return dir_push_report(b, r);
}

Result<nlohmann::json> mounts_json(const Bundle& b, const MountRequest& req) {
  MountRequest podman_req = req;
  podman_req.format = MountFormat::podman;
  GEDGE_TRY_ASSIGN(auto podman, render_mounts(b, podman_req));
  nlohmann::json env = nlohmann::json::object();
  for (const auto& [k, v] : env_wiring(b.manifest)) env[k] = v;
  std::string root = req.root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return nlohmann::json{{"id", b.id},
                        {"host_path", root + "/" + b.id},
                        {"mount_path", b.manifest.value("prefix", "")},
                        {"read_only", true},
                        {"env", env},
                        {"podman", podman.substr(0, podman.size() - 1)}};
}

std::optional<MountFormat> mount_format(std::string_view output) {
  if (output == "k8s") return MountFormat::k8s;
  if (output == "podman") return MountFormat::podman;
  if (output == "sh") return MountFormat::sh;
  return std::nullopt;
}

std::string check_summary(const nlohmann::json& verdict) {
  return fmt::format("{}: {}", verdict["verdict"].get<std::string>(),
                     verdict["reason"].get<std::string>());
}

std::optional<Error> check_error(const nlohmann::json& verdict, const Bundle& b,
                                 const std::string& device) {
  std::string v = verdict["verdict"].get<std::string>();
  if (v == "too_old")
    return Error{ErrorCode::failure,
                 fmt::format("{} cannot run {} on {}: {}", device, b.name, v,
                             verdict["reason"].get<std::string>()),
                 "upgrade the device's NVIDIA driver or pack the bundle with an older CUDA"};
  if (v == "unknown")
    return Error{ErrorCode::failure,
                 fmt::format("cannot tell whether {} runs {}: {}", device, b.name,
                             verdict["reason"].get<std::string>()),
                 fmt::format("refresh the facts with gedge device check {}", device)};
  return std::nullopt;
}

}  // namespace gedge::runtime
