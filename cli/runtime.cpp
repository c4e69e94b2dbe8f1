// gedge runtime: pack | ls | show | verify | rm | gc (push, mounts, check: runtime_push.cpp).
#include "gedge/runtime.hpp"

#include <fmt/format.h>

#include "gedge/runtime_views.hpp"
#include "ignore_not_found.hpp"
#include "runtime.hpp"

namespace gedge::cli {

using rt::make_view;

namespace {

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
    GEDGE_TRY_ASSIGN(req.components, runtime::pack_components(f->dirs, f->components));
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto r, runtime::pack(paths, *inv, req, ctx.reporter()));
    View out = make_view(r.to_json(), runtime::pack_summary(r));
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
    bool copy = !to->empty() || !device->empty();
    return Outcome{make_view(r.to_json(), runtime::verify_summary(b, r)),
                   runtime::verify_error(b, r, copy), std::nullopt};
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
    return Outcome{make_view(r.to_json(), runtime::gc_summary(r)), std::nullopt, std::nullopt};
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
    View v{r.to_json(),
           {{"id", "/id"}, {"name", "/name"}, {"created", "/created"}, {"action", "/action"}},
           "",
           runtime::remove_summary(r)};
    return Outcome{std::move(v).with_rows(runtime::remove_rows(r)), std::nullopt, std::nullopt};
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
  rt::add_push(*cmd, ctx);
  rt::add_mounts(*cmd, ctx);
  rt::add_check(*cmd, ctx);
}

}  // namespace gedge::cli