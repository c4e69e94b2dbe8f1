// The one strict loader for input files (service, pipeline and manifest files, scheduler state,
// placements, requests): YAML 1.2 or JSON text -> JSON with the line of every node, so errors
// name FILE:LINE and a field path.
//
// Strict everywhere: the text must be UTF-8 without NUL or other control characters (YAML's
// printable set); duplicate mapping keys, non-string keys, more nodes than the limit after alias
// expansion (YAML bombs) and deeper nesting than the limit are usage errors (exit 2). Plain
// scalars are typed by YAML 1.2's core schema; quoted scalars stay strings.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gedge/error.hpp"

namespace gedge {

struct DocumentLimits {
  std::size_t max_bytes = 1 << 20;  // file size
  std::size_t max_nodes = 100000;   // nodes after alias expansion, per file
  std::size_t max_depth = 64;       // nesting
};

struct Document {
  std::string file;
  nlohmann::json doc;
  std::map<std::string, int> lines;  // JSON pointer -> 1-based line (keys: the key's line)
  int line = 1;                      // where the document starts in its file

  // Line of the node at `pointer`, or of its nearest ancestor.
  int line_of(const std::string& pointer) const;
  // "app.yaml:7: containers[0].ports[1].containerPort: expected integer" as a usage Error.
  Error error_at(const std::string& pointer, const std::string& what,
                 const std::string& hint = "") const;
};

// JSON pointer ("/containers/0/ports") -> field path ("containers[0].ports"), walking `doc`
// to tell array indexes from keys.
std::string field_path(const nlohmann::json& doc, const std::string& pointer);

// UTF-8 without NUL or C0/C1 controls other than tab, LF and CR; usage error naming the line.
Result<void> check_text(std::string_view text, const std::string& file);

// Every document of a YAML stream ("---" separated) or the one JSON value, in file order;
// empty documents (nothing, comments, a bare null) are skipped.
Result<std::vector<Document>> parse_documents(const std::string& text, const std::string& file,
                                              const DocumentLimits& limits = {});
// Exactly one document: an empty file and a second document are usage errors.
Result<Document> parse_document(const std::string& text, const std::string& file,
                                const DocumentLimits& limits = {});

// Strict JSON (RFC 8259: no NaN, comments or trailing commas) for JSON-only inputs such as the
// scheduler's --state: check_text's rules, and a duplicate key is a usage error.
Result<nlohmann::json> parse_json_strict(std::string_view text, const std::string& origin);

// Reads an input file: a regular file (not a FIFO or device) of at most max_bytes; usage error
// otherwise, not_found when missing. `what` names it in messages ("state file").
Result<std::string> read_input_file(const std::filesystem::path& path,
                                    std::size_t max_bytes = 1 << 20,
                                    std::string_view what = "file");

}  // namespace gedge
