// Kubernetes workloads on container hosts, shared by the files that translate them: a workload's
// Pod template as a gedge service (from_manifest.cpp: the workload and its pod, then hosts_spec),
// its volumes and their mounts (from_manifest_volumes.cpp),
// containers and their env (from_manifest_env.cpp) and Multus networks
// (from_manifest_networks.cpp).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

#include "deploy_internal.hpp"

namespace gedge::svc::detail::from_manifest {

using nlohmann::json;

// Strict base64 (RFC 4648, padding required as Kubernetes writes it); nullopt when malformed.
std::optional<std::string> base64_decode(const std::string& in);
// A relative file path inside a volume: no absolute, empty, '.' or '..' component.
bool safe_relative(const std::string& p);
// A digest of secret bytes for a name that others see (podman's argv, the record, a path).
std::string secret_digest(const std::string& salt, const std::string& bytes);

// One workload of the manifests, translated field by field; whatever podman cannot honour is an
// Error naming the field's file, line and path.
struct Translator {
  const manifest::Object& w;
  bool placed;
  const manifest::Input& in;  // the whole stream: ConfigMaps and Secrets referred to
  HostObjects* extras = nullptr;
  std::set<const manifest::Object*>* used = nullptr;  // companions a workload refers to

  // The workload as a gedge service document (from_manifest.cpp).
  Result<json> service() const;
  Result<void> check_pod(const json& pod, const std::string& pp) const;
  const manifest::Object* find(const std::string& kind, const std::string& name) const;
  Error refuse(const std::string& ptr, const std::string& why, const std::string& hint = "") const;
  Result<void> only(const json& obj, const std::string& ptr, const std::set<std::string>& ok) const;

  // Volumes (from_manifest_volumes.cpp).
  Result<json> pod_volumes(const std::map<std::string, json>& volumes,
                           const std::map<std::string, std::string>& vptr,
                           const json& mounts) const;
  Result<void> mount_source(const json& v, const std::string& name, const std::string& p,
                            const std::string& sub, const std::string& sp,
                            std::map<std::string, FileSet>& filesets, json& gv) const;
  const manifest::Object* bound_volume(const manifest::Object& pvc) const;
  Result<void> from_persistent_volume(const manifest::Object& pv, json& gv) const;
  static Result<std::map<std::string, std::string>> object_data(const manifest::Object& o);
  Result<void> check_mode(const json& m, const std::string& mp, int mode,
                          const std::string& kind) const;
  Result<void> source_files(const json& src, const std::string& sp, bool secret,
                            const std::string& name_key, bool default_mode, int mode,
                            FileSet& fs) const;
  Result<FileSet> files_volume(const json& v, const std::string& p, const std::string& vname) const;

  // Containers and env (from_manifest_env.cpp).
  Result<const std::string*> key_ref(const json& ref, const std::string& rp,
                                     const std::string& kind,
                                     std::map<std::string, std::string>& data) const;
  const json& pod_metadata() const;
  Result<json> field_ref(const json& ref, const std::string& rp) const;
  Result<json> resource_field_ref(const json& ref, const std::string& rp, const json& self) const;
  Result<std::optional<json>> value_from(const json& vf, const std::string& ptr,
                                         const std::string& var, const json& self) const;
  Result<json> container(const json& c, const std::string& ptr,
                         const std::map<std::string, json>& mounts_by_volume,
                         json& volume_mounts) const;

  // Networks (from_manifest_networks.cpp).
  Result<json> network_of(const manifest::Object& nad) const;
  Result<json> networks() const;
};

}  // namespace gedge::svc::detail::from_manifest
