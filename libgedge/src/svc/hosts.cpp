// The container-host back end: podman over SSH on the cluster's members. Every remote command is
// an argv (quoted by the SSH layer), run with `sudo -n`; nothing is built as a shell string.
//
// Per service: read what runs (containers labelled gedge.service=<name>), assign each replica a
// device (where it already runs, else --placement, else the least loaded member), pull the
// images (all of them, for every service, before anything changes), then converge replica by
// replica: create, start, replace (old renamed and stopped, new started, old removed once the new
// one runs and answers; on failure or Ctrl-C the old one is restored), remove extras.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <set>

#include "gedge/stores.hpp"
#include "hosts_internal.hpp"

namespace gedge::svc::detail {

namespace {

using namespace hosts;

// Runs the replica's containers; on failure removes what it started.
Result<void> start_new(Inventory& inv, Device& d, const Plan& p, int replica,
                       Clock::time_point deadline, bool wait) {
  const Service& s = *p.unit->svc;
  auto names = names_for(p, replica);
  std::string cpuset;
  if (s.pin) {
    GEDGE_TRY_ASSIGN(cpuset, plan_cpuset(inv, d, names[0], s.pin->cores));
  }
  if (p.unit->runtime) {
    GEDGE_TRY_ASSIGN(
        auto ok, d.session->exec({"test", "-d", p.unit->runtime->host_dir}, std::nullopt, true));
    if (ok.exit_code != 0)
      return fail(ErrorCode::not_found,
                  fmt::format("device {}: runtime bundle {} is not at {}", d.name,
                              p.unit->runtime->id.substr(0, 12), p.unit->runtime->host_dir),
                  fmt::format("push it first: gedge runtime push {} --device {}",
                              p.unit->runtime->id.substr(0, 12), d.name));
  }
  GEDGE_TRY(ensure_files(d, *p.unit));
  GEDGE_TRY(ensure_secrets(d, *p.unit));
  GEDGE_TRY(ensure_volumes(d, p));
  GEDGE_TRY(ensure_networks(d, p));
  Result<void> res;
  {
    CancelShield shield;  // `podman run -d` returns quickly; never leave one running unseen
    for (std::size_t ci = 0; ci < s.containers.size() && res; ++ci) {
      auto argv = argv_for(p, replica, ci, cpuset, d);
      auto r = argv ? podman(d, *argv) : Result<ExecResult>(std::unexpected(argv.error()));
      if (!r)
        res = std::unexpected(r.error());
      else if (r->exit_code != 0)
        res = std::unexpected(podman_error(d, "podman run " + names[ci], *r));
    }
  }
  if (res && wait) res = wait_up(d, names, tcp_host_ports(s), deadline);
  if (!res) {
    CancelShield shield;  // leave nothing half-started, even on Ctrl-C
    (void)remove_ctrs(d, names);
    return res;
  }
  if (!cpuset.empty()) GEDGE_TRY(PinStore(inv).put({d.name, names[0], cpuset, ""}));
  return {};
}

// Replace: old renamed aside and stopped, new started; the old one is removed only when the new
// one is up, and restored otherwise (also on Ctrl-C).
Result<void> replace(Inventory& inv, Device& d, const Plan& p, int replica,
                     Clock::time_point deadline, bool wait) {
  const Service& s = *p.unit->svc;
  auto cur = replica_ctrs(d, s.name, replica);
  std::vector<std::string> olds;
  // Rename and stop run to completion even on Ctrl-C (each is bounded: stop -t 10): abandoning a
  // remote `podman stop` half-way would let it stop the replica after we restored it.
  std::optional<CancelShield> shield_steps(std::in_place);
  for (const auto& c : cur) {
    std::string old = c.name + kOldSuffix;
    GEDGE_TRY_ASSIGN(auto r, podman(d, {"rename", c.name, old}));
    if (r.exit_code != 0) return std::unexpected(podman_error(d, "renaming " + c.name, r));
    olds.push_back(old);
  }
  auto restore = [&]() {
    CancelShield shield;
    for (std::size_t i = 0; i < cur.size(); ++i) {
      (void)podman(d, {"rename", olds[i], cur[i].name});
      if (cur[i].state == "running") (void)podman(d, {"start", cur[i].name});
    }
  };
  for (const auto& o : olds) {
    auto r = podman(d, {"stop", "-t", "10", o});
    if (!r || r->exit_code != 0) {
      restore();
      return r ? std::unexpected(podman_error(d, "stopping " + o, *r)) : std::unexpected(r.error());
    }
  }
  shield_steps.reset();
  Result<void> started = cancel_requested()
                             ? Result<void>(fail(ErrorCode::interrupted, "interrupted"))
                             : start_new(inv, d, p, replica, deadline, wait);
  if (!started) {
    restore();
    Error e = started.error();
    if (e.code != ErrorCode::interrupted) {
      e.message += "; the previous version was restored";
    } else {
      e.message = fmt::format(
          "interrupted while replacing replica {} on {}: the previous version was restored",
          replica, d.name);
    }
    return std::unexpected(e);
  }
  CancelShield shield;  // the new replica runs: finish the swap
  GEDGE_TRY(remove_ctrs(d, olds));
  prune_files(d, *p.unit);
  if (!p.unit->secrets.empty()) (void)remove_secrets(d, s.name, p.unit->secrets);  // earlier values
  return {};
}

Result<void> recover(Device& d, const Service& s, int replica) {
  for (const auto& c : replica_ctrs(d, s.name, replica, true)) {
    std::string name = c.name.substr(0, c.name.size() - std::strlen(kOldSuffix));
    GEDGE_TRY_ASSIGN(auto r, podman(d, {"rename", c.name, name}));
    if (r.exit_code != 0) return std::unexpected(podman_error(d, "restoring " + c.name, r));
  }
  return refresh(d);
}

Result<void> start_existing(Device& d, const Plan& p, int replica, Clock::time_point deadline,
                            bool wait) {
  auto names = names_for(p, replica);
  // A leftover "-old" copy next to a current replica: the swap finished, the cleanup did not.
  std::vector<std::string> leftovers;
  for (const auto& c : replica_ctrs(d, p.unit->svc->name, replica, true))
    leftovers.push_back(c.name);
  GEDGE_TRY(remove_ctrs(d, leftovers));
  GEDGE_TRY(ensure_files(d, *p.unit));
  GEDGE_TRY(ensure_secrets(d, *p.unit));
  GEDGE_TRY(ensure_volumes(d, p));
  GEDGE_TRY(ensure_networks(d, p));
  std::vector<std::string> args{"start"};
  args.insert(args.end(), names.begin(), names.end());
  GEDGE_TRY_ASSIGN(auto r, podman(d, args));
  if (r.exit_code != 0) return std::unexpected(podman_error(d, "starting replica", r));
  if (wait) return wait_up(d, names, tcp_host_ports(*p.unit->svc), deadline);
  return {};
}

json pull_images(Fleet& fleet, const std::vector<Plan>& plans, Reporter& rep,
                 std::optional<Error>& fatal, std::map<std::string, Error>& device_errors) {
  // device -> images it needs
  std::map<std::string, std::set<std::string>> need;
  for (const auto& p : plans) {
    if (p.error) continue;
    for (const auto& a : p.actions)
      if (a.action == "create" || a.action == "replace" || a.action == "move")
        for (const auto& c : p.unit->svc->containers) need[a.device].insert(c.image);
  }
  json pulled = json::array();
  for (const auto& [dev, images] : need) {
    auto d = fleet.get(dev);
    if (!d) {
      device_errors[dev] = d.error();
      continue;
    }
    if ((*d)->down) {
      device_errors[dev] = *(*d)->down;
      continue;
    }
    for (const auto& img : images) {
      rep.step(dev, "pulling " + img);
      auto r = podman(**d, {"pull", "--quiet", "--", img});
      if (!r) {
        if (r.error().code == ErrorCode::interrupted) {
          fatal = r.error();
          return pulled;
        }
        device_errors[dev] = r.error();
        break;
      }
      if (r->exit_code != 0) {
        std::string err = r->err + r->out;
        auto has = [&](const char* t) { return err.find(t) != std::string::npos; };
        Error e = podman_error(**d, "pulling " + img, *r);
        if (has("manifest unknown") || has("name unknown") || has("not found") || has("404")) {
          e.code = ErrorCode::not_found;
          e.message =
              fmt::format("image {} is not in its registry ({}): {}", img, dev, last_lines(err, 1));
          e.hint = "list what the registry has with 'gedge svc catalog --registry HOST:PORT'";
        } else if (has("connection refused") || has("no route to host") || has("i/o timeout") ||
                   has("network is unreachable") || has("dial tcp")) {
          e.code = ErrorCode::unreachable;
          e.message = fmt::format("the registry of {} is unreachable from {}: {}", img, dev,
                                  last_lines(err, 1));
          e.hint = "start the registry (the lab: tests/lab/lab.sh up) and deploy again";
        } else if (has("HTTP response to HTTPS client")) {
          e.hint =
              "the device does not trust this plain-HTTP registry: rebuild the cluster with "
              "--registry HOST:PORT";
        }
        fatal = e;  // nothing has changed yet: stop here
        return pulled;
      }
      pulled.push_back({{"device", dev}, {"image", img}});
    }
  }
  return pulled;
}

// A service's ConfigMap/Secret contents are never recorded, so `svc scale` (which re-reads the
// record) has none to give: a device that would run a replica without them stops the deploy
// here, before anything changes, asking for the manifests again (scale --file).
Result<void> check_contents(Fleet& fleet, const Plan& p) {
  const Unit& u = *p.unit;
  if (p.error || !u.files.empty() || !u.secrets.empty()) return {};
  const Service& s = *u.svc;
  std::string root = fmt::format("{}/{}/", kFilesRoot, s.name);
  std::set<std::string> dirs, secrets;
  for (const auto& v : s.volumes)
    if (v.host_path.starts_with(root))
      dirs.insert(v.host_path.substr(0, v.host_path.find('/', root.size())));
  for (const auto& c : s.containers)
    for (const auto& e : c.env)
      if (service_secret(e.secret, s.name)) secrets.insert(e.secret);
  if (dirs.empty() && secrets.empty()) return {};
  std::set<std::string> checked;
  for (const auto& a : p.actions) {
    if (a.action == "unchanged" || !checked.insert(a.device).second) continue;
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(a.device));
    if (d->down) continue;  // it fails when applied, naming the device
    std::vector<std::string> missing;
    for (const auto& dir : dirs) {
      GEDGE_TRY_ASSIGN(auto r, d->session->exec({"test", "-d", dir}, std::nullopt, true));
      if (r.exit_code != 0) missing.push_back(dir);
    }
    for (const auto& sec : secrets) {
      GEDGE_TRY_ASSIGN(auto r, podman(*d, {"secret", "inspect", "--format", "{{.ID}}", sec}));
      if (r.exit_code != 0) missing.push_back("podman secret " + sec);
    }
    if (!missing.empty())
      return fail(ErrorCode::usage,
                  fmt::format("device {}: service '{}' needs its ConfigMap/Secret contents there "
                              "({}), and gedge keeps no copy of them",
                              d->name, s.name, fmt::join(missing, ", ")),
                  fmt::format("give the manifests it was deployed from: gedge svc scale {} {} "
                              "--file FILE",
                              s.name, u.replicas));
  }
  return {};
}

}  // namespace

Result<std::vector<UnitResult>> deploy_hosts(Inventory& inv, const Paths& paths,
                                             const ClusterInfo& cl, std::vector<Unit>& units,
                                             const DeployRequest& req, Reporter& rep) {
  Fleet fleet(inv, paths, req.ssh_timeout_s);
  for (const auto& m : cl.members) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
    if (d->down) {
      rep.warn(fmt::format("{}: {}", m, d->down->message));
      continue;
    }
    auto r = refresh(*d);
    if (!r) {
      if (r.error().code == ErrorCode::interrupted || r.error().code == ErrorCode::auth)
        return std::unexpected(r.error());
      d->down = r.error();
    }
  }
  std::vector<Plan> plans;
  for (auto& u : units) {
    GEDGE_TRY_ASSIGN(auto plan, plan_unit(inv, fleet, cl, u));
    plans.push_back(std::move(plan));
  }
  std::vector<UnitResult> results(units.size());
  for (const auto& p : plans) GEDGE_TRY(check_contents(fleet, p));
  auto base_out = [&](const Plan& p) {
    return json{{"name", p.unit->svc->name},
                {"namespace", p.unit->svc->namespace_},
                {"replicas", p.unit->replicas},
                {"spec_hash", p.hash},
                {"runtime", p.unit->runtime ? json(p.unit->runtime->id) : json(nullptr)}};
  };
  for (std::size_t i = 0; i < plans.size(); ++i)
    if (plans[i].error && plans[i].error->code == ErrorCode::usage)
      return std::unexpected(*plans[i].error);

  if (req.dry_run) {
    for (std::size_t i = 0; i < plans.size(); ++i) {
      auto& p = plans[i];
      json out = base_out(p);
      json actions = json::array();
      for (const auto& a : p.actions) {
        json j{{"replica", a.replica},
               {"device", a.device},
               {"action", a.action},
               {"state", "planned"}};
        if (!a.from.empty()) j["from"] = a.from;
        GEDGE_TRY_ASSIGN(auto* d, fleet.get(a.device));
        if (d->down) j["warning"] = d->down->message;
        actions.push_back(j);
      }
      for (const auto& rm : p.removals)
        for (const auto& n : rm.names)
          actions.push_back({{"device", rm.device},
                             {"container", n},
                             {"action", "remove"},
                             {"state", "planned"}});
      out["actions"] = actions;
      out["state"] = "planned";
      results[i].out = out;
      if (p.error) {
        results[i].ok = false;
        results[i].error = p.error;
      }
    }
    return results;
  }

  std::optional<Error> fatal;
  std::map<std::string, Error> device_errors;
  json pulled = pull_images(fleet, plans, rep, fatal, device_errors);
  if (fatal) return std::unexpected(*fatal);

  // Progress (a terminal only, through the reporter): replica actions done of all planned.
  std::size_t total = 0, done = 0;
  for (const auto& p : plans) total += p.actions.size();
  const std::string task = fmt::format("cluster {}: replicas", cl.name);
  for (std::size_t i = 0; i < plans.size(); ++i) {
    auto& p = plans[i];
    auto& res = results[i];
    res.out = base_out(p);
    json actions = json::array();
    auto deadline =
        Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(req.timeout_s * 1000));
    auto fail_action = [&](json& j, const Error& e) {
      j["state"] = "failed";
      j["error"] = e.message;
      res.ok = false;
      if (!res.error) res.error = e;
    };
    if (p.error) {
      res.ok = false;
      res.error = p.error;
    }
    bool stop_rolling = false;
    for (const auto& a : p.actions) {
      rep.progress(task, done++, total);
      json j{{"replica", a.replica}, {"device", a.device}, {"action", a.action}};
      if (!a.from.empty()) j["from"] = a.from;
      if (cancel_requested())
        return fail(ErrorCode::interrupted, "interrupted: replicas already converged keep running");
      auto d = fleet.get(a.device);
      if (!d) {
        fail_action(j, d.error());
        actions.push_back(j);
        continue;
      }
      Device& dev = **d;
      if (dev.down || device_errors.count(a.device)) {
        Error e = dev.down ? *dev.down : device_errors[a.device];
        e.code = ErrorCode::unreachable;
        fail_action(j, e);
        actions.push_back(j);
        continue;
      }
      if (stop_rolling && a.action == "replace") {
        j["state"] = "skipped";
        j["error"] = "an earlier replica's replacement failed; this one keeps the previous version";
        res.ok = false;
        actions.push_back(j);
        continue;
      }
      rep.step(a.device, fmt::format("{} replica {}: {}", p.unit->svc->name, a.replica, a.action));
      Result<void> r;
      if (a.action == "recover") {
        r = recover(dev, *p.unit->svc, a.replica);
        if (r) {
          bool same = true;
          for (const auto& c : replica_ctrs(dev, p.unit->svc->name, a.replica))
            same = same && c.hash == p.hash;
          r = same ? start_existing(dev, p, a.replica, deadline, req.wait)
                   : replace(inv, dev, p, a.replica, deadline, req.wait);
        }
      } else if (a.action == "create") {
        r = start_new(inv, dev, p, a.replica, deadline, req.wait);
      } else if (a.action == "start") {
        r = start_existing(dev, p, a.replica, deadline, req.wait);
      } else if (a.action == "replace") {
        r = replace(inv, dev, p, a.replica, deadline, req.wait);
        if (!r) stop_rolling = true;
      } else if (a.action == "move") {
        r = start_new(inv, dev, p, a.replica, deadline, req.wait);
        if (r) {
          auto from = fleet.get(a.from);
          if (from && !(*from)->down) {
            std::vector<std::string> names;
            for (const auto& c : (*from)->managed)
              if (c.service == p.unit->svc->name && c.replica == a.replica) names.push_back(c.name);
            CancelShield shield;
            r = remove_ctrs(**from, names);
          }
        }
      }
      if (!r) {
        if (r.error().code == ErrorCode::interrupted) return std::unexpected(r.error());
        fail_action(j, r.error());
      } else {
        j["state"] = "ok";
        json pl{{"stage", p.unit->svc->name},
                {"cluster", cl.name},
                {"node", a.device},
                {"replica", a.replica}};
        if (a.from_placement) pl["from_placement"] = true;
        res.placements.push_back(pl);
      }
      actions.push_back(j);
    }
    // Extras go only once the wanted replicas are up.
    std::set<int> failed_replicas;
    for (const auto& a : actions)
      if (a.value("state", "") != "ok" && a.contains("replica"))
        failed_replicas.insert(a["replica"].get<int>());
    for (const auto& rm : p.removals) {
      const auto& devname = rm.device;
      const auto& names = rm.names;
      if (rm.replica >= 0 && failed_replicas.count(rm.replica)) continue;
      auto d = fleet.get(devname);
      json j{{"device", devname}, {"containers", names}, {"action", "remove"}};
      auto r = d ? remove_ctrs(**d, names) : Result<void>(std::unexpected(d.error()));
      if (!r)
        fail_action(j, r.error());
      else
        j["state"] = "ok";
      if (d && r) {
        for (const auto& n : names) (void)PinStore(inv).remove(devname, n);
      }
      actions.push_back(j);
    }
    if (done == total && total > 0) rep.progress(task, done, total);
    res.out["actions"] = actions;
    res.out["state"] = res.ok ? "deployed" : "degraded";
    res.out["pulled"] = json::array();
    for (const auto& pl : pulled)
      for (const auto& c : p.unit->svc->containers)
        if (pl["image"] == c.image) res.out["pulled"].push_back(pl);
  }
  return results;
}

}  // namespace gedge::svc::detail
