// What a replica needs on its device besides its containers: the ConfigMap/Secret files, the
// podman secrets and the podman volumes (NFS), each created once under a name that carries a
// digest of its contents.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "hosts_internal.hpp"

namespace gedge::svc::detail::hosts {

Result<void> ensure_files(Device& d, const Unit& u) {
  for (const auto& fs : u.files) {
    GEDGE_TRY_ASSIGN(auto there, d.session->exec({"test", "-d", fs.dir}, std::nullopt, true));
    if (there.exit_code == 0) continue;
    std::string tmp = fs.dir + ".new";
    std::string dmode = fs.secret ? "0700" : "0755", fmode = fs.secret ? "0600" : "0644";
    auto run = [&](const std::vector<std::string>& argv,
                   std::optional<std::string_view> in) -> Result<void> {
      GEDGE_TRY_ASSIGN(auto r, d.session->exec(argv, in, true));
      if (r.exit_code != 0)
        return fail(ErrorCode::failure,
                    fmt::format("device {}: {} {}: {}", d.name, argv[0], argv.back(), trim(r.err)));
      return {};
    };
    GEDGE_TRY(run({"rm", "-rf", "--", tmp}, std::nullopt));
    GEDGE_TRY(
        run({"install", "-d", "-m", dmode, "-o", "root", "-g", "root", "--", tmp}, std::nullopt));
    for (const auto& [path, bytes] :
         fs.files) {  // created empty with its mode, then filled from stdin
      GEDGE_TRY(run(
          {"install", "-D", "-m", fmode, "-o", "root", "-g", "root", "/dev/null", tmp + "/" + path},
          std::nullopt));
      GEDGE_TRY(run({"dd", "status=none", "of=" + tmp + "/" + path}, bytes));
    }
    GEDGE_TRY(run({"mv", "-T", "--", tmp, fs.dir}, std::nullopt));
  }
  return {};
}

// podman secrets gedge made for service `svc` (gedge-SVC-DIGEST, 16 hex digits): only those
// are ever removed (another service's name may extend this one's: "web" and "web-api").
bool service_secret(const std::string& name, const std::string& svc) {
  std::string prefix = "gedge-" + svc + "-";
  if (name.size() != prefix.size() + 16 || name.compare(0, prefix.size(), prefix) != 0)
    return false;
  return name.find_first_not_of("0123456789abcdef", prefix.size()) == std::string::npos;
}

// The unit's podman secrets on the device: created once (the name carries the value's digest)
// with `podman secret create NAME -`, the value on stdin, never on a command line.
Result<void> ensure_secrets(Device& d, const Unit& u) {
  for (const auto& sec : u.secrets) {
    GEDGE_TRY_ASSIGN(auto there, podman(d, {"secret", "inspect", "--format", "{{.ID}}", sec.name}));
    if (there.exit_code == 0) continue;
    GEDGE_TRY_ASSIGN(auto r, d.session->exec({"podman", "secret", "create", sec.name, "-"},
                                             std::string_view(sec.value), true));
    if (r.exit_code != 0) return std::unexpected(podman_error(d, "creating secret " + sec.name, r));
  }
  return {};
}

// The service's gedge-made podman secrets on the device other than `keep` (all when empty).
Result<void> remove_secrets(Device& d, const std::string& svc,
                            const std::vector<PodmanSecret>& keep) {
  GEDGE_TRY_ASSIGN(auto r, podman(d, {"secret", "ls", "--format", "{{.Name}}"}));
  if (r.exit_code != 0) return std::unexpected(podman_error(d, "listing secrets", r));
  std::vector<std::string> gone;
  for (const auto& name : split_lines(r.out)) {
    bool kept = std::any_of(keep.begin(), keep.end(),
                            [&](const PodmanSecret& k) { return k.name == name; });
    if (service_secret(name, svc) && !kept) gone.push_back(name);
  }
  if (gone.empty()) return {};
  std::vector<std::string> args{"secret", "rm"};
  args.insert(args.end(), gone.begin(), gone.end());
  GEDGE_TRY_ASSIGN(auto rm, podman(d, args));
  if (rm.exit_code != 0) return std::unexpected(podman_error(d, "removing secrets", rm));
  return {};
}

// The plan's podman volumes (NFS exports) on the device, created once with gedge's label; the
// name carries a digest of server, path and access mode, so an existing one is the same.
Result<void> ensure_volumes(Device& d, const Plan& p) {
  for (const auto& v : p.host_plan["spec"].value("volumes", json::array())) {
    std::string name = v["name"];
    GEDGE_TRY_ASSIGN(auto there, podman(d, {"volume", "inspect", "--format", "{{.Name}}", name}));
    if (there.exit_code == 0) continue;
    std::vector<std::string> args{"volume",    "create",  "--driver",
                                  v["driver"], "--label", "gedge.managed=true"};
    for (auto it = v["options"].begin(); it != v["options"].end(); ++it) {
      args.push_back("--opt");
      args.push_back(it.key() + "=" + it.value().get<std::string>());
    }
    args.push_back(name);
    GEDGE_TRY_ASSIGN(auto r, podman(d, args));
    if (r.exit_code != 0) return std::unexpected(podman_error(d, "creating volume " + name, r));
  }
  return {};
}

Result<void> ensure_networks(Device& d, const Plan& p) {
  const json nets = p.host_plan["spec"].value("networks", json::array());
  if (nets.empty()) return {};
  auto pos = std::find(p.members.begin(), p.members.end(), d.name);
  std::size_t index = static_cast<std::size_t>(pos - p.members.begin());
  for (const auto& n : nets) {
    std::string name = n["name"];
    GEDGE_TRY_ASSIGN(auto range,
                     member_ip_range(n["subnet"].get<std::string>(), index, p.members.size()));
    GEDGE_TRY_ASSIGN(
        auto there,
        podman(d,
               {"network", "inspect", "--format",
                "{{index .Labels \"gedge.managed\"}} {{index .Labels \"gedge.ip-range\"}}", name}));
    if (there.exit_code == 0) {
      std::string have = trim(there.out);
      if (have == "true " + range) continue;
      if (!have.starts_with("true "))
        return fail(
            ErrorCode::conflict,
            fmt::format("device {}: network {} exists and gedge did not make it", d.name, name),
            "remove or rename that podman network on the device");
      GEDGE_TRY_ASSIGN(auto users, podman(d, {"ps", "-a", "--filter", "network=" + name, "--format",
                                              "{{.Names}}"}));
      if (users.exit_code != 0)
        return std::unexpected(podman_error(d, "listing the containers of " + name, users));
      if (auto who = split_lines(users.out); !who.empty())
        return fail(ErrorCode::conflict,
                    fmt::format("device {}: network {} ({}) hands out {}, but with the cluster's "
                                "{} members this device's block is {} (its membership changed); "
                                "{} still use it",
                                d.name, name, n.value("network", ""), have.substr(5),
                                p.members.size(), range, fmt::join(who, ", ")),
                    "remove the services that use it (gedge svc rm), then deploy again");
      GEDGE_TRY_ASSIGN(auto rm, podman(d, {"network", "rm", name}));
      if (rm.exit_code != 0)
        return std::unexpected(podman_error(d, "removing network " + name, rm));
    }
    GEDGE_TRY_ASSIGN(auto r, podman(d, {"network", "create", "--driver", "macvlan", "--opt",
                                        "parent=" + n["parent"].get<std::string>(), "--subnet",
                                        n["subnet"].get<std::string>(), "--ip-range", range,
                                        "--disable-dns", "--label", "gedge.managed=true", "--label",
                                        "gedge.ip-range=" + range, name}));
    if (r.exit_code != 0) return std::unexpected(podman_error(d, "creating network " + name, r));
  }
  return {};
}

// After a replace: directories of earlier contents of this unit's volumes, no longer mounted.
void prune_files(Device& d, const Unit& u) {
  if (u.files.empty()) return;
  std::string parent = fmt::format("{}/{}", kFilesRoot, u.svc->name);
  auto r =
      d.session->exec({"find", parent, "-mindepth", "1", "-maxdepth", "1"}, std::nullopt, true);
  if (!r || r->exit_code != 0) return;
  for (const auto& line : split_lines(r->out)) {
    std::string path = trim(line);
    bool keep = path.empty();
    for (const auto& fs : u.files) keep = keep || path == fs.dir;
    if (!keep) (void)d.session->exec({"rm", "-rf", "--", path}, std::nullopt, true);
  }
}

}  // namespace gedge::svc::detail::hosts
