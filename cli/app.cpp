#include "app.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <regex>
#include <set>

#include "gedge/config.hpp"
#include "gedge/progress_bytes.hpp"
#include "help.hpp"

namespace gedge::cli {

namespace {

// Progress and warnings on stderr. Progress lines redraw in place on a TTY only.
class StderrReporter : public Reporter {
 public:
  StderrReporter(bool quiet, int verbose, bool tty, bool color)
      : quiet_(quiet), verbose_(verbose), tty_(tty), color_(color) {}
  ~StderrReporter() override { clear(); }

  // Redrawn in place at most every 100 ms (and at the end); counters never go back within a
  // task. Tasks named with bytes_task() show sizes, rate and ETA: "packing 1.2 GiB/3.4 GiB
  // 85.3 MiB/s ETA 0:27".
  void progress(std::string_view task, std::size_t done, std::size_t total) override {
    if (quiet_ || !tty_) return;
    auto now = std::chrono::steady_clock::now();
    // A bytes task stays one task while its "(detail)" changes: its counter and rate go on.
    std::string_view id = task;
    if (task.ends_with(kBytesTaskSuffix))
      id = task.substr(0, std::min(task.find(" ("), task.size()));
    if (id != task_) {
      task_ = std::string(id);
      started_ = now;
      last_done_ = 0;
      last_draw_ = {};
    }
    done = std::max(done, last_done_);
    last_done_ = done;
    bool finished = total && done >= total;
    if (!finished && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::string line;
    if (task.ends_with(kBytesTaskSuffix)) {
      std::string_view name = task.substr(0, task.size() - kBytesTaskSuffix.size());
      double secs = std::chrono::duration<double>(now - started_).count();
      double rate = secs > 0.05 ? static_cast<double>(done) / secs : 0;
      line = fmt::format("{} {}/{}", name, human(done), human(total));
      if (rate > 0) line += fmt::format(" {}/s", human(static_cast<uint64_t>(rate)));
      if (rate > 0 && total > done) {
        auto eta = static_cast<uint64_t>(static_cast<double>(total - done) / rate);
        line += fmt::format(" ETA {}:{:02}", eta / 60, eta % 60);
      }
    } else {
      line = total ? fmt::format("{} {}/{}", task, done, total) : fmt::format("{} {}", task, done);
    }
    std::cerr << "\r\033[K" << line << std::flush;
    dirty_ = true;
    if (finished) clear();
  }
  void step(std::string_view target, std::string_view what) override {
    log_line("step", fmt::format("{}: {}", target, what));
    if (quiet_) return;
    clear();
    std::cerr << fmt::format("{}: {}\n", target, what);
  }
  void info(std::string_view msg) override {
    log_line("info", msg);
    if (quiet_ || verbose_ < 1) return;
    clear();
    std::cerr << msg << "\n";
  }
  void warn(std::string_view msg) override {
    log_line("warn", msg);
    clear();
    std::cerr << (color_ ? "\033[33mwarning:\033[0m " : "warning: ") << msg << "\n";
  }

 private:
  void clear() {
    if (dirty_) std::cerr << "\r\033[K" << std::flush;
    dirty_ = false;
  }
  static std::string human(uint64_t n) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, ++u;
    return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[u]);
  }
  std::string task_;
  std::size_t last_done_ = 0;
  std::chrono::steady_clock::time_point started_, last_draw_;
  bool quiet_;
  int verbose_;
  bool tty_;
  bool color_;
  bool dirty_ = false;
};

}  // namespace

Result<Paths> Ctx::paths() {
  if (!paths_) {
    GEDGE_TRY_ASSIGN(paths_, resolve_paths(g.home));
  }
  return *paths_;
}

Result<Inventory*> Ctx::inventory() {
  if (!inv_) {
    GEDGE_TRY_ASSIGN(auto p, paths());
    GEDGE_TRY_ASSIGN(auto opened, Inventory::open(p.db, /*create=*/false));
    inv_.emplace(std::move(opened));
    set_log_file((p.log_dir / "gedge.log").string());
  }
  return &*inv_;
}

Reporter& Ctx::reporter() {
  // No progress under -q or JSON output (a script reads it), or when stderr is not a terminal.
  if (!reporter_)
    reporter_ = std::make_unique<StderrReporter>(
        g.quiet, g.verbose, stderr_is_tty() && output_raw() != "json", color());
  return *reporter_;
}

std::string Ctx::output_raw() const {
  return g.output.empty() ? config_output_ : g.output;
}

Result<Format> Ctx::format() const {
  std::string o = output_raw();
  if (o.empty()) return Format::table;
  return parse_format(o);
}

bool Ctx::stderr_is_tty() const {
  return ::isatty(2) == 1;
}
bool Ctx::stdin_is_tty() const {
  return ::isatty(0) == 1;
}

bool Ctx::color() const {
  if (g.color == "never") return false;
  if (g.color == "always") return true;
  if (std::getenv("NO_COLOR") != nullptr) return false;
  return ::isatty(1) == 1 && output_raw().empty();
}

namespace {

// Verbs whose output is an artefact to redirect or pipe (a key line, manifests, shell wiring, an
// exported file, a script): a stored `output: json` must not turn it into an object. -o still
// chooses their format.
bool prints_raw_artefact(const std::string& path) {
  static const std::set<std::string> raw = {
      "gedge device key", "gedge svc render", "gedge runtime mounts", "gedge cluster export",
      "gedge completion", "gedge __tree",     "gedge __complete"};
  return raw.contains(path);
}

}  // namespace

Result<void> Ctx::apply_config_defaults(CLI::App& app) {
  auto p = paths();
  if (!p) return {};  // no HOME: the verbs that need one say so
  if (const char* named = std::getenv("GEDGE_CONFIG");
      named && *named && !std::filesystem::exists(p->config_file))
    return fail(ErrorCode::usage,
                fmt::format("GEDGE_CONFIG names {}, which does not exist", p->config_file.string()),
                "create it, or unset GEDGE_CONFIG to use ~/.config/gedge/config.yaml");
  GEDGE_TRY_ASSIGN(auto cfg, load_config(p->config_file));
  for (const auto& w : cfg.warnings) reporter().warn(w);
  const CLI::App* leaf = &app;
  for (auto subs = app.get_subcommands(); !subs.empty(); subs = subs.front()->get_subcommands())
    leaf = subs.front();
  if (cfg.output && !prints_raw_artefact(command_path(leaf))) config_output_ = *cfg.output;
  if (cfg.timeout_s && app.count("--timeout") == 0) g.timeout_s = *cfg.timeout_s;
  if (cfg.parallel && app.count("--parallel") == 0) g.parallel = *cfg.parallel;
  if (cfg.color && app.count("--color") == 0) g.color = *cfg.color;
  return {};
}

void on_run(CLI::App* cmd, Ctx& ctx, Action a) {
  cmd->callback([&ctx, a = std::move(a)] { ctx.set_action(a); });
}

void examples(CLI::App* cmd, std::initializer_list<const char*> lines) {
  std::string footer = "\nExamples:\n";
  for (const char* l : lines) footer += fmt::format("  {}\n", l);
  cmd->footer(footer);
}

Result<std::pair<std::string, std::string>> parse_label(std::string_view s) {
  static const std::regex re(R"(^([A-Za-z0-9][A-Za-z0-9._/-]{0,62})=([A-Za-z0-9._-]{0,63})$)");
  std::string str(s);
  std::smatch m;
  if (!std::regex_match(str, m, re))
    return fail(
        ErrorCode::usage, fmt::format("malformed label '{}'", str),
        "labels are key=value; key: letters, digits, '._/-'; value: letters, digits, '._-'");
  return std::pair{m[1].str(), m[2].str()};
}

Result<void> confirm(Ctx& ctx, bool yes, const std::string& question) {
  if (yes) return {};
  if (!ctx.stdin_is_tty())
    return fail(ErrorCode::usage, fmt::format("{}: refusing without confirmation", question),
                "pass --yes to confirm when not on a terminal");
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer == "y" || answer == "Y" || answer == "yes") return {};
  return fail(ErrorCode::failure, "not confirmed");
}

}  // namespace gedge::cli
