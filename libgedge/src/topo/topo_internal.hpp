// Internals shared by the topo module's files: hwloc handles and bitmap conversions.
#pragma once

#include <hwloc.h>

#include <memory>

#include "gedge/topo.hpp"

namespace gedge::topo {

struct Topology::Impl {
  hwloc_topology_t t = nullptr;
  TopologySource src;
  ~Impl() {
    if (t) hwloc_topology_destroy(t);
  }
};

struct BitmapDeleter {
  void operator()(hwloc_bitmap_s* b) const { hwloc_bitmap_free(b); }
};
using Bitmap = std::unique_ptr<hwloc_bitmap_s, BitmapDeleter>;

inline Bitmap make_bitmap() {
  return Bitmap(hwloc_bitmap_alloc());
}
IndexSet to_set(hwloc_const_bitmap_t b);
Bitmap to_bitmap(const IndexSet& s);

// "Package", "NUMANode", "L3", ... as hwloc names the type.
std::string type_name(hwloc_obj_t o);

// I/O devices named the way --near accepts them.
struct IoDevice {
  std::string name;                // OS device name (cuda0, eth0, sda) or "" for a bare PCI device
  std::string alias;               // gpuN for GPU-like PCI devices
  std::string kind;                // gpu, coproc, nic, block, dma, openfabrics, pci
  std::string pci;                 // bus id "0000:84:00.0" or ""
  hwloc_obj_t obj = nullptr;       // the OS device or PCI device
  hwloc_obj_t locality = nullptr;  // first non-I/O ancestor
};
std::vector<IoDevice> io_devices(hwloc_topology_t t);

}  // namespace gedge::topo
