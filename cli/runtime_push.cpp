// gedge runtime push | mounts | check: a bundle on devices and directories (pack, ls, show,
// verify, rm, gc: runtime.cpp). Flags -> request -> libgedge (gedge/runtime_views.hpp) -> View.
#include <fmt/format.h>

#include "gedge/runtime.hpp"
#include "gedge/runtime_views.hpp"
#include "runtime.hpp"

namespace gedge::cli::rt {

namespace {

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

}  // namespace

View make_view(nlohmann::json data, std::string footer, std::vector<Column> columns,
               std::string rows) {
  View v;
  v.data = std::move(data);
  v.footer = std::move(footer);
  v.columns = std::move(columns);
  v.rows = std::move(rows);
  return v;
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
    runtime::PushTargets t;
    t.remote.devices = f->devices;
    t.remote.root = f->root;
    t.remote.dry_run = f->dry_run;
    t.remote.parallel = ctx.g.parallel;
    t.remote.timeout_s = ctx.g.timeout_s;
    t.cluster = f->cluster;
    t.to = f->to;
    GEDGE_TRY_ASSIGN(auto r, runtime::push(paths, *inv, b, std::move(t), ctx.reporter()));
    std::vector<Column> columns = {{"TARGET", "/target"},
                                   {"STATE", "/state"},
                                   {"BYTES_SENT", "/bytes_sent"},
                                   {"CHUNKS_SENT", "/chunks_sent"},
                                   {"CHUNKS_SKIPPED", "/chunks_skipped"}};
    columns.push_back(f->to.empty() ? Column{"ERROR", "/error"}
                                    : Column{"REPAIRED", "/files_repaired"});
    return Outcome{make_view(r.json, r.summary, columns, "/targets"), r.error, std::nullopt};
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
    if (auto format = runtime::mount_format(ctx.output_raw())) {
      req.format = *format;
      GEDGE_TRY_ASSIGN(auto text, runtime::render_mounts(b, req));
      return Outcome{View{}, std::nullopt, text};
    }
    GEDGE_TRY(ctx.format());
    GEDGE_TRY_ASSIGN(auto j, runtime::mounts_json(b, req));
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
    return Outcome{make_view(j, runtime::check_summary(j)), runtime::check_error(j, b, *device),
                   std::nullopt};
  });
}

}  // namespace gedge::cli::rt
