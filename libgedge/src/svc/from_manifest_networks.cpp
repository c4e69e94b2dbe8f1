// A workload's Multus networks on container hosts: each NetworkAttachmentDefinition it selects
// as a podman macvlan network.
#include <fmt/format.h>

#include <set>
#include <utility>
#include <vector>

#include "from_manifest_internal.hpp"
#include "gedge/text.hpp"

namespace gedge::svc::detail::from_manifest {

// A NetworkAttachmentDefinition as a gedge network on container hosts: only a macvlan CNI
// config with a host-local subnet is a podman network; anything else is refused naming the
// object's file, line and the config's key.
Result<json> Translator::network_of(const manifest::Object& nad) const {
  auto at = [&](const std::string& what) {
    return std::unexpected(nad.source.error_at(
        "/spec/config", fmt::format("{} on container hosts", what),
        "on container hosts a network is a podman macvlan network: deploy this manifest to a "
        "Kubernetes cluster for other CNI configurations"));
  };
  const json& md = nad.json().contains("metadata") ? nad.json()["metadata"] : json::object();
  if (md.is_object() && md.contains("annotations") && md["annotations"].is_object() &&
      md["annotations"].contains("k8s.v1.cni.cncf.io/resourceName"))
    return std::unexpected(
        nad.source.error_at("/metadata/annotations/k8s.v1.cni.cncf.io~1resourceName",
                            "a device plugin resource (SR-IOV) is not supported on container hosts",
                            "deploy this manifest to a Kubernetes cluster"));
  const json& spec = nad.json().contains("spec") ? nad.json()["spec"] : json::object();
  if (!spec.is_object() || !spec.contains("config") || !spec["config"].is_string())
    return std::unexpected(nad.source.error_at(
        "/spec",
        "a NetworkAttachmentDefinition without spec.config (a CNI file on each node) "
        "is not supported on container hosts"));
  json cfg = json::parse(spec["config"].get<std::string>(), nullptr, false);
  if (!cfg.is_object())
    return std::unexpected(nad.source.error_at("/spec/config", "spec.config is not a JSON object"));
  std::string type = cfg.value("type", "");
  if (cfg.contains("plugins")) return at("a CNI plugin list (plugins) is not supported");
  if (type != "macvlan")
    return at(fmt::format("a {} network (NetworkAttachmentDefinition '{}') is not supported",
                          type.empty() ? "typeless" : type, nad.name));
  for (auto it = cfg.begin(); it != cfg.end(); ++it)
    if (it.key() != "cniVersion" && it.key() != "name" && it.key() != "type" &&
        it.key() != "master" && it.key() != "mode" && it.key() != "ipam")
      return at(fmt::format("config key '{}' is not supported", it.key()));
  if (cfg.contains("mode") && cfg["mode"] != "bridge")
    return at("a macvlan mode other than bridge is not supported");
  if (!cfg.contains("master") || !cfg["master"].is_string() || cfg["master"] == "")
    return at("a macvlan config without master (the host interface) is not supported");
  const json& ipam = cfg.contains("ipam") ? cfg["ipam"] : json::object();
  if (!ipam.is_object() || ipam.value("type", "") != "host-local")
    return at("an ipam other than host-local with a subnet is not supported");
  std::string subnet;
  for (auto it = ipam.begin(); it != ipam.end(); ++it) {
    if (it.key() == "type") continue;
    if (it.key() == "subnet" && it.value().is_string()) {
      subnet = it.value();
    } else if (it.key() == "ranges" && it.value().is_array() && it.value().size() == 1 &&
               it.value()[0].is_array() && it.value()[0].size() == 1 &&
               it.value()[0][0].is_object() && it.value()[0][0].size() == 1 &&
               it.value()[0][0].contains("subnet") && it.value()[0][0]["subnet"].is_string()) {
      subnet = it.value()[0][0]["subnet"];
    } else {
      return at(
          fmt::format("ipam key '{}' is not supported (gedge gives each device its own "
                      "range of the subnet)",
                      it.key()));
    }
  }
  if (subnet.empty()) return at("a host-local ipam without a subnet is not supported");
  return json{
      {"name", nad.name}, {"type", "macvlan"}, {"master", cfg["master"]}, {"subnet", subnet}};
}

// The pod's Multus networks (annotation k8s.v1.cni.cncf.io/networks: "a, ns/b" or a JSON list
// of {name, namespace}), each a NetworkAttachmentDefinition of the same files.
Result<json> Translator::networks() const {
  std::string pp = manifest::pod_spec_pointer(w);
  std::string ptr = pp.substr(0, pp.size() - std::string("/spec").size()) +
                    "/metadata/annotations/k8s.v1.cni.cncf.io~1networks";
  json::json_pointer jp(ptr);
  if (!w.json().contains(jp)) return json::array();
  const json& a = w.json()[jp];
  if (!a.is_string())
    return std::unexpected(w.source.error_at(ptr, "the networks annotation is not a string"));
  std::string ns = w.namespace_.empty() ? "default" : w.namespace_;
  std::vector<std::pair<std::string, std::string>> picks;  // namespace, name
  std::string text = a.get<std::string>();
  auto first = text.find_first_not_of(" \t\n");
  if (first != std::string::npos && text[first] == '[') {
    json list = json::parse(text, nullptr, false);
    if (!list.is_array())
      return std::unexpected(w.source.error_at(ptr, "the networks annotation is not a JSON list"));
    for (const auto& e : list) {
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
        return std::unexpected(w.source.error_at(ptr, "a network selection without a name"));
      for (auto it = e.begin(); it != e.end(); ++it)
        if (it.key() != "name" && it.key() != "namespace")
          return std::unexpected(
              refuse(ptr, fmt::format("'{}' in a network selection is not supported", it.key()),
                     "podman names the interface and assigns the address itself"));
      picks.emplace_back(e.value("namespace", ns), e["name"]);
    }
  } else {
    for (const std::string& item : split_list(text, ',', " \t\n")) {
      if (item.find('@') != std::string::npos)
        return std::unexpected(
            refuse(ptr, fmt::format("an interface name ('{}') is not supported", item),
                   "podman names the interface itself: drop the @NAME"));
      auto slash = item.find('/');
      if (slash == std::string::npos)
        picks.emplace_back(ns, item);
      else
        picks.emplace_back(item.substr(0, slash), item.substr(slash + 1));
    }
  }
  json out = json::array();
  std::set<std::string> seen;
  for (const auto& [pns, name] : picks) {
    if (pns != ns)
      return std::unexpected(refuse(
          ptr, fmt::format("network '{}/{}' of another namespace is not supported", pns, name),
          "on container hosts a network comes from the same files and namespace as the "
          "workload"));
    if (!seen.insert(name).second)
      return std::unexpected(
          w.source.error_at(ptr, fmt::format("network '{}' is selected twice", name)));
    const manifest::Object* nad = find("NetworkAttachmentDefinition", name);
    if (!nad)
      return std::unexpected(w.source.error_at(
          ptr, fmt::format("NetworkAttachmentDefinition '{}' is not in the manifests", name),
          "on container hosts a network comes from the same files as the workload"));
    GEDGE_TRY_ASSIGN(auto n, network_of(*nad));
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace gedge::svc::detail::from_manifest
