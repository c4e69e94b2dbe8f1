// gedge's entry point: builds the command tree from the noun table, parses, runs the selected
// verb, renders its result and maps errors to exit codes. The only top-level catch lives here.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>

#include "app.hpp"
#include "complete.hpp"
#include "gedge/openssh.hpp"
#include "help.hpp"
#include "version.hpp"

using namespace gedge;
using namespace gedge::cli;

namespace {

void on_sigint(int) {
  if (cancel_requested()) {  // second Ctrl-C: leave now, taking started programs along
    kill_child_groups(SIGKILL);
    _exit(130);
  }
  request_cancel();
}

int report_error(Ctx& ctx, const Error& e) {
  log_line("error", e.message);
  auto fmt_ok = ctx.format();
  if (fmt_ok && *fmt_ok == Format::json) {
    std::cerr << error_json(e).dump() << "\n";
  } else {
    bool color = ctx.color() && ctx.stderr_is_tty();
    std::cerr << (color ? "\033[31merror:\033[0m " : "error: ") << e.message << "\n";
    if (!e.hint.empty()) std::cerr << "hint: " << e.hint << "\n";
  }
  return exit_code_for(e.code);
}

void add_globals(CLI::App& app, GlobalOptions& g) {
  app.add_option("-o,--output", g.output,
                 "Output format: table, json or yaml (some verbs add more)")
      ->option_text("FORMAT");
  app.add_flag("-q,--quiet", g.quiet, "Print only results and errors");
  app.add_flag("-v,--verbose", g.verbose, "More detail on stderr (repeat for more)");
  app.add_option("--color", g.color, "Colour: auto, always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->option_text("WHEN");
  app.add_option("--home", g.home, "gedge's state directory (env GEDGE_HOME)")->option_text("DIR");
  app.add_option("--timeout", g.timeout_s, "Timeout for network operations, in seconds")
      ->check(CLI::Range(0.1, 86400.0))
      ->option_text("SECONDS");
  app.add_option(
         "--ssh-config", g.ssh_config,
         "ssh config file that device add/import resolve host aliases with (default ~/.ssh/config)")
      ->envname("GEDGE_SSH_CONFIG")
      ->option_text("FILE");
  app.add_option("--parallel", g.parallel, "Maximum concurrent connections")
      ->check(CLI::Range(1, 4096))
      ->option_text("N");
}

}  // namespace

int main(int argc, char** argv) {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Ctx ctx;
  CLI::App app{
      "gedge: one tool for edge AI fleets: devices, clusters, runtimes, services, "
      "placement and pinning",
      "gedge"};
  app.require_subcommand(1);
  app.fallthrough();
  add_globals(app, ctx.g);
  for (const auto& noun : nouns()) noun.register_fn(app, ctx);
  // Hidden: the command tree as JSON, used by tests to check man pages and completions.
  auto* tree = app.add_subcommand("__tree", "")->group("");
  on_run(tree, ctx, [&app]() -> Result<Outcome> {
    return Outcome{View{}, std::nullopt, command_tree(app).dump(2) + "\n"};
  });
  app.set_version_flag("--version", version_line(),
                       "Print gedge's version and exit ('gedge version' shows more)");
  add_global_flags_to_help(app);
  app.footer(
      "\nRun 'gedge help NOUN [VERB]' or 'gedge NOUN --help' for a noun's verbs. Exit status: 0 "
      "ok,\n"
      "1 failure, 2 usage, 3 partial, 4 not found, 5 unreachable, 6 auth/host key, 7 conflict,\n"
      "130 interrupted.\n");

  // The completion scripts call `gedge __complete WORDS...` with the words as typed so far, which
  // CLI11 must not parse (they end mid-command).
  if (argc >= 2 && std::string_view(argv[1]) == "__complete")
    return complete_words(app, ctx, std::vector<std::string>(argv + 2, argv + argc));

  // Everything after the first "--" is a command for the verb to run (device exec, tune pin,
  // tune bench); CLI11 only sees what comes before it.
  int cli_argc = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      ctx.g.after_dashdash.assign(argv + i + 1, argv + argc);
      cli_argc = i;
      break;
    }
  }
  std::vector<std::string> args(argv + 1, argv + cli_argc);
  bool json_errors = argv_wants_json(args);
  if (auto answered = answer_help_and_typos(app, args, json_errors)) return *answered;
  try {
    app.parse(cli_argc, argv);
    if (ctx.g.verbose > 0 && !ctx.g.quiet) set_ssh_diagnostics(ctx.g.verbose, &ctx.reporter());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    // The deepest command the parse reached names the help page to read.
    const CLI::App* at = &app;
    for (auto subs = app.get_subcommands(); !subs.empty(); subs = subs.front()->get_subcommands())
      at = subs.front();
    if (json_errors) {
      std::cerr << error_json(Error{ErrorCode::usage, e.what(),
                                    fmt::format("see '{} --help'", command_path(at))})
                       .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
      return 2;
    }
    app.exit(e);
    return 2;
  }

  try {
    if (auto applied = ctx.apply_config_defaults(app); !applied)
      return report_error(ctx, applied.error());
    if (!ctx.action())
      return report_error(ctx, Error{ErrorCode::usage, "no command given", "see 'gedge --help'"});
    auto result = ctx.action()();
    // After Ctrl-C a failure is reported as interrupted (130), keeping the verb's own message and
    // hint (e.g. "--resume finishes it") and its partial view.
    auto as_interrupted = [](Error e) {
      if (e.code != ErrorCode::interrupted) {
        e.message = e.message.empty() ? "interrupted" : "interrupted: " + e.message;
        e.code = ErrorCode::interrupted;
      }
      return e;
    };
    if (cancel_requested() && !result) return report_error(ctx, as_interrupted(result.error()));
    if (cancel_requested() && result->error) result->error = as_interrupted(*result->error);
    if (!result) return report_error(ctx, result.error());
    if (result->raw) {
      std::cout << *result->raw << std::flush;
    } else {
      auto f = ctx.format();
      if (!f) return report_error(ctx, f.error());
      render(result->view, RenderOptions{*f, ctx.color()}, std::cout);
      std::cout << std::flush;
    }
    if (result->error) return report_error(ctx, *result->error);
    return 0;
  } catch (const std::exception& e) {
    return report_error(ctx, Error{ErrorCode::internal, fmt::format("internal error: {}", e.what()),
                                   "this is a bug in gedge; please report it with 'gedge -v'"});
  }
}
