// --ignore-not-found, shared by the rm verbs (kubectl's flag): removing what is not there is then
// success with nothing changed, for scripts that converge.
#pragma once

#include <fmt/format.h>

#include "app.hpp"

namespace gedge::cli {

inline void add_ignore_not_found(CLI::App* cmd, bool& flag) {
  cmd->add_flag("--ignore-not-found", flag, "Exit 0 with nothing changed when it does not exist");
}

// What an rm verb returns under --ignore-not-found when `error` is its not_found; nullopt when
// the error is another one (or the flag is off), which then stands.
inline std::optional<Outcome> nothing_removed(bool ignore, const Error& error) {
  if (!ignore || error.code != ErrorCode::not_found) return std::nullopt;
  nlohmann::json j{
      {"removed", nlohmann::json::array()}, {"changed", false}, {"not_found", error.message}};
  return Outcome{View{j, {}, "", ""}, std::nullopt, std::nullopt};
}

}  // namespace gedge::cli
