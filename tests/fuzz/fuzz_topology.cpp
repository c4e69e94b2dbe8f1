// libFuzzer target for the topology loader: arbitrary bytes as hwloc XML and as a synthetic
// description. Whatever loads must also describe and plan without crashing.
// Build and run (clang >= 16 with libc++ >= 16, or a clang whose concepts support libstdc++'s
// <expected>; Debian 12's clang 14 cannot compile gedge's headers, so on this machine the seeded
// doctest version below is what runs):
//   clang++ -std=c++2b -g -O1 -fsanitize=fuzzer,address,undefined -Ilibgedge/include \
//     tests/fuzz/fuzz_topology.cpp libgedge/src/topo/*.cpp -lhwloc -lfmt -o fuzz_topology
//   ./fuzz_topology -max_total_time=60 tests/data/topologies
// (The doctest "seeded mutations" case in tests/unit/test_topo.cpp runs a small seeded version
// of this on every build.)
#include <cstddef>
#include <cstdint>
#include <string>

#include "gedge/topo.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gedge::topo;
  std::string s(reinterpret_cast<const char*>(data), size);
  for (auto kind : {TopologySource::Kind::xml_buffer, TopologySource::Kind::synthetic}) {
    auto t = Topology::load(TopologySource{kind, s, "fuzz"});
    if (!t) continue;
    (void)t->describe();
    PlanRequest req;
    req.cores = 2;
    (void)plan(*t, req);
    req.policy = Policy::scatter;
    req.no_smt = true;
    (void)plan(*t, req);
  }
  (void)parse_list(s);
  return 0;
}
