#include "version.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <hwloc.h>
#include <libssh/libssh.h>
#include <openssl/crypto.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <CLI/Version.hpp>
#include <regex>

#include "app.hpp"
#include "gedge/ansible.hpp"
#include "gedge/fd.hpp"
#include "gedge_commit.hpp"
#include "gedge_version.hpp"

extern char** environ;

namespace gedge::cli {

namespace {

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown";
#endif
}

// The ansible-core that `cluster build` would run (ansible-playbook on PATH), or null. Fixed
// argv, no shell; its --version output's first line is "ansible-playbook [core 2.14.18]".
nlohmann::json ansible_core() {
  UniqueFd fds[2];
  if (make_pipe(fds) != 0) return nullptr;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1].get(), 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addclose(&fa, fds[0].get());
  char arg0[] = "ansible-playbook", arg1[] = "--version";
  char* argv[] = {arg0, arg1, nullptr};
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, "ansible-playbook", &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  fds[1].reset();
  std::string out;
  char buf[4096];
  for (ssize_t n; rc == 0 && (n = ::read(fds[0].get(), buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  fds[0].reset();
  int status = 0;
  if (rc == 0) ::waitpid(pid, &status, 0);
  static const std::regex core(R"(\[core ([0-9][^\]\s]*)\])");
  std::smatch m;
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !std::regex_search(out, m, core))
    return nullptr;
  return m[1].str();
}

}  // namespace

std::string version_line() {
  return fmt::format("gedge {} ({})", GEDGE_VERSION, GEDGE_COMMIT);
}

void register_version(CLI::App& app, Ctx& ctx) {
  auto* cmd =
      app.add_subcommand("version", "Print gedge's version and the libraries it was built with");
  examples(cmd, {"gedge version", "gedge version -o json | jq .libraries"});
  on_run(cmd, ctx, []() -> Result<Outcome> {
    unsigned hw = hwloc_get_api_version();
    nlohmann::json libs{
        {"cli11", CLI11_VERSION},
        {"yaml-cpp", GEDGE_YAML_CPP_VERSION},
        {"libssh", ssh_version(0)},
        {"libcurl", curl_version_info(CURLVERSION_NOW)->version},
        {"nlohmann_json", fmt::format("{}.{}.{}", NLOHMANN_JSON_VERSION_MAJOR,
                                      NLOHMANN_JSON_VERSION_MINOR, NLOHMANN_JSON_VERSION_PATCH)},
        {"fmt",
         fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100)},
        {"sqlite", sqlite3_libversion()},
        {"hwloc", fmt::format("{}.{}.{}", hw >> 16, (hw >> 8) & 0xff, hw & 0xff)},
        {"openssl", OpenSSL_version(OPENSSL_VERSION)},
        {"zstd", ZSTD_versionString()},
        {"valijson", GEDGE_VALIJSON_VERSION},
    };
    auto playbooks = ansible::find_playbook_dir();
    nlohmann::json j{{"version", GEDGE_VERSION},
                     {"commit", GEDGE_COMMIT},
                     {"build_type", GEDGE_BUILD_TYPE},
                     {"compiler", compiler()},
                     {"libraries", libs},
                     {"ansible_core", ansible_core()},
                     {"playbook_dir",
                      playbooks ? nlohmann::json(playbooks->string()) : nlohmann::json(nullptr)}};
    return Outcome{View{j, {}, "", ""}, std::nullopt, std::nullopt};
  });
}

}  // namespace gedge::cli
