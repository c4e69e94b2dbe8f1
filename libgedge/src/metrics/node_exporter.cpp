// node-exporter scrapes: HTTP through gedge::http and the summary `cluster status` shows.
#include <fmt/format.h>

#include <cmath>
#include <set>
#include <thread>

#include "gedge/http.hpp"
#include "gedge/metrics.hpp"

namespace gedge::metrics {

namespace {

// CPU seconds per mode summed over all cpus.
struct CpuTotals {
  double total = 0, idle = 0;
  int cpus = 0;
};

CpuTotals cpu_totals(const Exposition& e) {
  CpuTotals t;
  std::set<std::string> cpus;
  for (const auto* s : e.find("node_cpu_seconds_total")) {
    auto mode = s->labels.count("mode") ? s->labels.at("mode") : "";
    if (s->labels.count("cpu")) cpus.insert(s->labels.at("cpu"));
    t.total += s->value;
    if (mode == "idle" || mode == "iowait") t.idle += s->value;
  }
  t.cpus = static_cast<int>(cpus.size());
  return t;
}

}  // namespace

Result<HttpResponse> http_get(const std::string& url, double timeout_s) {
  http::Options o;
  o.timeout_s = timeout_s;
  o.connect_timeout_s = timeout_s;
  GEDGE_TRY_ASSIGN(auto r, http::get(url, o));
  return HttpResponse{r.status, std::move(r.body)};
}

NodeSummary summarize(const Exposition& now, const Exposition* before) {
  NodeSummary s;
  auto t1 = cpu_totals(now);
  s.cpus = t1.cpus;
  if (before) {
    auto t0 = cpu_totals(*before);
    double dt = t1.total - t0.total, di = t1.idle - t0.idle;
    if (dt > 0) s.cpu_busy_percent = 100.0 * (dt - di) / dt;
  }
  if (!s.cpu_busy_percent && t1.total > 0)
    s.cpu_busy_percent = 100.0 * (t1.total - t1.idle) / t1.total;
  s.memory_total_bytes = now.value("node_memory_MemTotal_bytes");
  auto avail = now.value("node_memory_MemAvailable_bytes");
  if (s.memory_total_bytes && avail) s.memory_used_bytes = *s.memory_total_bytes - *avail;
  s.load1 = now.value("node_load1");
  s.load5 = now.value("node_load5");
  s.load15 = now.value("node_load15");
  s.disk_free_bytes = now.value("node_filesystem_avail_bytes", {{"mountpoint", "/"}});
  s.disk_total_bytes = now.value("node_filesystem_size_bytes", {{"mountpoint", "/"}});
  if (s.disk_free_bytes)
    s.disk_mountpoint.assign(1, '/');  // not = "/": GCC 12 -Wrestrict false positive (bug 105329)
  // node-exporter skips overlay roots (containers): fall back to the largest real filesystem.
  if (!s.disk_free_bytes) {
    const Sample* best = nullptr;
    for (const auto* f : now.find("node_filesystem_size_bytes"))
      if (!best || f->value > best->value) best = f;
    if (best && best->labels.count("mountpoint")) {
      s.disk_mountpoint = best->labels.at("mountpoint");
      s.disk_total_bytes = best->value;
      s.disk_free_bytes =
          now.value("node_filesystem_avail_bytes", {{"mountpoint", s.disk_mountpoint}});
    }
  }
  return s;
}

nlohmann::json NodeSummary::to_json() const {
  auto opt = [](const std::optional<double>& v) -> nlohmann::json {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  auto round1 = [](const std::optional<double>& v) -> nlohmann::json {
    return v ? nlohmann::json(std::round(*v * 10) / 10) : nlohmann::json(nullptr);
  };
  return {{"cpu_busy_percent", round1(cpu_busy_percent)},
          {"cpus", cpus},
          {"memory_total_bytes", opt(memory_total_bytes)},
          {"memory_used_bytes", opt(memory_used_bytes)},
          {"load1", opt(load1)},
          {"load5", opt(load5)},
          {"load15", opt(load15)},
          {"disk_free_bytes", opt(disk_free_bytes)},
          {"disk_total_bytes", opt(disk_total_bytes)},
          {"disk_mountpoint",
           disk_mountpoint.empty() ? nlohmann::json(nullptr) : nlohmann::json(disk_mountpoint)}};
}

Result<NodeSummary> scrape_node(const std::string& url, double timeout_s,
                                std::chrono::milliseconds interval) {
  GEDGE_TRY_ASSIGN(auto r0, http_get(url, timeout_s));
  GEDGE_TRY_ASSIGN(auto e0, parse_text(r0.body));
  if (interval.count() <= 0) return summarize(e0);
  std::this_thread::sleep_for(interval);
  GEDGE_TRY_ASSIGN(auto r1, http_get(url, timeout_s));
  GEDGE_TRY_ASSIGN(auto e1, parse_text(r1.body));
  return summarize(e1, &e0);
}

}  // namespace gedge::metrics
