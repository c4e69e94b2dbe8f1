// Monitoring with a Prometheus server (`cluster build --monitoring --prometheus-on HOST`): the
// server's playbook run, the file_sd target file gedge keeps on it, the alert rules and Grafana
// dashboard it exports (`cluster status` through the Prometheus HTTP API: cluster_prom_status.cpp).
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
#include "gedge/openssh.hpp"
#include "gedge/ssh.hpp"
#include "gedge/stores.hpp"

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
    GEDGE_TRY_ASSIGN(auto row, DeviceStore(inv).row(dev));
    if (!row) continue;  // removed with `device rm --force`: no longer scraped
    const auto& r = *row;
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
  return ClusterStore(inv).of_device(device);
}

namespace detail {

std::string jump_chain_text(const SshTarget& t) {
  if (!t.jump) return {};
  std::string out;
  for (const auto& h : jump_hops(*t.jump))
    out += fmt::format("{}{}:{}", out.empty() ? "" : ",", h.host, h.port > 0 ? h.port : 22);
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> unscrapable_members(
    Inventory& inv, const std::string& name, const std::string& prom_host) {
  std::string prom_chain, prom_as_hop;
  if (prom_host != kLocalhost) {
    GEDGE_TRY_ASSIGN(auto p, load_device(inv, prom_host));
    prom_chain = jump_chain_text(p.target);
    prom_as_hop = (prom_chain.empty() ? "" : prom_chain + ",") +
                  fmt::format("{}:{}", p.target.host, p.target.port > 0 ? p.target.port : 22);
  }
  GEDGE_TRY_ASSIGN(auto members, load_members(inv, name));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& m : members) {
    auto dev = m["device"].get<std::string>();
    auto d = load_device(inv, dev);
    if (!d) continue;  // removed with `device rm --force`: not scraped
    auto chain = jump_chain_text(d->target);
    if (chain.empty() || chain == prom_chain || chain == prom_as_hop) continue;
    out.emplace_back(
        dev, fmt::format("device '{}' is reached through jump hosts ({}): the Prometheus server on "
                         "'{}' scrapes {} directly, which works only if it can route to that "
                         "network (gedge does not tunnel scrapes through jump hosts; run the "
                         "server on its last jump host or on a device behind the same jump hosts)",
                         dev, chain, prom_host, exporter_address(m, *d)));
  }
  return out;
}

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

}  // namespace detail

}  // namespace gedge::cluster
