// Pinning a running podman container on a device, and reading back what the kernel applied.
// Commands are argv vectors handed to an injected runner (SSH in the CLI, a fake in tests):
// no shell line is ever built from user input.
#include <fmt/format.h>

#include <regex>
#include <sstream>

#include "gedge/topo.hpp"

namespace gedge::topo {

namespace {

Result<void> check_container_name(const std::string& name) {
  static const std::regex re(R"(^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$)");
  if (!std::regex_match(name, re))
    return fail(ErrorCode::usage, fmt::format("invalid container name '{}'", name),
                "container names are letters, digits, '_', '.', '-'");
  return {};
}

std::string first_line(const std::string& s) {
  auto nl = s.find('\n');
  std::string l = s.substr(0, nl);
  while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
  return l;
}

Result<RemoteOutput> run_ok(const RemoteRun& run, const std::vector<std::string>& argv,
                            std::string_view what) {
  GEDGE_TRY_ASSIGN(auto r, run(argv));
  if (r.rc != 0) {
    std::string err = first_line(r.err.empty() ? r.out : r.err);
    ErrorCode code = err.find("no such container") != std::string::npos ? ErrorCode::not_found
                                                                        : ErrorCode::failure;
    return fail(code, fmt::format("{} failed (exit {}): {}", what, r.rc, err),
                "check the container with 'gedge device exec DEVICE -- sudo podman ps'");
  }
  return r;
}

}  // namespace

std::vector<std::string> podman_update_argv(const Plan& p, const std::string& container) {
  return {"sudo",          "-n",
          "podman",        "update",
          "--cpuset-cpus", format_list(p.cpus),
          "--cpuset-mems", format_list(p.memory_nodes),
          container};
}

Result<nlohmann::json> pin_container(const Plan& p, const std::string& container,
                                     const RemoteRun& run) {
  GEDGE_TRY(check_container_name(container));
  GEDGE_TRY(run_ok(run, podman_update_argv(p, container), "podman update"));

  // What the runtime recorded, and the container's main process for the kernel's view.
  GEDGE_TRY_ASSIGN(
      auto insp,
      run_ok(run,
             {"sudo", "-n", "podman", "inspect", "--format",
              "{{.HostConfig.CpusetCpus}}|{{.HostConfig.CpusetMems}}|{{.State.Pid}}", container},
             "podman inspect"));
  std::string line = first_line(insp.out);
  std::vector<std::string> parts;
  std::stringstream ss(line);
  for (std::string x; std::getline(ss, x, '|');) parts.push_back(x);
  if (parts.size() != 3)
    return fail(ErrorCode::failure, fmt::format("unexpected podman inspect output '{}'", line));
  auto cfg_cpus = parse_list(parts[0]);
  auto cfg_mems = parse_list(parts[1]);
  if (!cfg_cpus || !cfg_mems)
    return fail(ErrorCode::failure, fmt::format("unexpected podman inspect output '{}'", line));
  nlohmann::json applied{{"inspect_cpuset_cpus", parts[0]}, {"inspect_cpuset_mems", parts[1]}};
  // Some podman versions (4.3) apply `update` to the cgroup but leave the inspect fields empty;
  // only a recorded value that differs is a failure. The kernel's view below is authoritative.
  bool cfg_differs = (!parts[0].empty() && *cfg_cpus != p.cpus) ||
                     (!parts[1].empty() && *cfg_mems != p.memory_nodes);
  if (cfg_differs)
    return fail(
        ErrorCode::failure,
        fmt::format("container '{}' reports cpuset {} / mems {} but the plan is {} / {}", container,
                    parts[0], parts[1], format_list(p.cpus), format_list(p.memory_nodes)),
        "the runtime may not support updating cpusets (cgroup v2 with the cpuset controller is "
        "needed)");
  if (parts[0].empty()) applied["inspect_stale"] = true;

  // The kernel's view: the container's main process as seen from the host.
  std::string pid = parts[2];
  if (pid.empty() || pid == "0" || !std::all_of(pid.begin(), pid.end(), ::isdigit))
    return fail(ErrorCode::failure,
                fmt::format("container '{}' is not running (no process to check)", container),
                "start it first: podman start NAME");
  {
    GEDGE_TRY_ASSIGN(auto st, run_ok(run, {"cat", fmt::format("/proc/{}/status", pid)},
                                     "reading the container's status"));
    std::istringstream in(st.out);
    std::optional<IndexSet> kcpus, kmems;
    for (std::string l; std::getline(in, l);) {
      auto take = [&](std::string_view key) -> std::optional<IndexSet> {
        if (l.rfind(key, 0) != 0) return std::nullopt;
        auto v = l.substr(key.size());
        v.erase(0, v.find_first_not_of(" \t"));
        auto r = parse_list(v);
        return r ? std::optional<IndexSet>(*r) : std::nullopt;
      };
      if (auto c = take("Cpus_allowed_list:")) kcpus = c;
      if (auto m = take("Mems_allowed_list:")) kmems = m;
    }
    if (!kcpus)
      return fail(ErrorCode::failure,
                  fmt::format("cannot read the CPUs of container '{}' (pid {})", container, pid));
    applied["pid"] = std::stoi(pid);
    applied["cpus_allowed_list"] = format_list(*kcpus);
    if (kmems) applied["mems_allowed_list"] = format_list(*kmems);
    if (*kcpus != p.cpus)
      return fail(ErrorCode::failure,
                  fmt::format("the kernel runs container '{}' on CPUs {} but the plan is {}",
                              container, format_list(*kcpus), format_list(p.cpus)));
    if (kmems && *kmems != p.memory_nodes)
      return fail(ErrorCode::failure,
                  fmt::format("the kernel gives container '{}' memory nodes {} but the plan is {}",
                              container, format_list(*kmems), format_list(p.memory_nodes)));
  }
  return nlohmann::json{{"container", container},
                        {"cpuset", format_list(p.cpus)},
                        {"memory_nodes", format_list(p.memory_nodes)},
                        {"applied", applied}};
}

}  // namespace gedge::topo
