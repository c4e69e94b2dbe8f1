#include "gedge/config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "gedge/paths.hpp"

namespace gedge {

Result<Config> load_config(const std::filesystem::path& file) {
  Config c;
  if (file.empty() || !std::filesystem::exists(file)) return c;
  GEDGE_TRY_ASSIGN(auto text, read_file(file));
  auto where = [&](const YAML::Node& n) {
    return fmt::format("{}:{}", file.string(), n.Mark().line + 1);
  };
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return c;
    if (!root.IsMap())
      return fail(ErrorCode::usage, fmt::format("{}: expected a mapping", where(root)));
    // Range-for keeps each key/value pair alive; yaml-cpp 0.7's iterator operator-> returns
    // a proxy over a temporary (a stack-use-after-scope under ASan).
    for (const auto& kv : root) {
      auto key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "output") {
        c.output = v.as<std::string>();
      } else if (key == "timeout") {
        c.timeout_s = v.as<double>();
      } else if (key == "parallel") {
        c.parallel = v.as<int>();
      } else if (key == "color") {
        c.color = v.as<std::string>();
      } else {
        return fail(ErrorCode::usage, fmt::format("{}: unknown field '{}'", where(kv.first), key),
                    "known fields: output, timeout, parallel, color");
      }
    }
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage,
                fmt::format("{}:{}: {}", file.string(), e.mark.line + 1, e.msg));
  }
  return c;
}

}  // namespace gedge
