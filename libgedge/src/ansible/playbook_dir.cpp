// Where gedge's playbooks are. The only file of the module compiled with build-time paths
// (GEDGE_INSTALL_PLAYBOOK_DIR, GEDGE_SOURCE_PLAYBOOK_DIR; libgedge/CMakeLists.txt): the others
// compile the same in any checkout, so ccache serves a second worktree from the first.
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "gedge/ansible.hpp"

namespace gedge::ansible {

Result<std::filesystem::path> find_playbook_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("GEDGE_PLAYBOOK_DIR"); env && *env) {
    fs::path p(env);
    if (fs::exists(p / "containers.yml")) return p;
    return fail(ErrorCode::not_found,
                fmt::format("GEDGE_PLAYBOOK_DIR={} holds no containers.yml", env));
  }
  std::vector<fs::path> tried;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  // An installed tree, wherever it was moved: <prefix>/bin/gedge -> <prefix>/share/gedge/playbooks.
  if (!ec) tried.push_back(exe.parent_path().parent_path() / "share" / "gedge" / "playbooks");
  // The prefix configured at build time, then the source tree the binary was built from (a build
  // directory anywhere, e.g. cmake -S . -B /tmp/b).
  tried.push_back(GEDGE_INSTALL_PLAYBOOK_DIR);
  tried.push_back(GEDGE_SOURCE_PLAYBOOK_DIR);
  std::string where;
  for (const auto& d : tried) {
    if (fs::exists(d / "containers.yml", ec)) return d;
    where += (where.empty() ? "" : ", ") + d.string();
  }
  return fail(ErrorCode::not_found,
              fmt::format("gedge's playbooks were not found (looked in {})", where),
              "set GEDGE_PLAYBOOK_DIR to the playbooks/ directory of the gedge installation");
}

}  // namespace gedge::ansible
