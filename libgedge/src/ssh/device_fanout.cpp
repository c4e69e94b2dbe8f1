// `device check` and `device exec`: fan out over the selected devices, one session each, and
// fold the per-device outcomes into {results, summary} plus the exit-deciding error.
#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "device_detail.hpp"
#include "gedge/device.hpp"
#include "gedge/known_hosts.hpp"
#include "gedge/stores.hpp"

namespace gedge {

using namespace detail;

std::string device_status_for(const Error& e) {
  switch (e.code) {
    case ErrorCode::unreachable:
      return "unreachable";
    case ErrorCode::auth:
      return "auth_failed";
    case ErrorCode::host_key:
      return "host_key_mismatch";
    case ErrorCode::interrupted:
      return "interrupted";
    default:
      return "failed";
  }
}

namespace {

// Most specific first: what an all-failed run exits with.
int severity(ErrorCode c) {
  switch (c) {
    case ErrorCode::interrupted:
      return 5;
    case ErrorCode::host_key:
      return 4;
    case ErrorCode::auth:
      return 3;
    case ErrorCode::unreachable:
      return 2;
    default:
      return 1;
  }
}

ErrorCode code_from_name(std::string_view n) {
  if (n == "unreachable") return ErrorCode::unreachable;
  if (n == "auth" || n == "auth_failed") return ErrorCode::auth;
  if (n == "host_key" || n == "host_key_mismatch") return ErrorCode::host_key;
  if (n == "interrupted") return ErrorCode::interrupted;
  return ErrorCode::failure;
}

nlohmann::json summary_of(const nlohmann::json& results) {
  int ok = 0, failed = 0, unreachable = 0;
  for (const auto& r : results) {
    std::string st = r.value("status", "");
    if (st == "ok")
      ++ok;
    else if (st == "unreachable")
      ++unreachable;
    else
      ++failed;
  }
  return {{"ok", ok}, {"failed", failed}, {"unreachable", unreachable}};
}

nlohmann::json error_result(const std::string& device, const Error& e) {
  return {{"device", device},
          {"status", device_status_for(e)},
          {"code", std::string(error_name(e.code))},
          {"exit_code", nullptr},
          {"stdout", ""},
          {"stderr", ""},
          {"duration_ms", 0},
          {"rtt_ms", nullptr},
          {"message", e.message}};
}

struct Selected {
  std::vector<SqlRow> rows;
  std::vector<SshTarget> targets;
};

Result<Selected> load_selected(Inventory& inv, const DeviceSelector& sel) {
  Selected s;
  GEDGE_TRY_ASSIGN(s.rows, select_device_rows(inv, sel));
  s.targets.reserve(s.rows.size());
  for (const auto& row : s.rows) s.targets.push_back(target_of(row));
  return s;
}

FanOutOptions fan_options(const Paths& paths, const FanOutRequest& req, Reporter& rep,
                          std::string_view task, std::size_t n) {
  FanOutOptions fo;
  fo.parallel = req.parallel > 0 ? req.parallel : 64;
  fo.ssh = default_ssh_options(paths, req.timeout_s);
  // Overall deadline: one --timeout per wave of `parallel` devices; later devices are not started.
  std::size_t waves =
      (n + static_cast<std::size_t>(fo.parallel) - 1) / static_cast<std::size_t>(fo.parallel);
  fo.deadline =
      SshClock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(
          fo.ssh.timeout_s * 1000 * static_cast<double>(std::max<std::size_t>(1, waves))));
  std::string t(task);
  fo.on_done = [&rep, t](std::size_t done, std::size_t total, const std::string&, bool) {
    rep.progress(t, done, total);
  };
  return fo;
}

}  // namespace

std::optional<Error> fan_out_error(const nlohmann::json& results, std::string_view verb) {
  std::size_t total = results.size(), ok = 0;
  const nlohmann::json* worst = nullptr;
  for (const auto& r : results) {
    if (r.value("status", "") == "ok") {
      ++ok;
      continue;
    }
    if (!worst || severity(code_from_name(r.value("code", ""))) >
                      severity(code_from_name(worst->value("code", ""))))
      worst = &r;
  }
  if (ok == total) return std::nullopt;
  std::size_t bad = total - ok;
  std::string first =
      worst ? fmt::format("{}: {}", worst->value("device", ""), worst->value("message", "")) : "";
  if (ok > 0)
    return Error{ErrorCode::partial,
                 fmt::format("{}: {} of {} devices failed ({})", verb, bad, total, first),
                 "see each device's status in the result (-o json)"};
  ErrorCode c = worst ? code_from_name(worst->value("code", "")) : ErrorCode::failure;
  if (total == 1)
    return Error{c, fmt::format("{}: {}", verb, first), "try 'gedge device check -v'"};
  return Error{c, fmt::format("{}: all {} devices failed ({})", verb, total, first),
               "see each device's status in the result (-o json)"};
}

Result<FanOutReport> device_check(Inventory& inv, const Paths& paths, const FanOutRequest& req,
                                  Reporter& rep) {
  GEDGE_TRY_ASSIGN(auto sel, load_selected(inv, req.select));
  auto fo = fan_options(paths, req, rep, "checking devices", sel.targets.size());

  struct Check {
    nlohmann::json result;
    nlohmann::json facts;  // null unless refreshed
    nlohmann::json topology;
    std::string key_line;  // the verified host key, for gedge's known_hosts
  };
  std::vector<Check> checks(sel.targets.size());
  auto ms = fan_out_raw(sel.targets, fo, [&](std::size_t i, const Result<SshSession*>& s) {
    const auto& name = sel.targets[i].name;
    auto& c = checks[i];
    if (!s) {
      c.result = error_result(name, s.error());
      return;
    }
    SshSession& sess = **s;
    auto run = [&]() -> Result<void> {
      GEDGE_TRY_ASSIGN(auto fr, sess.exec({"sh", "-c", facts_script()}));
      auto facts = parse_facts(fr.out);
      if (!facts.value("complete", false))
        return fail(ErrorCode::failure,
                    fmt::format("device '{}': facts script failed: {}", name, fr.err));
      std::string token = facts.value("token", "");
      const auto& want = sel.rows[i]["token_hash"];
      double best = 1e18;
      for (int k = 0; k < 3; ++k) {
        GEDGE_TRY_ASSIGN(double ms, sess.rtt_ms());
        best = std::min(best, ms);
      }
      c.result = {{"device", name}, {"status", "ok"},   {"exit_code", nullptr}, {"stdout", ""},
                  {"stderr", ""},   {"duration_ms", 0}, {"rtt_ms", best},       {"message", ""}};
      if (want.is_string() && (token.empty() || sha256_hex(token) != want.get<std::string>())) {
        c.result["status"] = "token_mismatch";
        c.result["code"] = "host_key";
        c.result["message"] = fmt::format(
            "device '{}': {} — the machine at this address is not the one registered (reinstalled "
            "or swapped?)",
            name,
            token.empty() ? "its device token is missing" : "its device token does not match");
        return {};
      }
      c.key_line = sess.host_key().public_key;
      c.topology = facts["topology_xml"];
      facts.erase("token");
      facts.erase("topology_xml");
      facts.erase("complete");
      facts["has_topology"] = !c.topology.is_null();
      c.facts = facts;
      c.result["facts"] = facts;
      return {};
    };
    auto r = run();
    if (!r) c.result = error_result(name, r.error());
  });

  nlohmann::json results = nlohmann::json::array();
  std::string now = now_rfc3339();
  std::vector<DeviceCheck> found;
  for (std::size_t i = 0; i < checks.size(); ++i) {
    auto& c = checks[i];
    c.result["duration_ms"] = ms[i];
    DeviceCheck d;
    d.name = sel.targets[i].name;
    d.status = c.result["status"];
    if (d.status == "interrupted") continue;
    if (d.status == "ok" || d.status == "token_mismatch")
      d.rtt_ms = c.result["rtt_ms"].get<double>();
    if (d.status == "ok") {
      d.facts = c.facts.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      if (c.topology.is_string()) d.topology_xml = c.topology.get<std::string>();
    }
    found.push_back(std::move(d));
  }
  GEDGE_TRY(DeviceStore(inv).record_checks(found, now));
  // The line under the device's HostKeyAlias (rewrites entries older gedge versions keyed by
  // [host]:port, so Ansible and cluster exports find them): one locked rewrite for every device
  // (an empty line only removes the legacy marker).
  std::vector<std::pair<std::string, std::string>> pins;
  for (std::size_t i = 0; i < checks.size(); ++i)
    if (!checks[i].key_line.empty() && checks[i].result["status"] == "ok") {
      pins.emplace_back(sel.targets[i].name, checks[i].key_line);
      pins.emplace_back(legacy_marker(sel.targets[i].host, sel.targets[i].port), "");
    }
  GEDGE_TRY(known_hosts_set(paths.known_hosts, pins));
  // last_seen as now stored: written above for ok and token_mismatch, else as selected.
  for (std::size_t i = 0; i < checks.size(); ++i) {
    auto& c = checks[i];
    std::string st = c.result["status"];
    c.result["last_seen"] =
        st == "ok" || st == "token_mismatch" ? nlohmann::json(now) : sel.rows[i]["last_seen"];
    results.push_back(std::move(c.result));
  }
  FanOutReport rep_out;
  rep_out.error = fan_out_error(results, "device check");
  rep_out.json = {{"results", results}, {"summary", summary_of(results)}};
  return rep_out;
}

Result<FanOutReport> device_exec(Inventory& inv, const Paths& paths, const FanOutRequest& req,
                                 const std::vector<std::string>& argv, bool sudo, Reporter& rep) {
  if (argv.empty())
    return fail(ErrorCode::usage, "no command given",
                "put the command after --: gedge device exec --all -- uptime");
  GEDGE_TRY_ASSIGN(auto sel, load_selected(inv, req.select));
  auto fo = fan_options(paths, req, rep, "running", sel.targets.size());
  std::vector<nlohmann::json> results(sel.targets.size());
  auto ms = fan_out_raw(sel.targets, fo, [&](std::size_t i, const Result<SshSession*>& s) {
    const auto& name = sel.targets[i].name;
    if (!s) {
      results[i] = error_result(name, s.error());
      return;
    }
    auto r = (*s)->exec(argv, std::nullopt, sudo);
    if (!r) {
      results[i] = error_result(name, r.error());
      return;
    }
    bool ok = r->exit_code == 0;
    results[i] = {
        {"device", name},
        {"status", ok ? "ok" : "failed"},
        {"exit_code", r->exit_code},
        {"stdout", r->out},
        {"stderr", r->err},
        {"duration_ms", r->duration_ms},
        {"rtt_ms", nullptr},
        {"message",
         ok ? "" : fmt::format("device '{}': command exited with status {}", name, r->exit_code)}};
    if (!ok) results[i]["code"] = "failure";
  });
  nlohmann::json arr = nlohmann::json::array();
  std::string now = now_rfc3339();
  std::vector<std::pair<std::string, std::string>> statuses;
  for (std::size_t i = 0; i < results.size(); ++i) {
    results[i]["duration_ms"] = ms[i];
    std::string st = results[i]["status"];
    if (st != "interrupted") statuses.emplace_back(sel.targets[i].name, st);
    arr.push_back(results[i]);
  }
  GEDGE_TRY(DeviceStore(inv).record_exec(statuses, now));
  FanOutReport out;
  out.error = fan_out_error(arr, "device exec");
  out.json = {{"results", arr}, {"summary", summary_of(arr)}};
  return out;
}

}  // namespace gedge
