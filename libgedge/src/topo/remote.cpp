// What `tune` builds from its flags and shows, kept out of the cli: the plan request, a device's
// topology read through a remote runner, and the bench table.
#include <fmt/format.h>

#include "gedge/topo.hpp"

namespace gedge::topo {

Result<PlanRequest> plan_request(const PlanFlags& f) {
  PlanRequest req;
  if (f.cores > 0 && !f.cpuset.empty())
    return fail(ErrorCode::usage, "--cores and --cpuset are exclusive");
  if (f.cores <= 0 && f.cpuset.empty())
    return fail(ErrorCode::usage, "give --cores N or --cpuset LIST");
  req.cores = f.cores;
  if (!f.cpuset.empty()) req.cpuset = f.cpuset;
  req.near = f.near;
  if (f.numa >= 0) req.numa = static_cast<unsigned>(f.numa);
  req.no_smt = f.no_smt;
  GEDGE_TRY_ASSIGN(req.exclude, parse_list(f.exclude));
  GEDGE_TRY_ASSIGN(req.policy, parse_policy(f.policy));
  return req;
}

Result<TopologySource> remote_topology(const RemoteRun& run, const std::string& device,
                                       Reporter& reporter) {
  GEDGE_TRY_ASSIGN(auto r, run({"lstopo-no-graphics", "--of", "xml", "-"}));
  if (r.rc == 0)
    return TopologySource{TopologySource::Kind::xml_buffer, r.out,
                          fmt::format("device {}", device)};
  GEDGE_TRY_ASSIGN(auto cpus_r, run({"cat", "/sys/devices/system/cpu/online"}));
  GEDGE_TRY_ASSIGN(auto nodes_r, run({"cat", "/sys/devices/system/node/online"}));
  auto trim = [](std::string x) {
    while (!x.empty() && (x.back() == '\n' || x.back() == ' ')) x.pop_back();
    return x;
  };
  auto cpus = cpus_r.rc == 0 ? parse_list(trim(cpus_r.out)) : Result<IndexSet>{};
  auto nodes = nodes_r.rc == 0 ? parse_list(trim(nodes_r.out)) : Result<IndexSet>{IndexSet{0}};
  auto contiguous = [](const IndexSet& x) {
    return !x.empty() && *x.begin() == 0 && *x.rbegin() + 1 == x.size();
  };
  if (!cpus || !nodes || !contiguous(*cpus) || !contiguous(*nodes) ||
      cpus->size() % nodes->size() != 0)
    return fail(
        ErrorCode::failure, fmt::format("cannot read the topology of device '{}'", device),
        "install hwloc on the device (Debian: apt install hwloc-nox), then 'gedge device check'");
  reporter.warn(
      fmt::format("device '{}' has no lstopo-no-graphics: using its online CPUs and NUMA nodes "
                  "from /sys (no cache, SMT or I/O information)",
                  device));
  std::string syn = fmt::format("numa:{} pu:{}", nodes->size(), cpus->size() / nodes->size());
  return TopologySource{TopologySource::Kind::synthetic, syn,
                        fmt::format("device {} (from /sys: {})", device, syn)};
}

nlohmann::json bench_rows(const nlohmann::json& r, const Plan& p) {
  nlohmann::json rows = nlohmann::json::array();
  for (const char* side : {"unpinned", "pinned"})
    rows.push_back(
        {{"side", side},
         {"cpuset", side == std::string("pinned") ? p.to_json()["cpuset"]
                                                  : nlohmann::json(r["baseline_cpuset"])},
         {"median_s", fmt::format("{:.4f}", r[side]["median_s"].get<double>())},
         {"p95_s", fmt::format("{:.4f}", r[side]["p95_s"].get<double>())}});
  return rows;
}

std::string bench_footer(const nlohmann::json& r, int runs) {
  return fmt::format("speedup {:.3f}x (95% CI {:.3f}-{:.3f}) over {} interleaved runs per side",
                     r["speedup"].get<double>(), r["speedup_ci95"][0].get<double>(),
                     r["speedup_ci95"][1].get<double>(), runs);
}

}  // namespace gedge::topo
