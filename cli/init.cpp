#include <fmt/format.h>

#include "app.hpp"
#include "gedge/keys.hpp"

namespace gedge::cli {

void register_init(CLI::App& app, Ctx& ctx) {
  auto* cmd =
      app.add_subcommand("init", "Create GEDGE_HOME: inventory and gedge's own SSH key pair");
  examples(cmd, {"gedge init", "gedge --home /srv/gedge init -o json"});
  on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    bool had_db = std::filesystem::exists(paths.db);
    GEDGE_TRY(ensure_home(paths));
    set_log_file((paths.log_dir / "gedge.log").string());
    GEDGE_TRY_ASSIGN(auto inv, Inventory::open(paths.db, /*create=*/true));
    GEDGE_TRY_ASSIGN(auto key, ensure_keypair(paths));
    bool changed = !had_db || key.created;
    log_line("info", fmt::format("init home={} changed={}", paths.home.string(), changed));
    nlohmann::json j{{"home", paths.home.string()},
                     {"database", paths.db.string()},
                     {"schema_version", inv.schema_version()},
                     {"public_key", key.public_line},
                     {"key_fingerprint", key.fingerprint},
                     {"changed", changed}};
    View v{j, {}, "", changed ? "" : "gedge is already initialised; nothing changed"};
    return Outcome{v, std::nullopt, std::nullopt};
  });
}

}  // namespace gedge::cli
