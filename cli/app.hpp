// Shared CLI plumbing: global options, the context a verb runs in, and how a verb hands its
// typed result back to the one renderer. No business logic lives in cli/.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/inventory.hpp"
#include "gedge/output.hpp"
#include "gedge/paths.hpp"
#include "gedge/report.hpp"

namespace gedge::cli {

struct GlobalOptions {
  std::string output;  // "" = config or table
  bool quiet = false;
  int verbose = 0;
  std::string color = "auto";
  std::optional<std::string> home;
  double timeout_s = 30.0;
  int parallel = 64;
  std::string ssh_config;  // --ssh-config / GEDGE_SSH_CONFIG: the ssh config `device add` resolves
                           // aliases with
  // Everything after the first "--" on the command line (verbs like `device exec NAME -- CMD`
  // need it separated from their own positionals; CLI11 folds both together).
  std::vector<std::string> after_dashdash;
};

// What a verb returns: the view to print (stdout) and, for partial failures, the error that
// decides the exit status (printed on stderr after the view).
struct Outcome {
  View view;
  std::optional<Error> error;
  std::optional<std::string> raw;  // printed verbatim instead of the view (custom -o formats)
};

using Action = std::function<Result<Outcome>()>;

class Ctx {
 public:
  GlobalOptions g;

  // Resolved paths (GEDGE_HOME etc.).
  Result<Paths> paths();
  // The inventory of an initialised home (not_found with a hint to run 'gedge init' otherwise).
  Result<Inventory*> inventory();
  // Progress/warning sink that writes to stderr as -q/-v/TTY dictate.
  Reporter& reporter();
  // The -o value as one of table/json/yaml (usage error otherwise).
  Result<Format> format() const;
  // The raw -o value ("" when not given), for verbs with their own formats.
  std::string output_raw() const;
  bool stderr_is_tty() const;
  bool stdin_is_tty() const;
  bool color() const;

  void set_action(Action a) { action_ = std::move(a); }
  Action& action() { return action_; }
  // Applied after the command line is parsed: the config file's defaults for flags not given
  // (its `output` only for verbs that show state, not for raw artefacts such as `device key`).
  // A bad value is a usage error naming file, line and key; unknown keys are warned about.
  Result<void> apply_config_defaults(CLI::App& app);

 private:
  Action action_;
  std::optional<Paths> paths_;
  std::optional<Inventory> inv_;
  std::unique_ptr<Reporter> reporter_;
  std::string config_output_;
};

// Makes `cmd` run `a` when it is the selected subcommand.
void on_run(CLI::App* cmd, Ctx& ctx, Action a);

// Adds a footer of examples to a command's --help.
void examples(CLI::App* cmd, std::initializer_list<const char*> lines);

// Parses "k=v" (label syntax: key [A-Za-z0-9._/-]+, value [A-Za-z0-9._-]*) — usage error otherwise.
Result<std::pair<std::string, std::string>> parse_label(std::string_view s);

// Asks for confirmation on a TTY; without a TTY, returns a usage error asking for --yes.
Result<void> confirm(Ctx& ctx, bool yes, const std::string& question);

// A noun: its name, one-line summary, and the function that registers its verbs.
struct NounSpec {
  const char* name;
  const char* summary;
  void (*register_fn)(CLI::App& app, Ctx& ctx);
};

// The command table, in help order.
const std::vector<NounSpec>& nouns();

// Nouns (one file each under cli/).
void register_init(CLI::App& app, Ctx& ctx);
void register_device(CLI::App& app, Ctx& ctx);
void register_cluster(CLI::App& app, Ctx& ctx);
void register_runtime(CLI::App& app, Ctx& ctx);
void register_svc(CLI::App& app, Ctx& ctx);
void register_sched(CLI::App& app, Ctx& ctx);
void register_tune(CLI::App& app, Ctx& ctx);
void register_completion(CLI::App& app, Ctx& ctx);
void register_version(CLI::App& app, Ctx& ctx);

// Completion scripts and the command-tree dump, generated from the CLI11 tree.
std::string completion_script(const CLI::App& root, std::string_view shell);
nlohmann::json command_tree(const CLI::App& root);

}  // namespace gedge::cli
