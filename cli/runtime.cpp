// gedge runtime: pack | ls | show | verify | gc | push | mounts | check.
#include "gedge/runtime.hpp"

#include <fmt/format.h>

#include "app.hpp"
#include "ignore_not_found.hpp"

namespace gedge::cli {

namespace {

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

// A View set member by member (robust to fields added to View later).
View make_view(nlohmann::json data, std::string footer = "", std::vector<Column> columns = {},
               std::string rows = "") {
  View v;
  v.data = std::move(data);
  v.footer = std::move(footer);
  v.columns = std::move(columns);
  v.rows = std::move(rows);
  return v;
}

struct PackFlags {
  std::vector<std::string> dirs;
  std::string name;
  std::vector<std::string> components;
  std::string prefix;
  int level = 3;
  unsigned jobs = 0;
  bool dry_run = false;
  bool no_cache = false;
  bool keep_special_modes = false;
};

struct PushFlags {
  std::string id;
  std::vector<std::string> devices;
  std::string cluster;
  std::string to;
  std::string root = runtime::kDefaultRoot;
  bool dry_run = false;
};

struct MountFlags {
  std::string id;
  std::string pvc;
  std::string sub_path;
  bool host_path = false;
  std::string root = runtime::kDefaultRoot;
};

void add_pack(CLI::App& noun, Ctx& ctx) {
  auto f = std::make_shared<PackFlags>();
  auto* cmd =
      noun.add_subcommand("pack", "Pack trees into a content-addressed, relocated runtime bundle");
  cmd->add_option("dirs", f->dirs, "Component trees; each becomes role = its directory name")
      ->type_name("DIR");
  cmd->add_option("--name", f->name, "Bundle name, e.g. pt2.1-cuda12.1")
      ->required()
      ->type_name("N");
  cmd->add_option("--component", f->components,
                  "A component: ROLE=DIR (env, cuda, cudnn, tensorrt, nccl, data or free-form)")
      ->type_name("ROLE=DIR");
  cmd->add_option("--prefix", f->prefix,
                  "Mount prefix the bundle is relocated to (default /opt/gedge/rt/NAME)")
      ->type_name("P");
  cmd->add_option("--level", f->level, "zstd compression level 1..19 (default 3)")->type_name("L");
  cmd->add_option("-j,--jobs", f->jobs, "Worker threads (default: every core)")->type_name("J");
  cmd->add_flag("--dry-run", f->dry_run,
                "Read and hash, report what would be stored, write nothing");
  cmd->add_flag("--no-cache", f->no_cache,
                "Re-read every file (ignore the stat cache of earlier packs)");
  cmd->add_flag(
      "--keep-special-modes", f->keep_special_modes,
      "Keep setuid/setgid/sticky and group/other-write bits (recorded in the manifest; by default "
      "they are dropped and pushed files are read-only)");
  examples(cmd,
           {"gedge runtime pack --name tools --component env=./env --keep-special-modes -o json",
            "gedge runtime pack ./env --name demo --dry-run -o json",
            "gedge runtime pack --name pt2.1-cu12 --component env=/opt/conda/envs/pt --component "
            "cuda=/usr/local/cuda-12.1",
            "gedge runtime pack ./env ./cuda --name demo -o json",
            "gedge runtime pack --name demo --component env=./env --prefix /opt/rt/demo -j 8"});
  on_run(cmd, ctx, [&ctx, f]() -> Result<Outcome> {
    runtime::PackRequest req;
    req.name = f->name;
    req.prefix = f->prefix;
    req.level = f->level;
    req.jobs = f->jobs;
    req.dry_run = f->dry_run;
    req.use_cache = !f->no_cache;
    req.keep_special_modes = f->keep_special_modes;
    for (const auto& d : f->dirs) {
      std::filesystem::path p(d);
      std::string role = p.lexically_normal().filename().string();
      if (role.empty()) role = p.lexically_normal().parent_path().filename().string();
      req.components.push_back({role, p});
    }
    for (const auto& c : f->components) {
      auto eq = c.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == c.size())
        return fail(ErrorCode::usage, fmt::format("malformed --component '{}'", c),
                    "use --component ROLE=DIR");
      req.components.push_back({c.substr(0, eq), c.substr(eq + 1)});
    }
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto r, runtime::pack(paths, *inv, req, ctx.reporter()));
    auto j = r.to_json();
    std::string footer = fmt::format(
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
    View out = make_view(nlohmann::json(j), footer);
    return Outcome{out, std::nullopt, std::nullopt};
  });
}

void add_ls(CLI::App& noun, Ctx& ctx) {
  auto* cmd = noun.add_subcommand("ls", "List packed runtime bundles");
  examples(cmd, {"gedge runtime ls", "gedge runtime ls -o json"});
  on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto list, runtime::list_bundles(*inv));
    View v =
        make_view(list, list.empty() ? "no runtime bundles; pack one with gedge runtime pack" : "",
                  {{"ID", "/short_id"},
                   {"NAME", "/name"},
                   {"FILES", "/files"},
                   {"BYTES", "/bytes"},
                   {"CUDA", "/cuda"},
                   {"COMPONENTS", "/components"},
                   {"CREATED", "/created_at"}});
    return Outcome{v, std::nullopt, std::nullopt};
  });
}

void add_show(CLI::App& noun, Ctx& ctx) {
  auto id = std::make_shared<std::string>();
  auto manifest = std::make_shared<bool>(false);
  auto* cmd =
      noun.add_subcommand("show", "Show a bundle: components, versions, env wiring, pushes");
  cmd->add_option("id", *id, "Bundle id, unique id prefix, or name (newest)")
      ->required()
      ->type_name("ID");
  cmd->add_flag("--manifest", *manifest, "Print the full manifest (JSON)");
  examples(cmd, {"gedge runtime show demo", "gedge runtime show 3f2a9c1b -o json",
                 "gedge runtime show demo --manifest"});
  on_run(cmd, ctx, [&ctx, id, manifest]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto b, runtime::find_bundle(*inv, *id));
    if (*manifest) return Outcome{make_view(b.manifest), std::nullopt, b.manifest.dump(2) + "\n"};
    auto s = runtime::bundle_summary(b);
    GEDGE_TRY_ASSIGN(s["pushes"], runtime::bundle_pushes(*inv, b.id));
    return Outcome{make_view(s), std::nullopt, std::nullopt};
  });
}

void add_verify(CLI::App& noun, Ctx& ctx) {
  auto id = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>();
  auto root = std::make_shared<std::string>(runtime::kDefaultRoot);
  auto* cmd = noun.add_subcommand("verify",
                                  "Re-hash every chunk of a bundle (or check a materialised copy)");
  cmd->add_option("id", *id, "Bundle id, prefix or name")->required()->type_name("ID");
  cmd->add_option("--to", *to,
                  "Check the copy materialised under this root instead of the local store")
      ->type_name("DIR");
  cmd->add_option("--device", *device, "Check the copy on this device (under --root) instead")
      ->type_name("D");
  cmd->add_option("--root", *root, "Runtime root on the device (default /var/lib/gedge/runtimes)")
      ->type_name("DIR");
  examples(cmd, {"gedge runtime verify demo", "gedge runtime verify demo --device edge1",
                 "gedge runtime verify demo --to /srv/nfs/runtimes -o json"});
  on_run(cmd, ctx, [&ctx, id, to, device, root]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto b, runtime::find_bundle(*inv, *id));
    if (!to->empty() && !device->empty())
      return fail(ErrorCode::usage, "--to and --device exclude each other");
    auto verified = !device->empty()
                        ? runtime::verify_remote(paths, *inv, b, *device, *root, ctx.g.timeout_s)
                    : to->empty() ? runtime::verify(paths, b, ctx.reporter())
                                  : runtime::verify_dir(b, *to, ctx.reporter());
    GEDGE_TRY_ASSIGN(auto r, std::move(verified));
    auto j = r.to_json();
    bool ok = j["ok"].get<bool>();
    std::string footer =
        ok ? fmt::format("{}: all {} chunks verified", b.id.substr(0, 12), r.chunks)
           : fmt::format("{}: {} corrupted, {} missing chunks; {} bad files", b.id.substr(0, 12),
                         r.corrupted.size(), r.missing.size(), r.bad_files.size());
    std::optional<Error> err;
    if (!ok) {
      std::string what;
      for (const auto& c : r.corrupted) what += (what.empty() ? "" : ", ") + c.substr(0, 16);
      for (const auto& c : r.missing)
        what += (what.empty() ? "" : ", ") + c.substr(0, 16) + " (missing)";
      for (std::size_t i = 0; i < r.bad_files.size() && i < 10; ++i)
        what += (what.empty() ? "" : ", ") + r.bad_files[i];
      err =
          Error{ErrorCode::failure,
                fmt::format("bundle {} does not verify: {}", b.id.substr(0, 12), what),
                to->empty() && device->empty() ? "pack the source trees again to restore the chunks"
                                               : "push the bundle again to repair the copy"};
    }
    return Outcome{make_view(j, footer), err, std::nullopt};
  });
}

void add_gc(CLI::App& noun, Ctx& ctx) {
  auto dry = std::make_shared<bool>(false);
  auto* cmd = noun.add_subcommand("gc", "Remove chunks no recorded bundle references");
  cmd->add_flag("--dry-run", *dry, "Only count what would be removed");
  examples(cmd, {"gedge runtime gc", "gedge runtime gc --dry-run -o json"});
  on_run(cmd, ctx, [&ctx, dry]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto r, runtime::gc(paths, *inv, *dry, ctx.reporter()));
    std::string footer =
        fmt::format("{} {} chunks ({}), kept {}", *dry ? "would remove" : "removed", r.removed,
                    human_bytes(r.bytes_freed), r.kept);
    return Outcome{make_view(r.to_json(), footer), std::nullopt, std::nullopt};
  });
}

void add_rm(CLI::App& noun, Ctx& ctx) {
  struct Flags {
    runtime::RemoveRequest req;
    int keep = -1;
    bool yes = false, ignore = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = noun.add_subcommand("rm",
                                  "Forget bundles by id or name (--keep N: all but the N newest); "
                                  "'gc' then frees their chunks");
  cmd->add_option("ref", f->req.ref,
                  "Bundle id, unique id prefix, or name (every bundle of that name)")
      ->required()
      ->type_name("NAME|ID");
  cmd->add_option("--keep", f->keep, "With a name: keep the N newest bundles of that name")
      ->check(CLI::Range(0, 1000000))
      ->option_text("N");
  cmd->add_flag("--dry-run", f->req.dry_run, "Only list what would be removed");
  cmd->add_flag("--force", f->req.force,
                "Remove even a bundle a recorded service's runtime: names");
  cmd->add_flag("-y,--yes", f->yes, "Do not ask for confirmation");
  add_ignore_not_found(cmd, f->ignore);
  examples(cmd,
           {"gedge runtime rm demo --keep 2 --yes && gedge runtime gc",
            "gedge runtime rm 3fa4c2d1 --yes", "gedge runtime rm demo --keep 1 --dry-run -o json"});
  on_run(cmd, ctx, [&ctx, f]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    if (f->keep >= 0) f->req.keep = f->keep;
    runtime::RemoveRequest plan = f->req;
    plan.dry_run = true;  // what would go, checked before asking
    auto planned = runtime::remove_bundles(*inv, plan);
    if (!planned) {
      if (auto none = nothing_removed(f->ignore, planned.error())) return *none;
      return std::unexpected(planned.error());
    }
    runtime::RemoveResult r = *planned;
    if (!f->req.dry_run && !planned->removed.empty()) {
      GEDGE_TRY(confirm(ctx, f->yes,
                        fmt::format("forget {} runtime bundle(s)", planned->removed.size())));
      GEDGE_TRY_ASSIGN(r, runtime::remove_bundles(*inv, f->req));
    }
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& b : r.removed)
      rows.push_back({{"id", b["id"].get<std::string>().substr(0, 12)},
                      {"name", b["name"]},
                      {"created", b["created_at"]},
                      {"action", r.dry_run ? "would remove" : "removed"}});
    for (const auto& b : r.kept)
      rows.push_back({{"id", b["id"].get<std::string>().substr(0, 12)},
                      {"name", b["name"]},
                      {"created", b["created_at"]},
                      {"action", "kept"}});
    std::string footer =
        r.removed.empty() ? "nothing to remove"
        : r.dry_run       ? fmt::format("would remove {} bundle(s)", r.removed.size())
                    : fmt::format("removed {} bundle(s); 'gedge runtime gc' frees their chunks",
                                  r.removed.size());
    View v{r.to_json(),
           {{"id", "/id"}, {"name", "/name"}, {"created", "/created"}, {"action", "/action"}},
           "",
           footer};
    return Outcome{std::move(v).with_rows(rows), std::nullopt, std::nullopt};
  });
}

void add_push(CLI::App& noun, Ctx& ctx) {
  auto f = std::make_shared<PushFlags>();
  auto* cmd = noun.add_subcommand(
      "push", "Materialise a bundle on devices or into a directory, sending only missing chunks");
  cmd->add_option("id", f->id, "Bundle id, prefix or name")->required()->type_name("ID");
  auto* dev = cmd->add_option("--device", f->devices, "Target device(s)")->type_name("D");
  auto* cl = cmd->add_option("--cluster", f->cluster, "Every member of a cluster")->type_name("C");
  auto* to = cmd->add_option("--to", f->to,
                             "A local directory (e.g. an NFS/CephFS export) used as the root")
                 ->type_name("DIR");
  dev->excludes(cl)->excludes(to);
  cl->excludes(to);
  cmd->add_option("--root", f->root, "Runtime root on devices (default /var/lib/gedge/runtimes)")
      ->type_name("DIR");
  cmd->add_flag("--dry-run", f->dry_run,
                "Only report which chunks each target lacks; write nothing there");
  examples(cmd, {"gedge runtime push demo --cluster lab --dry-run -o json",
                 "gedge runtime push demo --to /srv/nfs/runtimes",
                 "gedge runtime push demo --device edge1 --device edge2 -o json",
                 "gedge runtime push demo --cluster lab --root /var/lib/gedge/runtimes"});
  on_run(cmd, ctx, [&ctx, f]() -> Result<Outcome> {
    if (f->devices.empty() && f->cluster.empty() && f->to.empty())
      return fail(ErrorCode::usage, "push needs a target",
                  "give --to DIR, --device D... or --cluster C");
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto b, runtime::find_bundle(*inv, f->id));
    if (f->to.empty()) {
      runtime::RemotePushRequest rq;
      rq.devices = f->devices;
      if (!f->cluster.empty()) {
        GEDGE_TRY_ASSIGN(rq.devices, runtime::cluster_devices(*inv, f->cluster));
      }
      rq.root = f->root;
      rq.dry_run = f->dry_run;
      rq.parallel = ctx.g.parallel;
      rq.timeout_s = ctx.g.timeout_s;
      auto outs = runtime::push_remote(paths, *inv, b, rq, ctx.reporter());
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
                             {"root", f->root},
                             {"state", "failed"},
                             {"error", o.error->message},
                             {"code", std::string(error_name(o.error->code))}});
        }
      }
      std::optional<Error> err;
      if (first && ok > 0)
        err = Error{ErrorCode::partial,
                    fmt::format("push failed on {} of {} devices: {}", outs.size() - ok,
                                outs.size(), first->message),
                    first->hint};
      else if (first)
        err = first;
      nlohmann::json j{
          {"id", b.id}, {"name", b.name}, {"dry_run", f->dry_run}, {"targets", targets}};
      View v = make_view(
          j,
          fmt::format("{} {} {} {} of {} devices, {} {}", b.name, b.id.substr(0, 12),
                      f->dry_run ? "dry run, nothing written: checked" : "pushed to", ok,
                      outs.size(), human_bytes(sent), f->dry_run ? "would be sent" : "sent"),
          {{"TARGET", "/target"},
           {"STATE", "/state"},
           {"BYTES_SENT", "/bytes_sent"},
           {"CHUNKS_SENT", "/chunks_sent"},
           {"CHUNKS_SKIPPED", "/chunks_skipped"},
           {"ERROR", "/error"}},
          "/targets");
      return Outcome{v, err, std::nullopt};
    }
    GEDGE_TRY_ASSIGN(auto r, runtime::push_to_dir(paths, b, f->to, ctx.reporter(), f->dry_run));
    if (!f->dry_run) GEDGE_TRY(runtime::record_push(*inv, b, r));
    nlohmann::json j{{"id", b.id},
                     {"name", b.name},
                     {"dry_run", f->dry_run},
                     {"targets", nlohmann::json::array({r.to_json()})}};
    std::string footer =
        fmt::format("{} {} on {}: {} {} ({} chunks), {} chunks already there", r.state,
                    b.id.substr(0, 12), r.target, f->dry_run ? "would send" : "sent",
                    human_bytes(r.bytes_sent), r.chunks_sent, r.chunks_skipped);
    View v = make_view(j, footer,
                       {{"TARGET", "/target"},
                        {"STATE", "/state"},
                        {"BYTES_SENT", "/bytes_sent"},
                        {"CHUNKS_SENT", "/chunks_sent"},
                        {"CHUNKS_SKIPPED", "/chunks_skipped"},
                        {"REPAIRED", "/files_repaired"}},
                       "/targets");
    return Outcome{v, std::nullopt, std::nullopt};
  });
}

void add_mounts(CLI::App& noun, Ctx& ctx) {
  auto f = std::make_shared<MountFlags>();
  auto* cmd =
      noun.add_subcommand("mounts", "Print mounts and env wiring: -o k8s | podman | sh (or json)");
  cmd->add_option("id", f->id, "Bundle id, prefix or name")->required()->type_name("ID");
  auto* pvc =
      cmd->add_option("--pvc", f->pvc, "k8s: mount from this PersistentVolumeClaim (subPath)")
          ->type_name("NAME");
  cmd->add_option("--sub-path", f->sub_path, "k8s: path of the runtimes root inside the PVC")
      ->type_name("P")
      ->needs(pvc);
  auto* hp = cmd->add_flag("--host-path", f->host_path,
                           "k8s: mount the host's copy with hostPath (default)");
  hp->excludes(pvc);
  cmd->add_option("--root", f->root,
                  "Where bundles live on the host (default /var/lib/gedge/runtimes)")
      ->type_name("DIR");
  examples(cmd, {"podman run $(gedge runtime mounts demo -o podman) IMAGE python3 app.py",
                 "gedge runtime mounts demo -o k8s --pvc runtimes --sub-path rt",
                 "gedge runtime mounts demo -o sh > path.sh"});
  on_run(cmd, ctx, [&ctx, f]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto b, runtime::find_bundle(*inv, f->id));
    runtime::MountRequest req;
    req.root = f->root;
    req.pvc = f->pvc;
    req.sub_path = f->sub_path;
    std::string o = ctx.output_raw();
    if (o == "k8s" || o == "podman" || o == "sh") {
      req.format = o == "k8s"      ? runtime::MountFormat::k8s
                   : o == "podman" ? runtime::MountFormat::podman
                                   : runtime::MountFormat::sh;
      GEDGE_TRY_ASSIGN(auto text, runtime::render_mounts(b, req));
      return Outcome{View{}, std::nullopt, text};
    }
    GEDGE_TRY(ctx.format());
    req.format = runtime::MountFormat::podman;
    GEDGE_TRY_ASSIGN(auto podman, runtime::render_mounts(b, req));
    nlohmann::json env = nlohmann::json::object();
    for (const auto& [k, v] : runtime::env_wiring(b.manifest)) env[k] = v;
    std::string root = req.root;
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    nlohmann::json j{{"id", b.id},
                     {"host_path", root + "/" + b.id},
                     {"mount_path", b.manifest.value("prefix", "")},
                     {"read_only", true},
                     {"env", env},
                     {"podman", podman.substr(0, podman.size() - 1)}};
    return Outcome{make_view(j), std::nullopt, std::nullopt};
  });
}

void add_check(CLI::App& noun, Ctx& ctx) {
  auto id = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>();
  auto* cmd = noun.add_subcommand(
      "check", "Check a bundle's CUDA driver requirement against a device's driver");
  cmd->add_option("id", *id, "Bundle id, prefix or name")->required()->type_name("ID");
  cmd->add_option("--device", *device, "Device whose facts (GPU driver) to check against")
      ->required()
      ->type_name("D");
  examples(cmd, {"gedge runtime check demo --device edge1",
                 "gedge runtime check demo --device edge1 -o json"});
  on_run(cmd, ctx, [&ctx, id, device]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto b, runtime::find_bundle(*inv, *id));
    GEDGE_TRY_ASSIGN(auto j, runtime::check_on_device(*inv, b, *device));
    std::string verdict = j["verdict"].get<std::string>();
    std::optional<Error> err;
    if (verdict == "too_old")
      err = Error{ErrorCode::failure,
                  fmt::format("{} cannot run {} on {}: {}", *device, b.name, verdict,
                              j["reason"].get<std::string>()),
                  "upgrade the device's NVIDIA driver or pack the bundle with an older CUDA"};
    if (verdict == "unknown")
      err = Error{ErrorCode::failure,
                  fmt::format("cannot tell whether {} runs {}: {}", *device, b.name,
                              j["reason"].get<std::string>()),
                  fmt::format("refresh the facts with gedge device check {}", *device)};
    return Outcome{make_view(j, fmt::format("{}: {}", verdict, j["reason"].get<std::string>())),
                   err, std::nullopt};
  });
}

}  // namespace

void register_runtime(CLI::App& app, Ctx& ctx) {
  auto* cmd = app.add_subcommand("runtime", "");
  for (const auto& noun : nouns())
    if (std::string_view(noun.name) == "runtime") cmd->description(noun.summary);
  cmd->require_subcommand(1);
  add_pack(*cmd, ctx);
  add_ls(*cmd, ctx);
  add_show(*cmd, ctx);
  add_verify(*cmd, ctx);
  add_rm(*cmd, ctx);
  add_gc(*cmd, ctx);
  add_push(*cmd, ctx);
  add_mounts(*cmd, ctx);
  add_check(*cmd, ctx);
}

}  // namespace gedge::cli
