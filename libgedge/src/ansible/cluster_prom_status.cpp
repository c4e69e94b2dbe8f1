// `cluster status` read back through the cluster's Prometheus server: per member up/down, CPU and
// memory averages, disk, load, the last hour's CPU and the cluster's alerts.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include "cluster_detail.hpp"
#include "gedge/metrics.hpp"

namespace gedge::cluster::detail {

namespace {

double round1(double v) {
  return std::round(v * 10) / 10;
}

// Per device: the first value of each series of an instant query.
std::map<std::string, double> by_device(const std::vector<metrics::PromSeries>& series) {
  std::map<std::string, double> out;
  for (const auto& s : series)
    if (s.labels.count("gedge_device") && !s.points.empty())
      out[s.labels.at("gedge_device")] = s.points.front().second;
  return out;
}

nlohmann::json num(const std::map<std::string, double>& m, const std::string& dev,
                   bool round = false) {
  auto it = m.find(dev);
  if (it == m.end() || !std::isfinite(it->second)) return nullptr;
  return round ? round1(it->second) : it->second;
}

}  // namespace

Result<StatusOutcome> prometheus_status(const nlohmann::json& cluster,
                                        const std::vector<nlohmann::json>& members,
                                        const std::string& host, const std::string& base,
                                        double timeout_s) {
  const std::string name = cluster["name"].get<std::string>();
  const std::string sel = fmt::format("job=\"{}\",gedge_cluster=\"{}\"", kPrometheusJob, name);
  const double t = std::min(timeout_s, 10.0);
  constexpr double kHistoryStep = 120;  // 30 points over the last hour
  auto cpu_expr = [&](const char* window) {
    return fmt::format(
        "100 * (1 - sum by (gedge_device) "
        "(rate(node_cpu_seconds_total{{{0},mode=~\"idle|iowait\"}}[{1}]))"
        " / count by (gedge_device) (node_cpu_seconds_total{{{0},mode=\"idle\"}}))",
        sel, window);
  };

  // Scrape health per target (up/down and the last error) from the targets API.
  GEDGE_TRY_ASSIGN(auto tr, metrics::http_get(base + "/api/v1/targets?state=active", t));
  auto tj = nlohmann::json::parse(tr.body, nullptr, false);
  std::map<std::string, nlohmann::json> health;
  if (tj.is_object() && tj.contains("data"))
    for (const auto& at : tj["data"].value("activeTargets", nlohmann::json::array())) {
      const auto& l = at.value("labels", nlohmann::json::object());
      if (l.value("gedge_cluster", "") == name && l.value("job", "") == kPrometheusJob)
        health[l.value("gedge_device", "")] = at;
    }

  GEDGE_TRY_ASSIGN(auto cpu, metrics::prom_query(base, cpu_expr("5m"), t));
  GEDGE_TRY_ASSIGN(
      auto cpus,
      metrics::prom_query(
          base,
          fmt::format("count by (gedge_device) (node_cpu_seconds_total{{{},mode=\"idle\"}})", sel),
          t));
  GEDGE_TRY_ASSIGN(
      auto mem_total,
      metrics::prom_query(
          base, fmt::format("avg_over_time(node_memory_MemTotal_bytes{{{}}}[5m])", sel), t));
  GEDGE_TRY_ASSIGN(
      auto mem_avail,
      metrics::prom_query(
          base, fmt::format("avg_over_time(node_memory_MemAvailable_bytes{{{}}}[5m])", sel), t));
  GEDGE_TRY_ASSIGN(
      auto load,
      metrics::prom_query(
          base, fmt::format("{{__name__=~\"node_load1|node_load5|node_load15\",{}}}", sel), t));
  GEDGE_TRY_ASSIGN(
      auto disk,
      metrics::prom_query(base,
                          fmt::format("{{__name__=~\"node_filesystem_avail_bytes|node_filesystem_"
                                      "size_bytes\",{},fstype!~\"tmpfs|ramfs|squashfs|iso9660\"}}",
                                      sel),
                          t));
  GEDGE_TRY_ASSIGN(auto alerts, metrics::prom_query(
                                    base, fmt::format("ALERTS{{gedge_cluster=\"{}\"}}", name), t));
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  double end = std::floor(now);
  double start = end - 3600 + kHistoryStep;
  GEDGE_TRY_ASSIGN(auto hist,
                   metrics::prom_query_range(base, cpu_expr("4m"), start, end, kHistoryStep, t));

  auto cpu_m = by_device(cpu), cpus_m = by_device(cpus), total_m = by_device(mem_total),
       avail_m = by_device(mem_avail);
  std::map<std::string, std::map<std::string, double>> load_m;
  for (const auto& s : load)
    if (s.labels.count("gedge_device") && !s.points.empty())
      load_m[s.labels.at("gedge_device")]
            [s.labels.count("__name__") ? s.labels.at("__name__") : ""] = s.points.front().second;
  // Disk: "/" when exported, else the largest filesystem (overlay roots of container hosts).
  struct Fs {
    double avail = NAN, size = NAN;
  };
  std::map<std::string, std::map<std::string, Fs>> disk_m;
  for (const auto& s : disk) {
    if (!s.labels.count("gedge_device") || !s.labels.count("mountpoint") || s.points.empty())
      continue;
    auto& f = disk_m[s.labels.at("gedge_device")][s.labels.at("mountpoint")];
    (s.labels.count("__name__") && s.labels.at("__name__") == "node_filesystem_size_bytes"
         ? f.size
         : f.avail) = s.points.front().second;
  }
  // 30 points per device, oldest first; no data (not scraped yet, down) is a gap.
  const std::vector<double> gaps(static_cast<size_t>(std::lround(3600 / kHistoryStep)),
                                 std::numeric_limits<double>::quiet_NaN());
  std::map<std::string, std::vector<double>> hist_m;
  for (const auto& s : hist) {
    if (!s.labels.count("gedge_device")) continue;
    auto v = gaps;
    for (const auto& [ts, val] : s.points) {
      auto i = std::lround((ts - start) / kHistoryStep);
      if (i >= 0 && i < static_cast<long>(v.size())) v[static_cast<size_t>(i)] = val;
    }
    hist_m[s.labels.at("gedge_device")] = v;
  }

  nlohmann::json out = {{"name", name},
                        {"kind", "devices"},
                        {"profile", cluster["profile"]},
                        {"state", cluster["state"]},
                        {"monitoring", cluster["monitoring"] == 1},
                        {"source", "prometheus"}};
  nlohmann::json ms = nlohmann::json::array();
  std::vector<std::string> down;
  for (const auto& m : members) {
    auto dev = m["device"].get<std::string>();
    auto h = health.find(dev);
    nlohmann::json up = nullptr;
    std::string err;
    if (h != health.end()) {
      auto hv = h->second.value("health", "unknown");
      if (hv != "unknown") up = hv == "up";
      err = h->second.value("lastError", "");
    } else {
      err = "not in Prometheus' targets yet";
    }
    nlohmann::json met = nullptr;
    if (cpu_m.count(dev) || total_m.count(dev) || disk_m.count(dev)) {
      met = nlohmann::json::object();
      met["cpu_busy_percent"] = num(cpu_m, dev, true);
      met["cpus"] = cpus_m.count(dev) ? static_cast<int>(cpus_m[dev]) : 0;
      met["memory_total_bytes"] = num(total_m, dev);
      met["memory_used_bytes"] = total_m.count(dev) && avail_m.count(dev)
                                     ? nlohmann::json(std::round(total_m[dev] - avail_m[dev]))
                                     : nlohmann::json(nullptr);
      for (const char* l : {"load1", "load5", "load15"}) {
        auto& lm = load_m[dev];
        auto it = lm.find(std::string("node_") + l);
        met[l] = it == lm.end() || !std::isfinite(it->second) ? nlohmann::json(nullptr)
                                                              : nlohmann::json(it->second);
      }
      met["disk_free_bytes"] = nullptr;
      met["disk_total_bytes"] = nullptr;
      met["disk_mountpoint"] = nullptr;
      auto& fss = disk_m[dev];
      const std::pair<const std::string, Fs>* pick = nullptr;
      if (fss.count("/")) pick = &*fss.find("/");
      for (const auto& f : fss)
        if (!pick || (pick->first != "/" && f.second.size > pick->second.size)) pick = &f;
      if (pick) {
        met["disk_mountpoint"] = pick->first;
        if (std::isfinite(pick->second.avail)) met["disk_free_bytes"] = pick->second.avail;
        if (std::isfinite(pick->second.size)) met["disk_total_bytes"] = pick->second.size;
      }
      met["window"] = "5m";
      nlohmann::json hv = nlohmann::json::array();
      for (double v : hist_m.count(dev) ? hist_m[dev] : gaps)
        hv.push_back(std::isfinite(v) ? nlohmann::json(round1(v)) : nlohmann::json(nullptr));
      met["cpu_busy_percent_1h"] = hv;
    }
    if (up != true) down.push_back(dev);
    ms.push_back({{"device", dev},
                  {"state", m["state"]},
                  {"up", up},
                  {"reachable", up == true},
                  {"rtt_ms", nullptr},
                  {"error", err.empty() ? nlohmann::json(nullptr) : nlohmann::json(err)},
                  {"metrics_url", m["metrics_url"]},
                  {"metrics", met}});
  }
  out["members"] = ms;
  nlohmann::json al = nlohmann::json::array();
  for (const auto& s : alerts) {
    auto get = [&](const char* k) {
      return s.labels.count(k) ? nlohmann::json(s.labels.at(k)) : nlohmann::json(nullptr);
    };
    al.push_back({{"alert", get("alertname")},
                  {"state", get("alertstate")},
                  {"device", get("gedge_device")},
                  {"severity", get("severity")}});
  }
  out["prometheus"] = {
      {"host", host}, {"url", base}, {"history_step_s", kHistoryStep}, {"alerts", al}};
  std::optional<Error> partial;
  if (!down.empty()) {
    std::string list;
    for (const auto& d : down) list += (list.empty() ? "" : ", ") + d;
    partial = Error{down.size() == members.size() ? ErrorCode::unreachable : ErrorCode::partial,
                    fmt::format("{} of {} member(s) down (Prometheus on {}): {}", down.size(),
                                members.size(), host, list),
                    "gedge device check " + down.front()};
  }
  return StatusOutcome{out, partial};
}

}  // namespace gedge::cluster::detail
