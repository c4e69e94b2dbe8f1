#include "help.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "gedge/error.hpp"
#include "gedge/output.hpp"

namespace gedge::cli {

namespace {

std::vector<CLI::App*> visible_subcommands(CLI::App* cmd) {
  return cmd->get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); });
}

CLI::App* find_subcommand(CLI::App* cmd, const std::string& name) {
  // Hidden commands (__tree, __complete) are found but never suggested.
  auto subs = cmd->get_subcommands([&](const CLI::App* a) { return a->check_name(name); });
  return subs.empty() ? nullptr : subs.front();
}

// The option named by `arg` ("-o", "--output", "--output=json") on `cmd` or a parent.
const CLI::Option* find_option(CLI::App* cmd, const std::string& arg) {
  std::string name = arg.substr(0, arg.find('='));
  for (CLI::App* c = cmd; c != nullptr; c = c->get_parent()) {
    if (const CLI::Option* o = c->get_option_no_throw(name)) return o;
  }
  return nullptr;
}

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
// neighbours ("devcie" is one edit from "device", as git counts it).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

int usage_error(CLI::App* at, const std::string& message, const std::string& hint, bool json,
                bool show_usage) {
  if (json) {
    std::cerr << error_json(Error{ErrorCode::usage, message, hint}).dump() << "\n";
  } else {
    if (show_usage)
      std::cerr << at->help(at->get_parent() ? command_path(at->get_parent()) : "") << "\n";
    std::cerr << "error: " << message << "\n";
    if (!hint.empty()) std::cerr << "hint: " << hint << "\n";
  }
  return exit_code_for(ErrorCode::usage);
}

int unknown_command(CLI::App* at, const std::string& word, bool json) {
  std::vector<std::string> names;
  for (CLI::App* s : visible_subcommands(at)) names.push_back(s->get_name());
  std::string best = nearest_name(word, names);
  std::string what = at->get_parent() ? "verb" : "command";
  std::string hint = best.empty() ? "" : fmt::format("did you mean '{}'? ", best);
  hint += fmt::format("see '{} --help'", command_path(at));
  return usage_error(at, fmt::format("unknown {} '{}' for '{}'", what, word, command_path(at)),
                     hint, json, false);
}

}  // namespace

std::string command_path(const CLI::App* cmd) {
  std::string path;
  for (const CLI::App* c = cmd; c != nullptr; c = c->get_parent())
    path = path.empty() ? c->get_name() : c->get_name() + " " + path;
  return path;
}

std::string nearest_name(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (!word.empty() && c.starts_with(word)) d = std::min<size_t>(d, 1);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  size_t limit = std::max<size_t>(1, word.size() / 3);
  return best_d <= limit ? best : "";
}

bool argv_wants_json(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if ((a == "-o" || a == "--output") && i + 1 < args.size()) return args[i + 1] == "json";
    if (a == "-ojson" || a == "--output=json") return true;
  }
  return false;
}

std::optional<int> answer_help_and_typos(CLI::App& app, const std::vector<std::string>& args,
                                         bool json) {
  CLI::App* cur = &app;
  bool help_flag = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() > 1 && a[0] == '-') {
      if (a == "-h" || a == "--help" || a == "--version") help_flag = true;
      const CLI::Option* o = find_option(cur, a);
      bool inline_value = a.find('=') != std::string::npos || (a.size() > 2 && a[1] != '-');
      if (o != nullptr && takes_value(o) && !inline_value) ++i;  // skip its value
      continue;
    }
    if (visible_subcommands(cur).empty()) break;  // a verb's own positionals
    if (a == "help") {
      // `gedge help device ls` and `gedge device help ls`: the rest names the page.
      for (size_t j = i + 1; j < args.size(); ++j) {
        if (args[j].starts_with("-")) continue;
        if (visible_subcommands(cur).empty()) break;
        CLI::App* sub = find_subcommand(cur, args[j]);
        if (sub == nullptr) return unknown_command(cur, args[j], json);
        cur = sub;
      }
      std::cout << cur->help(cur->get_parent() ? command_path(cur->get_parent()) : "");
      return 0;
    }
    CLI::App* sub = find_subcommand(cur, a);
    if (sub == nullptr) return unknown_command(cur, a, json);
    cur = sub;
  }
  if (!help_flag && !visible_subcommands(cur).empty()) {
    std::string msg = cur->get_parent() ? fmt::format("'{}' needs a verb", command_path(cur))
                                        : std::string("no command given");
    return usage_error(cur, msg, fmt::format("see '{} --help'", command_path(cur)), json, true);
  }
  return std::nullopt;
}

void add_global_flags_to_help(CLI::App& app) {
  std::vector<std::pair<std::string, std::string>> rows;
  size_t width = 0;
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_lnames().empty() || o->get_lnames().front() == "help") continue;
    std::string names;
    for (const auto& s : o->get_snames()) names += "-" + s + ", ";
    for (const auto& l : o->get_lnames()) names += "--" + l + ", ";
    names.resize(names.size() - 2);
    if (takes_value(o) && !o->get_option_text().empty()) names += " " + o->get_option_text();
    width = std::max(width, names.size());
    rows.emplace_back(std::move(names), o->get_description());
  }
  std::string text = "\nGlobal flags:\n";
  for (const auto& [names, desc] : rows) text += fmt::format("  {:<{}}  {}\n", names, width, desc);
  std::function<void(CLI::App*)> walk = [&](CLI::App* cmd) {
    for (CLI::App* sub : visible_subcommands(cmd)) {
      sub->footer(sub->get_footer() + text);
      walk(sub);
    }
  };
  walk(&app);
}

}  // namespace gedge::cli
