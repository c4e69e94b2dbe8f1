// `gedge cluster build` / `join`: the profile playbook run over the cluster's devices, with the
// per-host step journal, --resume, --max-fail and the --dry-run plan.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "cluster_detail.hpp"
#include "gedge/ansible.hpp"
#include "gedge/document.hpp"
#include "gedge/http.hpp"
#include "gedge/metrics.hpp"

namespace gedge::cluster {

using namespace detail;
namespace fs = std::filesystem;

namespace {

// "https://HOST:PORT" with an IPv6 literal in brackets.
std::string server_url(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return fmt::format("https://{}{}{}:{}", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

}  // namespace

namespace {

const std::vector<std::string> kProfiles = {"containers", "k3s", "k8s"};

struct HostState {
  std::vector<std::string> changed;  // steps that changed (or would change)
  std::vector<nlohmann::json> plan;  // dry-run: {step, action, diff}
  std::string failed_step;
  std::string message;
  bool unreachable = false;
  bool failed = false;
  bool finished = false;  // appears in the final stats without failures
  std::string metrics_url;
};

std::string new_run_id() {
  auto t = now_rfc3339();  // 2026-11-22T17:28:30Z
  std::string compact;
  for (char c : t)
    if (c != '-' && c != ':') compact += c;
  return fmt::format("{}-{}", compact, ::getpid());
}

}  // namespace

Result<RegistryTrust> registry_trust(const std::string& registry, const std::string& ca_file,
                                     bool insecure_ok, double timeout_s, Reporter& rep) {
  RegistryTrust t;
  if (!ca_file.empty()) {
    GEDGE_TRY_ASSIGN(t.ca_pem, read_input_file(ca_file, 1u << 20, "--registry-ca file"));
    if (t.ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
      return fail(ErrorCode::usage, fmt::format("--registry-ca {}: not a PEM certificate", ca_file),
                  "give the CA certificate (PEM) that signed the registry's certificate");
  }
  http::Options o;
  o.timeout_s = timeout_s;
  o.connect_timeout_s = timeout_s;
  o.max_body = 1u << 20;
  o.tls.ca_pem = t.ca_pem;
  std::string what = "registry " + registry;
  // Any HTTP answer over TLS (200, or the 401 every authenticated registry gives on /v2/) means
  // TLS works with this trust.
  auto tls = http::perform(
      http::Request{"GET", "https://" + registry + "/v2/", {}, std::nullopt, nullptr}, o, what);
  if (tls) return t;
  if (tls.error().code == ErrorCode::interrupted) return std::unexpected(tls.error());
  auto plain = http::perform(
      http::Request{"GET", "http://" + registry + "/v2/", {}, std::nullopt, nullptr}, o, what);
  // A registry that speaks plain HTTP answers /v2/ with 200 or 401. A TLS server asked in plain
  // HTTP answers too (docker-registry: 400 "Client sent an HTTP request to an HTTPS server"):
  // that one speaks TLS, and its certificate is what failed.
  bool speaks_plain = plain && (plain->status == 200 || plain->status == 401);
  if (speaks_plain && tls.error().code != ErrorCode::unreachable) {
    // It speaks plain HTTP: only on request, and said loudly.
    if (!insecure_ok)
      return fail(ErrorCode::auth, fmt::format("registry {} speaks plain HTTP, not TLS", registry),
                  "give it a TLS certificate (and --registry-ca FILE for a private CA), or pass "
                  "--insecure-registry to let every device pull from it without TLS");
    rep.warn(
        fmt::format("registry {}: plain HTTP (--insecure-registry): images travel unencrypted and "
                    "unauthenticated to every device",
                    registry));
    t.insecure = true;
    return t;
  }
  if (tls.error().code == ErrorCode::auth) {
    if (insecure_ok) {
      rep.warn(fmt::format("registry {}: TLS not verified (--insecure-registry): {}", registry,
                           tls.error().message));
      t.insecure = true;
      return t;
    }
    Error e = tls.error();
    e.hint = ca_file.empty()
                 ? "a private CA: pass --registry-ca FILE (it is also installed on every device); "
                   "check the registry's certificate names " +
                       registry
                 : "check that --registry-ca is the CA that signed the registry's certificate, and "
                   "that the certificate names " +
                       registry;
    return std::unexpected(e);
  }
  // Not reachable from here: the devices will require (and verify) TLS.
  rep.warn(fmt::format("registry {} does not answer from here ({}); devices will require TLS",
                       registry, tls.error().message));
  return t;
}

namespace {

// k3s artifacts: each binary's architecture read from its ELF header, images by file name.
Result<nlohmann::json> k3s_artifacts(const fs::path& dir) {
  nlohmann::json bins = nlohmann::json::object(), images = nlohmann::json::object();
  std::vector<std::string> seen;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string fname = entry.path().filename().string();
    seen.push_back(fname);
    if (fname.starts_with("k3s-airgap-images-")) {
      auto arch = fname.substr(
          18, fname.find('.') == std::string::npos ? std::string::npos : fname.find('.') - 18);
      images[arch] = entry.path().string();
      continue;
    }
    if (fname != "k3s" && fname != "k3s-arm64" && fname != "k3s-armhf") continue;
    std::string buf(20, '\0');
    std::ifstream in(entry.path(), std::ios::binary);
    in.read(buf.data(), 20);
    auto head = in.gcount() == 20 ? std::optional<std::string>(buf) : std::nullopt;
    if (!head || head->compare(0, 4,
                               "\x7f"
                               "ELF") != 0)
      return fail(ErrorCode::usage,
                  fmt::format("{} is not an ELF executable", entry.path().string()),
                  "put the k3s release binaries (k3s, k3s-arm64, k3s-armhf) in --artifacts");
    unsigned machine =
        static_cast<unsigned char>((*head)[18]) | (static_cast<unsigned char>((*head)[19]) << 8);
    std::string arch = machine == 0x3E   ? "amd64"
                       : machine == 0xB7 ? "arm64"
                       : machine == 0x28 ? "arm"
                                         : "";
    if (arch.empty())
      return fail(ErrorCode::usage,
                  fmt::format("{}: unsupported ELF machine {:#x}", entry.path().string(), machine));
    bins[arch] = entry.path().string();
  }
  if (bins.empty())
    return fail(
        ErrorCode::not_found,
        fmt::format("no k3s binary in {} (expected k3s, k3s-arm64 or k3s-armhf; found: {})",
                    dir.string(),
                    seen.empty() ? "nothing" : fmt::format("{}", fmt::join(seen, ", "))),
        "download the k3s release binary and k3s-airgap-images-<arch>.tar.zst into that directory");
  if (images.empty())
    return fail(ErrorCode::not_found,
                fmt::format("no k3s-airgap-images-<arch>.tar[.gz|.zst] in {}", dir.string()));
  return nlohmann::json{{"binaries", bins}, {"images", images}};
}

// Profile-specific checks made before anything touches a device.
Result<nlohmann::json> profile_vars(const BuildRequest& req,
                                    const std::vector<std::string>& targets, Reporter& rep) {
  nlohmann::json v = {{"gedge_cluster", req.name},
                      {"gedge_profile", req.profile},
                      {"gedge_monitoring", req.monitoring},
                      {"gedge_registry", req.registry}};
  if (!req.registry.empty()) {
    GEDGE_TRY_ASSIGN(auto trust,
                     registry_trust(req.registry, req.registry_ca, req.insecure_registry,
                                    std::min(req.timeout_s, 5.0), rep));
    v["gedge_registry_insecure"] = trust.insecure;
    v["gedge_registry_ca"] = trust.ca_pem;
  }
  // Without --smoke-image, the smoke run checks what any registry offers: the device reaches its
  // /v2/ with TLS and its credentials as configured, and pulls the catalog's first image
  // (playbooks/roles/smoke_test).
  v["gedge_smoke_image"] = req.smoke_image;
  if (req.profile == "k3s" || req.profile == "k8s") {
    v["gedge_server"] = req.server.empty() ? (targets.empty() ? "" : targets.front()) : req.server;
  }
  if (req.profile == "k3s") {
    if (req.artifacts.empty())
      return fail(ErrorCode::usage,
                  "--profile k3s needs --artifacts DIR (the k3s binary and its airgap images)",
                  "see gedge-cluster(1), K3S ARTIFACTS");
    std::error_code ec;
    auto dir = fs::absolute(req.artifacts, ec);
    if (!fs::is_directory(dir))
      return fail(ErrorCode::not_found,
                  fmt::format("artifacts directory '{}' not found", req.artifacts));
    v["gedge_artifacts"] = dir.string();
    GEDGE_TRY_ASSIGN(auto a, k3s_artifacts(dir));
    v["gedge_k3s_binaries"] = a["binaries"];
    v["gedge_k3s_images"] = a["images"];
  }
  return v;
}

}  // namespace

namespace {

Result<BuildOutcome> run_build(Inventory& inv, const Paths& paths, BuildRequest req, Reporter& rep,
                               bool join_only) {
  GEDGE_TRY(check_name("cluster", req.name));
  GEDGE_TRY_ASSIGN(auto existing, load_cluster(inv, req.name));
  if (existing) {
    if ((*existing)["kind"] != "devices")
      return fail(ErrorCode::conflict,
                  fmt::format("cluster '{}' is a registered Kubernetes cluster", req.name));
    std::string prof =
        (*existing)["profile"].is_string() ? (*existing)["profile"].get<std::string>() : "";
    if (req.profile.empty()) req.profile = prof;
    if (prof != req.profile)
      return fail(ErrorCode::conflict,
                  fmt::format("cluster '{}' was built with profile '{}', not '{}'", req.name, prof,
                              req.profile),
                  fmt::format("gedge cluster rm {} --yes, then build it again", req.name));
    if (req.registry.empty() && (*existing)["registry"].is_string()) {
      req.registry = (*existing)["registry"].get<std::string>();
      // Vetted when the cluster was built (plain HTTP needed --insecure-registry then): a resume
      // keeps that trust, with the probe's warning.
      req.insecure_registry = true;
    }
    if ((*existing)["monitoring"] == 1) req.monitoring = true;
    if (req.server.empty() && (*existing)["server"].is_string())
      req.server = (*existing)["server"].get<std::string>();
  } else if (req.resume || join_only) {
    return fail(ErrorCode::not_found, fmt::format("cluster '{}' not found", req.name),
                "gedge cluster ls");
  }
  // The Prometheus server: kept from the last build unless named again; it implies --monitoring.
  std::string old_prom;
  if (existing && (*existing)["prometheus"].is_string())
    old_prom = (*existing)["prometheus"].get<std::string>();
  if (req.prometheus_on.empty()) req.prometheus_on = old_prom;
  if (!req.prometheus_on.empty()) {
    GEDGE_TRY(check_prometheus_host(inv, req.prometheus_on));
    req.monitoring = true;
  }
  if (std::find(kProfiles.begin(), kProfiles.end(), req.profile) == kProfiles.end())
    return fail(ErrorCode::usage,
                fmt::format("unknown profile '{}': use containers, k3s or k8s", req.profile));

  // Targets: the existing members plus the named devices (join: only the named devices).
  std::vector<std::string> members;
  if (existing) {
    GEDGE_TRY_ASSIGN(auto existing_members, load_members(inv, req.name));
    for (const auto& m : existing_members) members.push_back(m["device"].get<std::string>());
  }
  std::vector<std::string> all = members;
  for (const auto& d : req.devices) {
    GEDGE_TRY(check_name("device", d));
    if (std::find(all.begin(), all.end(), d) == all.end()) all.push_back(d);
  }
  if (all.empty())
    return fail(ErrorCode::usage, "no devices: give --devices a,b,c",
                "gedge cluster build NAME --profile containers --devices a,b");
  std::map<std::string, DeviceRow> rows;
  for (const auto& d : all) {
    GEDGE_TRY_ASSIGN(rows[d], load_device(inv, d));
  }
  GEDGE_TRY(check_not_elsewhere(inv, req.name, all));
  if (!req.server.empty() && std::find(all.begin(), all.end(), req.server) == all.end())
    return fail(ErrorCode::usage,
                fmt::format("--server '{}' is not one of the cluster's devices", req.server));

  std::vector<std::string> targets;
  if (join_only) {
    targets = req.devices;
  } else if (req.resume) {
    GEDGE_TRY_ASSIGN(auto journal, load_journal(inv, req.name));
    targets = select_resume(all, journal);
  } else {
    targets = all;
  }
  GEDGE_TRY_ASSIGN(auto vars, profile_vars(req, all, rep));
  fs::path kubeconfig_dest = paths.home / "kubeconfigs" / (req.name + ".yaml");
  if (req.profile != "containers") vars["gedge_kubeconfig_dest"] = kubeconfig_dest.string();
  GEDGE_TRY_ASSIGN(auto pbdir, ansible::find_playbook_dir());
  auto playbook = pbdir / (req.profile + ".yml");
  if (!fs::exists(playbook))
    return fail(ErrorCode::not_found, fmt::format("playbook {} not found", playbook.string()));

  std::string run_id = new_run_id();
  nlohmann::json result = {{"cluster", req.name},
                           {"profile", req.profile},
                           {"run_id", run_id},
                           {"dry_run", req.dry_run},
                           {"resume", req.resume},
                           {"registry", req.registry},
                           {"monitoring", req.monitoring},
                           {"devices", nlohmann::json::array()},
                           {"changed", 0},
                           {"failed", nlohmann::json::array()}};
  if (req.resume && targets.empty()) {
    result["run_id"] = nullptr;
    result["message"] = "every device finished its last build; nothing to resume";
    for (const auto& d : all)
      result["devices"].push_back(
          {{"name", d}, {"state", "ready"}, {"changed", nlohmann::json::array()}});
    return BuildOutcome{result, std::nullopt};
  }

  // Verified host keys: a device whose known key does not match its pin is failed, not run.
  std::map<std::string, HostState> hs;
  auto kh_text = read_file(paths.known_hosts);
  std::string known_hosts;
  std::vector<std::string> runnable;
  for (const auto& t : targets) {
    const auto& d = rows[t];
    auto lines = ansible::device_known_hosts_lines(kh_text ? *kh_text : "", d.target);
    if (!lines) {
      hs[t].failed = true;
      hs[t].failed_step = "host key";
      hs[t].message = lines.error().message;
      rep.step(t, "failed: " + lines.error().message);
      continue;
    }
    known_hosts += *lines;
    runnable.push_back(t);
  }

  fs::path run_dir = paths.home / "runs" / fmt::format("{}-{}", req.name, run_id);
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec)
    return fail(ErrorCode::failure,
                fmt::format("cannot create {}: {}", run_dir.string(), ec.message()));
  GEDGE_TRY(write_file_atomic(run_dir / "known_hosts", known_hosts, 0600));

  ansible::InventorySpec ispec;
  ispec.known_hosts = run_dir / "known_hosts";
  ispec.connect_timeout_s = req.timeout_s;
  for (const auto& t : runnable) {
    const auto& d = rows[t];
    auto h = ansible::inventory_host(d.target, paths.key, ispec.known_hosts, req.timeout_s);
    std::string server = vars.value("gedge_server", "");
    h.vars["gedge_role"] =
        (!server.empty() && server == t) ? "server" : (server.empty() ? "member" : "agent");
    ispec.hosts.push_back(h);
  }

  std::string now = now_rfc3339();
  if (!req.dry_run) {
    GEDGE_TRY(inv.write([&](Inventory& tx) -> Result<void> {
      if (!existing) {
        GEDGE_TRY(
            tx.exec("INSERT INTO clusters(name, kind, profile, server, registry, monitoring, "
                    "state, created_at, updated_at) "
                    "VALUES (?, 'devices', ?, ?, ?, ?, 'building', ?, ?)",
                    {req.name, req.profile, vars.value("gedge_server", std::string()), req.registry,
                     int64_t{req.monitoring ? 1 : 0}, now, now}));
      } else {
        GEDGE_TRY(tx.exec(
            "UPDATE clusters SET state = 'building', registry = ?, monitoring = ?, updated_at = ? "
            "WHERE name = ?",
            {req.registry, int64_t{req.monitoring ? 1 : 0}, now, req.name}));
      }
      GEDGE_TRY(tx.exec(
          "UPDATE clusters SET prometheus = ? WHERE name = ?",
          {req.prometheus_on.empty() ? SqlValue{nullptr} : SqlValue{req.prometheus_on}, req.name}));
      std::string server = vars.value("gedge_server", "");
      for (const auto& d : all)
        GEDGE_TRY(tx.exec(
            "INSERT OR IGNORE INTO cluster_members(cluster, device, role, state) VALUES (?, ?, ?, "
            "'pending')",
            {req.name, d, std::string(!server.empty() && server == d ? "server" : "member")}));
      for (const auto& [t, s] : hs)
        if (s.failed) {
          GEDGE_TRY(tx.exec(
              "INSERT INTO build_journal(cluster, run_id, device, step, status, message, at) "
              "VALUES (?, ?, ?, ?, 'failed', ?, ?)",
              {req.name, run_id, t, s.failed_step, s.message, now}));
          GEDGE_TRY(tx.exec(
              "UPDATE cluster_members SET state = 'failed' WHERE cluster = ? AND device = ?",
              {req.name, t}));
        }
      return {};
    }));
  }

  ansible::RunResult rr;
  int total = static_cast<int>(targets.size());
  if (!runnable.empty()) {
    ansible::RunSpec spec;
    spec.playbook = playbook;
    spec.playbook_dir = pbdir;
    spec.run_dir = run_dir;
    spec.inventory_text = ansible::render_inventory(ispec);
    spec.extra_vars = vars;
    spec.forks = std::max(1, std::min<int>(req.parallel, static_cast<int>(runnable.size())));
    spec.check = req.dry_run;
    spec.timeout_s = static_cast<int>(std::max(1.0, req.timeout_s));
    if (req.dry_run) spec.skip_tags = {"verify"};
    std::optional<Error> journal_error;
    bool max_fail_hit = false;
    auto record = [&](const ansible::Event& e) {
      if (e.host.empty() || std::find(runnable.begin(), runnable.end(), e.host) == runnable.end())
        return;
      auto& s = hs[e.host];
      // Once gedge stops the run (--max-fail, Ctrl-C), the SIGINT itself makes in-flight tasks
      // fail or their ssh die: those are not the device's failures. The device ends "not finished".
      if ((max_fail_hit || cancel_requested()) && (e.type == "failed" || e.type == "unreachable") &&
          !s.failed && !s.unreachable)
        return;
      std::string status;
      if (e.type == "ok") {
        status = e.changed ? "changed" : "ok";
        if (e.changed) {
          s.changed.push_back(e.task);
          if (req.dry_run)
            s.plan.push_back({{"step", e.task}, {"action", "would change"}, {"diff", e.diff}});
          rep.step(e.host, (req.dry_run ? "would change: " : "changed: ") + e.task);
        }
      } else if (e.type == "skipped") {
        if (req.dry_run && e.check_mode_skip) {
          s.plan.push_back({{"step", e.task}, {"action", "would run"}, {"diff", ""}});
          rep.step(e.host, "would run: " + e.task);
        }
        return;  // skipped steps are not journalled
      } else if (e.type == "failed") {
        status = "failed";
        s.failed = true;
        if (s.failed_step.empty()) {
          s.failed_step = e.task;
          s.message = e.msg;
        }
        rep.step(e.host, fmt::format("failed: {}: {}", e.task, e.msg));
      } else if (e.type == "unreachable") {
        status = "unreachable";
        s.unreachable = true;
        s.failed_step = e.task;
        s.message = e.msg;
        rep.step(e.host, fmt::format("unreachable: {}", e.msg));
      } else {
        return;
      }
      if (req.dry_run || journal_error) return;
      auto w = inv.exec(
          "INSERT INTO build_journal(cluster, run_id, device, step, status, message, at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)",
          {req.name, run_id, e.host, e.task, status, e.msg, now_rfc3339()});
      if (!w) journal_error = w.error();
    };
    // Progress: per task, how many of the devices still in the run have answered it.
    std::size_t tasks_seen = 0, active = 0;
    std::string task_line;
    std::set<std::string> answered;
    auto on_event = [&](const ansible::Event& e) {
      if (e.type == "task_start") {
        task_line = fmt::format("cluster {}: task {} ({}): hosts", req.name, ++tasks_seen, e.task);
        answered.clear();
        active = static_cast<std::size_t>(
            std::count_if(runnable.begin(), runnable.end(),
                          [&](const auto& h) { return !hs[h].failed && !hs[h].unreachable; }));
        rep.progress(task_line, 0, active);
        return;
      }
      record(e);
      bool result =
          e.type == "ok" || e.type == "skipped" || e.type == "failed" || e.type == "unreachable";
      if (!result || std::find(runnable.begin(), runnable.end(), e.host) == runnable.end()) return;
      answered.insert(e.host);
      rep.progress(task_line, answered.size(), std::max(active, answered.size()));
    };
    auto should_stop = [&]() {
      int failed = 0;
      for (const auto& [h, s] : hs)
        if (s.failed || s.unreachable) ++failed;
      if (req.max_fail.exceeded(failed, total)) max_fail_hit = true;
      return max_fail_hit;
    };
    rep.info(fmt::format("running {} on {} device(s) (log: {})", playbook.filename().string(),
                         runnable.size(), (run_dir / "ansible.log").string()));
    GEDGE_TRY_ASSIGN(rr, ansible::run_playbook(spec, on_event, should_stop));
    if (journal_error) return std::unexpected(*journal_error);
    if (rr.stats.empty() && !rr.stopped)
      return fail(ErrorCode::failure,
                  fmt::format("ansible-playbook exited with status {} before running any task:\n{}",
                              rr.exit_code, rr.log_tail),
                  fmt::format("see {}", rr.log.string()));
    for (const auto& t : runnable) {
      auto& s = hs[t];
      if (!rr.stats.contains(t)) {
        if (!s.failed && !s.unreachable)
          s.message = rr.stopped ? "stopped before it finished" : "did not run";
        continue;
      }
      const auto& st = rr.stats[t];
      if (st.value("failures", 0) == 0 && st.value("unreachable", 0) == 0 && !s.failed &&
          !s.unreachable)
        s.finished = true;
    }
  }

  // Monitoring: the endpoint must answer from here before gedge records it.
  if (req.monitoring && !req.dry_run) {
    for (const auto& t : runnable) {
      auto& s = hs[t];
      if (!s.finished) continue;
      auto url = metrics_url_for(rows[t]);
      auto r = metrics::http_get(url, std::min(req.timeout_s, 10.0));
      if (r) {
        s.metrics_url = url;
      } else {
        s.finished = false;
        s.failed = true;
        s.failed_step = "metrics endpoint";
        s.message = r.error().message;
      }
    }
  }

  // Final per-device state, journal completion markers, cluster state.
  std::vector<std::string> failed_names;
  int changed_total = 0;
  for (const auto& t : targets) {
    auto& s = hs[t];
    changed_total += static_cast<int>(s.changed.size());
    std::string state = req.dry_run
                            ? (s.failed || s.unreachable ? "probe-failed" : "planned")
                            : (s.finished ? "ready" : (s.unreachable ? "unreachable" : "failed"));
    if (!s.finished) failed_names.push_back(t);
    nlohmann::json dj = {
        {"name", t},
        {"state", state},
        {"changed", s.changed},
        {"failed_step",
         s.failed_step.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.failed_step)},
        {"message", s.message.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.message)},
        {"metrics_url",
         s.metrics_url.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.metrics_url)}};
    if (req.dry_run) dj["plan"] = s.plan;
    result["devices"].push_back(dj);
  }
  result["changed"] = changed_total;
  result["failed"] = failed_names;

  if (!req.dry_run) {
    std::string at = now_rfc3339();
    // k3s/k8s: point the fetched kubeconfig at the server's address, before (not while) holding
    // the database's write lock.
    std::string server_host;
    bool kubeconfig_ready = false;
    if (req.profile != "containers" && fs::exists(kubeconfig_dest)) {
      ::chmod(kubeconfig_dest.c_str(), 0600);
      server_host = rows.count(vars.value("gedge_server", ""))
                        ? rows[vars.value("gedge_server", "")].host
                        : "";
      if (auto text = read_file(kubeconfig_dest); text && !server_host.empty())
        GEDGE_TRY(write_file_atomic(kubeconfig_dest,
                                    ansible::point_kubeconfig_at(*text, server_host), 0600));
      kubeconfig_ready = true;
    }
    GEDGE_TRY(inv.write([&](Inventory& tx) -> Result<void> {
      for (const auto& t : targets) {
        const auto& s = hs[t];
        if (s.finished) {
          GEDGE_TRY(tx.exec(
              "INSERT INTO build_journal(cluster, run_id, device, step, status, message, at) "
              "VALUES (?, ?, ?, ?, 'ok', ?, ?)",
              {req.name, run_id, t, std::string(kStepComplete),
               fmt::format("{} step(s) changed", s.changed.size()), at}));
          GEDGE_TRY(tx.exec(
              "UPDATE cluster_members SET state = 'ready', metrics_url = ? WHERE cluster = ? AND "
              "device = ?",
              {s.metrics_url.empty() ? SqlValue{nullptr} : SqlValue{s.metrics_url}, req.name, t}));
        } else {
          if (!s.failed && !s.unreachable)  // stopped or never reached: say so in the journal
            GEDGE_TRY(tx.exec(
                "INSERT INTO build_journal(cluster, run_id, device, step, status, message, at) "
                "VALUES (?, ?, ?, 'not finished', 'failed', ?, ?)",
                {req.name, run_id, t, s.message, at}));
          GEDGE_TRY(tx.exec("UPDATE cluster_members SET state = ? WHERE cluster = ? AND device = ?",
                            {std::string(s.unreachable ? "unreachable" : "failed"), req.name, t}));
        }
      }
      GEDGE_TRY_ASSIGN(auto ms,
                       tx.query("SELECT state FROM cluster_members WHERE cluster = ?", {req.name}));
      int ready = 0;
      for (const auto& m : ms)
        if (m["state"] == "ready") ++ready;
      std::string cstate =
          ready == static_cast<int>(ms.size()) ? "ready" : (ready == 0 ? "failed" : "partial");
      GEDGE_TRY(tx.exec("UPDATE clusters SET state = ?, updated_at = ? WHERE name = ?",
                        {cstate, at, req.name}));
      result["state"] = cstate;
      // k3s/k8s: the fetched kubeconfig (rewritten above) becomes the cluster's Kubernetes
      // endpoint.
      if (kubeconfig_ready) {
        GEDGE_TRY(tx.exec("UPDATE clusters SET kubeconfig = ?, api_server = ? WHERE name = ?",
                          {kubeconfig_dest.string(), server_url(server_host, 6443), req.name}));
        result["kubeconfig"] = kubeconfig_dest.string();
      }
      return {};
    }));
  }

  // The Prometheus server (a build, not a join: members come and go through the target file).
  std::optional<PrometheusStep> prom;
  if (!req.prometheus_on.empty() && !join_only && !rr.interrupted) {
    GEDGE_TRY_ASSIGN(auto p, run_prometheus_playbook(inv, paths, req.prometheus_on, run_dir,
                                                     req.dry_run, req.timeout_s, rep));
    prom = p;
    result["prometheus"] = p.to_json();
    if (auto base = prometheus_url(inv, req.name); base && *base)
      result["prometheus"]["url"] = **base;
  }
  if (!req.dry_run && !req.prometheus_on.empty() &&
      (join_only || (prom && prom->state == "ready"))) {
    if (!old_prom.empty() && old_prom != req.prometheus_on)
      sync_targets_on(inv, paths, req.name, old_prom, req.timeout_s, rep, /*remove=*/true);
    auto sync = sync_prometheus(inv, paths, req.name, req.timeout_s, rep);
    if (join_only) result["prometheus"] = {{"host", req.prometheus_on}};
    result["prometheus"]["targets_file"] = sync;
  }

  std::optional<Error> partial;
  if (rr.interrupted) {
    partial =
        Error{ErrorCode::interrupted, fmt::format("build of cluster '{}' interrupted", req.name),
              fmt::format("gedge cluster build {} --resume", req.name)};
  } else if (!failed_names.empty()) {
    std::string list;
    bool all_unreachable = true;
    for (const auto& n : failed_names) {
      const auto& s = hs[n];
      if (!s.unreachable) all_unreachable = false;
      list += fmt::format(
          "{}{} ({}{}{})", list.empty() ? "" : ", ", n,
          s.unreachable
              ? "unreachable"
              : (s.failed_step.empty() ? "not finished" : "failed at '" + s.failed_step + "'"),
          s.message.empty() ? "" : ": ", s.message.substr(0, 200));
    }
    ErrorCode code = ErrorCode::partial;
    if (failed_names.size() == targets.size())
      code = all_unreachable ? ErrorCode::unreachable : ErrorCode::failure;
    std::string stopped =
        rr.stopped ? fmt::format(" (stopped: more than --max-fail devices failed)") : "";
    partial =
        Error{code,
              fmt::format("{} of {} device(s) {}{}: {}", failed_names.size(), targets.size(),
                          req.dry_run ? "could not be probed" : "did not finish", stopped, list),
              req.dry_run ? "gedge device check " + failed_names.front()
                          : fmt::format("gedge cluster build {} --resume", req.name)};
  }
  if (prom && prom->state != "ready" && prom->state != "planned" && !rr.interrupted) {
    std::string what = fmt::format(
        "the Prometheus server on {} {} ({}{}{})", prom->host,
        req.dry_run ? "could not be probed" : "did not finish",
        prom->failed_step.empty() ? prom->state : "failed at '" + prom->failed_step + "'",
        prom->message.empty() ? "" : ": ", prom->message.substr(0, 200));
    if (partial)
      partial->message += "; " + what;
    else
      partial = Error{ErrorCode::partial, what, fmt::format("gedge cluster build {}", req.name)};
  }
  return BuildOutcome{result, partial};
}

}  // namespace

Result<BuildOutcome> build(Inventory& inv, const Paths& paths, const BuildRequest& req,
                           Reporter& rep) {
  return run_build(inv, paths, req, rep, /*join_only=*/false);
}

Result<BuildOutcome> join(Inventory& inv, const Paths& paths, const std::string& name,
                          const std::vector<std::string>& devices, int parallel, double timeout_s,
                          Reporter& rep) {
  if (devices.empty()) return fail(ErrorCode::usage, "join needs at least one DEVICE");
  GEDGE_TRY_ASSIGN(auto c, require_cluster(inv, name));
  if (c["kind"] != "devices")
    return fail(
        ErrorCode::usage,
        fmt::format("cluster '{}' is a registered Kubernetes cluster; join its nodes there", name));
  BuildRequest req;
  req.name = name;
  req.devices = devices;
  req.parallel = parallel;
  req.timeout_s = timeout_s;
  return run_build(inv, paths, req, rep, /*join_only=*/true);
}

}  // namespace gedge::cluster
