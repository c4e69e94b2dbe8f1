#include "gedge/output.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>

namespace gedge {

Result<Format> parse_format(std::string_view s) {
  if (s == "table") return Format::table;
  if (s == "json") return Format::json;
  if (s == "yaml") return Format::yaml;
  return fail(ErrorCode::usage, fmt::format("unknown output format '{}'", s),
              "use -o table, -o json or -o yaml");
}

std::string cell_text(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 1e15)
      return fmt::format("{}", static_cast<long long>(d));
    return fmt::format("{:.2f}", d);
  }
  if (v.is_number()) return v.dump();
  if (v.is_array()) {
    std::string out;
    for (const auto& e : v) {
      if (!out.empty()) out += ",";
      out += cell_text(e);
    }
    return out.empty() ? "-" : out;
  }
  if (v.is_object()) {
    std::string out;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!out.empty()) out += ",";
      out += it.key() + "=" + cell_text(it.value());
    }
    return out.empty() ? "-" : out;
  }
  return v.dump();
}

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), 0 when the bytes there are not one.
size_t utf8_sequence(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = c >= 0xC2 && c <= 0xDF   ? 2
             : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4
                                      : 0;
  if (n == 0 || i + n > s.size()) return 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range depends on the first
  if (c == 0xE0) lo = 0xA0;
  if (c == 0xED) hi = 0x9F;
  if (c == 0xF0) lo = 0x90;
  if (c == 0xF4) hi = 0x8F;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// Each byte that does not start a well-formed sequence becomes U+FFFD.
std::string lossy_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string base64(std::string_view s) {
  static constexpr char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((s.size() + 2) / 3 * 4);
  for (size_t i = 0; i < s.size(); i += 3) {
    unsigned v = static_cast<unsigned char>(s[i]) << 16;
    if (i + 1 < s.size()) v |= static_cast<unsigned char>(s[i + 1]) << 8;
    if (i + 2 < s.size()) v |= static_cast<unsigned char>(s[i + 2]);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += i + 1 < s.size() ? abc[(v >> 6) & 63] : '=';
    out += i + 2 < s.size() ? abc[v & 63] : '=';
  }
  return out;
}

// JSON and YAML text must be UTF-8, remote output need not be. A member string that is not
// valid UTF-8 keeps its bytes in `<key>_base64` next to a lossy `<key>` for reading, so nothing
// is lost and nothing throws; strings inside arrays and keys are made lossy.
nlohmann::json lossless(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object: {
      nlohmann::json out = nlohmann::json::object();
      for (auto it = v.begin(); it != v.end(); ++it) {
        std::string key = valid_utf8(it.key()) ? it.key() : lossy_utf8(it.key());
        const auto& val = it.value();
        if (val.is_string() && !valid_utf8(val.get_ref<const std::string&>())) {
          out[key] = lossy_utf8(val.get_ref<const std::string&>());
          out[key + "_base64"] = base64(val.get_ref<const std::string&>());
        } else {
          out[key] = lossless(val);
        }
      }
      return out;
    }
    case nlohmann::json::value_t::array: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : v) out.push_back(lossless(e));
      return out;
    }
    case nlohmann::json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      return valid_utf8(s) ? v : nlohmann::json(lossy_utf8(s));
    }
    default:
      return v;
  }
}

// Whether lossless() would change anything. Nearly always every key and string is valid UTF-8,
// and the view is then printed as it is rather than through a copy of the whole document.
bool all_utf8(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object:
      for (auto it = v.begin(); it != v.end(); ++it)
        if (!valid_utf8(it.key()) || !all_utf8(it.value())) return false;
      return true;
    case nlohmann::json::value_t::array:
      for (const auto& e : v)
        if (!all_utf8(e)) return false;
      return true;
    case nlohmann::json::value_t::string:
      return valid_utf8(v.get_ref<const std::string&>());
    default:
      return true;
  }
}

bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  try {
    YAML::Node n = YAML::Load(s);
    if (!n.IsScalar()) return true;
    // Anything YAML would read as a non-string scalar must be quoted.
    static const char* specials[] = {"true", "false", "yes",   "no",    "on",  "off", "null",
                                     "~",    "True",  "False", "Yes",   "No",  "On",  "Off",
                                     "Null", "NULL",  "TRUE",  "FALSE", "YES", "NO",  "ON",
                                     "OFF",  "y",     "n",     "Y",     "N"};
    for (const char* sp : specials)
      if (s == sp) return true;
    char* end = nullptr;
    std::strtod(s.c_str(), &end);
    if (end && *end == '\0') return true;
    if (n.Scalar() != s) return true;  // leading/trailing space, comments, etc.
  } catch (const YAML::Exception&) {
    return true;
  }
  return false;
}

void emit(YAML::Emitter& out, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (auto it = v.begin(); it != v.end(); ++it) {
        out << YAML::Key << it.key() << YAML::Value;
        emit(out, it.value());
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& e : v) emit(out, e);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      if (s.find('\n') != std::string::npos)
        out << YAML::Literal << s;
      else if (needs_quotes(s))
        out << YAML::DoubleQuoted << s;
      else
        out << s;
      break;
    }
    case nlohmann::json::value_t::boolean:
      out << (v.get<bool>() ? "true" : "false");
      break;
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << v.dump();
      break;
  }
}

const nlohmann::json* at_pointer(const nlohmann::json& j, const std::string& ptr) {
  if (ptr.empty()) return &j;
  try {
    nlohmann::json::json_pointer p(ptr);
    if (!j.contains(p)) return nullptr;
    return &j.at(p);
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}

// Table cells are for a terminal: control characters from devices (a hostname or OS name with
// escape sequences) are shown escaped, never sent raw. Newlines, tabs and CRs become spaces; other
// C0 bytes and DEL become \xNN, C1 controls (U+0080..U+009F) \uNNNN. JSON and YAML are unchanged.
std::string safe_cell(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c == '\n' || c == '\t' || c == '\r') {
      out += ' ';
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c == 0xc2 && i + 1 < in.size() && static_cast<unsigned char>(in[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(in[i + 1]) <= 0x9f) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(in[++i]));
    } else {
      out += in[i];
    }
  }
  return out;
}

void render_table(const View& view, const RenderOptions& opts, std::ostream& out) {
  const nlohmann::json* rows = at_pointer(view.data, view.rows);
  if (view.columns.empty() || rows == nullptr) {
    // key/value listing
    if (view.data.is_object()) {
      size_t w = 0;
      for (auto it = view.data.begin(); it != view.data.end(); ++it)
        w = std::max(w, it.key().size());
      for (auto it = view.data.begin(); it != view.data.end(); ++it) {
        if (it.value().is_object() && !it.value().empty()) {
          out << it.key() << ":\n";
          for (auto jt = it.value().begin(); jt != it.value().end(); ++jt)
            out << "  " << safe_cell(jt.key()) << ": " << safe_cell(cell_text(jt.value())) << "\n";
        } else {
          out << fmt::format("{:<{}}  {}\n", safe_cell(it.key()) + ":", w + 1,
                             safe_cell(cell_text(it.value())));
        }
      }
    } else if (view.data.is_string()) {
      out << view.data.get<std::string>();
      if (!view.data.get<std::string>().empty() && view.data.get<std::string>().back() != '\n')
        out << "\n";
    } else if (!view.data.is_null()) {
      out << view.data.dump(2) << "\n";
    }
  } else {
    std::vector<std::vector<std::string>> cells;
    std::vector<size_t> width(view.columns.size());
    for (size_t c = 0; c < view.columns.size(); ++c) {
      std::string h = view.columns[c].header;
      std::transform(h.begin(), h.end(), h.begin(), ::toupper);
      width[c] = h.size();
    }
    const nlohmann::json empty = nlohmann::json::array();
    const nlohmann::json& arr = rows->is_array() ? *rows : empty;
    for (const auto& row : arr) {
      std::vector<std::string> line;
      for (size_t c = 0; c < view.columns.size(); ++c) {
        const nlohmann::json* v = at_pointer(row, view.columns[c].pointer);
        std::string t = safe_cell(v ? cell_text(*v) : "-");
        width[c] = std::max(width[c], t.size());
        line.push_back(std::move(t));
      }
      cells.push_back(std::move(line));
    }
    auto print_line = [&](const std::vector<std::string>& line, bool header) {
      std::string s;
      for (size_t c = 0; c < line.size(); ++c) {
        if (c + 1 == line.size())
          s += line[c];
        else
          s += fmt::format("{:<{}}   ", line[c], width[c]);
      }
      while (!s.empty() && s.back() == ' ') s.pop_back();
      if (header && opts.color)
        out << "\033[1m" << s << "\033[0m\n";
      else
        out << s << "\n";
    };
    std::vector<std::string> hdr;
    for (const auto& col : view.columns) {
      std::string h = col.header;
      std::transform(h.begin(), h.end(), h.begin(), ::toupper);
      hdr.push_back(h);
    }
    print_line(hdr, true);
    for (const auto& line : cells) print_line(line, false);
  }
  if (!view.footer.empty()) out << view.footer << "\n";
}

}  // namespace

std::string to_yaml(const nlohmann::json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, value);
  std::string s = out.c_str();
  if (s.empty() || s.back() != '\n') s += "\n";
  return s;
}

void render(const View& view, const RenderOptions& opts, std::ostream& out) {
  switch (opts.format) {
    case Format::json:
      if (all_utf8(view.data))
        out << view.data.dump(2) << "\n";
      else
        out << lossless(view.data).dump(2) << "\n";
      break;
    case Format::yaml:
      if (all_utf8(view.data))
        out << to_yaml(view.data);
      else
        out << to_yaml(lossless(view.data));
      break;
    case Format::table:
      if (!view.table.is_null()) {
        View t{view.table, view.columns, "", view.footer, nullptr};
        render_table(t, opts, out);
      } else {
        render_table(view, opts, out);
      }
      break;
  }
}

nlohmann::json error_json(const Error& e) {
  nlohmann::json j{{"error", std::string(error_name(e.code))},
                   {"code", exit_code_for(e.code)},
                   {"message", e.message}};
  if (!e.hint.empty()) j["hint"] = e.hint;
  return lossless(j);  // messages quote argv and remote output, which need not be UTF-8
}

}  // namespace gedge
