// Kubernetes workloads on container hosts: each Pod template becomes a gedge service (then the
// usual podman plan), field by field. Whatever podman cannot honour is refused with the field's
// file, line and path (exit 2), never dropped.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <set>

#include "deploy_internal.hpp"
#include "gedge/quantity.hpp"
#include "gedge/runtime.hpp"

namespace gedge::svc::detail {

namespace {

using nlohmann::json;

// Strict base64 (RFC 4648, padding required as Kubernetes writes it); nullopt when malformed.
std::optional<std::string> base64_decode(const std::string& in) {
  static const std::string abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      char ch = in[i + k];
      if (ch == '=' && i + 4 == in.size() && k >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      auto pos = abc.find(ch);
      if (pos == std::string::npos || pad) return std::nullopt;
      v = (v << 6) | static_cast<uint32_t>(pos);
    }
    out.push_back(static_cast<char>((v >> 16) & 0xff));
    if (pad < 2) out.push_back(static_cast<char>((v >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xff));
  }
  return out;
}

// A relative file path inside a volume: no absolute, empty, '.' or '..' component.
bool safe_relative(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.size() > 1024) return false;
  std::size_t i = 0;
  while (i <= p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string c = p.substr(i, j - i);
    if (c.empty() || c == "." || c == "..") return false;
    for (char ch : c)
      if (static_cast<unsigned char>(ch) < 0x20) return false;
    i = j + 1;
  }
  return true;
}

// A digest of secret bytes for a name that others see (podman's argv, the record, a path):
// PBKDF2-HMAC-SHA256 salted with what it names, slow enough that a guessable value is not cheap
// to confirm from the name. 16 hex digits.
std::string secret_digest(const std::string& salt, const std::string& bytes) {
  unsigned char out[8];
  PKCS5_PBKDF2_HMAC(bytes.data(), static_cast<int>(bytes.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), 100000, EVP_sha256(), sizeof out, out);
  std::string hex;
  for (unsigned char b : out) hex += fmt::format("{:02x}", b);
  return hex;
}

struct Translator {
  const manifest::Object& w;
  bool placed;
  const manifest::Input& in;  // the whole stream: ConfigMaps and Secrets referred to
  HostObjects* extras = nullptr;
  std::set<const manifest::Object*>* used = nullptr;  // companions a workload refers to

  const manifest::Object* find(const std::string& kind, const std::string& name) const {
    std::string ns = w.namespace_.empty() ? "default" : w.namespace_;
    for (const auto& o : in.objects)
      if (o.kind == kind && o.name == name &&
          (o.namespace_.empty() ? "default" : o.namespace_) == ns) {
        if (used) used->insert(&o);
        return &o;
      }
    return nullptr;
  }

  // The PersistentVolume of the files a claim binds: the one its spec.volumeName names, or one
  // whose claimRef names it (same namespace); nullptr when none.
  const manifest::Object* bound_volume(const manifest::Object& pvc) const {
    std::string ns = pvc.namespace_.empty() ? "default" : pvc.namespace_;
    std::string want;
    const json& ps = pvc.json().contains("spec") ? pvc.json()["spec"] : json::object();
    if (ps.is_object() && ps.contains("volumeName") && ps["volumeName"].is_string())
      want = ps["volumeName"];
    for (const auto& o : in.objects) {
      if (o.kind != "PersistentVolume") continue;
      const json& spec = o.json().contains("spec") ? o.json()["spec"] : json::object();
      const json& ref = spec.is_object() && spec.contains("claimRef") ? spec["claimRef"] : json();
      bool by_ref = ref.is_object() && ref.value("name", "") == pvc.name &&
                    ref.value("namespace", "default") == ns;
      if ((!want.empty() && o.name == want) || (want.empty() && by_ref)) {
        if (used) used->insert(&o);
        return &o;
      }
    }
    return nullptr;
  }

  // A claim's PersistentVolume on container hosts: nfs (a podman volume that mounts the export)
  // or hostPath (a bind mount); any other source or field that changes the mount is refused,
  // naming the PersistentVolume's file, line and field.
  Result<void> from_persistent_volume(const manifest::Object& pv, json& gv) const {
    auto at = [&](const std::string& ptr, const std::string& why) {
      return std::unexpected(
          pv.source.error_at(ptr, fmt::format("{} on container hosts", why),
                             "deploy this manifest to a Kubernetes cluster, or drop the field"));
    };
    const json& spec = pv.json().contains("spec") ? pv.json()["spec"] : json::object();
    if (!spec.is_object()) return at("/spec", "a PersistentVolume without a spec is not supported");
    static const std::set<std::string> ok{"capacity",
                                          "accessModes",
                                          "persistentVolumeReclaimPolicy",
                                          "storageClassName",
                                          "claimRef",
                                          "volumeMode",
                                          "nfs",
                                          "hostPath"};
    for (auto it = spec.begin(); it != spec.end(); ++it)
      if (!ok.contains(it.key()))
        return at("/spec/" + it.key(), fmt::format("'{}' is not supported", it.key()));
    if (spec.contains("volumeMode") && spec["volumeMode"] != "Filesystem")
      return at("/spec/volumeMode", "a block volume is not supported");
    if (spec.contains("nfs") && spec["nfs"].is_object()) {
      for (auto it = spec["nfs"].begin(); it != spec["nfs"].end(); ++it)
        if (it.key() != "server" && it.key() != "path" && it.key() != "readOnly")
          return at("/spec/nfs/" + it.key(), fmt::format("'{}' is not supported", it.key()));
      gv["nfs"] = {{"server", spec["nfs"].value("server", "")},
                   {"path", spec["nfs"].value("path", "")}};
      if (spec["nfs"].value("readOnly", false)) gv["readOnly"] = true;
    } else if (spec.contains("hostPath") && spec["hostPath"].is_object()) {
      gv["hostPath"] = spec["hostPath"].value("path", "");
    } else {
      return at("/spec", "a PersistentVolume other than nfs or hostPath is not supported");
    }
    return {};
  }

  // A ConfigMap's or Secret's keys and their bytes (Secret: data base64, stringData wins;
  // ConfigMap: data, binaryData base64). Errors never show a value.
  static Result<std::map<std::string, std::string>> object_data(const manifest::Object& o) {
    bool secret = o.kind == "Secret";
    std::map<std::string, std::string> data;
    const json& doc = o.json();
    for (const char* part : {"data", "binaryData", "stringData"}) {
      if (!doc.contains(part) || !doc[part].is_object()) continue;
      bool b64 = secret ? std::string(part) == "data" : std::string(part) == "binaryData";
      for (auto it = doc[part].begin(); it != doc[part].end(); ++it) {
        std::string kp = fmt::format("/{}/{}", part, it.key());
        if (!it.value().is_string())
          return std::unexpected(o.source.error_at(kp, "expected a string"));
        if (!b64) {
          data[it.key()] = it.value().get<std::string>();
        } else if (auto d = base64_decode(it.value().get<std::string>())) {
          data[it.key()] = *d;
        } else {
          return std::unexpected(o.source.error_at(kp, "not base64"));  // never the value itself
        }
      }
    }
    return data;
  }

  Result<void> check_mode(const json& m, const std::string& mp, int mode,
                          const std::string& kind) const {
    if (!m.is_number_integer() || m.get<int>() != mode)
      return std::unexpected(
          refuse(mp, fmt::format("a file mode other than {:04o} is not supported", mode),
                 fmt::format("on container hosts {} files are root's, mode {:04o}: drop the field",
                             kind, mode)));
    return {};
  }

  // One ConfigMap or Secret source of a volume (or of a projected volume): its files from the
  // object in the stream, added to `fs`. `name_key`: secretName (a secret volume) or name.
  Result<void> source_files(const json& src, const std::string& sp, bool secret,
                            const std::string& name_key, bool default_mode, int mode,
                            FileSet& fs) const {
    std::string kind = secret ? "Secret" : "ConfigMap";
    if (!src.is_object()) return std::unexpected(w.source.error_at(sp, "expected a mapping"));
    std::set<std::string> ok{name_key, "items", "optional"};
    if (default_mode) ok.insert("defaultMode");
    GEDGE_TRY(only(src, sp, ok));
    if (src.contains("defaultMode"))
      GEDGE_TRY(check_mode(src["defaultMode"], sp + "/defaultMode", mode, kind));
    std::string oname = src.value(name_key, "");
    bool optional =
        src.contains("optional") && src["optional"].is_boolean() && src["optional"].get<bool>();
    const manifest::Object* o = find(kind, oname);
    if (!o && !optional)
      return std::unexpected(w.source.error_at(
          sp + "/" + name_key, fmt::format("{} '{}' is not in the manifests", kind, oname),
          fmt::format("on container hosts a {} comes from the same files as the workload", kind)));
    std::map<std::string, std::string> data;
    if (o) {
      GEDGE_TRY_ASSIGN(data, object_data(*o));
    }
    auto add = [&](const std::string& path, const std::string& bytes,
                   const std::string& ptr) -> Result<void> {
      for (const auto& f : fs.files)
        if (f.first == path || f.first.starts_with(path + "/") || path.starts_with(f.first + "/"))
          return std::unexpected(w.source.error_at(
              ptr, fmt::format("path '{}' collides with '{}' in the volume", path, f.first)));
      fs.files.emplace_back(path, bytes);
      return {};
    };
    if (src.contains("items")) {
      for (std::size_t i = 0; i < src["items"].size(); ++i) {
        const json& it = src["items"][i];
        std::string ip = fmt::format("{}/items/{}", sp, i);
        GEDGE_TRY(only(it, ip, {"key", "path", "mode"}));
        if (it.contains("mode")) GEDGE_TRY(check_mode(it["mode"], ip + "/mode", mode, kind));
        std::string key = it.value("key", ""), path = it.value("path", "");
        if (!safe_relative(path))
          return std::unexpected(w.source.error_at(
              ip + "/path",
              fmt::format("path '{}' is not a relative path inside the volume", path)));
        auto d = data.find(key);
        if (d == data.end()) {
          if (!o || optional) continue;
          return std::unexpected(w.source.error_at(
              ip + "/key",
              fmt::format("{} '{}' ({}) has no key '{}'", kind, oname, o->where(), key)));
        }
        GEDGE_TRY(add(path, d->second, ip + "/path"));
      }
    } else {
      for (const auto& [k, bytes] : data) {
        if (!safe_relative(k) || k.find('/') != std::string::npos)
          return std::unexpected(
              o->source.error_at("/data", fmt::format("key '{}' is not a file name", k)));
        GEDGE_TRY(add(k, bytes, sp));
      }
    }
    return {};
  }

  // A configMap, secret or projected (configMap and secret sources) volume: its files and the
  // directory they go to on the device, named with a digest of the contents.
  Result<FileSet> files_volume(const json& v, const std::string& p,
                               const std::string& vname) const {
    bool ok_name = !vname.empty() && vname.size() <= 63;
    for (char ch : vname)
      ok_name = ok_name && (std::islower(static_cast<unsigned char>(ch)) ||
                            std::isdigit(static_cast<unsigned char>(ch)) || ch == '-');
    if (!ok_name)
      return std::unexpected(
          refuse(p + "/name", fmt::format("volume name '{}' is not a DNS label", vname)));
    FileSet fs;
    if (v.contains("projected")) {
      const json& pj = v["projected"];
      std::string pp = p + "/projected";
      if (!pj.is_object()) return std::unexpected(w.source.error_at(pp, "expected a mapping"));
      GEDGE_TRY(only(pj, pp, {"sources", "defaultMode"}));
      json sources = pj.value("sources", json::array());
      if (!sources.is_array())
        return std::unexpected(w.source.error_at(pp + "/sources", "expected a list"));
      // One directory, one mode: a Secret among the sources makes every file 0600.
      for (const auto& s : sources)
        fs.secret = fs.secret || (s.is_object() && s.contains("secret"));
      int mode = fs.secret ? 0600 : 0644;
      if (pj.contains("defaultMode"))
        GEDGE_TRY(check_mode(pj["defaultMode"], pp + "/defaultMode", mode,
                             fs.secret ? "projected Secret" : "ConfigMap"));
      for (std::size_t i = 0; i < sources.size(); ++i) {
        std::string sp = fmt::format("{}/sources/{}", pp, i);
        if (!sources[i].is_object())
          return std::unexpected(w.source.error_at(sp, "expected a mapping"));
        GEDGE_TRY(only(sources[i], sp, {"configMap", "secret"}));
        if (sources[i].size() != 1)
          return std::unexpected(
              w.source.error_at(sp, "a projection needs exactly one of configMap, secret"));
        bool sec = sources[i].contains("secret");
        GEDGE_TRY(source_files(sources[i].begin().value(), sp + "/" + sources[i].begin().key(), sec,
                               "name", false, mode, fs));
      }
    } else {
      fs.secret = v.contains("secret");
      GEDGE_TRY(source_files(fs.secret ? v["secret"] : v["configMap"],
                             p + (fs.secret ? "/secret" : "/configMap"), fs.secret,
                             fs.secret ? "secretName" : "name", true, fs.secret ? 0600 : 0644, fs));
    }
    std::string all;
    for (const auto& [path, bytes] : fs.files)
      all += fmt::format("{}:{}\n", runtime::sha256_hex(path), runtime::sha256_hex(bytes));
    all += fs.secret ? "secret" : "configmap";
    std::string digest = fs.secret
                             ? secret_digest(fmt::format("gedge-files:{}:{}", w.name, vname), all)
                             : runtime::sha256_hex(all).substr(0, 16);
    fs.dir = fmt::format("{}/{}/{}-{}", kFilesRoot, w.name, vname, digest);
    return fs;
  }

  Error refuse(const std::string& ptr, const std::string& why, const std::string& hint = "") const {
    return w.source.error_at(
        ptr, fmt::format("{} on container hosts", why),
        hint.empty() ? "deploy this manifest to a Kubernetes cluster, or drop the field" : hint);
  }

  // Fields of `obj` at `ptr` must be in `ok`; `ignored` are accepted as having no effect here.
  Result<void> only(const json& obj, const std::string& ptr,
                    const std::set<std::string>& ok) const {
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (!ok.contains(it.key()))
        return std::unexpected(
            refuse(ptr + "/" + it.key(), fmt::format("'{}' is not supported", it.key())));
    return {};
  }

  // A key of a ConfigMap or Secret of the same manifest stream (same namespace) for env
  // valueFrom; nullptr for an optional reference whose object or key is absent.
  Result<const std::string*> key_ref(const json& ref, const std::string& rp,
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

  // env valueFrom, as the env entry's source: a ConfigMap key's value byte for byte
  // ({value}), or a Secret key's value as a podman secret ({secret: NAME}, the value in
  // `extras`, never in the document); nullopt for an optional reference that is absent.
  // The pod template's metadata (a Pod's own); an empty object when absent.
  const json& pod_metadata() const {
    static const json none = json::object();
    std::string pp = manifest::pod_spec_pointer(w);
    json::json_pointer jp(pp.substr(0, pp.size() - std::string("/spec").size()) + "/metadata");
    return w.json().contains(jp) && w.json()[jp].is_object() ? w.json()[jp] : none;
  }

  // env valueFrom.fieldRef (the downward API): what is known before the pod runs and means the
  // same on a device; the rest is refused naming the field.
  Result<json> field_ref(const json& ref, const std::string& rp) const {
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
    std::string why = path == "metadata.uid" ? "a replica has no uid"
                      : path == "status.hostIPs"
                          ? "a device has the one address gedge reaches it by"
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
  Result<json> resource_field_ref(const json& ref, const std::string& rp, const json& self) const {
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
    std::string part = res.substr(0, dot),
                name = dot == std::string::npos ? "" : res.substr(dot + 1);
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

  Result<std::optional<json>> value_from(const json& vf, const std::string& ptr,
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

  Result<json> container(const json& c, const std::string& ptr,
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

  // A NetworkAttachmentDefinition as a gedge network on container hosts: only a macvlan CNI
  // config with a host-local subnet is a podman network; anything else is refused naming the
  // object's file, line and the config's key.
  Result<json> network_of(const manifest::Object& nad) const {
    auto at = [&](const std::string& what) {
      return std::unexpected(nad.source.error_at(
          "/spec/config", fmt::format("{} on container hosts", what),
          "on container hosts a network is a podman macvlan network: deploy this manifest to a "
          "Kubernetes cluster for other CNI configurations"));
    };
    const json& md = nad.json().contains("metadata") ? nad.json()["metadata"] : json::object();
    if (md.is_object() && md.contains("annotations") && md["annotations"].is_object() &&
        md["annotations"].contains("k8s.v1.cni.cncf.io/resourceName"))
      return std::unexpected(nad.source.error_at(
          "/metadata/annotations/k8s.v1.cni.cncf.io~1resourceName",
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
      return std::unexpected(
          nad.source.error_at("/spec/config", "spec.config is not a JSON object"));
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
  Result<json> networks() const {
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
        return std::unexpected(
            w.source.error_at(ptr, "the networks annotation is not a JSON list"));
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
      std::size_t i = 0;
      while (i <= text.size()) {
        std::size_t j = text.find(',', i);
        if (j == std::string::npos) j = text.size();
        std::string item = text.substr(i, j - i);
        item.erase(0, item.find_first_not_of(" \t\n"));
        item.erase(item.find_last_not_of(" \t\n") + 1);
        i = j + 1;
        if (item.empty()) continue;
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

  Result<json> service() const {
    const json& top = w.json();
    if (w.kind == "DaemonSet" || w.kind == "Job")
      return std::unexpected(
          refuse("/kind", fmt::format("a {} is not supported", w.kind),
                 "a Deployment (or a Pod) runs its replicas on the cluster's devices"));
    GEDGE_TRY(only(top, "", {"apiVersion", "kind", "metadata", "spec", "status"}));
    json doc{{"name", w.name}};  // the namespace is the pipeline's (hosts_spec)
    if (w.kind != "Pod") {
      const json& sp = top["spec"];
      GEDGE_TRY(only(
          sp, "/spec",
          {"replicas", "selector", "template", "strategy", "revisionHistoryLimit",
           "progressDeadlineSeconds", "serviceName", "podManagementPolicy", "updateStrategy"}));
      doc["replicas"] = sp.value("replicas", 1);
    }
    const json* ps = manifest::pod_spec(w);
    std::string pp = manifest::pod_spec_pointer(w);
    GEDGE_TRY(only(*ps, pp,
                   {"containers", "restartPolicy", "volumes", "nodeSelector", "affinity",
                    "tolerations", "dnsPolicy", "schedulerName", "terminationGracePeriodSeconds"}));
    for (const char* k : {"nodeSelector", "affinity", "tolerations"})
      if (ps->contains(k) && !placed)
        return std::unexpected(
            refuse(pp + "/" + k, fmt::format("'{}' without a placement is not supported", k),
                   "place it first: gedge sched place FILE -o json > plan.json, then "
                   "gedge svc deploy FILE --cluster C --placement plan.json"));
    if (ps->value("restartPolicy", "Always") == "Never")
      return std::unexpected(refuse(pp + "/restartPolicy", "restartPolicy Never is not supported"));
    if (ps->value("dnsPolicy", "ClusterFirst") != "ClusterFirst")
      return std::unexpected(
          refuse(pp + "/dnsPolicy", "a dnsPolicy other than ClusterFirst is not supported"));
    if (ps->contains("schedulerName") && (*ps)["schedulerName"] != "default-scheduler")
      return std::unexpected(refuse(pp + "/schedulerName", "a custom scheduler is not supported"));
    if (ps->contains("terminationGracePeriodSeconds") &&
        (*ps)["terminationGracePeriodSeconds"] != 30)
      return std::unexpected(refuse(pp + "/terminationGracePeriodSeconds",
                                    "a grace period other than 30 s is not supported"));
    if (ps->contains("initContainers"))
      return std::unexpected(refuse(pp + "/initContainers", "init containers are not supported"));

    std::map<std::string, json> volumes;  // name -> pod volume
    std::map<std::string, std::string> vptr;
    if (ps->contains("volumes"))
      for (std::size_t i = 0; i < (*ps)["volumes"].size(); ++i) {
        const json& v = (*ps)["volumes"][i];
        volumes[v.value("name", "")] = v;
        vptr[v.value("name", "")] = pp + "/volumes/" + std::to_string(i);
      }
    json mounts = json::array();
    json containers = json::array();
    for (std::size_t i = 0; i < (*ps)["containers"].size(); ++i) {
      json cm = json::array();
      GEDGE_TRY_ASSIGN(auto c, container((*ps)["containers"][i],
                                         pp + "/containers/" + std::to_string(i), volumes, cm));
      containers.push_back(std::move(c));
      mounts.push_back(cm);
    }
    doc["containers"] = containers;
    // gedge mounts a volume in every container of the service: the containers must agree. Each
    // distinct mount (volume, path, subPath) is one gedge volume; a pod volume mounted several
    // times is named NAME, NAME-2, ...
    json vols = json::array();
    std::set<std::string> seen;                     // mounts made: name, mountPath, subPath
    std::set<std::string> gnames;                   // gedge volume names taken
    std::map<std::string, std::string> first_name;  // pod volume -> its first gedge volume
    std::map<std::string, FileSet> filesets;        // pod volume -> its files (made once)
    for (const auto& [n, v] : volumes) gnames.insert(n);
    for (std::size_t i = 0; i < mounts.size(); ++i)
      for (const auto& m : mounts[i]) {
        std::string name = m["name"];
        for (std::size_t k = 0; k < mounts.size(); ++k) {
          bool same = std::any_of(mounts[k].begin(), mounts[k].end(), [&](const json& o) {
            return o["name"] == m["name"] && o["mountPath"] == m["mountPath"] &&
                   o["readOnly"] == m["readOnly"] && o["subPath"] == m["subPath"];
          });
          if (!same)
            return std::unexpected(refuse(
                m["ptr"],
                fmt::format("volume '{}' mounted by some containers only (or elsewhere)", name),
                "on container hosts every container of the pod mounts the same volumes at the same "
                "paths"));
        }
        std::string sub = m["subPath"];
        if (!seen.insert(name + "\n" + m["mountPath"].get<std::string>() + "\n" + sub).second)
          continue;
        auto it = volumes.find(name);
        if (it == volumes.end())
          return std::unexpected(w.source.error_at(m["ptr"].get<std::string>() + "/name",
                                                   fmt::format("no volume named '{}'", name)));
        const json& v = it->second;
        std::string p = vptr[name];
        std::string sp = m["ptr"].get<std::string>() + "/subPath";
        if (!sub.empty() && !safe_relative(sub))
          return std::unexpected(w.source.error_at(
              sp, fmt::format("subPath '{}' is not a relative path inside the volume", sub)));
        if (sub.find_first_of(":,") != std::string::npos)
          return std::unexpected(
              refuse(sp, fmt::format("subPath '{}' (a ':' or ',' in it) is not supported", sub),
                     "podman's -v syntax cannot carry those characters: rename the path"));
        std::string gname = name;
        if (first_name.contains(name))
          for (int n = 2; gnames.contains(gname); ++n) gname = fmt::format("{}-{}", name, n);
        else
          first_name[name] = name;
        gnames.insert(gname);
        json gv{{"name", gname}, {"mountPath", m["mountPath"]}};
        if (m["readOnly"].get<bool>()) gv["readOnly"] = true;
        if (v.contains("persistentVolumeClaim")) {
          if (!sub.empty())
            return std::unexpected(
                refuse(sp, "subPath on a persistentVolumeClaim volume is not supported",
                       "mount the whole claim, or deploy this manifest to a Kubernetes cluster"));
          std::string claim = v["persistentVolumeClaim"].value("claimName", "");
          const manifest::Object* pvc = find("PersistentVolumeClaim", claim);  // in the files?
          if (v["persistentVolumeClaim"].value("readOnly", false)) gv["readOnly"] = true;
          const manifest::Object* pv = pvc ? bound_volume(*pvc) : nullptr;
          if (pv) {  // bound to a PersistentVolume of the files: its source, mounted as such
            GEDGE_TRY(from_persistent_volume(*pv, gv));
          } else {  // a named podman volume (created on first use, kept like a claim)
            gv["claim"] = claim;
          }
        } else if (v.contains("hostPath")) {
          GEDGE_TRY(only(v["hostPath"], p + "/hostPath", {"path", "type"}));
          std::string hp = v["hostPath"].value("path", "");
          while (hp.size() > 1 && hp.back() == '/') hp.pop_back();
          gv["hostPath"] = sub.empty() ? hp : (hp == "/" ? "" : hp) + "/" + sub;
        } else if (v.contains("emptyDir")) {
          // With a subPath: the subdirectory of a fresh scratch volume, i.e. an empty one.
          GEDGE_TRY(only(v["emptyDir"], p + "/emptyDir", {"medium", "sizeLimit"}));
          gv["emptyDir"] = v["emptyDir"];
        } else if (v.contains("configMap") || v.contains("secret") || v.contains("projected")) {
          auto fit = filesets.find(name);
          if (fit == filesets.end()) {
            GEDGE_TRY_ASSIGN(auto fs, files_volume(v, p, name));
            if (extras) extras->files.push_back(fs);
            fit = filesets.emplace(name, std::move(fs)).first;
          }
          const FileSet& fs = fit->second;
          if (!sub.empty() && std::none_of(fs.files.begin(), fs.files.end(), [&](const auto& f) {
                return f.first == sub || f.first.starts_with(sub + "/");
              }))
            return std::unexpected(w.source.error_at(
                sp, fmt::format("subPath '{}' is no file or directory of volume '{}'", sub, name)));
          gv["hostPath"] = sub.empty() ? fs.dir : fs.dir + "/" + sub;  // one file: a file mount
          gv["readOnly"] = true;                                       // as Kubernetes mounts them
        } else if (v.contains("nfs")) {  // a podman volume that mounts the export
          if (!sub.empty())
            return std::unexpected(refuse(sp, "subPath on an nfs volume is not supported",
                                          "mount a subdirectory of the export instead: nfs.path"));
          GEDGE_TRY(only(v["nfs"], p + "/nfs", {"server", "path", "readOnly"}));
          gv["nfs"] = {{"server", v["nfs"].value("server", "")},
                       {"path", v["nfs"].value("path", "")}};
          if (v["nfs"].value("readOnly", false)) gv["readOnly"] = true;
        } else {
          std::string kind = "?";
          for (auto vit = v.begin(); vit != v.end(); ++vit)
            if (vit.key() != "name") kind = vit.key();
          return std::unexpected(
              refuse(p + "/" + kind, fmt::format("a {} volume is not supported", kind)));
        }
        vols.push_back(gv);
      }
    if (!vols.empty()) doc["volumes"] = vols;
    GEDGE_TRY_ASSIGN(auto nets, networks());
    if (!nets.empty()) doc["networks"] = nets;
    return doc;
  }
};

// A Service of the manifests on container hosts: no object of its own (each device publishes
// its replica's container ports), so it must select workloads of the same files and every port
// must target a port one of their containers exposes; otherwise the Service would promise what
// the devices do not serve. nullopt: fine; an Error names the Service's file, line and port.
std::optional<Error> check_service(const manifest::Object& svc,
                                   const std::vector<const manifest::Object*>& ws) {
  auto ns_of = [](const manifest::Object& o) {
    return o.namespace_.empty() ? std::string("default") : o.namespace_;
  };
  const json& spec = svc.json().contains("spec") ? svc.json()["spec"] : json::object();
  if (!spec.is_object()) return svc.source.error_at("/spec", "a Service without a spec");
  json sel = spec.contains("selector") ? spec["selector"] : json();
  if (!sel.is_object() || sel.empty())
    return svc.source.error_at(
        "/spec/selector",
        fmt::format("Service '{}' has no selector: on container hosts it would route nowhere",
                    svc.name),
        "select the workloads' pod labels, or deploy this manifest to a Kubernetes cluster");
  std::vector<const manifest::Object*> picked;
  for (const auto* w : ws) {
    if (ns_of(*w) != ns_of(svc)) continue;
    std::string pp = manifest::pod_spec_pointer(*w);
    json::json_pointer lp(pp.substr(0, pp.size() - std::string("/spec").size()) +
                          "/metadata/labels");
    const json& labels = w->json().contains(lp) ? w->json()[lp] : json::object();
    bool all = labels.is_object();
    for (auto it = sel.begin(); all && it != sel.end(); ++it)
      all = labels.contains(it.key()) && labels[it.key()] == it.value();
    if (all) picked.push_back(w);
  }
  if (picked.empty())
    return svc.source.error_at(
        "/spec/selector",
        fmt::format("Service '{}' selects no workload of the manifests", svc.name),
        "its selector must match a workload's pod labels (spec.template.metadata.labels)");
  const json& ports = spec.contains("ports") ? spec["ports"] : json::array();
  for (std::size_t i = 0; ports.is_array() && i < ports.size(); ++i) {
    const json& p = ports[i];
    if (!p.is_object()) continue;
    json target = p.contains("targetPort") ? p["targetPort"] : p.value("port", json());
    std::string proto = p.value("protocol", "TCP");
    bool found = false;
    for (const auto* w : picked) {
      const json* ps = manifest::pod_spec(*w);
      if (!ps || !ps->contains("containers")) continue;
      for (const auto& c : (*ps)["containers"])
        for (const auto& cp : c.value("ports", json::array())) {
          if (cp.value("protocol", "TCP") != proto) continue;
          if (target.is_number_integer() && cp.value("containerPort", -1) == target) found = true;
          if (target.is_string() && cp.value("name", "") == target) found = true;
        }
    }
    if (found) continue;
    std::vector<std::string> names;
    for (const auto* w : picked) names.push_back(fmt::format("{} '{}'", w->kind, w->name));
    return svc.source.error_at(
        fmt::format("/spec/ports/{}/{}", i, p.contains("targetPort") ? "targetPort" : "port"),
        fmt::format("Service '{}' targets {} port {}, which no container of {} exposes", svc.name,
                    proto,
                    target.is_string() ? "'" + target.get<std::string>() + "'" : target.dump(),
                    fmt::join(names, ", ")),
        "on container hosts a Service is the containers' published ports: add the port to the "
        "container's ports, or fix the targetPort");
  }
  return std::nullopt;
}

}  // namespace

Result<Spec> hosts_spec(const Spec& spec, bool placed, std::map<std::string, HostObjects>* extras,
                        std::vector<std::string>* unused) {
  json stages = json::array();
  std::vector<const manifest::Object*> ws = spec.manifest.workloads();
  if (ws.empty())
    return fail(ErrorCode::usage, fmt::format("{}: no workload to deploy", spec.manifest.path),
                "a manifest deploy needs a Pod, Deployment, StatefulSet, DaemonSet or Job");
  for (const auto& o : spec.manifest.objects)
    if (o.role != manifest::Role::workload && o.kind != "Service" && o.kind != "ConfigMap" &&
        o.kind != "Secret" && o.kind != "PersistentVolumeClaim" && o.kind != "PersistentVolume" &&
        o.kind != "NetworkAttachmentDefinition")
      return fail(
          ErrorCode::usage,
          fmt::format("{}: {} '{}' is not supported on container hosts", o.where(), o.kind, o.name),
          "deploy this manifest to a Kubernetes cluster");
  std::set<const manifest::Object*> used;
  for (const auto* w : ws) {
    Translator t{*w, placed, spec.manifest, extras ? &(*extras)[w->name] : nullptr, &used};
    GEDGE_TRY_ASSIGN(auto doc, t.service());
    GEDGE_TRY_ASSIGN(auto d, manifest::demand_of(*w));
    if (!d.after.empty() && !(d.after.size() == 1 && d.after[0].empty())) doc["after"] = d.after;
    stages.push_back(std::move(doc));
  }
  for (const auto& o : spec.manifest.objects)
    if (o.kind == "Service")
      if (auto e = check_service(o, ws)) {
        e->code = ErrorCode::usage;
        return std::unexpected(*e);
      }
  // A ConfigMap, Secret or claim exists on container hosts only as what a workload makes of it
  // (files, env, a volume): one that no workload uses would be dropped, so it is an error unless
  // the caller lists it (deploy --allow-unused).
  for (const auto& o : spec.manifest.objects) {
    if ((o.kind != "ConfigMap" && o.kind != "Secret" && o.kind != "PersistentVolumeClaim" &&
         o.kind != "PersistentVolume" && o.kind != "NetworkAttachmentDefinition") ||
        used.contains(&o))
      continue;
    if (unused) {
      unused->push_back(fmt::format("{}: {}/{}", o.where(), o.kind, o.name));
      continue;
    }
    return fail(ErrorCode::usage,
                fmt::format("{}: {} '{}' is used by no workload: on container hosts it would not "
                            "exist",
                            o.where(), o.kind, o.name),
                "on container hosts a ConfigMap, Secret, claim, volume or network exists only as "
                "a workload's files, env, volume or network: drop it from the files, deploy to a "
                "Kubernetes cluster, or pass --allow-unused to deploy the rest without it");
  }
  // Container hosts have no namespaces; the one the manifests name is kept on the record. Workloads
  // in different namespaces would share one record: refused rather than one namespace dropped.
  auto ns_of = [](const manifest::Object* o) {
    return o->namespace_.empty() ? std::string("default") : o->namespace_;
  };
  for (const auto* w : ws)
    if (ns_of(w) != ns_of(ws[0]))
      return fail(
          ErrorCode::usage,
          fmt::format("{}: {} '{}' is in namespace '{}', {} '{}' in '{}'", w->where(), w->kind,
                      w->name, ns_of(w), ws[0]->kind, ws[0]->name, ns_of(ws[0])),
          "on container hosts one manifest deploy is one namespace: deploy them separately");
  json pipeline{{"apiVersion", "gedge/v1"},
                {"kind", "Pipeline"},
                {"name", ws[0]->name},
                {"namespace", ns_of(ws[0])},
                {"stages", stages}};
  auto out = parse_spec(pipeline.dump(), spec.manifest.path);
  if (!out) {
    Error e = out.error();
    e.message = fmt::format("{} (as a container-host service): {}", spec.manifest.path, e.message);
    return std::unexpected(e);
  }
  return out;
}

}  // namespace gedge::svc::detail
