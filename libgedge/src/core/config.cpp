#include "gedge/config.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "gedge/document.hpp"
#include "gedge/paths.hpp"

namespace gedge {

namespace {

// The same sets and ranges as the global flags (cli/main.cpp add_globals).
constexpr const char* kKnown = "output, timeout, parallel, color, known_hosts_files";

Result<std::string> one_of(const YAML::Node& v, const std::string& where,
                           std::initializer_list<const char*> allowed) {
  std::string s = v.IsScalar() ? v.Scalar() : "";
  for (const char* a : allowed)
    if (v.IsScalar() && s == a) return s;
  std::string list;
  for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return fail(ErrorCode::usage, fmt::format("{}: '{}' is not one of {}", where,
                                            v.IsScalar() ? s : "(not a scalar)", list));
}

template <typename T>
Result<T> number_in(const YAML::Node& v, const std::string& where, T lo, T hi) {
  T x{};
  if (!v.IsScalar() || !YAML::convert<T>::decode(v, x) ||
      (std::is_floating_point_v<T> && !std::isfinite(static_cast<double>(x))))
    return fail(ErrorCode::usage, fmt::format("{}: '{}' is not a {}", where,
                                              v.IsScalar() ? v.Scalar() : "(not a scalar)",
                                              std::is_integral_v<T> ? "whole number" : "number"));
  if (x < lo || x > hi)
    return fail(ErrorCode::usage,
                fmt::format("{}: {} is outside {}..{}", where, v.Scalar(), lo, hi));
  return x;
}

}  // namespace

Result<Config> load_config(const std::filesystem::path& file) {
  Config c;
  if (file.empty() || !std::filesystem::exists(file)) return c;
  GEDGE_TRY_ASSIGN(auto text, read_input_file(file, 1u << 20, "config file"));
  auto line = [&](const YAML::Node& n) {
    return fmt::format("{}:{}", file.string(), n.Mark().line + 1);
  };
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return c;
    if (!root.IsMap())
      return fail(ErrorCode::usage,
                  fmt::format("{}: expected a mapping of {}", line(root), kKnown));
    // Range-for keeps each key/value pair alive; yaml-cpp 0.7's iterator operator-> returns
    // a proxy over a temporary (a stack-use-after-scope under ASan).
    for (const auto& kv : root) {
      auto key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("(not a scalar)");
      const YAML::Node& v = kv.second;
      std::string where = fmt::format("{}: {}", line(v.IsNull() ? kv.first : v), key);
      if (key == "output") {
        GEDGE_TRY_ASSIGN(c.output, one_of(v, where, {"table", "json", "yaml"}));
      } else if (key == "timeout") {
        GEDGE_TRY_ASSIGN(c.timeout_s, number_in<double>(v, where, 0.1, 86400.0));
      } else if (key == "parallel") {
        GEDGE_TRY_ASSIGN(c.parallel, number_in<int>(v, where, 1, 4096));
      } else if (key == "color") {
        GEDGE_TRY_ASSIGN(c.color, one_of(v, where, {"auto", "always", "never"}));
      } else if (key == "known_hosts_files") {
        // Paths as in a shell: ~/ is $HOME; a relative path is relative to this file's directory.
        if (!v.IsSequence())
          return fail(
              ErrorCode::usage,
              fmt::format("{}: expected a list of known_hosts files, e.g. [~/.ssh/known_hosts]",
                          where));
        std::vector<std::string> files;
        for (const auto& f : v) {
          std::string fw = fmt::format("{}: {}", line(f), key);
          if (!f.IsScalar() || f.Scalar().empty())
            return fail(ErrorCode::usage,
                        fmt::format("{}: '{}' is not a file name", fw,
                                    f.IsScalar() ? f.Scalar() : "(not a scalar)"));
          std::filesystem::path path = f.Scalar();
          if (f.Scalar().rfind("~/", 0) == 0) {
            const char* home = std::getenv("HOME");
            if (!home || !*home)
              return fail(ErrorCode::usage,
                          fmt::format("{}: {} needs $HOME, which is not set", fw, f.Scalar()));
            path = std::filesystem::path(home) / f.Scalar().substr(2);
          } else if (path.is_relative()) {
            path = file.parent_path() / path;
          }
          if (::access(path.c_str(), R_OK) != 0 || std::filesystem::is_directory(path))
            return fail(ErrorCode::usage, fmt::format("{}: cannot read {}", fw, path.string()),
                        "fix the path, or remove it from the list");
          files.push_back(path.string());
        }
        c.known_hosts_files = std::move(files);
      } else {
        c.warnings.push_back(
            fmt::format("{}: unknown key '{}' ignored (known: {})", line(kv.first), key, kKnown));
      }
    }
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage, fmt::format("{}:{}: {}", file.string(), e.mark.line + 1, e.msg));
  }
  return c;
}

}  // namespace gedge
