// Internal to the k8s module: what kubeconfig.cpp (parsing, resolving) shares with
// kubeconfig_locate.cpp (finding the files, the in-cluster account).
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gedge/k8s.hpp"

namespace gedge::k8s::detail {

// A regular file of bounded size (a FIFO or /dev/zero would hang or grow without end).
Result<std::string> read_small(const std::filesystem::path& p, const std::string& what);

// One parsed file, for messages and relative references.
struct Doc {
  std::string file;  // "" from text
  std::filesystem::path base;
  YAML::Node root;
};

// A bearer token as it may go into a header: one trailing newline trimmed, no control
// characters (a multi-line file would otherwise become header lines).
Result<std::string> clean_token(std::string t, const Doc* d, const YAML::Node& at,
                                const std::string& what);

Result<Doc> parse_doc(const std::string& text, const std::string& file,
                      const std::filesystem::path& base);

// Merges the files (the first that names an entry wins) and resolves `context`.
Result<Kubeconfig> merge_and_resolve(std::vector<Doc> docs, const std::string& context);

}  // namespace gedge::k8s::detail
