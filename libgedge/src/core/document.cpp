// YAML (or JSON, which yaml-cpp also reads) -> JSON with a line map. Plain scalars are typed by
// YAML 1.2 core rules; quoted scalars stay strings. Bounded: size, node count after alias
// expansion (so a "billion laughs" document is refused, not expanded) and depth.
#include "gedge/document.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include "gedge/fd.hpp"

namespace gedge {
namespace {

std::string escape_ptr(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out.push_back(c);
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// YAML 1.2 core schema int: [-+]?[0-9]+; float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
// (hand-written: std::regex recurses per character and overflows the stack on long scalars).
bool is_int(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return all_digits(s);
}

bool is_float(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  std::size_t e = s.find_first_of("eE");
  std::string_view mant = s.substr(0, e);
  if (e != std::string_view::npos) {
    std::string_view ex = s.substr(e + 1);
    if (!ex.empty() && (ex[0] == '-' || ex[0] == '+')) ex.remove_prefix(1);
    if (!all_digits(ex)) return false;
  }
  std::size_t dot = mant.find('.');
  if (dot == std::string_view::npos) return all_digits(mant);
  std::string_view a = mant.substr(0, dot), b = mant.substr(dot + 1);
  if (a.empty()) return all_digits(b);
  return all_digits(a) && (b.empty() || all_digits(b));
}

nlohmann::json plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (is_int(s)) {
    try {
      return std::stoll(s);
    } catch (...) {
      return s;  // out of range: keep the text, the schema reports the type
    }
  }
  if (is_float(s)) {
    try {
      return std::stod(s);
    } catch (...) {
      return s;
    }
  }
  return s;
}

struct Converter {
  const DocumentLimits& limits;
  const std::string& file;
  std::map<std::string, int>& lines;
  int offset = 0;  // lines before the document's piece of the stream
  std::size_t nodes = 0;

  Result<nlohmann::json> convert(const YAML::Node& n, const std::string& ptr, std::size_t depth) {
    if (++nodes > limits.max_nodes)
      return fail(ErrorCode::usage,
                  fmt::format("{}: document too large: more than {} nodes after alias expansion",
                              file, limits.max_nodes),
                  "YAML aliases that expand exponentially (a YAML bomb) are refused");
    if (depth > limits.max_depth)
      return fail(ErrorCode::usage,
                  fmt::format("{}:{}: document nested deeper than {} levels", file,
                              offset + n.Mark().line + 1, limits.max_depth));
    if (!lines.contains(ptr)) lines[ptr] = offset + n.Mark().line + 1;
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
          GEDGE_TRY_ASSIGN(auto v, convert(item, ptr + "/" + std::to_string(i), depth + 1));
          arr.push_back(std::move(v));
          ++i;
        }
        return arr;
      }
      case YAML::NodeType::Map: {
        nlohmann::json obj = nlohmann::json::object();
        for (const auto& kv : n) {
          if (!kv.first.IsScalar())
            return fail(ErrorCode::usage, fmt::format("{}:{}: {}: mapping keys must be strings",
                                                      file, offset + kv.first.Mark().line + 1,
                                                      ptr.empty() ? "document" : ptr));
          std::string key = kv.first.Scalar();
          std::string child = ptr + "/" + escape_ptr(key);
          if (obj.contains(key))
            return fail(ErrorCode::usage,
                        fmt::format("{}:{}: duplicate key '{}' (first at line {})", file,
                                    offset + kv.first.Mark().line + 1, key, lines[child]));
          lines[child] = offset + kv.first.Mark().line + 1;
          GEDGE_TRY_ASSIGN(obj[key], convert(kv.second, child, depth + 1));
        }
        return obj;
      }
    }
    return nullptr;
  }
};

}  // namespace

int Document::line_of(const std::string& pointer) const {
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
    std::string tok =
        pointer.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
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

Error Document::error_at(const std::string& pointer, const std::string& what,
                         const std::string& hint) const {
  std::string path = field_path(doc, pointer);
  return Error{ErrorCode::usage,
               path.empty() ? fmt::format("{}:{}: {}", file, line_of(pointer), what)
                            : fmt::format("{}:{}: {}: {}", file, line_of(pointer), path, what),
               hint};
}

Result<void> check_text(std::string_view text, const std::string& file) {
  int line = 1;
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    auto bad = [&](const char* what) {
      return fail(ErrorCode::usage, fmt::format("{}:{}: {} (byte {})", file, line, what, i + 1),
                  "input files are UTF-8 text");
    };
    if (c < 0x80) {
      if (c == '\n')
        ++line;
      else if (c == 0)
        return bad("NUL byte");
      else if (c < 0x20 && c != '\t' && c != '\r')
        return bad("control character");
      else if (c == 0x7f)
        return bad("control character");
      ++i;
      continue;
    }
    std::size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (n == 0 || i + n > text.size()) return bad("invalid UTF-8");
    uint32_t cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (std::size_t k = 1; k < n; ++k) {
      auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return bad("invalid UTF-8");
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return bad("invalid UTF-8");
    if (cp >= 0x80 && cp < 0xa0) return bad("control character");
    i += n;
  }
  return {};
}

namespace {

// The documents of a YAML stream as pieces of text with their first line. YAML::LoadAll loops
// forever on some malformed inputs (found by the fuzz test with yaml-cpp 0.7), so the stream is
// split at its document markers ("---" and "..." at the start of a line, which YAML forbids
// inside any scalar) and each piece is parsed on its own with YAML::Load.
struct Piece {
  std::string_view text;
  int first_line = 0;  // 0-based line of the piece's start
};

std::vector<Piece> split_stream(std::string_view text) {
  std::vector<Piece> out;
  std::size_t start = 0, pos = 0;
  int line = 0, start_line = 0;
  auto close = [&](std::size_t end) {
    if (end > start) out.push_back({text.substr(start, end - start), start_line});
  };
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view l = text.substr(pos, end - pos);
    auto marker = [&](std::string_view m) {
      return l.starts_with(m) && (l.size() == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r');
    };
    if (marker("---")) {
      close(pos);
      start = pos;  // the piece keeps its "---" line (it may carry content: "--- {a: 1}")
      start_line = line;
    } else if (marker("...")) {
      close(pos);
      start = end == text.size() ? end : end + 1;
      start_line = line + 1;
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
    ++line;
  }
  close(text.size());
  return out;
}

}  // namespace

Result<std::vector<Document>> parse_documents(const std::string& text, const std::string& file,
                                              const DocumentLimits& limits) {
  if (text.size() > limits.max_bytes)
    return fail(ErrorCode::usage,
                fmt::format("{}: file is {} bytes, more than the {} an input file may have", file,
                            text.size(), limits.max_bytes));
  GEDGE_TRY(check_text(text, file));
  std::vector<Document> out;
  std::size_t nodes = 0;
  for (const auto& piece : split_stream(text)) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(piece.text));
    } catch (const YAML::Exception& e) {
      return fail(
          ErrorCode::usage,
          fmt::format("{}:{}: malformed YAML: {}", file, piece.first_line + e.mark.line + 1, e.msg),
          "check indentation and quoting near that line");
    } catch (const std::exception& e) {
      return fail(ErrorCode::usage, fmt::format("{}: malformed YAML: {}", file, e.what()));
    }
    if (!root || root.IsNull()) continue;
    Document d;
    d.file = file;
    // A document that opens with "---" starts on that line; otherwise where its content starts.
    d.line = piece.text.starts_with("---") ? piece.first_line + 1
                                           : piece.first_line + root.Mark().line + 1;
    Converter conv{limits, file, d.lines, piece.first_line, nodes};
    try {
      GEDGE_TRY_ASSIGN(d.doc, conv.convert(root, "", 0));
    } catch (const YAML::Exception& e) {
      return fail(ErrorCode::usage, fmt::format("{}:{}: malformed YAML: {}", file,
                                                piece.first_line + e.mark.line + 1, e.msg));
    }
    nodes = conv.nodes;
    if (d.doc.is_null()) continue;
    out.push_back(std::move(d));
  }
  return out;
}

Result<Document> parse_document(const std::string& text, const std::string& file,
                                const DocumentLimits& limits) {
  GEDGE_TRY_ASSIGN(auto docs, parse_documents(text, file, limits));
  if (docs.empty()) return fail(ErrorCode::usage, fmt::format("{}: empty document", file));
  if (docs.size() > 1)
    return fail(
        ErrorCode::usage,
        fmt::format("{}:{}: more than one YAML document where one is expected", file, docs[1].line),
        "put one document in this file");
  return std::move(docs[0]);
}

Result<nlohmann::json> parse_json_strict(std::string_view text, const std::string& origin) {
  GEDGE_TRY(check_text(text, origin));
  std::vector<std::set<std::string>> keys;
  std::string dup;
  auto cb = [&](int /*depth*/, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start)
      keys.emplace_back();
    else if (ev == E::object_end && !keys.empty())
      keys.pop_back();
    else if (ev == E::key && !keys.empty() &&
             !keys.back().insert(parsed.get<std::string>()).second && dup.empty())
      dup = parsed.get<std::string>();
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), cb);
  } catch (const nlohmann::json::parse_error& e) {
    return fail(ErrorCode::usage, fmt::format("{}: not valid JSON: {}", origin, e.what()),
                "NaN and Infinity are not JSON");
  } catch (const nlohmann::json::exception& e) {
    // out_of_range 406: a number beyond a double ("1E400"); AFL++ found it aborting (uncaught).
    return fail(ErrorCode::usage, fmt::format("{}: not valid JSON: {}", origin, e.what()),
                "numbers must fit in a 64-bit float");
  }
  if (!dup.empty())
    return fail(ErrorCode::usage, fmt::format("{}: duplicate key '{}'", origin, dup));
  return j;
}

namespace {
constexpr int kInputReadSeconds =
    30;  // a local file of the largest allowed size reads in well under 1 s
}  // namespace

Result<std::string> read_input_file(const std::filesystem::path& path, std::size_t max_bytes,
                                    std::string_view what) {
  // O_NONBLOCK: opening a FIFO that has no writer returns at once (and is refused below) instead
  // of waiting for a writer. The checks are made on the opened descriptor, so nothing can be
  // swapped in between the check and the read.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT)
      return fail(ErrorCode::not_found, fmt::format("{} '{}' not found", what, path.string()));
    return fail(ErrorCode::usage,
                fmt::format("cannot read {} '{}': {}", what, path.string(), std::strerror(e)));
  }
  UniqueFd closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return fail(ErrorCode::usage,
                fmt::format("cannot read {} '{}': {}", what, path.string(), std::strerror(errno)));
  if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) return std::string();  // /dev/null: empty
  if (!S_ISREG(st.st_mode))
    return fail(ErrorCode::usage, fmt::format("{} '{}' is not a regular file", what, path.string()),
                "give a regular file (not a FIFO, device, socket or directory)");
  if (static_cast<std::size_t>(st.st_size) > max_bytes)
    return fail(ErrorCode::usage,
                fmt::format("{} '{}' is {} bytes, more than the {} an input file may have", what,
                            path.string(), st.st_size, max_bytes));
  // A file that grows while read stops at max_bytes; one that reads slower than kInputReadSeconds
  // (a stalled network file system, a FUSE file that trickles) is refused, not waited for.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kInputReadSeconds);
  std::string out(std::min(static_cast<std::size_t>(st.st_size), max_bytes) + 1, '\0');
  std::size_t got = 0;
  for (;;) {
    if (got == out.size()) {
      if (out.size() > max_bytes) break;
      out.resize(std::min(out.size() * 2, max_bytes + 1));
    }
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return fail(ErrorCode::usage, fmt::format("cannot read {} '{}': {}", what, path.string(),
                                                std::strerror(errno)));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (std::chrono::steady_clock::now() > deadline)
      return fail(ErrorCode::usage,
                  fmt::format("{} '{}' took more than {} s to read", what, path.string(),
                              kInputReadSeconds),
                  "copy it to a local file first");
  }
  out.resize(got);
  if (out.size() > max_bytes)
    return fail(ErrorCode::usage, fmt::format("{} '{}' grew past {} bytes while read", what,
                                              path.string(), max_bytes));
  return out;
}

}  // namespace gedge
