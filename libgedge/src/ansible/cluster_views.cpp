// What the cli shows of cluster results besides their JSON: the build request completed from
// the command line, table footers and the Prometheus status rows.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "gedge/cluster.hpp"
#include "gedge/device.hpp"
#include "gedge/metrics.hpp"
#include "gedge/stores.hpp"

namespace gedge::cluster {

using nlohmann::json;

Result<void> complete_build_request(Inventory& inv, BuildRequest& req, const std::string& devices,
                                    const std::vector<std::string>& groups) {
  std::size_t start = 0;
  while (start <= devices.size()) {
    std::size_t comma = devices.find(',', start);
    auto item =
        devices.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) req.devices.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  for (const auto& g : groups) {  // each group adds its devices (not found: exit 4)
    DeviceSelector sel;
    sel.groups = {g};
    GEDGE_TRY_ASSIGN(auto names, select_devices(inv, sel));
    for (auto& n : names)
      if (std::find(req.devices.begin(), req.devices.end(), n) == req.devices.end())
        req.devices.push_back(n);
  }
  if (req.profile.empty() && !req.resume) {
    GEDGE_TRY_ASSIGN(bool known, ClusterStore(inv).exists(req.name));
    if (!known) req.profile = "containers";
  }
  return {};
}

std::string build_summary(const json& j) {
  std::string name = j.value("cluster", "");
  if (j.value("dry_run", false))
    return fmt::format("dry run: {} step(s) would change; nothing was changed",
                       j.value("changed", 0));
  if (j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  if (j.value("changed", 0) == 0 && j.value("failed", json::array()).empty())
    return fmt::format("cluster {} is up to date; nothing changed", name);
  return fmt::format("cluster {}: {} step(s) changed, state {}", name, j.value("changed", 0),
                     j.value("state", "?"));
}

std::string show_summary(const json& j) {
  auto text = [&](const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  };
  return fmt::format("cluster {} ({} {}), state {}", text("name"), text("kind"), text("profile"),
                     text("state"));
}

std::string kubernetes_status_summary(const json& j) {
  auto count = [&](const char* key) { return j.contains(key) ? j[key].size() : 0; };
  return fmt::format("{} deployment(s), {} PV(s), {} storage class(es); -o json for pods by phase",
                     count("deployments"), count("persistent_volumes"), count("storage_classes"));
}

json prometheus_status_rows(const json& result, bool sparkline) {
  json rows = json::array();
  for (auto m : result.value("members", json::array())) {
    if (sparkline && m.contains("metrics") && m["metrics"].is_object()) {
      std::vector<double> v;
      for (const auto& x : m["metrics"].value("cpu_busy_percent_1h", json::array()))
        v.push_back(x.is_number() ? x.get<double>() : std::nan(""));
      m["cpu_1h"] = metrics::sparkline(v);
    }
    rows.push_back(m);
  }
  return rows;
}

std::string prometheus_status_summary(const json& result) {
  json prom = result.value("prometheus", json::object());
  json alerts = prom.value("alerts", json::array());
  std::size_t firing = 0;
  for (const auto& a : alerts)
    if (a.value("state", "") == "firing") ++firing;
  return fmt::format("from Prometheus at {}; {} alert(s) firing{}", prom.value("url", ""), firing,
                     alerts.empty() ? "" : " (-o json lists them)");
}

}  // namespace gedge::cluster
