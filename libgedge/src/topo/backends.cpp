// One plan, several backends: podman flags, Kubernetes resources (+ kubelet prerequisites),
// a systemd cgroup-v2 drop-in. cset is deliberately absent: it only works on cgroup v1.
#include <fmt/format.h>

#include "gedge/topo.hpp"

namespace gedge::topo {

std::string render_podman(const Plan& p) {
  return fmt::format("--cpuset-cpus={} --cpuset-mems={}\n", format_list(p.cpus),
                     format_list(p.memory_nodes));
}

std::string render_k8s(const Plan& p, const std::string& memory) {
  // Kubernetes cannot be told which CPUs: the static CPU manager hands a Guaranteed pod with an
  // integer CPU request an exclusive set, aligned by the topology manager.
  std::string policy = p.memory_nodes.size() <= 1 ? "single-numa-node" : "restricted";
  return fmt::format(
      "# Guaranteed QoS: integer CPU, requests == limits. The kubelet picks the CPUs;\n"
      "# this plan wanted cpuset {} with memory nodes {}.\n"
      "resources:\n"
      "  requests:\n"
      "    cpu: \"{}\"\n"
      "    memory: \"{}\"\n"
      "  limits:\n"
      "    cpu: \"{}\"\n"
      "    memory: \"{}\"\n"
      "# Kubelet prerequisites (KubeletConfiguration) on the node:\n"
      "#   cpuManagerPolicy: static\n"
      "#   cpuManagerPolicyOptions: {{full-pcpus-only: \"true\"}}   # whole cores, like --no-smt\n"
      "#   topologyManagerPolicy: {}\n"
      "#   reservedSystemCPUs: <CPUs kept for the system>\n"
      "# Changing cpuManagerPolicy needs: drain, stop kubelet, remove "
      "/var/lib/kubelet/cpu_manager_state, start.\n",
      format_list(p.cpus), format_list(p.memory_nodes), p.cpus.size(), memory, p.cpus.size(),
      memory, policy);
}

std::string render_systemd(const Plan& p) {
  return fmt::format(
      "# systemd drop-in (cgroup v2), e.g. /etc/systemd/system/UNIT.d/gedge-pin.conf\n"
      "[Service]\n"
      "AllowedCPUs={}\n"
      "AllowedMemoryNodes={}\n",
      format_list(p.cpus), format_list(p.memory_nodes));
}

}  // namespace gedge::topo
