// A workload's volumes on container hosts: configMap, secret and projected volumes as files
// written on the device, and claims bound to a PersistentVolume of the same files.
#include <fmt/format.h>
#include <openssl/evp.h>

#include <cctype>
#include <set>

#include "from_manifest_internal.hpp"
#include "gedge/runtime.hpp"

namespace gedge::svc::detail::from_manifest {

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

// The PersistentVolume of the files a claim binds: the one its spec.volumeName names, or one
// whose claimRef names it (same namespace); nullptr when none.
const manifest::Object* Translator::bound_volume(const manifest::Object& pvc) const {
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
Result<void> Translator::from_persistent_volume(const manifest::Object& pv, json& gv) const {
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
Result<std::map<std::string, std::string>> Translator::object_data(const manifest::Object& o) {
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

Result<void> Translator::check_mode(const json& m, const std::string& mp, int mode,
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
Result<void> Translator::source_files(const json& src, const std::string& sp, bool secret,
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
            ip + "/path", fmt::format("path '{}' is not a relative path inside the volume", path)));
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
Result<FileSet> Translator::files_volume(const json& v, const std::string& p,
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
    for (const auto& s : sources) fs.secret = fs.secret || (s.is_object() && s.contains("secret"));
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
    all += fmt::format("{}:{}\n", sha256_hex(path), sha256_hex(bytes));
  all += fs.secret ? "secret" : "configmap";
  std::string digest = fs.secret
                           ? secret_digest(fmt::format("gedge-files:{}:{}", w.name, vname), all)
                           : sha256_hex(all).substr(0, 16);
  fs.dir = fmt::format("{}/{}/{}-{}", kFilesRoot, w.name, vname, digest);
  return fs;
}

// The pod's volumes as gedge volumes: gedge mounts a volume in every container of the service, so
// the containers must agree. Each distinct mount (volume, path, subPath) is one gedge volume; a
// pod volume mounted several times is named NAME, NAME-2, ...
Result<json> Translator::pod_volumes(const std::map<std::string, json>& volumes,
                                     const std::map<std::string, std::string>& vptr,
                                     const json& mounts) const {
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
      const std::string& p = vptr.at(name);
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
      GEDGE_TRY(mount_source(v, name, p, sub, sp, filesets, gv));
      vols.push_back(gv);
    }
  return vols;
}

// What gedge volume `gv` mounts: pod volume `name` (`v`, at `p`), with subPath `sub` (at `sp`).
// configMap, secret and projected volumes' files are made once per pod volume (`filesets`).
Result<void> Translator::mount_source(const json& v, const std::string& name, const std::string& p,
                                      const std::string& sub, const std::string& sp,
                                      std::map<std::string, FileSet>& filesets, json& gv) const {
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
    gv["nfs"] = {{"server", v["nfs"].value("server", "")}, {"path", v["nfs"].value("path", "")}};
    if (v["nfs"].value("readOnly", false)) gv["readOnly"] = true;
  } else {
    std::string kind = "?";
    for (auto vit = v.begin(); vit != v.end(); ++vit)
      if (vit.key() != "name") kind = vit.key();
    return std::unexpected(
        refuse(p + "/" + kind, fmt::format("a {} volume is not supported", kind)));
  }
  return {};
}

}  // namespace gedge::svc::detail::from_manifest
