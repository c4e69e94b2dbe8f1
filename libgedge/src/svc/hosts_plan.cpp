// Planning on container hosts (read-only): per replica, the device it goes to (where it already
// runs, else --placement, else the least loaded member) and what changes there.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <set>

#include "gedge/stores.hpp"
#include "gedge/topo.hpp"
#include "hosts_internal.hpp"

namespace gedge::svc::detail::hosts {

Result<std::string> plan_cpuset(Inventory& inv, const Device& d, const std::string& owner,
                                int cores) {
  int cpus = d.facts.is_object() && d.facts.contains("cpus") && d.facts["cpus"].is_number()
                 ? d.facts["cpus"].get<int>()
                 : 1;
  GEDGE_TRY_ASSIGN(auto pins, PinStore(inv).on_device(d.name));
  topo::IndexSet used;
  for (const auto& pin : pins) {
    if (pin.owner == owner) return pin.cpuset;
    // Pins come from gedge (svc deploy, tune pin): Linux lists. One that does not parse pins
    // nothing.
    if (auto set = topo::parse_list(pin.cpuset)) used.insert(set->begin(), set->end());
  }
  topo::IndexSet pick;
  for (int c = cpus - 1; c >= 0 && static_cast<int>(pick.size()) < cores; --c)
    if (!used.count(static_cast<unsigned>(c))) pick.insert(static_cast<unsigned>(c));
  if (static_cast<int>(pick.size()) < cores)
    return fail(ErrorCode::conflict,
                fmt::format("device {}: pin needs {} free cores, {} of {} are free", d.name, cores,
                            pick.size(), cpus),
                "lower pin.cores, or remove services pinned there");
  return topo::format_list(pick);
}

namespace {

// A device's load: the gedge containers on it and the replicas given to it in this run.
int replicas_on(const Device* x) {
  return static_cast<int>(x->managed.size()) + x->assigned;
}
// Its memory as its facts give it (0 when unknown).
double memory_bytes(const Device* x) {
  return x->facts.is_object() && x->facts.contains("memory_bytes") &&
                 x->facts["memory_bytes"].is_number()
             ? x->facts["memory_bytes"].get<double>()
             : 0.0;
}

// The action for replica `r` on reachable device `d`, from the containers of it there.
std::string action_on(const Device& d, const Service& s, const std::string& hash, int r) {
  auto cur = replica_ctrs(d, s.name, r);
  auto old = replica_ctrs(d, s.name, r, true);
  if (cur.empty() && !old.empty())
    return "recover";  // an interrupted replace left only the renamed old replica
  if (cur.empty()) return "create";
  bool same = true, running = true;
  for (const auto& c : cur) {
    same = same && c.hash == hash;
    running = running && c.state == "running";
  }
  if (cur.size() != s.containers.size()) same = false;
  return !same ? "replace" : running && old.empty() ? "unchanged" : "start";
}

// One unit's plan, step by step: each step reads and fills the fields it names. A step that
// finds the unit cannot be placed sets p.error.
struct UnitPlanning {
  Inventory& inv;
  Fleet& fleet;
  const ClusterInfo& cl;
  Unit& u;
  const Service& s = *u.svc;

  Plan p;
  std::map<int, std::string> where;  // replica -> the device it runs on now
  bool ports = has_tcp_ports(s);
  std::set<std::string> taken;  // devices holding a replica of this service (host ports: one each)
  std::map<int, std::string> assign;  // replica -> the device it goes to

  // The spec's hash and the host plan for the unit's replicas.
  void start() {
    p.unit = &u;
    p.hash = spec_hash_with(s, u.runtime ? &*u.runtime : nullptr);
    p.members = cl.members;
    Service sized = s;
    sized.replicas = u.replicas;
    p.host_plan = render_host_plan(sized, u.runtime ? &*u.runtime : nullptr);
  }

  // Where each existing replica runs: seen live, or (on a device that cannot be reached now)
  // as last recorded. A replica stays on its device: an unreachable one fails and a re-run
  // completes it, rather than being started twice.
  Result<void> find_existing() {
    for (const auto& m : cl.members) {
      GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
      if (d->down) continue;
      for (const auto& c : d->managed) {
        if (c.service != s.name) continue;
        if (!where.count(c.replica)) where[c.replica] = m;
      }
    }
    GEDGE_TRY_ASSIGN(auto rec, ServiceStore(inv).find(s.name, cl.name));
    if (!rec.empty() && rec[0].placement) {
      auto pl = json::parse(*rec[0].placement, nullptr, false);
      if (pl.is_object())
        for (const auto& e : pl.value("placements", json::array())) {
          int r = e.value("replica", -1);
          std::string node = e.value("node", "");
          if (r < 0 || where.count(r) ||
              std::find(cl.members.begin(), cl.members.end(), node) == cl.members.end())
            continue;
          GEDGE_TRY_ASSIGN(auto* d, fleet.get(node));
          if (d->down) where[r] = node;
        }
    }
    return {};
  }

  // Replicas placed by --placement, else kept where they run.
  void keep_placed() {
    for (int r = 0; r < u.replicas; ++r) {
      if (!u.placed.empty()) {
        assign[r] = u.placed[static_cast<std::size_t>(r) % u.placed.size()];
      } else if (where.count(r)) {
        assign[r] = where[r];
      }
      if (assign.count(r)) taken.insert(assign[r]);
    }
  }

  // The least loaded reachable member that may take a replica (ties: more memory, then name), or
  // nullptr.
  Result<Device*> least_loaded() {
    Device* best = nullptr;
    for (const auto& m : cl.members) {
      GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
      if (d->down || (ports && taken.count(m))) continue;
      if (!best || replicas_on(d) < replicas_on(best) ||
          (replicas_on(d) == replicas_on(best) && memory_bytes(d) > memory_bytes(best)))
        best = d;
    }
    return best;
  }

  // Why no member can take a replica: none is reachable, or host ports leave none free.
  Result<Error> no_member() {
    std::size_t up = 0;
    for (const auto& m : cl.members) {
      GEDGE_TRY_ASSIGN(auto* member, fleet.get(m));
      if (!member->down) ++up;
    }
    if (up == 0)
      return Error{ErrorCode::unreachable,
                   fmt::format("no member of cluster '{}' is reachable", cl.name), ""};
    return Error{
        ErrorCode::usage,
        fmt::format("service '{}': {} replicas publish host ports, so each needs its own device; "
                    "{} reachable devices are free",
                    s.name, u.replicas, up - std::min(up, taken.size())),
        "lower replicas, or add devices with 'gedge cluster join'"};
  }

  // The other replicas, each to the least loaded member.
  Result<void> assign_rest() {
    for (int r = 0; r < u.replicas; ++r) {
      if (assign.count(r)) continue;
      GEDGE_TRY_ASSIGN(Device * best, least_loaded());
      if (!best) {
        GEDGE_TRY_ASSIGN(p.error, no_member());
        return {};
      }
      assign[r] = best->name;
      best->assigned++;
      taken.insert(best->name);
    }
    return {};
  }

  // A service with host ports: one replica per device.
  void check_ports() {
    if (!ports) return;
    std::map<std::string, int> per;
    for (const auto& [r, dev] : assign)
      if (++per[dev] > 1) {
        p.error = Error{
            ErrorCode::usage,
            fmt::format(
                "service '{}' publishes host ports, but replicas {} go to the same device '{}'",
                s.name, r, dev),
            "one replica per device for services with host ports"};
        return;
      }
  }

  // Per replica, what changes on its device.
  Result<void> choose_actions() {
    for (int r = 0; r < u.replicas; ++r) {
      Action a;
      a.replica = r;
      a.device = assign[r];
      a.from_placement = !u.placed.empty();
      GEDGE_TRY_ASSIGN(auto* d, fleet.get(a.device));
      if (where.count(r) && where[r] != a.device) {
        a.action = "move";
        a.from = where[r];
      } else if (d->down) {
        a.action = "create";  // unknown: it fails when applied, naming the device
      } else {
        a.action = action_on(*d, s, p.hash, r);
      }
      p.actions.push_back(a);
    }
    return {};
  }

  // Replicas beyond the count, and stale copies of a replica on a device it no longer runs on
  // (other than the one a move leaves, which the move removes), are removed last.
  Result<void> find_removals() {
    for (const auto& m : cl.members) {
      GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
      if (d->down) continue;
      std::vector<std::string> extras;
      std::map<int, std::vector<std::string>> stale;
      for (const auto& c : d->managed) {
        if (c.service != s.name) continue;
        if (c.replica >= u.replicas || c.replica < 0) {
          extras.push_back(c.name);
        } else if (assign[c.replica] != m) {
          const auto& a = p.actions[static_cast<std::size_t>(c.replica)];
          if (!(a.action == "move" && a.from == m)) stale[c.replica].push_back(c.name);
        }
      }
      if (!extras.empty()) p.removals.push_back({m, extras, -1});
      for (auto& [r, names] : stale) p.removals.push_back({m, names, r});
    }
    return {};
  }
};

}  // namespace

Result<Plan> plan_unit(Inventory& inv, Fleet& fleet, const ClusterInfo& cl, Unit& u) {
  UnitPlanning pl{inv, fleet, cl, u};
  pl.start();
  GEDGE_TRY(pl.find_existing());
  pl.keep_placed();
  GEDGE_TRY(pl.assign_rest());
  if (pl.p.error) return std::move(pl.p);
  pl.check_ports();
  if (pl.p.error) return std::move(pl.p);
  GEDGE_TRY(pl.choose_actions());
  GEDGE_TRY(pl.find_removals());
  return std::move(pl.p);
}

Result<std::vector<std::string>> argv_for(const Plan& p, int replica, std::size_t ci,
                                          const std::string& cpuset, const Device& d) {
  std::vector<std::string> argv;
  const json& c =
      p.host_plan["spec"]["containers"][static_cast<std::size_t>(replica)]["containers"][ci];
  for (const auto& a : c["argv"]) argv.push_back(a.get<std::string>());
  for (const auto& e : c.value("deviceEnv", json::array())) {  // what only the device knows
    auto i = e["arg"].get<std::size_t>();
    std::string field = e["field"], var = argv[i].substr(0, argv[i].find('='));
    std::string value = d.name;  // spec.nodeName
    if (field == "status.hostIP") {
      unsigned char buf[sizeof(in6_addr)];
      if (inet_pton(AF_INET, d.target.host.c_str(), buf) != 1 &&
          inet_pton(AF_INET6, d.target.host.c_str(), buf) != 1)
        return fail(ErrorCode::usage,
                    fmt::format("device {}: env {} (status.hostIP) needs the device's IP address, "
                                "and gedge reaches it as '{}'",
                                d.name, var, d.target.host),
                    "register the device by its address (gedge device add --host ADDRESS), or "
                    "set the value in the manifest");
      value = d.target.host;
    }
    argv[i] = var + "=" + value;
  }
  argv.erase(argv.begin());  // "podman": added by podman()
  if (!cpuset.empty()) argv.insert(argv.begin() + 2, {"--cpuset-cpus", cpuset});  // after "run -d"
  return argv;
}

std::vector<std::string> names_for(const Plan& p, int replica) {
  std::vector<std::string> out;
  for (const auto& c :
       p.host_plan["spec"]["containers"][static_cast<std::size_t>(replica)]["containers"])
    out.push_back(c["name"].get<std::string>());
  return out;
}

}  // namespace gedge::svc::detail::hosts
