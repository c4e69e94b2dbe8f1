// Status, logs, CPU use and removal of a service on container hosts.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "hosts_internal.hpp"

namespace gedge::svc::detail {

using namespace hosts;

Result<StatusOutcome> status_hosts(Inventory& inv, const Paths& paths, const ServiceRecord& rec,
                                   double ssh_timeout_s) {
  GEDGE_TRY_ASSIGN(auto cl, load_cluster(inv, rec.cluster));
  Fleet fleet(inv, paths, ssh_timeout_s);
  StatusOutcome out;
  json replicas = json::array();
  int ready = 0;
  std::vector<std::string> down;
  for (const auto& m : cl.members) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
    if (d->down) {
      down.push_back(m);
      continue;
    }
    GEDGE_TRY(refresh(*d));
    std::vector<const Ctr*> mine;
    std::vector<std::string> args{"container", "inspect", "--format",
                                  "{{.Name}} {{.RestartCount}}"};
    for (const auto& c : d->managed)
      if (c.service == rec.name) {
        mine.push_back(&c);
        args.push_back(c.name);
      }
    if (mine.empty()) continue;
    // Restart counts of all of them in one round trip: "NAME COUNT" per line.
    GEDGE_TRY_ASSIGN(auto ins, podman(*d, args));
    std::map<std::string, int> restarts;
    for (const auto& line : split_lines(ins.out)) {
      auto sp = line.rfind(' ');
      if (sp == std::string::npos) continue;
      try {
        restarts[line.substr(0, sp)] = std::stoi(line.substr(sp + 1));
      } catch (...) {
      }
    }
    for (const auto* c : mine) {
      json ports = json::array();
      for (const auto& pt : c->ports)
        ports.push_back(fmt::format("{}:{}->{}/{}", d->target.host, pt.value("host_port", 0),
                                    pt.value("container_port", 0), pt.value("protocol", "tcp")));
      if (c->state == "running") ++ready;
      replicas.push_back({{"replica", c->replica},
                          {"device", m},
                          {"container", c->name},
                          {"state", c->state},
                          {"restarts", restarts.count(c->name) ? restarts[c->name] : 0},
                          {"ports", ports},
                          {"image", c->image},
                          {"current", c->hash == rec.placement.value("spec_hash", "")}});
    }
  }
  std::sort(replicas.begin(), replicas.end(), [](const json& a, const json& b) {
    return std::tie(a["replica"], a["container"]) < std::tie(b["replica"], b["container"]);
  });
  out.result = {{"name", rec.name},        {"cluster", rec.cluster},
                {"kind", "containers"},    {"namespace", rec.namespace_},
                {"desired", rec.replicas}, {"ready", ready},
                {"state", rec.state},      {"replicas", replicas},
                {"unreachable", down}};
  if (!down.empty())
    out.partial =
        Error{ErrorCode::partial,
              fmt::format("{} member(s) unreachable: {}", down.size(), fmt::join(down, ", ")), ""};
  return out;
}

Result<void> logs_hosts(Inventory& inv, const Paths& paths, const ServiceRecord& rec,
                        const LogsRequest& req, const std::function<void(std::string_view)>& sink) {
  Fleet fleet(inv, paths, req.ssh_timeout_s);
  std::vector<std::pair<int, std::string>> where;  // replica -> device
  for (const auto& p : rec.placement.value("placements", json::array())) {
    int r = p.value("replica", -1);
    if (req.replica && *req.replica != r) continue;
    where.push_back({r, p.value("node", "")});
  }
  if (where.empty())
    return fail(ErrorCode::not_found,
                req.replica
                    ? fmt::format("service '{}' has no replica {}", rec.name, *req.replica)
                    : fmt::format("service '{}' has no running replicas on record", rec.name));
  if (req.follow && where.size() > 1)
    return fail(ErrorCode::usage, "--follow reads one replica", "add --replica N");
  for (const auto& [r, dev] : where) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(dev));
    if (d->down) return std::unexpected(*d->down);
    std::vector<std::string> args{"podman", "logs"};
    if (req.tail >= 0) args.insert(args.end(), {"--tail", std::to_string(req.tail)});
    if (req.since_s) args.insert(args.end(), {"--since", fmt::format("{}s", *req.since_s)});
    if (req.follow) args.push_back("--follow");
    args.push_back(fmt::format("gedge-{}-{}", rec.name, r));
    std::string prefix = where.size() > 1 ? fmt::format("[{} {}] ", r, dev) : "";
    std::string pending;
    auto emit = [&](std::string_view chunk) {
      pending.append(chunk);
      std::size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        sink(prefix + pending.substr(0, nl + 1));
        pending.erase(0, nl + 1);
      }
    };
    GEDGE_TRY_ASSIGN(auto res, d->session->exec_stream(args, emit, true));
    if (!pending.empty()) sink(prefix + pending + "\n");
    if (res.exit_code != 0)
      return fail(ErrorCode::failure,
                  fmt::format("device {}: podman logs: {}", dev, last_lines(res.err, 2)));
  }
  return {};
}

namespace {

// gedge-made podman volumes or networks (`what`) on the device, each unless another container
// still uses it (podman refuses: "being used"); one that is gone or not gedge's is left alone.
Result<void> remove_shared(Device& d, const std::string& what,
                           const std::vector<std::string>& names) {
  for (const auto& name : names) {
    auto lab =
        podman(d, {what, "inspect", "--format", "{{index .Labels \"gedge.managed\"}}", name});
    if (!lab || lab->exit_code != 0 || trim(lab->out) != "true") continue;
    GEDGE_TRY_ASSIGN(auto r, podman(d, {what, "rm", name}));
    if (r.exit_code != 0 && r.err.find("being used") == std::string::npos)
      return std::unexpected(podman_error(d, fmt::format("removing {} {}", what, name), r));
  }
  return {};
}

}  // namespace

Result<json> remove_hosts(Inventory& inv, const Paths& paths, const ClusterInfo& cl,
                          const ServiceRecord& rec, double ssh_timeout_s, Reporter& rep) {
  Fleet fleet(inv, paths, ssh_timeout_s);
  json out = json::array();
  std::vector<std::string> volumes;   // the podman volumes its plan creates (NFS)
  std::vector<std::string> networks;  // and its podman networks (macvlan)
  if (auto sp = spec_from_doc(rec.spec, rec.name); sp && !sp->is_pipeline) {
    json plan = render_host_plan(sp->service);
    for (const auto& v : plan["spec"].value("volumes", json::array())) volumes.push_back(v["name"]);
    for (const auto& n : plan["spec"].value("networks", json::array()))
      networks.push_back(n["name"]);
  }
  for (const auto& m : cl.members) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
    if (d->down) {
      out.push_back({{"device", m}, {"state", "failed"}, {"error", d->down->message}});
      continue;
    }
    auto r = refresh(*d);
    if (!r) {
      out.push_back({{"device", m}, {"state", "failed"}, {"error", r.error().message}});
      continue;
    }
    std::vector<std::string> names;
    for (const auto& c : d->managed)
      if (c.service == rec.name) names.push_back(c.name);
    bool files =
        rec.spec.dump().find(fmt::format("\"{}/{}/", kFilesRoot, rec.name)) != std::string::npos;
    bool secrets =
        rec.spec.dump().find(fmt::format("\"secret\":\"gedge-{}-", rec.name)) != std::string::npos;
    if (names.empty() && !files && !secrets && volumes.empty() && networks.empty()) continue;
    if (!names.empty()) rep.step(m, fmt::format("removing {}", fmt::join(names, ", ")));
    auto rm = remove_ctrs(*d, names);
    if (rm && files) {  // its ConfigMap/Secret files, once no container uses them
      auto r = d->session->exec({"rm", "-rf", "--", fmt::format("{}/{}", kFilesRoot, rec.name)},
                                std::nullopt, true);
      if (!r)
        rm = std::unexpected(r.error());
      else if (r->exit_code != 0)
        rm = fail(ErrorCode::failure, fmt::format("device {}: removing {}/{}: {}", m, kFilesRoot,
                                                  rec.name, trim(r->err)));
    }
    if (rm && secrets) rm = remove_secrets(*d, rec.name, {});  // the podman secrets it made
    if (rm) rm = remove_shared(*d, "volume", volumes);    // NFS: unless another service uses it
    if (rm) rm = remove_shared(*d, "network", networks);  // macvlan: likewise
    if (names.empty() && rm) continue;
    if (!rm)
      out.push_back({{"device", m},
                     {"containers", names},
                     {"state", "failed"},
                     {"error", rm.error().message}});
    else
      out.push_back({{"device", m}, {"containers", names}, {"state", "removed"}});
  }
  return out;
}

Result<std::optional<double>> cpu_usage_hosts(Inventory& inv, const Paths& paths,
                                              const ServiceRecord& rec, double ssh_timeout_s) {
  GEDGE_TRY_ASSIGN(auto cl, load_cluster(inv, rec.cluster));
  GEDGE_TRY_ASSIGN(auto spec, spec_from_doc(rec.spec, rec.name));
  double request = 0;
  for (const auto& c : spec.service.containers) {
    auto it = c.requests.find("cpu");
    if (it != c.requests.end())
      if (auto v = parse_cpu(it->second)) request += *v;
  }
  if (request <= 0) request = 1.0;
  Fleet fleet(inv, paths, ssh_timeout_s);
  double used = 0;
  int replicas = 0;
  std::set<std::string> devs;
  for (const auto& p : rec.placement.value("placements", json::array()))
    devs.insert(p.value("node", ""));
  // `podman top NAME pcpu` (ps's %CPU: CPU time over the process lifetime, summed over the
  // replica's processes). `podman stats` needs cgroup access that nested hosts (the lab's
  // full-OS containers) do not give; top works wherever podman can exec into /proc.
  for (const auto& dev : devs) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(dev));
    if (d->down) continue;
    GEDGE_TRY(refresh(*d));
    std::map<int, double> per;  // replica -> % of one CPU, summed over its containers
    for (const auto& c : d->managed) {
      if (c.service != rec.name || c.replica < 0 || c.state != "running") continue;
      GEDGE_TRY_ASSIGN(auto r, podman(*d, {"top", c.name, "pcpu"}));
      if (r.exit_code != 0) continue;
      auto lines = split_lines(r.out);
      double sum = 0;
      for (std::size_t i = 1; i < lines.size(); ++i) {  // lines[0] is the %CPU header
        try {
          sum += std::stod(lines[i]);
        } catch (...) {
        }
      }
      per[c.replica] += sum;
    }
    for (const auto& [r, pct] : per) {
      used += pct / request;
      ++replicas;
    }
  }
  if (replicas == 0) return std::optional<double>{};
  return std::optional<double>{used / replicas};
}

}  // namespace gedge::svc::detail
