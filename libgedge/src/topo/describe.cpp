// Describing a loaded topology: its I/O devices, the summary line and `tune show`'s object list.
#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "topo_internal.hpp"

namespace gedge::topo {

std::vector<IoDevice> io_devices(hwloc_topology_t t) {
  std::vector<IoDevice> out;
  auto pci_id = [](hwloc_obj_t p) {
    return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", p->attr->pcidev.domain, p->attr->pcidev.bus,
                       p->attr->pcidev.dev, p->attr->pcidev.func);
  };
  auto pci_parent = [](hwloc_obj_t o) -> hwloc_obj_t {
    for (hwloc_obj_t p = o->parent; p; p = p->parent)
      if (p->type == HWLOC_OBJ_PCI_DEVICE) return p;
    return nullptr;
  };
  std::vector<hwloc_obj_t> gpu_pcis;  // GPU-like PCI devices in discovery order, for gpuN
  hwloc_obj_t o = nullptr;
  while ((o = hwloc_get_next_osdev(t, o)) != nullptr) {
    IoDevice d;
    d.obj = o;
    d.name = o->name ? o->name : "";
    switch (o->attr->osdev.type) {
      case HWLOC_OBJ_OSDEV_GPU:
        d.kind = "gpu";
        break;
      case HWLOC_OBJ_OSDEV_COPROC:
        d.kind = "coproc";
        break;
      case HWLOC_OBJ_OSDEV_NETWORK:
        d.kind = "nic";
        break;
      case HWLOC_OBJ_OSDEV_BLOCK:
        d.kind = "block";
        break;
      case HWLOC_OBJ_OSDEV_OPENFABRICS:
        d.kind = "openfabrics";
        break;
      case HWLOC_OBJ_OSDEV_DMA:
        d.kind = "dma";
        break;
      default:
        d.kind = "other";
        break;
    }
    hwloc_obj_t pci = pci_parent(o);
    if (pci) d.pci = pci_id(pci);
    if (pci && (d.kind == "gpu" || d.kind == "coproc")) {
      auto it = std::find(gpu_pcis.begin(), gpu_pcis.end(), pci);
      std::size_t idx = static_cast<std::size_t>(it - gpu_pcis.begin());
      if (it == gpu_pcis.end()) gpu_pcis.push_back(pci);
      d.alias = fmt::format("gpu{}", idx);
    }
    d.locality = hwloc_get_non_io_ancestor_obj(t, o);
    out.push_back(std::move(d));
  }
  return out;
}

nlohmann::json Topology::summary() const {
  hwloc_topology_t t = impl_->t;
  auto count = [&](hwloc_obj_type_t ty) { return std::max(0, hwloc_get_nbobjs_by_type(t, ty)); };
  bool smt = false;
  hwloc_obj_t c = nullptr;
  while ((c = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_CORE, c)) != nullptr)
    if (hwloc_bitmap_weight(c->cpuset) > 1) smt = true;
  return {{"source", impl_->src.label},
          {"this_system", is_this_system()},
          {"counts",
           {{"packages", count(HWLOC_OBJ_PACKAGE)},
            {"numa_nodes", count(HWLOC_OBJ_NUMANODE)},
            {"cores", count(HWLOC_OBJ_CORE)},
            {"pus", count(HWLOC_OBJ_PU)}}},
          {"smt", smt},
          {"cpuset", format_list(all_pus())},
          {"allowed_cpuset", format_list(allowed_pus())},
          {"nodeset", format_list(all_nodes())},
          {"allowed_nodeset", format_list(to_set(hwloc_topology_get_allowed_nodeset(t)))}};
}

nlohmann::json Topology::describe() const {
  hwloc_topology_t t = impl_->t;
  nlohmann::json j = summary();
  hwloc_obj_t root = hwloc_get_root_obj(t);
  j["memory_bytes"] = root->total_memory;
  auto list_of = [](hwloc_const_bitmap_t b) { return format_list(to_set(b)); };
  auto ancestor_logical = [&](hwloc_obj_t o, hwloc_obj_type_t ty) -> nlohmann::json {
    hwloc_obj_t a = hwloc_get_ancestor_obj_by_type(t, ty, o);
    return a ? nlohmann::json(a->logical_index) : nlohmann::json(nullptr);
  };
  IndexSet allowed = allowed_pus();
  nlohmann::json rows = nlohmann::json::array();  // flat listing for the table

  nlohmann::json packages = nlohmann::json::array();
  hwloc_obj_t o = nullptr;
  while ((o = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_PACKAGE, o)) != nullptr) {
    int ncores = hwloc_get_nbobjs_inside_cpuset_by_type(t, o->cpuset, HWLOC_OBJ_CORE);
    packages.push_back({{"logical", o->logical_index},
                        {"os", o->os_index},
                        {"cpuset", list_of(o->cpuset)},
                        {"cores", ncores}});
    rows.push_back({{"type", "Package"},
                    {"logical", o->logical_index},
                    {"os", o->os_index},
                    {"cpuset", list_of(o->cpuset)},
                    {"detail", fmt::format("{} cores", ncores)}});
  }
  j["packages"] = packages;

  nlohmann::json nodes = nlohmann::json::array();
  o = nullptr;
  while ((o = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, o)) != nullptr) {
    nlohmann::json n{
        {"logical", o->logical_index},
        {"os", o->os_index},
        {"cpuset", list_of(o->cpuset)},
        {"memory_bytes", o->attr->numanode.local_memory},
        {"subtype", o->subtype ? o->subtype : ""},
        {"allowed", hwloc_bitmap_isset(hwloc_topology_get_allowed_nodeset(t), o->os_index) == 1}};
    nodes.push_back(n);
    rows.push_back({{"type", "NUMANode"},
                    {"logical", o->logical_index},
                    {"os", o->os_index},
                    {"cpuset", list_of(o->cpuset)},
                    {"detail", fmt::format("{} MiB{}", o->attr->numanode.local_memory >> 20,
                                           o->subtype ? fmt::format(" {}", o->subtype) : "")}});
  }
  j["numa_nodes"] = nodes;

  nlohmann::json caches = nlohmann::json::array();
  for (int d = 0; d < hwloc_topology_get_depth(t); ++d) {
    hwloc_obj_type_t ty = hwloc_get_depth_type(t, d);
    if (!hwloc_obj_type_is_cache(ty)) continue;
    for (unsigned i = 0; i < hwloc_get_nbobjs_by_depth(t, d); ++i) {
      hwloc_obj_t c = hwloc_get_obj_by_depth(t, d, i);
      // KNL's MCDRAM in cache mode appears as an L3 with subtype MemorySideCache.
      bool memside = c->subtype && std::string_view(c->subtype) == "MemorySideCache";
      caches.push_back({{"type", type_name(c)},
                        {"logical", c->logical_index},
                        {"size_bytes", c->attr->cache.size},
                        {"cpuset", list_of(c->cpuset)},
                        {"memory_side", memside}});
    }
  }
  // Memory-side caches (KNL MCDRAM in cache mode) live outside the normal depths.
  o = nullptr;
  while ((o = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_MEMCACHE, o)) != nullptr)
    caches.push_back({{"type", type_name(o)},
                      {"logical", o->logical_index},
                      {"size_bytes", o->attr->cache.size},
                      {"cpuset", list_of(o->cpuset)},
                      {"memory_side", true}});
  j["caches"] = caches;

  nlohmann::json cores = nlohmann::json::array();
  nlohmann::json pus = nlohmann::json::array();
  o = nullptr;
  while ((o = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_CORE, o)) != nullptr) {
    nlohmann::json pl = nlohmann::json::array();
    for (unsigned i = 0; i < o->arity; ++i) {
      hwloc_obj_t p = o->children[i];
      if (p->type == HWLOC_OBJ_PU)
        pl.push_back({{"logical", p->logical_index}, {"os", p->os_index}});
    }
    int kind = hwloc_cpukinds_get_by_cpuset(t, o->cpuset, 0);
    nlohmann::json core{{"logical", o->logical_index},
                        {"os", o->os_index},
                        {"package", ancestor_logical(o, HWLOC_OBJ_PACKAGE)},
                        {"numa_nodes", list_of(o->nodeset)},
                        {"pus", pl}};
    if (kind >= 0) core["cpukind"] = kind;
    cores.push_back(core);
    rows.push_back({{"type", "Core"},
                    {"logical", o->logical_index},
                    {"os", o->os_index},
                    {"cpuset", list_of(o->cpuset)},
                    {"detail", fmt::format("NUMA {}", list_of(o->nodeset))}});
  }
  o = nullptr;
  while ((o = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_PU, o)) != nullptr) {
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_CORE, o);
    bool ok = allowed.count(o->os_index) > 0;
    pus.push_back({{"logical", o->logical_index},
                   {"os", o->os_index},
                   {"core", core ? nlohmann::json(core->logical_index) : nlohmann::json(nullptr)},
                   {"allowed", ok}});
    rows.push_back({{"type", "PU"},
                    {"logical", o->logical_index},
                    {"os", o->os_index},
                    {"cpuset", fmt::format("{}", o->os_index)},
                    {"detail", ok ? "" : "not allowed (cgroup)"}});
  }
  j["cores"] = cores;
  j["pus"] = pus;

  nlohmann::json kinds = nlohmann::json::array();
  int nk = hwloc_cpukinds_get_nr(t, 0);
  for (int k = 0; k < nk; ++k) {
    auto b = make_bitmap();
    int eff = -1;
    unsigned nr = 0;
    if (hwloc_cpukinds_get_info(t, static_cast<unsigned>(k), b.get(), &eff, &nr, nullptr, 0) != 0)
      continue;
    kinds.push_back({{"kind", k}, {"efficiency", eff}, {"cpuset", list_of(b.get())}});
  }
  j["cpu_kinds"] = kinds;

  nlohmann::json io = nlohmann::json::array();
  for (const auto& d : io_devices(t)) {
    hwloc_const_cpuset_t cs =
        d.locality ? d.locality->cpuset : hwloc_topology_get_complete_cpuset(t);
    hwloc_const_nodeset_t ns =
        d.locality ? d.locality->nodeset : hwloc_topology_get_complete_nodeset(t);
    nlohmann::json e{{"name", d.name},
                     {"kind", d.kind},
                     {"pci", d.pci},
                     {"local_cpuset", list_of(cs)},
                     {"local_numa_nodes", list_of(ns)},
                     {"local_object", d.locality ? fmt::format("{} L#{}", type_name(d.locality),
                                                               d.locality->logical_index)
                                                 : ""}};
    if (!d.alias.empty()) e["alias"] = d.alias;
    io.push_back(e);
    rows.push_back(
        {{"type", d.kind},
         {"logical", d.alias.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.alias)},
         {"os", d.name},
         {"cpuset", list_of(cs)},
         {"detail", d.pci.empty() ? "" : fmt::format("PCI {}", d.pci)}});
  }
  j["io_devices"] = io;
  j["objects"] = rows;
  return j;
}

}  // namespace gedge::topo
