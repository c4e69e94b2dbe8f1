// Placeholder until the svc issue lands: the noun exists but refuses to pretend (exit 1).
#include "app.hpp"

namespace gedge::cli {

void register_svc(CLI::App& app, Ctx& ctx) {
  auto* cmd = app.add_subcommand("svc", "");
  for (const auto& noun : nouns())
    if (std::string_view(noun.name) == "svc") cmd->description(noun.summary);
  static std::vector<std::string> rest;
  cmd->add_option("args", rest, "")->group("");
  cmd->prefix_command();
  on_run(cmd, ctx, []() -> Result<Outcome> {
    return fail(ErrorCode::failure, "gedge svc is not implemented yet",
                "see the project's open issues");
  });
}

}  // namespace gedge::cli
