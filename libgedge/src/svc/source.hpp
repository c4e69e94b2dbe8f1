// Internal: a YAML/JSON document converted to JSON, with the line of every node, so errors can
// name FILE:LINE and a field path.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "gedge/error.hpp"
#include "gedge/svc.hpp"

namespace gedge::svc::detail {

struct Source {
  std::string file;
  nlohmann::json doc;
  std::map<std::string, int> lines;  // JSON pointer -> 1-based line (keys: the key's line)

  // Line of the node at `pointer`, or of its nearest ancestor.
  int line_of(const std::string& pointer) const;
  // "app.yaml:7: containers[0].ports[1].containerPort: expected integer" as a usage Error.
  Error error_at(const std::string& pointer, const std::string& what, const std::string& hint = "") const;
};

// JSON pointer ("/containers/0/ports") -> field path ("containers[0].ports"), walking `doc`
// to tell array indexes from keys.
std::string field_path(const nlohmann::json& doc, const std::string& pointer);

Result<Source> parse_source(const std::string& text, const std::string& file, const LoadLimits& limits);

// Validates against the embedded schema; the first (most specific) violation as an Error.
Result<void> validate_schema(const Source& src);

}  // namespace gedge::svc::detail
