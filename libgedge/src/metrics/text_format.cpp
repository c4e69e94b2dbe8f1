// Prometheus text exposition format parser.
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "gedge/metrics.hpp"

namespace gedge::metrics {

namespace {

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

std::optional<double> parse_value(std::string_view s) {
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  if (s.empty()) return std::nullopt;
  std::string tmp(s);
  char* end = nullptr;
  double v = std::strtod(tmp.c_str(), &end);
  if (end != tmp.c_str() + tmp.size()) return std::nullopt;
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Parses one sample line; returns an error string on malformed input.
std::optional<std::string> parse_sample(std::string_view line, Sample& out) {
  size_t i = 0;
  if (i >= line.size() || !is_name_start(line[i])) return "metric name expected";
  while (i < line.size() && is_name_char(line[i])) ++i;
  out.name = std::string(line.substr(0, i));
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
      if (i >= line.size()) return "unterminated label set";
      if (line[i] == '}') {
        ++i;
        break;
      }
      size_t ks = i;
      if (!is_name_start(line[i])) return "label name expected";
      while (i < line.size() && is_name_char(line[i])) ++i;
      std::string key(line.substr(ks, i - ks));
      while (i < line.size() && line[i] == ' ') ++i;
      if (i >= line.size() || line[i] != '=') return "'=' expected after label name";
      ++i;
      while (i < line.size() && line[i] == ' ') ++i;
      if (i >= line.size() || line[i] != '"') return "quoted label value expected";
      ++i;
      std::string val;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '\\') {
          if (i >= line.size()) return "dangling escape in label value";
          char e = line[i++];
          val += e == 'n' ? '\n' : e;  // \\ and \" map to themselves
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          val += c;
        }
      }
      if (!closed) return "unterminated label value";
      out.labels[key] = std::move(val);
    }
  }
  auto rest = trim(line.substr(i));
  auto sp = rest.find_first_of(" \t");
  auto vtext = rest.substr(0, sp);
  auto v = parse_value(vtext);
  if (!v) return fmt::format("bad value '{}'", vtext);
  out.value = *v;
  if (sp != std::string_view::npos) {
    auto ts = trim(rest.substr(sp));
    if (!ts.empty()) {
      std::string t(ts);
      char* end = nullptr;
      long long n = std::strtoll(t.c_str(), &end, 10);
      if (end != t.c_str() + t.size()) return fmt::format("bad timestamp '{}'", ts);
      out.timestamp_ms = n;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<Exposition> parse_text(std::string_view text) {
  Exposition exp;
  size_t lineno = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineno;
    auto line = trim(raw);
    if (line.empty()) continue;
    if (line.front() == '#') {
      auto body = trim(line.substr(1));
      for (std::string_view kw : {"TYPE", "HELP"}) {
        if (body.substr(0, kw.size()) == kw && body.size() > kw.size() &&
            (body[kw.size()] == ' ' || body[kw.size()] == '\t')) {
          auto rest = trim(body.substr(kw.size()));
          auto sp = rest.find_first_of(" \t");
          std::string fam(rest.substr(0, sp));
          std::string val(sp == std::string_view::npos ? "" : trim(rest.substr(sp)));
          (kw == "TYPE" ? exp.types : exp.help)[fam] = val;
        }
      }
      continue;
    }
    Sample s;
    if (auto err = parse_sample(line, s))
      return fail(ErrorCode::usage, fmt::format("metrics line {}: {}", lineno, *err));
    exp.samples.push_back(std::move(s));
  }
  return exp;
}

std::vector<const Sample*> Exposition::find(std::string_view name,
                                            const std::map<std::string, std::string>& match) const {
  std::vector<const Sample*> out;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : match) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) {
        ok = false;
        break;
      }
    }
    if (ok) out.push_back(&s);
  }
  return out;
}

std::optional<double> Exposition::value(std::string_view name,
                                        const std::map<std::string, std::string>& match) const {
  auto f = find(name, match);
  if (f.empty()) return std::nullopt;
  return f.front()->value;
}

}  // namespace gedge::metrics
