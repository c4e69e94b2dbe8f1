// What runtime.cpp (pack, ls, show, verify, rm, gc) shares with runtime_push.cpp (push, mounts,
// check).
#pragma once

#include <string>
#include <vector>

#include "app.hpp"

namespace gedge::cli::rt {

// A View set member by member (robust to fields added to View later).
View make_view(nlohmann::json data, std::string footer = "", std::vector<Column> columns = {},
               std::string rows = "");

void add_push(CLI::App& noun, Ctx& ctx);
void add_mounts(CLI::App& noun, Ctx& ctx);
void add_check(CLI::App& noun, Ctx& ctx);

}  // namespace gedge::cli::rt
