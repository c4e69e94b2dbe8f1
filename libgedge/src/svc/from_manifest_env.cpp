// A workload's containers on container hosts: image, command, ports, resources, mounts and
// env, with valueFrom (ConfigMap and Secret keys, the downward API) resolved from the files.
#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <optional>

#include "from_manifest_internal.hpp"
#include "gedge/quantity.hpp"

namespace gedge::svc::detail::from_manifest {

// A key of a ConfigMap or Secret of the same manifest stream (same namespace) for env
// valueFrom; nullptr for an optional reference whose object or key is absent.
Result<const std::string*> Translator::key_ref(const json& ref, const std::string& rp,
                                               const std::string& kind,
                                               std::map<std::string, std::string>& data) const {
  GEDGE_TRY(only(ref, rp, {"name", "key", "optional"}));
  std::string name = ref.value("name", ""), key = ref.value("key", "");
  bool optional =
      ref.contains("optional") && ref["optional"].is_boolean() && ref["optional"].get<bool>();
  const manifest::Object* found = find(kind, name);
  if (!found) {
    if (optional) return nullptr;
    return std::unexpected(w.source.error_at(
        rp + "/name", fmt::format("{} '{}' is not in the manifests", kind, name),
        fmt::format("on container hosts a {} comes from the same files as the workload", kind)));
  }
  if (kind == "ConfigMap") {  // env takes data keys only (as Kubernetes does)
    const json& d = found->json().contains("data") ? found->json()["data"] : json::object();
    if (d.is_object() && d.contains(key) && d[key].is_string()) data[key] = d[key];
  } else {
    GEDGE_TRY_ASSIGN(data, object_data(*found));
  }
  auto it = data.find(key);
  if (it == data.end()) {
    if (optional) return nullptr;
    return std::unexpected(w.source.error_at(
        rp + "/key", fmt::format("{} '{}' ({}) has no {}key '{}'", kind, name, found->where(),
                                 kind == "ConfigMap" ? "data " : "", key)));
  }
  return &it->second;
}

// The pod template's metadata (a Pod's own); an empty object when absent.
const json& Translator::pod_metadata() const {
  static const json none = json::object();
  std::string pp = manifest::pod_spec_pointer(w);
  json::json_pointer jp(pp.substr(0, pp.size() - std::string("/spec").size()) + "/metadata");
  return w.json().contains(jp) && w.json()[jp].is_object() ? w.json()[jp] : none;
}

// env valueFrom.fieldRef (the downward API): what is known before the pod runs and means the
// same on a device; the rest is refused naming the field.
Result<json> Translator::field_ref(const json& ref, const std::string& rp) const {
  GEDGE_TRY(only(ref, rp, {"fieldPath", "apiVersion"}));
  std::string path = ref.value("fieldPath", "");
  if (path == "metadata.name" || path == "spec.nodeName" || path == "status.hostIP")
    return json{{"field", path}};  // the replica's name, its device's name and address
  if (path == "metadata.namespace")
    return json{{"value", w.namespace_.empty() ? "default" : w.namespace_}};
  for (const char* map : {"labels", "annotations"}) {
    std::string pre = fmt::format("metadata.{}['", map);
    if (path.starts_with(pre) && path.ends_with("']") && path.size() > pre.size() + 2) {
      std::string key = path.substr(pre.size(), path.size() - pre.size() - 2);
      const json& m = pod_metadata().contains(map) ? pod_metadata()[map] : json::object();
      // An absent key is the empty string, as the kubelet gives it.
      return json{{"value", m.is_object() && m.contains(key) && m[key].is_string()
                                ? m[key].get<std::string>()
                                : std::string()}};
    }
  }
  std::string why = path == "metadata.uid"     ? "a replica has no uid"
                    : path == "status.hostIPs" ? "a device has the one address gedge reaches it by"
                    : path == "status.podIP" || path == "status.podIPs"
                        ? "podman assigns the address when the container starts"
                        : "it has no meaning for a podman container";
  return std::unexpected(refuse(rp + "/fieldPath",
                                fmt::format("fieldRef '{}' is not supported ({})", path, why),
                                "set the value in the manifest, or deploy it to a Kubernetes "
                                "cluster"));
}

// env valueFrom.resourceFieldRef: a container's CPU or memory request or limit in units of
// the divisor, rounded up as the kubelet does.
Result<json> Translator::resource_field_ref(const json& ref, const std::string& rp,
                                            const json& self) const {
  GEDGE_TRY(only(ref, rp, {"containerName", "resource", "divisor"}));
  const json* c = &self;
  if (ref.contains("containerName") && ref["containerName"] != self.value("name", "")) {
    c = nullptr;
    for (const auto& other : (*manifest::pod_spec(w))["containers"])
      if (other.value("name", "") == ref["containerName"]) c = &other;
    if (!c)
      return std::unexpected(
          w.source.error_at(rp + "/containerName",
                            fmt::format("no container named '{}'", ref["containerName"].dump())));
  }
  std::string res = ref.value("resource", "");
  auto dot = res.find('.');
  std::string part = res.substr(0, dot), name = dot == std::string::npos ? "" : res.substr(dot + 1);
  if ((part != "limits" && part != "requests") || (name != "cpu" && name != "memory"))
    return std::unexpected(
        refuse(rp + "/resource", fmt::format("resourceFieldRef '{}' is not supported", res)));
  const json& r = c->contains("resources") ? (*c)["resources"] : json::object();
  auto get = [&](const char* which) -> std::optional<json> {
    if (r.is_object() && r.contains(which) && r[which].is_object() && r[which].contains(name))
      return r[which][name];
    return std::nullopt;
  };
  std::optional<json> q = get(part.c_str());
  if (!q && part == "requests") q = get("limits");  // a missing request defaults to the limit
  if (!q)
    return std::unexpected(
        refuse(rp + "/resource",
               fmt::format("resourceFieldRef '{}' of a container without {}.{} is not supported "
                           "(Kubernetes would give the node's allocatable)",
                           res, part, name),
               "set the container's resources, or deploy it to a Kubernetes cluster"));
  auto value = quantity_value(quantity_text(*q));
  auto divisor = quantity_value(ref.contains("divisor") ? quantity_text(ref["divisor"]) : "1");
  if (!value || !divisor || *divisor <= 0)
    return std::unexpected(w.source.error_at(rp, "resourceFieldRef: not a valid quantity"));
  long double v = *value / *divisor;
  return json{{"value", fmt::format("{}", static_cast<long long>(std::ceil(v - 1e-9L)))}};
}

// env valueFrom, as the env entry's source: a ConfigMap key's value byte for byte
// ({value}), or a Secret key's value as a podman secret ({secret: NAME}, the value in
// `extras`, never in the document); nullopt for an optional reference that is absent.
Result<std::optional<json>> Translator::value_from(const json& vf, const std::string& ptr,
                                                   const std::string& var, const json& self) const {
  GEDGE_TRY(only(vf, ptr, {"configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef"}));
  if (vf.size() != 1 || !vf.begin().value().is_object())
    return std::unexpected(w.source.error_at(
        ptr, "valueFrom needs one of configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef"));
  if (vf.contains("fieldRef")) {
    GEDGE_TRY_ASSIGN(auto v, field_ref(vf["fieldRef"], ptr + "/fieldRef"));
    return std::optional<json>{v};
  }
  if (vf.contains("resourceFieldRef")) {
    GEDGE_TRY_ASSIGN(auto v,
                     resource_field_ref(vf["resourceFieldRef"], ptr + "/resourceFieldRef", self));
    return std::optional<json>{v};
  }
  bool secret = vf.contains("secretKeyRef");
  std::map<std::string, std::string> data;
  GEDGE_TRY_ASSIGN(const std::string* value,
                   key_ref(vf.begin().value(), ptr + "/" + vf.begin().key(),
                           secret ? "Secret" : "ConfigMap", data));
  if (!value) return std::optional<json>{};
  if (!secret) return std::optional<json>{json{{"value", *value}}};
  std::string rp = ptr + "/secretKeyRef";
  if (value->empty() || value->size() >= 512000)  // podman's bounds for a secret
    return std::unexpected(refuse(rp + "/key",
                                  "an empty Secret value (or one of 500 KiB or more) "
                                  "is not supported as an environment value"));
  if (value->find('\0') != std::string::npos)
    return std::unexpected(w.source.error_at(rp + "/key",
                                             "the Secret's value holds a NUL byte, which an "
                                             "environment variable cannot"));
  std::string name = fmt::format(
      "gedge-{}-{}", w.name, secret_digest(fmt::format("gedge-env:{}:{}", w.name, var), *value));
  if (extras) extras->secrets.push_back({name, *value});
  return std::optional<json>{json{{"secret", name}}};
}

Result<json> Translator::container(const json& c, const std::string& ptr,
                                   const std::map<std::string, json>& mounts_by_volume,
                                   json& volume_mounts) const {
  GEDGE_TRY(only(c, ptr,
                 {"name", "image", "command", "args", "env", "ports", "resources", "volumeMounts",
                  "imagePullPolicy", "terminationMessagePath", "terminationMessagePolicy"}));
  (void)mounts_by_volume;
  json out{{"image", c.value("image", "")}};
  if (c.contains("name")) out["name"] = c["name"];
  if (c.contains("command")) out["command"] = c["command"];
  if (c.contains("args")) out["args"] = c["args"];
  if (c.contains("env")) {
    out["env"] = json::array();
    for (std::size_t i = 0; i < c["env"].size(); ++i) {
      const json& e = c["env"][i];
      std::string ep = ptr + "/env/" + std::to_string(i);
      GEDGE_TRY(only(e, ep, {"name", "value", "valueFrom"}));
      std::string name = e.value("name", "");
      std::optional<json> source = json{{"value", e.value("value", "")}};  // byte for byte
      if (e.contains("valueFrom")) {
        if (e.contains("value"))
          return std::unexpected(
              w.source.error_at(ep + "/valueFrom", "value and valueFrom both given"));
        GEDGE_TRY_ASSIGN(source, value_from(e["valueFrom"], ep + "/valueFrom", name, c));
        if (!source) continue;  // optional, and the key is absent: not set, as Kubernetes does
      }
      bool ok =
          !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_');
      for (char ch : name) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
      if (!ok)
        return std::unexpected(refuse(ep + "/name",
                                      fmt::format("env name '{}' is not supported", name),
                                      "podman takes names of letters, digits and '_'"));
      json entry{{"name", name}};
      entry.update(*source);
      out["env"].push_back(std::move(entry));
    }
  }
  if (c.contains("ports")) {
    out["ports"] = json::array();
    for (std::size_t i = 0; i < c["ports"].size(); ++i) {
      const json& p = c["ports"][i];
      std::string pp = ptr + "/ports/" + std::to_string(i);
      GEDGE_TRY(only(p, pp, {"containerPort", "hostPort", "protocol", "name"}));
      json port{{"containerPort", p.value("containerPort", 0)}};
      if (p.contains("protocol")) port["protocol"] = p["protocol"];
      // One replica per device: the container port is published on the host (hostPort if given).
      port["externalPort"] = p.value("hostPort", p.value("containerPort", 0));
      out["ports"].push_back(port);
    }
  }
  // Explicit (possibly empty) requests and limits: gedge's defaults must not apply.
  json res{{"requests", json::object()}, {"limits", json::object()}};
  if (c.contains("resources")) {
    GEDGE_TRY(only(c["resources"], ptr + "/resources", {"requests", "limits"}));
    for (const char* part : {"requests", "limits"}) {
      if (!c["resources"].contains(part)) continue;
      const json& m = c["resources"][part];
      for (auto it = m.begin(); it != m.end(); ++it) {
        std::string rp = ptr + "/resources/" + part + "/" +
                         (it.key() == "nvidia.com/gpu" ? "nvidia.com~1gpu" : it.key());
        if (it.key() != "cpu" && it.key() != "memory" && it.key() != "nvidia.com/gpu")
          return std::unexpected(
              refuse(rp, fmt::format("resource '{}' is not supported", it.key())));
        res[part][it.key()] = gedge::quantity_text(it.value());
      }
    }
    // Kubernetes: a missing request defaults to the limit.
    for (auto it = res["limits"].begin(); it != res["limits"].end(); ++it)
      if (!res["requests"].contains(it.key())) res["requests"][it.key()] = it.value();
  }
  out["resources"] = res;
  if (c.contains("volumeMounts")) {
    for (std::size_t i = 0; i < c["volumeMounts"].size(); ++i) {
      const json& m = c["volumeMounts"][i];
      std::string mp = ptr + "/volumeMounts/" + std::to_string(i);
      GEDGE_TRY(only(m, mp, {"name", "mountPath", "readOnly", "subPath"}));
      volume_mounts.push_back({{"ptr", mp},
                               {"name", m.value("name", "")},
                               {"mountPath", m.value("mountPath", "")},
                               {"readOnly", m.value("readOnly", false)},
                               {"subPath", m.value("subPath", "")}});
    }
  }
  return out;
}

}  // namespace gedge::svc::detail::from_manifest
