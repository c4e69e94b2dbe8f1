// The Prometheus HTTP API as `cluster status` reads it: instant and range queries, and the
// sparkline a range is drawn as on a terminal.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "gedge/metrics.hpp"

namespace gedge::metrics {

namespace {

// Sample values are strings in the API ("1.5", "NaN", "+Inf").
double sample_value(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return std::numeric_limits<double>::quiet_NaN();
  auto s = v.get<std::string>();
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  try {
    return std::stod(s);
  } catch (...) {
    return std::numeric_limits<double>::quiet_NaN();
  }
}

Result<std::pair<double, double>> point(const nlohmann::json& p) {
  if (!p.is_array() || p.size() != 2 || !p[0].is_number())
    return fail(ErrorCode::usage, "a Prometheus sample is not [time, \"value\"]");
  return std::pair<double, double>{p[0].get<double>(), sample_value(p[1])};
}

}  // namespace

Result<std::vector<PromSeries>> parse_prom_answer(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("status"))
    return fail(ErrorCode::usage, "not a Prometheus API answer");
  if (j["status"] != "success")
    return fail(ErrorCode::failure, fmt::format("Prometheus: {}: {}", j.value("errorType", "error"),
                                                j.value("error", "")));
  const auto& data = j.value("data", nlohmann::json::object());
  std::string type = data.value("resultType", "");
  const auto& result = data.contains("result") ? data["result"] : nlohmann::json();
  std::vector<PromSeries> out;
  if (type == "scalar") {
    PromSeries s;
    GEDGE_TRY_ASSIGN(auto p, point(result));
    s.points.push_back(p);
    out.push_back(std::move(s));
    return out;
  }
  if ((type != "vector" && type != "matrix") || !result.is_array())
    return fail(ErrorCode::usage, fmt::format("unexpected Prometheus result type '{}'", type));
  for (const auto& r : result) {
    PromSeries s;
    if (r.contains("metric") && r["metric"].is_object())
      for (const auto& [k, v] : r["metric"].items())
        if (v.is_string()) s.labels[k] = v.get<std::string>();
    if (type == "vector") {
      GEDGE_TRY_ASSIGN(auto p, point(r.value("value", nlohmann::json())));
      s.points.push_back(p);
    } else {
      for (const auto& v : r.value("values", nlohmann::json::array())) {
        GEDGE_TRY_ASSIGN(auto p, point(v));
        s.points.push_back(p);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string query_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string prom_query_url(const std::string& base, const std::string& promql) {
  return fmt::format("{}/api/v1/query?query={}", base, query_escape(promql));
}

std::string prom_range_url(const std::string& base, const std::string& promql, double start,
                           double end, double step_s) {
  return fmt::format("{}/api/v1/query_range?query={}&start={:.3f}&end={:.3f}&step={}", base,
                     query_escape(promql), start, end, step_s);
}

Result<std::vector<PromSeries>> prom_query(const std::string& base, const std::string& promql,
                                           double timeout_s) {
  GEDGE_TRY_ASSIGN(auto r, http_get(prom_query_url(base, promql), timeout_s));
  return parse_prom_answer(r.body);
}

Result<std::vector<PromSeries>> prom_query_range(const std::string& base, const std::string& promql,
                                                 double start, double end, double step_s,
                                                 double timeout_s) {
  GEDGE_TRY_ASSIGN(auto r, http_get(prom_range_url(base, promql, start, end, step_s), timeout_s));
  return parse_prom_answer(r.body);
}

std::string sparkline(const std::vector<double>& values, double floor) {
  static const char* const kBars[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                      "\u2585", "\u2586", "\u2587", "\u2588"};
  double peak = floor;
  for (double v : values)
    if (std::isfinite(v)) peak = std::max(peak, v);
  std::string out;
  for (double v : values) {
    if (!std::isfinite(v)) {
      out += ' ';
      continue;
    }
    int i = static_cast<int>(std::lround(std::clamp(v, 0.0, peak) / peak * 7));
    out += kBars[std::clamp(i, 0, 7)];
  }
  return out;
}

}  // namespace gedge::metrics
