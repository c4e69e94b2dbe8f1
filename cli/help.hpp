// Help and usage errors the way git and kubectl do them, done before CLI11 parses: CLI11 2.1 only
// says "A subcommand is required" for a bare noun, a typo or `help`.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gedge::cli {

// True when the command line asks for JSON (-o json, -ojson, --output json, --output=json).
bool argv_wants_json(const std::vector<std::string>& args);

// Handles `gedge`, `gedge help [NOUN [VERB]]`, `gedge NOUN help [VERB]`, a bare noun and an
// unknown noun or verb (with the nearest name suggested). Returns the exit status when it
// answered the command line itself (0 help, 2 usage); nullopt lets CLI11 parse it.
// `args` is argv without the program name and without anything after "--".
std::optional<int> answer_help_and_typos(CLI::App& app, const std::vector<std::string>& args,
                                         bool json);

// Appends the global flags (the root's options) to every noun's and verb's help page.
void add_global_flags_to_help(CLI::App& app);

// The candidate closest to `word` by edit distance, if close enough to be a likely typo
// (distance <= max(1, size/3), or `word` is a prefix of it); "" otherwise.
std::string nearest_name(std::string_view word, const std::vector<std::string>& candidates);

// Whether the option reads a value (CLI11 2.1 gives flags a type size of 1, so get_type_size()
// cannot tell).
inline bool takes_value(const CLI::Option* o) {
  return o->get_items_expected_max() != 0;
}

// The command path of `cmd` as typed ("gedge device ls").
std::string command_path(const CLI::App* cmd);

}  // namespace gedge::cli
