// Dynamic completion: `gedge __complete WORDS...` (cli/complete.cpp), called by the scripts that
// `gedge completion SHELL` prints.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "app.hpp"

namespace gedge::cli {

// `words`: what follows `gedge` on the command line, the last being the word under completion
// (possibly ""). Prints "VALUE\tDESCRIPTION" lines for the candidates that start with it; none
// means a file name. Returns the exit status (0).
int complete_words(CLI::App& app, Ctx& ctx, std::vector<std::string> words);

}  // namespace gedge::cli
