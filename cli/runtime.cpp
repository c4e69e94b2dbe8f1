// Placeholder until the runtime issue lands: the noun exists but refuses to pretend (exit 1).
#include "app.hpp"

namespace gedge::cli {

void register_runtime(CLI::App& app, Ctx& ctx) {
  auto* cmd = app.add_subcommand("runtime", "");
  for (const auto& noun : nouns())
    if (std::string_view(noun.name) == "runtime") cmd->description(noun.summary);
  static std::vector<std::string> rest;
  cmd->add_option("args", rest, "")->group("");
  cmd->prefix_command();
  on_run(cmd, ctx, []() -> Result<Outcome> {
    return fail(ErrorCode::failure, "gedge runtime is not implemented yet",
                "see the project's open issues");
  });
}

}  // namespace gedge::cli
