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
#include "gedge/stores.hpp"

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

// One build or join, step by step: each step reads and fills the fields it names.
struct Build {
  Inventory& inv;
  const Paths& paths;
  BuildRequest req;
  Reporter& rep;
  bool join_only;

  std::optional<nlohmann::json> existing;  // the cluster's record, when it exists
  std::string old_prom;                    // its Prometheus host before this build
  std::vector<std::string> all;            // every device of the cluster after this build
  std::map<std::string, DeviceRow> rows;
  std::vector<std::string> targets;   // the devices this run is for
  std::vector<std::string> runnable;  // targets whose host key is verified
  std::map<std::string, HostState> hs;
  nlohmann::json vars;
  fs::path kubeconfig_dest, pbdir, playbook, run_dir;
  std::string run_id;
  nlohmann::json result;
  ansible::RunResult rr;
  std::vector<std::string> failed_names;
  std::optional<PrometheusStep> prom;
  // While the playbook runs.
  std::optional<Error> journal_error;
  bool max_fail_hit = false;

  // The request completed from the cluster's record (profile, registry, monitoring, server,
  // Prometheus host) and checked against it.
  Result<void> settle_request() {
    GEDGE_TRY(check_name("cluster", req.name));
    GEDGE_TRY_ASSIGN(existing, load_cluster(inv, req.name));
    if (existing) {
      if ((*existing)["kind"] != "devices")
        return fail(ErrorCode::conflict,
                    fmt::format("cluster '{}' is a registered Kubernetes cluster", req.name));
      std::string prof =
          (*existing)["profile"].is_string() ? (*existing)["profile"].get<std::string>() : "";
      if (req.profile.empty()) req.profile = prof;
      if (prof != req.profile)
        return fail(ErrorCode::conflict,
                    fmt::format("cluster '{}' was built with profile '{}', not '{}'", req.name,
                                prof, req.profile),
                    fmt::format("gedge cluster rm {} --yes, then build it again", req.name));
      if (req.registry.empty() && (*existing)["registry"].is_string()) {
        req.registry = (*existing)["registry"].get<std::string>();
        // Vetted when the cluster was built (plain HTTP needed --insecure-registry then): a
        // resume keeps that trust, with the probe's warning.
        req.insecure_registry = true;
      }
      if ((*existing)["monitoring"] == 1) req.monitoring = true;
      if (req.server.empty() && (*existing)["server"].is_string())
        req.server = (*existing)["server"].get<std::string>();
    } else if (req.resume || join_only) {
      return fail(ErrorCode::not_found, fmt::format("cluster '{}' not found", req.name),
                  "gedge cluster ls");
    }
    // The Prometheus server: kept from the last build unless named again; it implies
    // --monitoring.
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
    return {};
  }

  // Targets: the existing members plus the named devices (join: only the named devices; resume:
  // those that did not finish).
  Result<void> choose_targets() {
    std::vector<std::string> members;
    if (existing) {
      GEDGE_TRY_ASSIGN(auto existing_members, load_members(inv, req.name));
      for (const auto& m : existing_members) members.push_back(m["device"].get<std::string>());
    }
    all = members;
    for (const auto& d : req.devices) {
      GEDGE_TRY(check_name("device", d));
      if (std::find(all.begin(), all.end(), d) == all.end()) all.push_back(d);
    }
    if (all.empty())
      return fail(ErrorCode::usage, "no devices: give --devices a,b,c",
                  "gedge cluster build NAME --profile containers --devices a,b");
    for (const auto& d : all) {
      GEDGE_TRY_ASSIGN(rows[d], load_device(inv, d));
    }
    GEDGE_TRY(check_not_elsewhere(inv, req.name, all));
    if (!req.server.empty() && std::find(all.begin(), all.end(), req.server) == all.end())
      return fail(ErrorCode::usage,
                  fmt::format("--server '{}' is not one of the cluster's devices", req.server));
    if (join_only) {
      targets = req.devices;
    } else if (req.resume) {
      GEDGE_TRY_ASSIGN(auto journal, load_journal(inv, req.name));
      targets = select_resume(all, journal);
    } else {
      targets = all;
    }
    return {};
  }

  // The playbook, its variables and the run's id; `result` started.
  Result<void> prepare() {
    GEDGE_TRY_ASSIGN(vars, profile_vars(req, all, rep));
    kubeconfig_dest = paths.home / "kubeconfigs" / (req.name + ".yaml");
    if (req.profile != "containers") vars["gedge_kubeconfig_dest"] = kubeconfig_dest.string();
    GEDGE_TRY_ASSIGN(pbdir, ansible::find_playbook_dir());
    playbook = pbdir / (req.profile + ".yml");
    if (!fs::exists(playbook))
      return fail(ErrorCode::not_found, fmt::format("playbook {} not found", playbook.string()));
    run_id = new_run_id();
    result = {{"cluster", req.name},
              {"profile", req.profile},
              {"run_id", run_id},
              {"dry_run", req.dry_run},
              {"resume", req.resume},
              {"registry", req.registry},
              {"monitoring", req.monitoring},
              {"devices", nlohmann::json::array()},
              {"changed", 0},
              {"failed", nlohmann::json::array()}};
    return {};
  }

  BuildOutcome nothing_to_resume() {
    result["run_id"] = nullptr;
    result["message"] = "every device finished its last build; nothing to resume";
    for (const auto& d : all)
      result["devices"].push_back(
          {{"name", d}, {"state", "ready"}, {"changed", nlohmann::json::array()}});
    return BuildOutcome{result, std::nullopt};
  }

  // Verified host keys: a device whose known key does not match its pin is failed, not run.
  // Returns the known_hosts lines of the runnable devices.
  std::string check_host_keys() {
    auto kh_text = read_file(paths.known_hosts);
    std::string known_hosts;
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
    return known_hosts;
  }

  // The run's directory with its known_hosts file, and the inventory of the runnable devices.
  Result<ansible::InventorySpec> write_run_dir(const std::string& known_hosts) {
    run_dir = paths.home / "runs" / fmt::format("{}-{}", req.name, run_id);
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
    return ispec;
  }

  Result<void> begin_records() {
    if (req.dry_run) return {};
    BuildStart start{req.name,
                     req.profile,
                     vars.value("gedge_server", std::string()),
                     req.registry,
                     req.monitoring,
                     req.prometheus_on,
                     all,
                     {}};
    for (const auto& [t, s] : hs)
      if (s.failed) start.failed.push_back({t, s.failed_step, "failed", s.message});
    return ClusterStore(inv).begin_build(start, run_id);
  }

  bool runs(const std::string& host) const {
    return std::find(runnable.begin(), runnable.end(), host) != runnable.end();
  }

  // One result of a task on a device: its state, the reporter and the journal.
  void record(const ansible::Event& e) {
    if (e.host.empty() || !runs(e.host)) return;
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
    auto w = JournalStore(inv).append(req.name, run_id, {e.host, e.task, status, e.msg});
    if (!w) journal_error = w.error();
  }

  // The playbook over the runnable devices, with progress per task and --max-fail; then which
  // devices finished.
  Result<void> run(const ansible::InventorySpec& ispec) {
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
      bool answer =
          e.type == "ok" || e.type == "skipped" || e.type == "failed" || e.type == "unreachable";
      if (!answer || !runs(e.host)) return;
      answered.insert(e.host);
      rep.progress(task_line, answered.size(), std::max(active, answered.size()));
    };
    int total = static_cast<int>(targets.size());
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
    return {};
  }

  // Monitoring: the endpoint must answer from here before gedge records it.
  void check_metrics() {
    if (!req.monitoring || req.dry_run) return;
    for (const auto& t : runnable) {
      auto& s = hs[t];
      if (!s.finished) continue;
      auto url = metrics_url_for(rows[t]);
      auto r = metrics::http_get(url, std::min(req.timeout_s, 10.0));
      if (r) {
        s.metrics_url = url;
      } else if (auto chain = jump_chain_text(rows[t].target); !chain.empty()) {
        // Behind jump hosts: the playbook installed and started node-exporter, but gedge scrapes
        // from here and does not tunnel through the jump hosts. Said, not hidden: no endpoint
        // is recorded, so `cluster status` and `cluster export --format prometheus` leave it out.
        s.message = fmt::format(
            "node-exporter runs, but {} does not answer from here ({}): the device is reached "
            "through jump hosts ({}) and gedge scrapes directly, so no metrics endpoint is "
            "recorded for it",
            url, r.error().message, chain);
        rep.warn(fmt::format("device '{}': {}", t, s.message));
      } else {
        s.finished = false;
        s.failed = true;
        s.failed_step = "metrics endpoint";
        s.message = r.error().message;
      }
    }
  }

  // Final per-device state in `result`; `failed_names` those that did not finish.
  void summarize() {
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
  }

  // Journal completion markers, member and cluster states, the Kubernetes endpoint.
  Result<void> finish_records() {
    if (req.dry_run) return {};
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
    std::vector<MemberOutcome> outcomes;
    for (const auto& t : targets) {
      const auto& s = hs[t];
      if (s.finished)
        outcomes.push_back({t, "ready", s.metrics_url,
                            JournalLine{t, std::string(kStepComplete), "ok",
                                        fmt::format("{} step(s) changed", s.changed.size())}});
      else if (!s.failed && !s.unreachable)  // stopped or never reached: say so in the journal
        outcomes.push_back({t, "failed", "", JournalLine{t, "not finished", "failed", s.message}});
      else
        outcomes.push_back({t, s.unreachable ? "unreachable" : "failed", "", std::nullopt});
    }
    std::optional<std::pair<std::string, std::string>> endpoint;
    if (kubeconfig_ready)  // k3s/k8s: the fetched kubeconfig, rewritten above
      endpoint = {kubeconfig_dest.string(), server_url(server_host, 6443)};
    GEDGE_TRY_ASSIGN(std::string cstate,
                     ClusterStore(inv).finish_build(req.name, run_id, outcomes, endpoint));
    result["state"] = cstate;
    if (endpoint) result["kubeconfig"] = kubeconfig_dest.string();
    return {};
  }

  // The Prometheus server (a build, not a join: members come and go through the target file).
  Result<void> prometheus() {
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
    if (!req.prometheus_on.empty() && result.contains("prometheus") &&
        result["prometheus"].is_object()) {
      // Members behind jump hosts that this server is not known to reach: a warning each.
      nlohmann::json warn = nlohmann::json::array();
      if (auto far = unscrapable_members(inv, req.name, req.prometheus_on))
        for (const auto& [dev, msg] : *far) {
          rep.warn(msg);
          warn.push_back({{"device", dev}, {"message", msg}});
        }
      result["prometheus"]["unscrapable"] = warn;
    }
    return {};
  }

  // The run's error when it did not end ready everywhere: interrupted, devices that did not
  // finish (all unreachable, all failed, or some: partial), a Prometheus server that did not.
  std::optional<Error> partial_error() {
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
    return partial;
  }
};

Result<BuildOutcome> run_build(Inventory& inv, const Paths& paths, BuildRequest req, Reporter& rep,
                               bool join_only) {
  Build b{inv, paths, std::move(req), rep, join_only};
  GEDGE_TRY(b.settle_request());
  GEDGE_TRY(b.choose_targets());
  GEDGE_TRY(b.prepare());
  if (b.req.resume && b.targets.empty()) return b.nothing_to_resume();
  GEDGE_TRY_ASSIGN(auto ispec, b.write_run_dir(b.check_host_keys()));
  GEDGE_TRY(b.begin_records());
  if (!b.runnable.empty()) GEDGE_TRY(b.run(ispec));
  b.check_metrics();
  b.summarize();
  GEDGE_TRY(b.finish_records());
  GEDGE_TRY(b.prometheus());
  return BuildOutcome{b.result, b.partial_error()};
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
