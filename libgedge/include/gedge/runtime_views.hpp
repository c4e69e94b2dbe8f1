// What the cli's runtime verbs show, and the reports it assembles from several results: footers,
// table rows, exit errors (defined in runtime/views.cpp; -o json prints the result objects).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/runtime.hpp"

namespace gedge::runtime {

// A byte count as "N B" or with one decimal in KiB, MiB, GiB or TiB.
std::string human_bytes(uint64_t n);

// `pack`: each DIR as a component named by its directory (its parent's, for a trailing slash),
// then each --component ROLE=DIR; usage naming a malformed --component.
Result<std::vector<ComponentSpec>> pack_components(const std::vector<std::string>& dirs,
                                                   const std::vector<std::string>& components);
std::string pack_summary(const PackResult& r);

// `verify`: the footer, and the failure naming each corrupted and missing chunk (16 hex digits)
// and up to 10 bad files; its hint packs again (the local store) or pushes again (`copy`: a
// directory or device copy). nullopt when the bundle verifies.
std::string verify_summary(const Bundle& b, const VerifyResult& r);
std::optional<Error> verify_error(const Bundle& b, const VerifyResult& r, bool copy);

std::string gc_summary(const GcResult& r);

// `rm`: a row per bundle {id (12 digits), name, created, action: removed | would remove | kept}.
nlohmann::json remove_rows(const RemoveResult& r);
std::string remove_summary(const RemoveResult& r);

// `push`: {id, name, dry_run, targets: [PushResult or {target, root, state: failed, error,
// code}]}, its footer, and the exit error: partial naming the first failure when some devices
// failed, that failure when all did.
struct PushReport {
  nlohmann::json json;
  std::string summary;
  std::optional<Error> error;
};
PushReport remote_push_report(const Bundle& b, const RemotePushRequest& req,
                              const std::vector<RemoteOutcome>& outs);
PushReport dir_push_report(const Bundle& b, const PushResult& r);
// Where `push` goes: devices (or a cluster's members) over SSH, else the directory `to`.
struct PushTargets {
  RemotePushRequest remote;  // devices, root, dry_run, parallel, timeout_s
  std::string cluster;       // every member of this cluster instead of remote.devices
  std::string to;            // a local directory used as the root
};
// push_remote or push_to_dir (recorded with record_push unless a dry run), as a report.
Result<PushReport> push(const Paths& paths, Inventory& inv, const Bundle& b, PushTargets t,
                        Reporter& rep);

// `mounts -o json`: {id, host_path, mount_path, read_only, env, podman}.
Result<nlohmann::json> mounts_json(const Bundle& b, const MountRequest& req);
// -o k8s, podman or sh; nullopt for any other output.
std::optional<MountFormat> mount_format(std::string_view output);

// `check`: "VERDICT: REASON", and the failure for too_old and unknown (nullopt otherwise).
std::string check_summary(const nlohmann::json& verdict);
std::optional<Error> check_error(const nlohmann::json& verdict, const Bundle& b,
                                 const std::string& device);

}  // namespace gedge::runtime
