// Monitoring with a Prometheus server (`cluster build --monitoring --prometheus-on HOST`): the
// server's playbook run, the file_sd target file gedge keeps on it, the alert rules and Grafana
// dashboard it exports, and `cluster status` read back through the Prometheus HTTP API.
#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "cluster_detail.hpp"
#include "gedge/ansible.hpp"
#include "gedge/metrics.hpp"
#include "gedge/ssh.hpp"

namespace gedge::cluster {

using namespace detail;
namespace fs = std::filesystem;

namespace {

constexpr const char* kLocalhost = "localhost";
const char* const kPromFiles = "roles/prometheus_server/files";

// The login user that owns the target directory on the controller itself.
std::string local_user() {
  if (const auto* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  return "root";
}

// The member's node-exporter as HOST:PORT (from its recorded metrics URL, else the default).
std::string exporter_address(const nlohmann::json& member, const DeviceRow& d) {
  std::string url = member["metrics_url"].is_string() ? member["metrics_url"].get<std::string>()
                                                      : metrics_url_for(d);
  auto hp = url.substr(url.find("//") == std::string::npos ? 0 : url.find("//") + 2);
  return hp.substr(0, hp.find('/'));
}

}  // namespace

// ---- target file, rules, dashboard ----------------------------------------------------------

std::string prom_label_name(std::string_view key) {
  std::string out;
  for (char c : key) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out.insert(out.begin(), '_');
  return out;
}

std::string render_sd(const std::vector<SdTarget>& targets) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : targets) {
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [k, v] : t.labels) labels[k] = v;
    out.push_back({{"targets", {t.address}}, {"labels", labels}});
  }
  return out.dump(2) + "\n";
}

Result<std::string> prometheus_rules() {
  GEDGE_TRY_ASSIGN(auto dir, ansible::find_playbook_dir());
  return read_file(dir / kPromFiles / "gedge.rules.yml");
}

Result<std::vector<SdTarget>> prometheus_targets(Inventory& inv, const std::string& name) {
  GEDGE_TRY_ASSIGN(auto members, load_members(inv, name));
  std::vector<SdTarget> out;
  for (const auto& m : members) {
    auto dev = m["device"].get<std::string>();
    GEDGE_TRY_ASSIGN(
        auto rows,
        inv.query("SELECT host, port, user, tier, site, labels FROM devices WHERE name = ?",
                  {dev}));
    if (rows.empty()) continue;  // removed with `device rm --force`: no longer scraped
    const auto& r = rows.front();
    DeviceRow d;
    d.name = dev;
    d.host = r["host"].get<std::string>();
    SdTarget t;
    t.address = exporter_address(m, d);
    // The device's own labels first, so that gedge's names win a clash.
    auto labels = nlohmann::json::parse(
        r["labels"].is_string() ? r["labels"].get<std::string>() : "{}", nullptr, false);
    if (labels.is_object())
      for (const auto& [k, v] : labels.items()) {
        auto key = prom_label_name(k);
        if (key.starts_with("__") || key == "job" || key == "instance") continue;
        t.labels[key] = v.is_string() ? v.get<std::string>() : v.dump();
      }
    for (const char* k : {"site", "tier"})
      if (r[k].is_string() && !r[k].get<std::string>().empty())
        t.labels[k] = r[k].get<std::string>();
      else
        t.labels.erase(k);
    t.labels["gedge_cluster"] = name;
    t.labels["gedge_device"] = dev;
    out.push_back(std::move(t));
  }
  return out;
}

std::string sd_path(const std::string& cluster) {
  return fmt::format("{}/{}.json", kPrometheusTargetsDir, cluster);
}

namespace {

Result<std::string> prometheus_base(Inventory& inv, const std::string& host) {
  if (host == kLocalhost) return fmt::format("http://127.0.0.1:{}", kPrometheusPort);
  GEDGE_TRY_ASSIGN(auto d, load_device(inv, host));
  bool v6 = d.host.find(':') != std::string::npos;
  return fmt::format("http://{}:{}", v6 ? "[" + d.host + "]" : d.host, kPrometheusPort);
}

std::optional<std::string> prometheus_host_of(const nlohmann::json& cluster) {
  if (cluster.contains("prometheus") && cluster["prometheus"].is_string() &&
      !cluster["prometheus"].get<std::string>().empty())
    return cluster["prometheus"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Result<std::optional<std::string>> prometheus_url(Inventory& inv, const std::string& name) {
  GEDGE_TRY_ASSIGN(auto c, require_cluster(inv, name));
  auto host = prometheus_host_of(c);
  if (!host) return std::optional<std::string>{};
  GEDGE_TRY_ASSIGN(auto base, prometheus_base(inv, *host));
  return std::optional<std::string>{base};
}

nlohmann::json grafana_dashboard(const std::string& name) {
  const std::string sel = fmt::format("job=\"{}\",gedge_cluster=\"{}\",gedge_device=~\"$device\"",
                                      kPrometheusJob, name);
  const nlohmann::json ds = {{"type", "prometheus"}, {"uid", "${datasource}"}};
  struct P {
    const char* type;
    const char* title;
    const char* unit;
    std::string expr;
    int w, h;
  };
  std::vector<P> specs = {
      {"stat", "Members up", "none", fmt::format("sum(up{{{}}})", sel), 6, 4},
      {"stat", "Members down", "none", fmt::format("count(up{{{}}} == 0) or vector(0)", sel), 6, 4},
      {"stat", "Firing alerts", "none",
       fmt::format("count(ALERTS{{gedge_cluster=\"{}\",alertstate=\"firing\"}}) or vector(0)",
                   name),
       12, 4},
      {"timeseries", "CPU busy", "percent",
       fmt::format("100 * (1 - sum by (gedge_device) "
                   "(rate(node_cpu_seconds_total{{{0},mode=~\"idle|iowait\"}}[$__rate_interval]))"
                   " / count by (gedge_device) (node_cpu_seconds_total{{{0},mode=\"idle\"}}))",
                   sel),
       12, 8},
      {"timeseries", "Memory used", "bytes",
       fmt::format("node_memory_MemTotal_bytes{{{0}}} - node_memory_MemAvailable_bytes{{{0}}}",
                   sel),
       12, 8},
      {"timeseries", "Disk free", "bytes",
       fmt::format("node_filesystem_avail_bytes{{{},fstype!~\"tmpfs|ramfs|squashfs|iso9660\"}}",
                   sel),
       12, 8},
      {"timeseries", "Load (1 m)", "none", fmt::format("node_load1{{{}}}", sel), 12, 8},
  };
  nlohmann::json panels = nlohmann::json::array();
  int x = 0, y = 0, row_h = 0, id = 1;
  for (const auto& p : specs) {
    if (x + p.w > 24) {
      x = 0;
      y += row_h;
      row_h = 0;
    }
    std::string legend = std::string(p.title).starts_with("Disk")
                             ? "{{gedge_device}} {{mountpoint}}"
                             : "{{gedge_device}}";
    nlohmann::json target = {{"refId", "A"}, {"datasource", ds}, {"expr", p.expr}, {"range", true}};
    if (std::string_view(p.type) == "timeseries") target["legendFormat"] = legend;
    panels.push_back({{"id", id++},
                      {"type", p.type},
                      {"title", p.title},
                      {"datasource", ds},
                      {"gridPos", {{"h", p.h}, {"w", p.w}, {"x", x}, {"y", y}}},
                      {"targets", {target}},
                      {"fieldConfig",
                       {{"defaults", {{"unit", p.unit}}}, {"overrides", nlohmann::json::array()}}},
                      {"options", nlohmann::json::object()},
                      {"transformations", nlohmann::json::array()},
                      {"transparent", false},
                      {"repeatDirection", "h"}});
    x += p.w;
    row_h = std::max(row_h, p.h);
  }
  nlohmann::json templating = nlohmann::json::array();
  templating.push_back({{"type", "datasource"},
                        {"name", "datasource"},
                        {"label", "Prometheus"},
                        {"query", "prometheus"},
                        {"hide", 0},
                        {"skipUrlSync", false}});
  templating.push_back(
      {{"type", "query"},
       {"name", "device"},
       {"label", "Device"},
       {"datasource", ds},
       {"query", fmt::format("label_values(up{{job=\"{}\",gedge_cluster=\"{}\"}}, gedge_device)",
                             kPrometheusJob, name)},
       {"refresh", 2},
       {"multi", true},
       {"includeAll", true},
       {"hide", 0},
       {"skipUrlSync", false}});
  nlohmann::json annotations = nlohmann::json::array();
  annotations.push_back({{"name", "Annotations & Alerts"},
                         {"builtIn", 1},
                         {"datasource", {{"type", "grafana"}, {"uid", "-- Grafana --"}}},
                         {"enable", true},
                         {"hide", true},
                         {"iconColor", "rgba(0, 211, 255, 1)"},
                         {"type", "dashboard"}});
  return nlohmann::json{
      {"uid", prom_label_name("gedge-" + name).substr(0, 40)},
      {"title", fmt::format("gedge cluster {}", name)},
      {"description",
       fmt::format("Node-exporters of gedge cluster {} (job \"{}\")", name, kPrometheusJob)},
      {"tags", {"gedge", "node-exporter"}},
      {"style", "dark"},
      {"timezone", "browser"},
      {"editable", true},
      {"graphTooltip", 1},
      {"fiscalYearStartMonth", 0},
      {"time", {{"from", "now-6h"}, {"to", "now"}}},
      {"timepicker", nlohmann::json::object()},
      {"refresh", "30s"},
      {"schemaVersion", 39},
      {"version", 1},
      {"links", nlohmann::json::array()},
      {"annotations", {{"list", annotations}}},
      {"templating", {{"list", templating}}},
      {"panels", panels}};
}

// ---- keeping the target file ------------------------------------------------------------------

nlohmann::json sync_prometheus(Inventory& inv, const Paths& paths, const std::string& name,
                               double timeout_s, Reporter& rep, bool remove) {
  auto c = load_cluster(inv, name);
  if (!c || !*c) return nullptr;
  auto host = prometheus_host_of(**c);
  if (!host) return nullptr;
  return sync_targets_on(inv, paths, name, *host, timeout_s, rep, remove);
}

namespace detail {

nlohmann::json sync_targets_on(Inventory& inv, const Paths& paths, const std::string& name,
                               const std::string& prom_host, double timeout_s, Reporter& rep,
                               bool remove) {
  const std::string* host = &prom_host;
  std::string path = sd_path(name);
  nlohmann::json out = {{"host", *host}, {"file", path}, {"synced", false}, {"error", nullptr}};
  auto done = [&]() -> Result<int> {
    std::string text;
    int n = 0;
    if (!remove) {
      GEDGE_TRY_ASSIGN(auto targets, prometheus_targets(inv, name));
      n = static_cast<int>(targets.size());
      text = render_sd(targets);
    }
    if (*host == kLocalhost) {
      if (remove) {
        std::error_code ec;
        fs::remove(path, ec);
        if (ec)
          return fail(ErrorCode::failure, fmt::format("cannot remove {}: {}", path, ec.message()));
      } else {
        GEDGE_TRY(write_file_atomic(path, text, 0644));
      }
      return n;
    }
    GEDGE_TRY_ASSIGN(auto target, device_target(inv, paths, *host));
    GEDGE_TRY_ASSIGN(auto s, SshSession::connect(target, default_ssh_options(paths, timeout_s)));
    if (remove) {
      GEDGE_TRY_ASSIGN(auto r, s->exec({"rm", "-f", path}));
      if (r.exit_code != 0) return fail(ErrorCode::failure, fmt::format("rm {}: {}", path, r.err));
    } else {
      GEDGE_TRY(s->put_file(path, text, 0644));  // a temporary file renamed over it
    }
    return n;
  }();
  if (done) {
    out["synced"] = true;
    out["targets"] = *done;
  } else {
    out["error"] = done.error().message;
    rep.warn(fmt::format(
        "the Prometheus target file of cluster {} on {} was not {}: {} (gedge cluster build {} "
        "rewrites it)",
        name, *host, remove ? "removed" : "rewritten", done.error().message, name));
  }
  return out;
}

}  // namespace detail

Result<std::vector<std::string>> clusters_of(Inventory& inv, const std::string& device) {
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv.query("SELECT cluster FROM cluster_members WHERE device = ? ORDER BY cluster", {device}));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r["cluster"].get<std::string>());
  return out;
}

namespace detail {

Result<void> check_prometheus_host(Inventory& inv, const std::string& host) {
  if (host == kLocalhost) return {};
  auto d = load_device(inv, host);
  if (!d)
    return fail(
        ErrorCode::usage,
        fmt::format("--prometheus-on '{}' is neither 'localhost' nor a registered device", host),
        "gedge device ls");
  return {};
}

nlohmann::json PrometheusStep::to_json() const {
  nlohmann::json j = {
      {"host", host},
      {"state", state},
      {"changed", changed},
      {"failed_step", failed_step.empty() ? nlohmann::json(nullptr) : nlohmann::json(failed_step)},
      {"message", message.empty() ? nlohmann::json(nullptr) : nlohmann::json(message)}};
  if (state == "planned" || state == "probe-failed") j["plan"] = plan;
  return j;
}

Result<PrometheusStep> run_prometheus_playbook(Inventory& inv, const Paths& paths,
                                               const std::string& host, const fs::path& run_dir,
                                               bool check, double timeout_s, Reporter& rep) {
  PrometheusStep st;
  st.host = host;
  GEDGE_TRY_ASSIGN(auto pbdir, ansible::find_playbook_dir());
  fs::path dir = run_dir / "prometheus";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return fail(ErrorCode::failure,
                fmt::format("cannot create {}: {}", dir.string(), ec.message()));

  ansible::InventorySpec ispec;
  ispec.group = "gedge_prometheus";
  ispec.known_hosts = dir / "known_hosts";
  ispec.connect_timeout_s = timeout_s;
  std::string known_hosts;
  std::string owner;
  if (host == kLocalhost) {
    owner = local_user();
    nlohmann::json vars = {{"ansible_connection", "local"}};
    if (::geteuid() == 0) vars["ansible_become"] = false;  // already root; sudo may not even exist
    ispec.hosts.push_back({host, "127.0.0.1", 22, owner, "", vars});
  } else {
    GEDGE_TRY_ASSIGN(auto d, load_device(inv, host));
    auto kh_text = read_file(paths.known_hosts);
    auto lines = ansible::device_known_hosts_lines(kh_text ? *kh_text : "", d.target);
    if (!lines) {
      st.state = check ? "probe-failed" : "failed";
      st.failed_step = "host key";
      st.message = lines.error().message;
      return st;
    }
    known_hosts = *lines;
    owner = d.user;
    ispec.hosts.push_back(
        ansible::inventory_host(d.target, paths.key, ispec.known_hosts, timeout_s));
  }
  GEDGE_TRY(write_file_atomic(ispec.known_hosts, known_hosts, 0600));

  ansible::RunSpec spec;
  spec.playbook = pbdir / "prometheus.yml";
  spec.playbook_dir = pbdir;
  spec.run_dir = dir;
  spec.inventory_text = ansible::render_inventory(ispec);
  spec.extra_vars = {{"gedge_sd_owner", owner}};
  spec.forks = 1;
  spec.check = check;
  spec.timeout_s = static_cast<int>(std::max(1.0, timeout_s));
  if (check) spec.skip_tags = {"verify"};
  bool failed = false, unreachable = false;
  auto on_event = [&](const ansible::Event& e) {
    if (e.type == "task_start") {
      rep.progress(fmt::format("prometheus on {}: {}", host, e.task), 0, 0);
      return;
    }
    if (e.host != host) return;
    if (e.type == "ok" && e.changed) {
      st.changed.push_back(e.task);
      if (check)
        st.plan.push_back({{"step", e.task}, {"action", "would change"}, {"diff", e.diff}});
      rep.step(host, (check ? "would change: " : "changed: ") + e.task);
    } else if (e.type == "skipped" && check && e.check_mode_skip) {
      st.plan.push_back({{"step", e.task}, {"action", "would run"}, {"diff", ""}});
    } else if (e.type == "failed" || e.type == "unreachable") {
      (e.type == "failed" ? failed : unreachable) = true;
      if (st.failed_step.empty()) {
        st.failed_step = e.task;
        st.message = e.msg;
      }
      rep.step(host, fmt::format("{}: {}: {}", e.type, e.task, e.msg));
    }
  };
  rep.info(
      fmt::format("running prometheus.yml on {} (log: {})", host, (dir / "ansible.log").string()));
  GEDGE_TRY_ASSIGN(auto rr, ansible::run_playbook(spec, on_event));
  bool finished = rr.stats.contains(host) && !failed && !unreachable &&
                  rr.stats[host].value("failures", 0) == 0 &&
                  rr.stats[host].value("unreachable", 0) == 0;
  if (!finished && st.message.empty())
    st.message = rr.stats.empty() ? fmt::format("ansible-playbook exited with status {}: {}",
                                                rr.exit_code, rr.log_tail)
                                  : "stopped before it finished";
  if (check)
    st.state = finished ? "planned" : "probe-failed";
  else
    st.state = finished ? "ready" : (unreachable ? "unreachable" : "failed");
  return st;
}

// ---- status through the Prometheus HTTP API ---------------------------------------------------

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

}  // namespace detail

}  // namespace gedge::cluster
