#include <CLI/Version.hpp>
#include <curl/curl.h>
#include <fmt/format.h>
#include <hwloc.h>
#include <libssh/libssh.h>
#include <sqlite3.h>

#include "app.hpp"
#include "gedge_version.hpp"

namespace gedge::cli {

void register_version(CLI::App& app, Ctx& ctx) {
  auto* cmd = app.add_subcommand("version", "Print gedge's version and the libraries it was built with");
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
        {"fmt", fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100)},
        {"sqlite", sqlite3_libversion()},
        {"hwloc", fmt::format("{}.{}.{}", hw >> 16, (hw >> 8) & 0xff, hw & 0xff)},
    };
    nlohmann::json j{{"version", GEDGE_VERSION}, {"commit", GEDGE_COMMIT}, {"libraries", libs}};
    return Outcome{View{j, {}, "", ""}, std::nullopt, std::nullopt};
  });
}

}  // namespace gedge::cli
