// YAML (or JSON, which yaml-cpp also reads) -> JSON with a line map. Plain scalars are typed by
// YAML 1.2 core rules; quoted scalars stay strings. Bounded: size, node count after alias
// expansion (so a "billion laughs" document is refused, not expanded) and depth.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <regex>

#include "source.hpp"

namespace gedge::svc::detail {
namespace {

std::string escape_ptr(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out.push_back(c);
  }
  return out;
}

nlohmann::json plain_scalar(const std::string& s) {
  static const std::regex int_re(R"(^[-+]?[0-9]+$)");
  static const std::regex float_re(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (std::regex_match(s, int_re)) {
    try {
      return std::stoll(s);
    } catch (...) {
      return s;  // out of range: keep the text, the schema reports the type
    }
  }
  if (std::regex_match(s, float_re)) {
    try {
      return std::stod(s);
    } catch (...) {
      return s;
    }
  }
  return s;
}

struct Converter {
  const LoadLimits& limits;
  const std::string& file;
  std::map<std::string, int>& lines;
  std::size_t nodes = 0;

  Result<nlohmann::json> convert(const YAML::Node& n, const std::string& ptr, std::size_t depth) {
    if (++nodes > limits.max_nodes)
      return fail(ErrorCode::usage,
                  fmt::format("{}: document too large: more than {} nodes after alias expansion", file,
                              limits.max_nodes),
                  "YAML aliases that expand exponentially (a YAML bomb) are refused");
    if (depth > limits.max_depth)
      return fail(ErrorCode::usage,
                  fmt::format("{}:{}: document nested deeper than {} levels", file,
                              n.Mark().line + 1, limits.max_depth));
    if (!lines.contains(ptr)) lines[ptr] = n.Mark().line + 1;
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Scalar: {
        const std::string& tag = n.Tag();
        if (tag == "!" || tag == "tag:yaml.org,2002:str") return n.Scalar();
        return plain_scalar(n.Scalar());
      }
      case YAML::NodeType::Sequence: {
        nlohmann::json arr = nlohmann::json::array();
        std::size_t i = 0;
        for (const auto& item : n) {
          GEDGE_TRY_ASSIGN(auto converted, convert(item, ptr + "/" + std::to_string(i), depth + 1));
          arr.push_back(std::move(converted));
          ++i;
        }
        return arr;
      }
      case YAML::NodeType::Map: {
        nlohmann::json obj = nlohmann::json::object();
        for (const auto& kv : n) {
          if (!kv.first.IsScalar())
            return fail(ErrorCode::usage, fmt::format("{}:{}: {}: mapping keys must be strings", file,
                                                      kv.first.Mark().line + 1,
                                                      ptr.empty() ? "document" : ptr));
          std::string key = kv.first.Scalar();
          std::string child = ptr + "/" + escape_ptr(key);
          if (obj.contains(key))
            return fail(ErrorCode::usage,
                        fmt::format("{}:{}: duplicate key '{}' (first at line {})", file,
                                    kv.first.Mark().line + 1, key, lines[child]));
          lines[child] = kv.first.Mark().line + 1;
          GEDGE_TRY_ASSIGN(obj[key], convert(kv.second, child, depth + 1));
        }
        return obj;
      }
    }
    return nullptr;
  }
};

}  // namespace

int Source::line_of(const std::string& pointer) const {
  std::string p = pointer;
  while (true) {
    auto it = lines.find(p);
    if (it != lines.end()) return it->second;
    if (p.empty()) return 1;
    p = p.substr(0, p.rfind('/'));
  }
}

std::string field_path(const nlohmann::json& doc, const std::string& pointer) {
  std::string out;
  const nlohmann::json* cur = &doc;
  std::size_t pos = 0;
  while (pos < pointer.size()) {
    std::size_t next = pointer.find('/', pos + 1);
    std::string tok = pointer.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    std::string key;
    for (std::size_t i = 0; i < tok.size(); ++i) {
      if (tok[i] == '~' && i + 1 < tok.size()) {
        key.push_back(tok[i + 1] == '1' ? '/' : '~');
        ++i;
      } else {
        key.push_back(tok[i]);
      }
    }
    if (cur && cur->is_array()) {
      out += "[" + key + "]";
      std::size_t idx = std::strtoul(key.c_str(), nullptr, 10);
      cur = idx < cur->size() ? &(*cur)[idx] : nullptr;
    } else {
      if (!out.empty()) out += ".";
      out += key;
      cur = (cur && cur->is_object() && cur->contains(key)) ? &(*cur)[key] : nullptr;
    }
    if (next == std::string::npos) break;
    pos = next;
  }
  return out;
}

Error Source::error_at(const std::string& pointer, const std::string& what, const std::string& hint) const {
  std::string path = field_path(doc, pointer);
  return Error{ErrorCode::usage,
               path.empty() ? fmt::format("{}:{}: {}", file, line_of(pointer), what)
                            : fmt::format("{}:{}: {}: {}", file, line_of(pointer), path, what),
               hint};
}

Result<Source> parse_source(const std::string& text, const std::string& file, const LoadLimits& limits) {
  if (text.size() > limits.max_bytes)
    return fail(ErrorCode::usage,
                fmt::format("{}: file is {} bytes, more than the {} a service file may have", file,
                            text.size(), limits.max_bytes));
  Source src;
  src.file = file;
  // One document per file. YAML::LoadAll loops forever on some malformed inputs (found by the
  // fuzz test with yaml-cpp 0.7), so parse the first document with YAML::Load and refuse a
  // second "---" marker by scanning lines.
  {
    std::size_t pos = 0;
    int line = 0;
    bool content = false;
    while (pos <= text.size()) {
      std::size_t nl = text.find('\n', pos);
      std::string_view l(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
      ++line;
      bool marker = l.starts_with("---") && (l.size() == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r');
      if (marker && content)
        return fail(ErrorCode::usage,
                    fmt::format("{}:{}: more than one YAML document; put one service or one pipeline "
                                "in a file",
                                file, line));
      auto first = l.find_first_not_of(" \t\r");
      if (!marker && first != std::string_view::npos && l[first] != '#') content = true;
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage,
                fmt::format("{}:{}: malformed YAML: {}", file, e.mark.line + 1, e.msg),
                "check indentation and quoting near that line");
  } catch (const std::exception& e) {
    return fail(ErrorCode::usage, fmt::format("{}: malformed YAML: {}", file, e.what()));
  }
  if (!root || root.IsNull())
    return fail(ErrorCode::usage, fmt::format("{}: empty document", file),
                "a service file needs at least name and containers");
  std::vector<YAML::Node> docs{root};
  Converter conv{limits, file, src.lines};
  try {
    GEDGE_TRY_ASSIGN(src.doc, conv.convert(docs[0], "", 0));
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage, fmt::format("{}:{}: malformed YAML: {}", file, e.mark.line + 1, e.msg));
  }
  if (!src.doc.is_object())
    return fail(ErrorCode::usage, fmt::format("{}:1: the document must be a mapping", file),
                "a service file starts with 'name:' (or 'service:' or 'kind: Pipeline')");
  return src;
}

}  // namespace gedge::svc::detail
