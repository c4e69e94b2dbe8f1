// The planner: topology + intent -> cpuset and memory nodes, with the reasons. Pure: no I/O.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "gedge/text.hpp"
#include "topo_internal.hpp"

namespace gedge::topo {

namespace {

std::string obj_label(hwloc_obj_t o) {
  return fmt::format("{} L#{} (P#{})", type_name(o), o->logical_index, o->os_index);
}

nlohmann::json obj_json(hwloc_obj_t o, std::string_view role) {
  return {{"role", role},
          {"type", type_name(o)},
          {"logical", o->logical_index},
          {"os", o->os_index == HWLOC_UNKNOWN_INDEX ? nlohmann::json(nullptr)
                                                    : nlohmann::json(o->os_index)},
          {"cpuset", format_list(to_set(o->cpuset))}};
}

// Resolves --near to the non-I/O object the device is attached to.
Result<std::pair<hwloc_obj_t, std::string>> resolve_near(hwloc_topology_t t,
                                                         const std::string& near) {
  auto devs = io_devices(t);
  std::string want = near;
  std::string kind;
  if (near.rfind("nic:", 0) == 0) {
    kind = "nic";
    want = near.substr(4);
  } else if (near.rfind("pci:", 0) == 0) {
    kind = "pci";
    want = lower(near.substr(4));
    if (std::count(want.begin(), want.end(), ':') == 1) want = "0000:" + want;
  }
  if (kind == "pci") {
    hwloc_obj_t p = nullptr;
    while ((p = hwloc_get_next_pcidev(t, p)) != nullptr) {
      std::string id = fmt::format("{:04x}:{:02x}:{:02x}.{:x}", p->attr->pcidev.domain,
                                   p->attr->pcidev.bus, p->attr->pcidev.dev, p->attr->pcidev.func);
      if (id == want)
        return std::pair{hwloc_get_non_io_ancestor_obj(t, p), fmt::format("PCI {}", id)};
    }
  } else {
    for (const auto& d : devs) {
      bool match =
          kind == "nic" ? (d.kind == "nic" && d.name == want) : (d.alias == want || d.name == want);
      if (match && d.locality) {
        std::string what =
            d.alias.empty() || d.alias == d.name ? d.name : fmt::format("{} ({})", d.alias, d.name);
        if (!d.pci.empty()) what += fmt::format(" at PCI {}", d.pci);
        return std::pair{d.locality, what};
      }
    }
  }
  std::vector<std::string> names;
  for (const auto& d : devs) {
    std::string n = d.kind == "nic" ? "nic:" + d.name : d.name;
    if (!d.alias.empty() && std::find(names.begin(), names.end(), d.alias) == names.end())
      names.push_back(d.alias);
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  std::string avail;
  for (const auto& n : names) avail += (avail.empty() ? "" : ", ") + n;
  return fail(ErrorCode::not_found, fmt::format("no I/O device '{}' in this topology", near),
              names.empty() ? "this topology lists no I/O devices; use --numa or no --near"
                            : fmt::format("available: {} (or pci:BUS)", avail));
}

struct Unit {
  hwloc_obj_t obj;  // a Core (or a PU when the topology has no cores)
  IndexSet pus;     // the PUs of it that the plan would use
};

// One plan, step by step: each step reads and fills the fields it names.
struct Planning {
  const Topology& topo;
  const PlanRequest& req;
  hwloc_topology_t t = topo.raw();

  Plan p;
  IndexSet all, allowed, pinned;   // PUs: the machine's, the cgroup's, pinned to other work
  hwloc_obj_t numa_obj = nullptr;  // --numa's node
  Bitmap scope;                    // where the cores may come from
  std::string scope_text;
  hwloc_obj_type_t unit_type = HWLOC_OBJ_CORE;
  const char* unit_name = "cores";
  std::vector<Unit> usable;  // in logical order
  int in_scope = 0, busy = 0;
  std::vector<const Unit*> chosen;

  // The request as the plan echoes it, and the PUs of the machine, the cgroup and other work.
  void start() {
    p.request = {{"cores", req.cores},
                 {"cpuset", req.cpuset ? nlohmann::json(*req.cpuset) : nlohmann::json(nullptr)},
                 {"near", req.near.empty() ? nlohmann::json(nullptr) : nlohmann::json(req.near)},
                 {"numa", req.numa ? nlohmann::json(*req.numa) : nlohmann::json(nullptr)},
                 {"no_smt", req.no_smt},
                 {"exclude", format_list(req.exclude)},
                 {"policy", req.policy == Policy::compact ? "compact" : "scatter"}};
    all = topo.all_pus();
    allowed = topo.allowed_pus();
    for (const auto& [owner, set] : req.pinned) pinned.insert(set.begin(), set.end());
  }

  // The plan with these PUs, its memory nodes (--numa, else those near the PUs) and their logical
  // indexes.
  Plan finish(IndexSet cpus) {
    p.cpus = std::move(cpus);
    if (req.numa) {
      p.memory_nodes = {*req.numa};
    } else {
      p.memory_nodes = topo.nodes_near(p.cpus);
    }
    p.cpus_logical.clear();
    for (unsigned os : p.cpus) {
      hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(t, os);
      if (pu) p.cpus_logical.push_back(pu->logical_index);
    }
    return p;
  }

  // --numa's node, which must exist.
  Result<void> find_numa() {
    if (!req.numa) return {};
    hwloc_obj_t n = nullptr;
    while ((n = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, n)) != nullptr)
      if (n->os_index == *req.numa) numa_obj = n;
    if (!numa_obj)
      return fail(ErrorCode::not_found, fmt::format("no NUMA node {} in this topology", *req.numa),
                  fmt::format("NUMA nodes (OS indexes): {}", format_list(topo.all_nodes())));
    return {};
  }

  // An explicit cpuset: checked against the machine, not chosen.
  Result<Plan> explicit_cpuset() {
    GEDGE_TRY_ASSIGN(IndexSet cpus, parse_list(*req.cpuset));
    if (cpus.empty())
      return fail(ErrorCode::usage, "empty --cpuset", "give OS indexes like '2-5,8'");
    IndexSet missing, disallowed;
    for (unsigned c : cpus) {
      if (!all.count(c))
        missing.insert(c);
      else if (!allowed.count(c))
        disallowed.insert(c);
    }
    if (!missing.empty())
      return fail(ErrorCode::usage,
                  fmt::format("PUs {} are not in this machine", format_list(missing)),
                  fmt::format("the machine has PUs {} (OS indexes)", format_list(all)));
    if (!disallowed.empty())
      return fail(ErrorCode::failure,
                  fmt::format("PUs {} are not allowed by this cgroup", format_list(disallowed)),
                  fmt::format("allowed PUs: {}", format_list(allowed)));
    p.why.push_back(fmt::format("explicit cpuset {}", format_list(cpus)));
    for (const auto& [owner, set] : req.pinned) {
      IndexSet both;
      std::set_intersection(cpus.begin(), cpus.end(), set.begin(), set.end(),
                            std::inserter(both, both.end()));
      if (!both.empty())
        p.why.push_back(
            fmt::format("warning: PUs {} are also pinned to '{}'", format_list(both), owner));
    }
    if (numa_obj) p.why.push_back(fmt::format("memory from NUMA node P#{} (--numa)", *req.numa));
    auto b = to_bitmap(cpus);
    hwloc_obj_t c = nullptr;
    while ((c = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_CORE, c)) != nullptr)
      if (hwloc_bitmap_intersects(c->cpuset, b.get())) p.objects.push_back(obj_json(c, "core"));
    return finish(std::move(cpus));
  }

  // The scope: the machine, narrowed to the PUs local to --near's device and to --numa's node.
  Result<void> narrow_scope() {
    scope = make_bitmap();
    hwloc_bitmap_copy(scope.get(), hwloc_topology_get_complete_cpuset(t));
    scope_text = "the machine";
    if (!req.near.empty()) {
      GEDGE_TRY_ASSIGN(auto near, resolve_near(t, req.near));
      auto [loc, what] = near;
      hwloc_bitmap_and(scope.get(), scope.get(), loc->cpuset);
      p.objects.push_back(obj_json(loc, "near"));
      p.why.push_back(fmt::format("near {}: the device is attached to {}, local PUs {}", what,
                                  obj_label(loc), format_list(to_set(loc->cpuset))));
      scope_text = fmt::format("near {}", req.near);
    }
    if (numa_obj) {
      hwloc_bitmap_and(scope.get(), scope.get(), numa_obj->cpuset);
      p.objects.push_back(obj_json(numa_obj, "numa"));
      p.why.push_back(fmt::format("--numa {}: PUs {} are local to NUMA node P#{}", *req.numa,
                                  format_list(to_set(numa_obj->cpuset)), *req.numa));
      scope_text += fmt::format(" on NUMA node {}", *req.numa);
      if (hwloc_bitmap_iszero(scope.get()))
        return fail(ErrorCode::failure,
                    fmt::format("NUMA node {} has no PUs {}", *req.numa, scope_text),
                    "drop --numa or --near, or pick a node local to the device");
    }
    return {};
  }

  // Usable units (cores, or PUs in topologies without cores) in scope, in logical order: those
  // with allowed PUs not excluded nor pinned (--no-smt: whole free cores, one PU each).
  void collect_units() {
    unit_type = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    hwloc_obj_t u = nullptr;
    while ((u = hwloc_get_next_obj_by_type(t, unit_type, u)) != nullptr) {
      if (!hwloc_bitmap_isincluded(u->cpuset, scope.get())) continue;
      ++in_scope;
      IndexSet own = to_set(u->cpuset), free;
      for (unsigned pu : own)
        if (allowed.count(pu) && !req.exclude.count(pu) && !pinned.count(pu)) free.insert(pu);
      if (free.empty() || (req.no_smt && free.size() != own.size())) {
        ++busy;
        continue;
      }
      if (req.no_smt)
        free = {*to_set(hwloc_get_obj_inside_cpuset_by_type(t, u->cpuset, HWLOC_OBJ_PU, 0)->cpuset)
                     .begin()};
      usable.push_back(Unit{u, free});
    }
    unit_name = unit_type == HWLOC_OBJ_CORE ? "cores" : "PUs";
  }

  // Enough usable units for --cores, else why not; then the PUs avoided, in `why`.
  Result<void> check_units() {
    if (static_cast<int>(usable.size()) < req.cores) {
      std::string detail =
          fmt::format("{} of {} {} {} are usable", usable.size(), in_scope, unit_name, scope_text);
      if (busy)
        detail += fmt::format("; {} are excluded, pinned to other work, outside the cgroup{}", busy,
                              req.no_smt ? " or partly busy (--no-smt needs whole cores)" : "");
      return fail(
          ErrorCode::failure,
          fmt::format("cannot place {} cores {}: {}", req.cores, scope_text, detail),
          fmt::format(
              "the machine has {} cores, {} PUs; allowed PUs {}{}",
              std::max(0, hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE)),
              hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU), format_list(allowed),
              pinned.empty() ? "" : fmt::format("; pinned to other work {}", format_list(pinned))));
    }
    if (!req.exclude.empty())
      p.why.push_back(fmt::format("excluded PUs {} (--exclude)", format_list(req.exclude)));
    for (const auto& [owner, set] : req.pinned)
      p.why.push_back(
          fmt::format("avoided PUs {} already pinned to '{}'", format_list(set), owner));
    if (req.no_smt) p.why.push_back("--no-smt: whole free cores only, one PU each");
    return {};
  }

  // Compact: the smallest object (deepest level first, then logical order) that holds N usable
  // units, and its first N units.
  void choose_compact() {
    hwloc_obj_t best = nullptr;
    for (int d = hwloc_topology_get_depth(t) - 1; d >= 0 && !best; --d) {
      for (unsigned i = 0; i < hwloc_get_nbobjs_by_depth(t, d) && !best; ++i) {
        hwloc_obj_t o = hwloc_get_obj_by_depth(t, d, i);
        int n = 0;
        for (const auto& un : usable)
          if (hwloc_bitmap_isincluded(un.obj->cpuset, o->cpuset)) ++n;
        if (n >= req.cores) best = o;
      }
    }
    if (!best) best = hwloc_get_root_obj(t);  // unreachable: the root holds every usable unit
    for (const auto& un : usable)
      if (static_cast<int>(chosen.size()) < req.cores &&
          hwloc_bitmap_isincluded(un.obj->cpuset, best->cpuset))
        chosen.push_back(&un);
    p.objects.push_back(obj_json(best, "container"));
    std::string spans;
    int nodes = hwloc_bitmap_weight(best->nodeset);
    if (nodes > 1) spans = fmt::format("; it spans {} NUMA nodes", nodes);
    p.why.push_back(fmt::format("compact: {} is the smallest object holding {} usable {}{}",
                                obj_label(best), req.cores, unit_name, spans));
  }

  // The objects of this type that meet the scope, one per distinct CPU set.
  std::vector<hwloc_obj_t> groups_of(hwloc_obj_type_t ty) const {
    std::vector<hwloc_obj_t> g;
    hwloc_obj_t o = nullptr;
    while ((o = hwloc_get_next_obj_by_type(t, ty, o)) != nullptr) {
      if (!o->cpuset || !hwloc_bitmap_intersects(o->cpuset, scope.get())) continue;
      bool dup = std::any_of(g.begin(), g.end(), [&](hwloc_obj_t x) {
        return hwloc_bitmap_isequal(x->cpuset, o->cpuset);
      });
      if (!dup) g.push_back(o);
    }
    return g;
  }

  // Scatter: round-robin over the NUMA nodes (distinct CPU sets) in scope, or packages when there
  // is only one node.
  void choose_scatter() {
    auto groups = groups_of(HWLOC_OBJ_NUMANODE);
    if (groups.size() <= 1) {
      auto packs = groups_of(HWLOC_OBJ_PACKAGE);
      if (packs.size() > 1) groups = packs;
    }
    std::vector<std::vector<const Unit*>> per(groups.size());
    for (const auto& un : usable)
      for (std::size_t g = 0; g < groups.size(); ++g)
        if (hwloc_bitmap_isincluded(un.obj->cpuset, groups[g]->cpuset)) {
          per[g].push_back(&un);
          break;
        }
    for (std::size_t round = 0; static_cast<int>(chosen.size()) < req.cores; ++round) {
      bool any = false;
      for (std::size_t g = 0; g < groups.size() && static_cast<int>(chosen.size()) < req.cores; ++g)
        if (round < per[g].size()) {
          chosen.push_back(per[g][round]);
          any = true;
        }
      if (!any) break;
    }
    std::string names;
    for (auto* g : groups) {
      p.objects.push_back(obj_json(g, "spread"));
      names += (names.empty() ? "" : ", ") + obj_label(g);
    }
    p.why.push_back(fmt::format("scatter: {} {} round-robin over {}", req.cores, unit_name,
                                names.empty() ? "the machine" : names));
  }

  // The plan of the chosen units: their objects and PUs, and where memory comes from.
  Result<Plan> finish_chosen() {
    if (static_cast<int>(chosen.size()) < req.cores)
      return fail(ErrorCode::internal, "planner chose fewer units than it counted");
    IndexSet cpus;
    for (const Unit* un : chosen) {
      auto j = obj_json(un->obj, unit_type == HWLOC_OBJ_CORE ? "core" : "pu");
      j["pus"] = format_list(un->pus);
      p.objects.push_back(j);
      cpus.insert(un->pus.begin(), un->pus.end());
    }
    Plan out = finish(std::move(cpus));
    out.why.push_back(fmt::format("memory from NUMA node(s) {}{}", format_list(out.memory_nodes),
                                  req.numa ? " (--numa)" : " local to the chosen PUs"));
    return out;
  }
};

}  // namespace

nlohmann::json Plan::to_json() const {
  return {{"cpuset", format_list(cpus)}, {"memory_nodes", format_list(memory_nodes)},
          {"cpus", cpus.size()},         {"cpus_logical", cpus_logical},
          {"objects", objects},          {"why", why},
          {"request", request}};
}

Result<Plan> plan(const Topology& topo, const PlanRequest& req) {
  Planning pl{topo, req};
  pl.start();
  GEDGE_TRY(pl.find_numa());
  if (req.cpuset) return pl.explicit_cpuset();
  if (req.cores <= 0)
    return fail(ErrorCode::usage, "--cores must be at least 1 (or give --cpuset)");
  GEDGE_TRY(pl.narrow_scope());
  pl.collect_units();
  GEDGE_TRY(pl.check_units());
  if (req.policy == Policy::compact)
    pl.choose_compact();
  else
    pl.choose_scatter();
  return pl.finish_chosen();
}

}  // namespace gedge::topo
