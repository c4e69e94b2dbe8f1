// Binding through hwloc, and reading back what the kernel actually applied.
#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "topo_internal.hpp"

namespace gedge::topo {

namespace {

// Cpus_allowed_list / Mems_allowed_list from a status file; nullopt when it cannot be read.
struct StatusSets {
  IndexSet cpus, mems;
};
std::optional<StatusSets> read_status(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  StatusSets s;
  bool got_cpus = false;
  std::string line;
  while (std::getline(f, line)) {
    auto value = [&](std::string_view key) -> std::optional<std::string> {
      if (line.rfind(key, 0) != 0) return std::nullopt;
      auto v = line.substr(key.size());
      auto b = v.find_first_not_of(" \t");
      return b == std::string::npos ? std::string() : v.substr(b);
    };
    if (auto v = value("Cpus_allowed_list:")) {
      auto r = parse_list(*v);
      if (!r) return std::nullopt;
      s.cpus = *r;
      got_cpus = true;
    } else if (auto m = value("Mems_allowed_list:")) {
      auto r = parse_list(*m);
      if (r) s.mems = *r;
    }
  }
  if (!got_cpus) return std::nullopt;
  return s;
}

std::vector<pid_t> list_tasks(pid_t pid) {
  std::vector<pid_t> out;
  DIR* d = ::opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    char* end = nullptr;
    long v = std::strtol(e->d_name, &end, 10);
    if (end && *end == '\0' && v > 0) out.push_back(static_cast<pid_t>(v));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool process_exists(pid_t pid) {
  return ::access(fmt::format("/proc/{}/status", pid).c_str(), F_OK) == 0;
}

Error gone(pid_t pid) {
  return Error{ErrorCode::not_found, fmt::format("process {} exited while being pinned", pid),
               "nothing is left to pin; start it again, e.g. with 'gedge tune pin ... -- CMD'"};
}

}  // namespace

nlohmann::json Applied::to_json() const {
  nlohmann::json th = nlohmann::json::array();
  for (const auto& [tid, cpus_of] : threads)
    th.push_back({{"tid", tid}, {"cpus", format_list(cpus_of)}});
  nlohmann::json j{{"cpus_allowed_list", format_list(cpus)},
                   {"mems_allowed_list", format_list(mems)},
                   {"threads", th}};
  if (membind) j["membind_nodes"] = format_list(*membind);
  return j;
}

Result<Applied> read_back(pid_t pid) {
  if (pid <= 0) return fail(ErrorCode::usage, fmt::format("invalid pid {}", pid));
  auto main = read_status(fmt::format("/proc/{}/status", pid));
  if (!main)
    return fail(ErrorCode::not_found, fmt::format("no process {}", pid), "check the pid with 'ps'");
  Applied a;
  a.cpus = main->cpus;
  a.mems = main->mems;
  for (pid_t tid : list_tasks(pid)) {
    auto s = read_status(fmt::format("/proc/{}/task/{}/status", pid, tid));
    if (s) a.threads.emplace_back(tid, s->cpus);  // a thread that just ended is simply skipped
  }
  if (!process_exists(pid)) return std::unexpected(gone(pid));
  return a;
}

Result<void> verify_applied(const Plan& p, const Applied& a, bool check_mems) {
  if (a.cpus != p.cpus)
    return fail(ErrorCode::failure,
                fmt::format("the kernel applied CPUs {} but the plan is {}", format_list(a.cpus),
                            format_list(p.cpus)),
                "the cgroup may not allow these CPUs; see 'gedge tune show' (allowed_cpuset)");
  for (const auto& [tid, cpus] : a.threads)
    if (cpus != p.cpus)
      return fail(ErrorCode::failure,
                  fmt::format("thread {} runs on CPUs {} but the plan is {}", tid,
                              format_list(cpus), format_list(p.cpus)),
                  "the process may have reset its own affinity; run the pin again");
  if (check_mems) {
    const IndexSet& got = a.membind ? *a.membind : a.mems;
    if (got != p.memory_nodes)
      return fail(ErrorCode::failure,
                  fmt::format("the kernel applied memory nodes {} but the plan is {}",
                              format_list(got), format_list(p.memory_nodes)));
  }
  return {};
}

Result<Applied> bind_self(const Topology& topo, const Plan& p, bool membind) {
  if (!topo.is_this_system())
    return fail(ErrorCode::usage,
                fmt::format("cannot bind with the topology of {}", topo.source().label),
                "binding uses the local machine's topology; drop --topology");
  hwloc_topology_t t = topo.raw();
  auto cs = to_bitmap(p.cpus);
  if (hwloc_set_cpubind(t, cs.get(), HWLOC_CPUBIND_PROCESS) != 0)
    return fail(ErrorCode::failure, fmt::format("binding to CPUs {} failed: {}",
                                                format_list(p.cpus), std::strerror(errno)));
  std::optional<IndexSet> bound_nodes;
  if (membind) {
    auto ns = to_bitmap(p.memory_nodes);
    // Linux has no process-wide memory policy: set it on this (only) thread; execve keeps it.
    if (hwloc_set_membind(t, ns.get(), HWLOC_MEMBIND_BIND,
                          HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) != 0)
      return fail(
          ErrorCode::failure,
          fmt::format("binding memory to nodes {} failed: {}", format_list(p.memory_nodes),
                      std::strerror(errno)),
          "in a container this needs CAP_SYS_NICE (seccomp blocks set_mempolicy otherwise)");
    auto got = make_bitmap();
    hwloc_membind_policy_t pol{};
    if (hwloc_get_membind(t, got.get(), &pol, HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) == 0)
      bound_nodes = to_set(got.get());
  }
  GEDGE_TRY_ASSIGN(auto a, read_back(::getpid()));
  a.membind = bound_nodes;
  GEDGE_TRY(verify_applied(p, a, membind));
  return a;
}

Result<Applied> bind_pid(const Topology& topo, const Plan& p, pid_t pid) {
  if (!topo.is_this_system())
    return fail(ErrorCode::usage,
                fmt::format("cannot bind with the topology of {}", topo.source().label),
                "binding uses the local machine's topology; drop --topology");
  if (pid <= 0) return fail(ErrorCode::usage, fmt::format("invalid pid {}", pid));
  if (!process_exists(pid))
    return fail(ErrorCode::not_found, fmt::format("no process {}", pid), "check the pid with 'ps'");
  hwloc_topology_t t = topo.raw();
  auto cs = to_bitmap(p.cpus);
  std::set<pid_t> done;
  // Threads may be created while we work: list again until a pass finds nothing new.
  for (int pass = 0; pass < 20; ++pass) {
    auto tasks = list_tasks(pid);
    if (tasks.empty()) return std::unexpected(gone(pid));
    bool fresh = false;
    for (pid_t tid : tasks) {
      if (done.count(tid)) continue;
      fresh = true;
      if (hwloc_set_proc_cpubind(t, tid, cs.get(), HWLOC_CPUBIND_THREAD) != 0) {
        if (errno == ESRCH) continue;  // that thread ended; the others still count
        if (errno == EPERM)
          return fail(ErrorCode::auth, fmt::format("not permitted to rebind process {}", pid),
                      "run as the process's owner or as root");
        return fail(ErrorCode::failure, fmt::format("rebinding thread {} of process {} failed: {}",
                                                    tid, pid, std::strerror(errno)));
      }
      done.insert(tid);
    }
    if (!fresh) break;
  }
  if (!process_exists(pid)) return std::unexpected(gone(pid));
  GEDGE_TRY_ASSIGN(auto a, read_back(pid));
  GEDGE_TRY(verify_applied(p, a, false));
  return a;
}

}  // namespace gedge::topo
