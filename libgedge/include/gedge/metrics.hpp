// Prometheus text exposition format (version 0.0.4) and node-exporter scrapes over HTTP.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gedge/error.hpp"

namespace gedge::metrics {

// One sample line: name{labels} value [timestamp_ms].
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  std::optional<int64_t> timestamp_ms;
};

// A parsed exposition: samples in order, plus # TYPE and # HELP lines by metric family.
struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram|summary|untyped
  std::map<std::string, std::string> help;

  // Samples named `name` whose labels include every pair of `match`.
  std::vector<const Sample*> find(std::string_view name,
                                  const std::map<std::string, std::string>& match = {}) const;
  // The first such sample's value.
  std::optional<double> value(std::string_view name,
                              const std::map<std::string, std::string>& match = {}) const;
};

// Parses the text format. Blank lines and comments other than TYPE/HELP are skipped; label
// values may hold the escapes \\ \" \n; values may be NaN, +Inf, -Inf. A malformed line is a
// usage error naming the line number.
Result<Exposition> parse_text(std::string_view text);

// One HTTP GET (gedge::http) with a total timeout, never through a proxy. Errors follow
// gedge::http's classification: TLS failures auth, connection failures and timeouts unreachable,
// non-2xx answers by status (401/403 auth, 404 not_found, others failure).
struct HttpResponse {
  long status = 0;
  std::string body;
};
Result<HttpResponse> http_get(const std::string& url, double timeout_s);

// What `cluster status` shows for one node-exporter.
struct NodeSummary {
  std::optional<double> cpu_busy_percent;  // from two scrapes of node_cpu_seconds_total
  std::optional<double> memory_total_bytes;
  std::optional<double> memory_used_bytes;  // MemTotal - MemAvailable
  std::optional<double> load1, load5, load15;
  std::optional<double> disk_free_bytes;   // node_filesystem_avail_bytes at mountpoint "/"
  std::optional<double> disk_total_bytes;  // node_filesystem_size_bytes at mountpoint "/"
  std::string disk_mountpoint;             // "/", or the largest filesystem when "/" is not
                                           // exported (overlay roots of container hosts)
  int cpus = 0;                            // distinct cpu labels
  nlohmann::json to_json() const;
};

// Summary from one exposition (CPU busy % since boot) or two (busy % over the interval between
// them: `before` scraped first).
NodeSummary summarize(const Exposition& now, const Exposition* before = nullptr);

// Scrapes `url` twice, `interval` apart, and summarises. unreachable when it does not answer.
Result<NodeSummary> scrape_node(
    const std::string& url, double timeout_s,
    std::chrono::milliseconds interval = std::chrono::milliseconds(1000));

// ---- The Prometheus HTTP API (a server gedge runs with `cluster build --prometheus-on`) ----

// One series of a query answer: its labels and (unix seconds, value) points (one point for an
// instant query).
struct PromSeries {
  std::map<std::string, std::string> labels;
  std::vector<std::pair<double, double>> points;
};

// Parses an /api/v1/query or /api/v1/query_range answer (resultType vector, matrix or scalar).
// failure with Prometheus' own error text for "status": "error"; usage when it is not such an
// answer.
Result<std::vector<PromSeries>> parse_prom_answer(std::string_view body);

// Percent-encodes a query parameter (RFC 3986 unreserved characters stay).
std::string query_escape(std::string_view s);

// BASE/api/v1/query?query=PROMQL, and the range form (start/end in unix seconds, step in s).
std::string prom_query_url(const std::string& base, const std::string& promql);
std::string prom_range_url(const std::string& base, const std::string& promql, double start,
                           double end, double step_s);

// GET + parse. unreachable when the server does not answer.
Result<std::vector<PromSeries>> prom_query(const std::string& base, const std::string& promql,
                                           double timeout_s);
Result<std::vector<PromSeries>> prom_query_range(const std::string& base, const std::string& promql,
                                                 double start, double end, double step_s,
                                                 double timeout_s);

// A one-line sparkline (U+2581..U+2588) of `values` scaled from 0 to max(peak, floor); NaN
// (a gap) is a space.
std::string sparkline(const std::vector<double>& values, double floor = 1.0);

}  // namespace gedge::metrics
