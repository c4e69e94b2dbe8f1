// The device registry: add (host-key policy, password bootstrap, device token, facts), ls, show,
// rm, rekey, and loading a registered device as an SSH target.
#include "gedge/device.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <regex>

#include "device_detail.hpp"
#include "gedge/keys.hpp"
#include "gedge/known_hosts.hpp"
#include "gedge/openssh.hpp"

namespace gedge {

namespace detail {

nlohmann::json parse_json_text(const nlohmann::json& v, nlohmann::json fallback) {
  if (!v.is_string()) return fallback;
  auto j = nlohmann::json::parse(v.get<std::string>(), nullptr, false);
  return j.is_discarded() ? fallback : j;
}

namespace {

// The public `facts` object from the stored facts text: the well-known facts first (null or []
// when missing), then whatever else the facts script reported.
nlohmann::json facts_object(nlohmann::json facts) {
  if (!facts.is_object()) facts = nlohmann::json::object();
  auto fact = [&facts](const char* k, nlohmann::json fallback) {
    auto it = facts.find(k);
    if (it == facts.end()) return fallback;
    nlohmann::json v = std::move(*it);
    facts.erase(it);
    return v;
  };
  nlohmann::json f = nlohmann::json::object();
  f.emplace("arch", fact("arch", nullptr));
  f.emplace("os", fact("os", nullptr));
  f.emplace("kernel", fact("kernel", nullptr));
  f.emplace("cpus", fact("cpus", nullptr));
  f.emplace("memory_bytes", fact("memory_bytes", nullptr));
  f.emplace("disk_free_bytes", fact("disk_free_bytes", nullptr));
  f.emplace("gpus", fact("gpus", nlohmann::json::array()));
  f.emplace("container_runtime", fact("container_runtime", nullptr));
  for (auto it = facts.begin(); it != facts.end(); ++it) f.emplace(it.key(), std::move(it.value()));
  return f;
}

// The public `proxy_jump` object (no identity or public key) from the stored JSON, null if none.
nlohmann::json jump_object(nlohmann::json j) {
  if (!j.is_object()) return nullptr;
  return {{"host", j.value("host", "")},
          {"port", j.value("port", 22)},
          {"user", j.value("user", "")},
          {"host_key",
           {{"type", j["host_key"].value("type", "")},
            {"fingerprint", j["host_key"].value("fingerprint", "")}}}};
}

}  // namespace

nlohmann::json device_json(SqlRow&& r) {
  // Built by moving the row's values into place (no copies): `device ls` builds this for every
  // registered device, 10 000 of them in a large fleet.
  auto take = [&r](const char* column) -> nlohmann::json {
    auto it = r.find(column);
    return it == r.end() ? nlohmann::json() : std::move(*it);
  };
  nlohmann::json d = nlohmann::json::object();
  d.emplace("name", take("name"));
  d.emplace("host", take("host"));
  d.emplace("port", take("port"));
  d.emplace("user", take("user"));
  d.emplace("identity", take("identity"));
  d.emplace("alias", take("alias"));
  d.emplace("certificate", take("certificate"));
  d.emplace("identity_agent", take("identity_agent"));
  d.emplace("auth", take("auth"));
  d.emplace("proxy_jump", jump_object(parse_json_text(take("proxy_jump"), nullptr)));
  d.emplace("tier", take("tier"));
  d.emplace("site", take("site"));
  d.emplace("labels", parse_json_text(take("labels"), nlohmann::json::object()));
  d.emplace("groups", parse_json_text(take("groups"), nlohmann::json::array()));
  d.emplace("status", take("status"));
  d.emplace("last_seen", take("last_seen"));
  d.emplace("rtt_ms", take("rtt_ms"));
  d.emplace("host_key",
            nlohmann::json{{"type", take("host_key_type")}, {"fingerprint", take("host_key_fp")}});
  d.emplace("facts", facts_object(parse_json_text(take("facts"), nlohmann::json::object())));
  return d;
}

nlohmann::json device_json(const SqlRow& r) {
  return device_json(SqlRow(r));
}

Result<SqlRow> load_device(Inventory& inv, std::string_view name) {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv.query("SELECT * FROM devices WHERE name = ?", {std::string(name)}));
  if (rows.empty())
    return fail(ErrorCode::not_found, fmt::format("device '{}' not found", name),
                "list registered devices with 'gedge device ls'");
  return rows.front();
}

SshTarget target_of(const SqlRow& r) {
  SshTarget t;
  t.name = r.value("name", "");
  t.host = r.value("host", "");
  t.port = r["port"].is_number() ? r["port"].get<int>() : 0;
  t.user = r.value("user", "");
  t.identity = r["identity"].is_string() ? r["identity"].get<std::string>() : "";
  t.host_key.type = r["host_key_type"].is_string() ? r["host_key_type"].get<std::string>() : "";
  t.host_key.fingerprint = r["host_key_fp"].is_string() ? r["host_key_fp"].get<std::string>() : "";
  auto str = [&](const char* k) {
    return r.contains(k) && r[k].is_string() ? r[k].get<std::string>() : std::string();
  };
  t.certificate = str("certificate");
  t.identity_agent = str("identity_agent");
  t.auth = str("auth");
  if (auto j = parse_json_text(r.value("proxy_jump", nlohmann::json()), nullptr); j.is_object()) {
    JumpHost jh;
    jh.host = j.value("host", "");
    jh.port = j.value("port", 22);
    jh.user = j.value("user", "");
    jh.identity = j.value("identity", "");
    jh.alias = jump_alias(t.name);
    if (j.contains("host_key") && j["host_key"].is_object()) {
      jh.host_key.type = j["host_key"].value("type", "");
      jh.host_key.fingerprint = j["host_key"].value("fingerprint", "");
      jh.host_key.public_key = j["host_key"].value("public_key", "");
    }
    t.jump = jh;
  }
  return t;
}

std::string jump_alias(std::string_view device) {
  return std::string(device) + "/jump";
}

std::string legacy_marker(const std::string& host, int port) {
  return (port == 0 || port == 22) ? host : fmt::format("[{}]:{}", host, port);
}

std::string random_token() {
  unsigned char buf[32];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = ::getrandom(buf + got, sizeof buf - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string out;
  for (unsigned char c : buf) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace detail

using namespace detail;

Result<SshTarget> device_target(Inventory& inv, const Paths& paths, std::string_view name) {
  (void)paths;
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, name));
  return target_of(row);
}

namespace {

Result<void> validate(const DeviceAddRequest& req) {
  static const std::regex name_re("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
  if (!std::regex_match(req.name, name_re))
    return fail(ErrorCode::usage, fmt::format("invalid device name '{}'", req.name),
                "use letters, digits, '.', '_' and '-', starting with a letter or digit");
  if (req.host.empty()) return fail(ErrorCode::usage, "invalid --host ''");
  GEDGE_TRY(parse_address(req.host, "--host"));
  if (req.port < 0 || req.port > 65535)
    return fail(ErrorCode::usage, fmt::format("invalid --port {}", req.port));
  if (!req.tier.empty() && req.tier != "local" && req.tier != "neighbor" && req.tier != "cloud")
    return fail(ErrorCode::usage, fmt::format("invalid --tier '{}'", req.tier),
                "use local, neighbor or cloud");
  if (!req.host_key.empty() && req.host_key.rfind("SHA256:", 0) != 0)
    return fail(ErrorCode::usage, fmt::format("invalid --host-key '{}'", req.host_key),
                "give the SHA256 fingerprint as printed by 'ssh-keygen -lf', e.g. SHA256:abc...");
  return {};
}

// Appends gedge's public key to ~/.ssh/authorized_keys once, with the modes sshd insists on.
const char* kInstallKeyScript = R"SH(set -e
umask 077
mkdir -p "$HOME/.ssh"
chmod 700 "$HOME/.ssh"
f="$HOME/.ssh/authorized_keys"
touch "$f"
chmod 600 "$f"
if grep -qF -- "$2" "$f"; then echo present; exit 0; fi
if [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" != '\n' ]; then echo >> "$f"; fi
printf '%s\n' "$1" >> "$f"
echo added
)SH";

struct AddressPin {
  std::string device;
  HostKey key;
};

// The host key pinned at host:port by a device other than `except` (all devices there share it).
// An address behind a jump host is another machine than the same address elsewhere: only
// devices reached through the same jump host (or none) count.
Result<std::optional<AddressPin>> address_pin(Inventory& inv, const std::string& host, int port,
                                              const std::string& except,
                                              const std::string& jump_host = "") {
  GEDGE_TRY_ASSIGN(
      auto rows, inv.query("SELECT name, host_key_type, host_key_fp, proxy_jump FROM devices WHERE "
                           "host = ? AND port = ? AND name <> ? AND host_key_fp IS NOT NULL AND "
                           "host_key_fp <> '' ORDER BY name",
                           {host, int64_t(port), except}));
  for (const auto& r : rows) {
    auto j = parse_json_text(r["proxy_jump"], nullptr);
    if ((j.is_object() ? j.value("host", "") : std::string()) != jump_host) continue;
    AddressPin p;
    p.device = r["name"].get<std::string>();
    p.key.type = r["host_key_type"].is_string() ? r["host_key_type"].get<std::string>() : "";
    p.key.fingerprint = r["host_key_fp"].get<std::string>();
    return std::optional<AddressPin>(p);
  }
  return std::optional<AddressPin>();
}

// Lines older gedge versions keyed by [host]:port are shared by every device at their address:
// one is removed only when no device is registered there any more (current lines are keyed by
// each device's HostKeyAlias).
Result<void> release_known_host(Inventory& inv, const Paths& paths, const SshTarget& at) {
  int port = at.port ? at.port : 22;
  GEDGE_TRY_ASSIGN(auto left,
                   inv.query("SELECT count(*) AS n FROM devices WHERE host = ? AND port = ?",
                             {at.host, int64_t(port)}));
  if (!left.empty() && left[0]["n"].get<int64_t>() > 0) return {};
  return known_hosts_update(paths.known_hosts, legacy_marker(at.host, port), "");
}

// The resolved connection record for --host: `ssh -G` (HostName, Port, User, IdentityFile,
// IdentityAgent, ProxyJump with the jump resolved the same way). Flags win over --host's
// user@/:port, which win over the ssh config.
struct Resolved {
  SshTarget target;   // no host key yet
  std::string alias;  // --host's host part when ssh config renamed it
};

Result<Resolved> resolve_target(const DeviceAddRequest& req) {
  GEDGE_TRY_ASSIGN(auto addr, parse_address(req.host, "--host"));
  if (!req.user.empty() && !addr.user.empty() && req.user != addr.user)
    return fail(ErrorCode::usage,
                fmt::format("--user {} and --host {} name different users", req.user, req.host));
  if (req.port && addr.port && req.port != addr.port)
    return fail(ErrorCode::usage,
                fmt::format("--port {} and --host {} name different ports", req.port, req.host));
  std::string user = req.user.empty() ? addr.user : req.user;
  int port = req.port ? req.port : addr.port;
  Resolved out;
  SshTarget& t = out.target;
  t.name = req.name;
  t.identity = req.identity;
  // A user certificate beside the key (OpenSSH's KEY-cert.pub convention).
  if (!t.identity.empty() && ::access((t.identity + "-cert.pub").c_str(), R_OK) == 0)
    t.certificate = t.identity + "-cert.pub";
  auto rh = resolve_ssh_host(addr.host, user, port, req.ssh_config);
  if (!rh) {
    // Without an OpenSSH client there is no ssh config to honour: a literal host still works.
    if (rh.error().code != ErrorCode::failure || !req.ssh_config.empty() ||
        rh.error().message.find("was not found") == std::string::npos)
      return std::unexpected(rh.error());
    t.host = addr.host;
    t.port = port ? port : 22;
    t.user = user;
    return out;
  }
  if (rh->proxy_command)
    return fail(
        ErrorCode::usage,
        fmt::format("the ssh config gives {} a ProxyCommand, which gedge does not run", addr.host),
        "use ProxyJump for jump hosts");
  t.host = rh->host;
  t.port = rh->port;
  t.user = rh->user;
  t.identity_agent = rh->identity_agent;
  if (t.identity.empty())
    for (const auto& f : rh->identity_files)
      if (::access(f.c_str(), R_OK) == 0) t.extra_identities.push_back(f);
  for (const auto& f : rh->certificate_files)
    if (t.certificate.empty() && ::access(f.c_str(), R_OK) == 0) t.certificate = f;
  if (rh->host != addr.host) out.alias = addr.host;
  if (!rh->proxy_jump.empty()) {
    if (rh->proxy_jump.find(',') != std::string::npos)
      return fail(ErrorCode::usage,
                  fmt::format("{} has several ProxyJump hops ({}); gedge supports one", addr.host,
                              rh->proxy_jump),
                  "jump through one bastion, or register the inner hop as its own device");
    GEDGE_TRY_ASSIGN(auto ja, parse_address(rh->proxy_jump, "ProxyJump"));
    GEDGE_TRY_ASSIGN(auto jr, resolve_ssh_host(ja.host, ja.user, ja.port, req.ssh_config));
    if (!jr.proxy_jump.empty() || jr.proxy_command)
      return fail(
          ErrorCode::usage,
          fmt::format("the jump host {} has its own ProxyJump/ProxyCommand; gedge supports one hop",
                      ja.host));
    JumpHost j;
    j.host = jr.host;
    j.port = jr.port;
    j.user = jr.user;
    for (const auto& f : jr.identity_files)
      if (::access(f.c_str(), R_OK) == 0) {
        j.identity = f;
        break;
      }
    j.alias = jump_alias(req.name);
    t.jump = j;
  }
  return out;
}

// What the operator's known_hosts files say about `presented` for host `t` (reached as typed
// `alias`): a line with that key, or a certificate signed by an @cert-authority key listed for
// the host (verified by OpenSSH, see verify_host_certificate), pins it (the reason is returned);
// nothing applies: nullopt; a revoked key, an uncertified host under a CA's pattern, or a line
// with another key: host_key, before anything is stored.
Result<std::optional<std::string>> trust_from_known_hosts(
    const std::vector<std::string>& files, const SshTarget& t, const std::string& alias,
    const HostKey& presented, const std::string& who, const SshOptions& opts) {
  int port = t.port ? t.port : 22;
  GEDGE_TRY_ASSIGN(auto v,
                   known_hosts_lookup(files, known_hosts_names(t.host, port, alias), presented));
  if (v.kind == KnownHostsVerdict::revoked)
    return fail(ErrorCode::host_key,
                fmt::format("host key of {} ({} {}) is revoked by {}", who, presented.type,
                            presented.fingerprint, v.where),
                "nothing was stored");
  if (v.kind == KnownHostsVerdict::match)
    return std::optional<std::string>(
        fmt::format("host key {} found in {}", presented.fingerprint, v.where));
  if (!v.cert_authorities.empty()) {
    HostCertQuery q;
    q.program = opts.ssh_program;
    q.host = t.host;
    q.port = port;
    q.user = t.user;
    q.key_type = presented.type;
    q.revoked = v.revoked_keys;
    q.jump = t.jump;
    q.connect_timeout_s = opts.connect_timeout_s;
    if (t.jump) {
      if (!t.identity.empty()) q.jump_identities.push_back(t.identity);
      for (const auto& e : t.extra_identities) q.jump_identities.push_back(e);
      if (!opts.gedge_key.empty() && ::access(opts.gedge_key.c_str(), R_OK) == 0)
        q.jump_identities.push_back(opts.gedge_key.string());
    }
    std::string where;
    for (const auto& ca : v.cert_authorities) {
      q.ca_keys.push_back(ca.key);
      where += (where.empty() ? "" : ", ") + ca.where;
    }
    GEDGE_TRY_ASSIGN(auto c, verify_host_certificate(q));
    if (!c.certified)
      return fail(
          ErrorCode::host_key,
          fmt::format(
              "host key of {} ({}:{}, {} {}) is not certified by the @cert-authority of {}: {}",
              who, t.host, port, presented.type, presented.fingerprint, where, c.detail),
          "a host under a CA's pattern needs a host certificate from that CA listing its name; "
          "nothing was stored");
    if (c.fingerprint != presented.fingerprint)
      return fail(
          ErrorCode::host_key,
          fmt::format(
              "host key of {} ({}:{}): OpenSSH verified a certificate for key {}, but gedge's own "
              "connection was presented {} {}",
              who, t.host, port, c.fingerprint, presented.type, presented.fingerprint),
          "two different machines answered at this address: this may be an attack; nothing was "
          "stored");
    return std::optional<std::string>(fmt::format("host key {} certified by CA {} ({})",
                                                  presented.fingerprint, c.ca_fingerprint, where));
  }
  if (v.kind == KnownHostsVerdict::mismatch)
    return fail(
        ErrorCode::host_key,
        fmt::format("host key of {} ({}:{}) is {} {}, but {} lists a different {} key for it", who,
                    t.host, port, presented.type, presented.fingerprint, v.where, v.listed_type),
        "if the machine was reinstalled, update the known_hosts file; otherwise this may be an "
        "attack (nothing "
        "was stored)");
  return std::optional<std::string>();
}

// Pins the jump host's key: the key a registered device at that address has, the key this
// device's earlier registration pinned, or one accepted like the device's own (--accept-new,
// the prompt). Anything else is host_key, with nothing stored.
Result<HostKey> pin_jump_key(Inventory& inv, const JumpHost& j,
                             const std::optional<SqlRow>& existing, const SshOptions& opts,
                             const DeviceAddRequest& req, Reporter& rep) {
  SshTarget jt;
  jt.name = req.name + " (jump host)";
  jt.host = j.host;
  jt.port = j.port;
  jt.user = j.user;
  auto presented = probe_host_key(jt, opts);
  if (!presented) {
    Error e = presented.error();
    e.message =
        fmt::format("jump host {}:{} of device '{}': {}", j.host, j.port, req.name, e.message);
    return std::unexpected(e);
  }
  auto mismatch = [&](const std::string& whose, const std::string& pinned) {
    return fail(ErrorCode::host_key,
                fmt::format("host key of jump host {}:{} changed: {} pinned {}, presented {} {}",
                            j.host, j.port, whose, pinned, presented->type, presented->fingerprint),
                "if the jump host was reinstalled, verify its new key out of band; otherwise this "
                "may be an attack");
  };
  if (existing) {
    auto old = target_of(*existing);
    if (old.jump && old.jump->host == j.host && old.jump->port == j.port &&
        !old.jump->host_key.fingerprint.empty()) {
      if (old.jump->host_key.fingerprint != presented->fingerprint)
        return mismatch(fmt::format("device '{}'", req.name), old.jump->host_key.fingerprint);
      return *presented;
    }
  }
  GEDGE_TRY_ASSIGN(auto rows,
                   inv.query("SELECT name, host_key_fp FROM devices WHERE host = ? AND port = ?",
                             {j.host, int64_t(j.port)}));
  for (const auto& r : rows) {
    if (!r["host_key_fp"].is_string()) continue;
    auto fp = r["host_key_fp"].get<std::string>();
    if (fp != presented->fingerprint)
      return mismatch(fmt::format("device '{}'", r["name"].get<std::string>()), fp);
    rep.step(req.name, fmt::format("jump host {} verified as device '{}'", j.host,
                                   r["name"].get<std::string>()));
    return *presented;
  }
  if (!req.known_hosts_files.empty()) {
    GEDGE_TRY_ASSIGN(auto why, trust_from_known_hosts(req.known_hosts_files, jt, "", *presented,
                                                      fmt::format("jump host {}:{} of device '{}'",
                                                                  j.host, j.port, req.name),
                                                      opts));
    if (why) {
      rep.step(req.name, fmt::format("jump host {}: {}", j.host, *why));
      return *presented;
    }
  }
  if (req.accept_new || (req.confirm_new_key && req.confirm_new_key(*presented))) return *presented;
  return fail(
      ErrorCode::host_key,
      fmt::format("unknown host key for jump host {}:{}: {} {}", j.host, j.port, presented->type,
                  presented->fingerprint),
      fmt::format(
          "register the jump host first (gedge device add NAME --host {} --host-key {}), or pass "
          "--accept-new to trust it on first use",
          j.host, presented->fingerprint));
}

std::string labels_text(const std::map<std::string, std::string>& labels) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : labels) j[k] = v;
  return j.dump();
}

}  // namespace

Result<DeviceAddResult> device_add(Inventory& inv, const Paths& paths, const DeviceAddRequest& req,
                                   Reporter& rep) {
  GEDGE_TRY(validate(req));
  GEDGE_TRY_ASSIGN(auto existing_rows,
                   inv.query("SELECT * FROM devices WHERE name = ?", {req.name}));
  std::optional<SqlRow> existing;
  if (!existing_rows.empty()) existing = existing_rows.front();

  GEDGE_TRY_ASSIGN(auto resolved, resolve_target(req));
  SshTarget target = resolved.target;
  const std::string host = target.host;
  const bool user_given = !req.user.empty() || req.host.find('@') != std::string::npos;

  // A different registration under this name is a conflict before we touch the network.
  bool same_address = false;
  if (existing) {
    auto old = device_json(*existing);
    std::vector<std::string> diffs;
    if (old["host"] != host)
      diffs.push_back(fmt::format("host {} -> {}", old["host"].get<std::string>(), host));
    if (old["port"] != target.port)
      diffs.push_back(fmt::format("port {} -> {}", old["port"].dump(), target.port));
    if (user_given && old["user"] != target.user)
      diffs.push_back(fmt::format("user {} -> {}", old["user"].get<std::string>(), target.user));
    if (!req.labels.empty() && old["labels"] != nlohmann::json::parse(labels_text(req.labels)))
      diffs.push_back("labels");
    if (!req.tier.empty() && old["tier"] != req.tier) diffs.push_back("tier");
    if (!req.site.empty() && old["site"] != req.site) diffs.push_back("site");
    if (!req.identity.empty() && old["identity"] != req.identity) diffs.push_back("identity");
    if (!req.host_key.empty() && old["host_key"]["fingerprint"] != req.host_key)
      diffs.push_back("host key");
    same_address = old["host"] == host && old["port"] == target.port;
    if (!diffs.empty() && !req.force) {
      std::string what;
      for (size_t i = 0; i < diffs.size(); ++i) what += (i ? ", " : "") + diffs[i];
      return fail(ErrorCode::conflict,
                  fmt::format("device '{}' is already registered with different values ({})",
                              req.name, what),
                  "pass --force to replace the registration, or choose another name");
    }
    if (same_address) {
      // Re-add: the pinned key must still match (a changed key needs `device rekey`).
      if (!user_given) target.user = old["user"].get<std::string>();
      if (req.identity.empty() && old["identity"].is_string())
        target.identity = old["identity"].get<std::string>();
      if (req.host_key.empty()) target.host_key = target_of(*existing).host_key;
    }
  }
  if (!req.host_key.empty()) target.host_key.fingerprint = req.host_key;

  // Host keys are pinned per address: a device already registered at this host:port fixes the
  // key accepted here, whatever the new name (--accept-new cannot take over an address).
  GEDGE_TRY_ASSIGN(auto pin, address_pin(inv, host, target.port ? target.port : 22, req.name,
                                         target.jump ? target.jump->host : std::string()));
  if (pin) {
    if (!req.host_key.empty() && req.host_key != pin->key.fingerprint)
      return fail(
          ErrorCode::host_key,
          fmt::format("{}:{} is pinned with host key {} by device '{}'; --host-key {} differs",
                      host, target.port ? target.port : 22, pin->key.fingerprint, pin->device,
                      req.host_key),
          fmt::format(
              "if the machine was reinstalled, verify its new key and run 'gedge device rekey {}'",
              pin->device));
    if (target.host_key.fingerprint.empty()) target.host_key = pin->key;
  }

  SshOptions opts = default_ssh_options(paths, req.timeout_s);
  opts.accept_new = req.accept_new;
  opts.confirm_new_key = req.confirm_new_key;
  auto pinned_by_flag = !req.host_key.empty();
  if (target.jump) {
    GEDGE_TRY_ASSIGN(target.jump->host_key,
                     pin_jump_key(inv, *target.jump, existing, opts, req, rep));
    rep.step(req.name,
             fmt::format("through jump host {}@{}:{} ({})", target.jump->user, target.jump->host,
                         target.jump->port, target.jump->host_key.fingerprint));
  }

  // Keys from known_hosts files the operator already has: a matching line pins the key, as does
  // a host certificate from an @cert-authority listed for the host (verified by OpenSSH); a line
  // with another key, a revoked key or an uncertified host under a CA's pattern refuses the
  // device before anything is stored.
  if (!req.known_hosts_files.empty() && target.host_key.fingerprint.empty()) {
    GEDGE_TRY_ASSIGN(auto presented, probe_host_key(target, opts));
    GEDGE_TRY_ASSIGN(
        auto why, trust_from_known_hosts(req.known_hosts_files, target, resolved.alias, presented,
                                         fmt::format("device '{}'", req.name), opts));
    if (why) {
      target.host_key = presented;
      rep.step(req.name, *why);
    }
  }

  auto connect = [&](const SshOptions& o) -> Result<std::unique_ptr<SshSession>> {
    auto s = SshSession::connect(target, o);
    if (!s && pin && !pinned_by_flag && s.error().code == ErrorCode::host_key) {
      Error e = s.error();
      e.message = fmt::format("{}:{} is pinned by device '{}': {}", host,
                              target.port ? target.port : 22, pin->device, e.message);
      e.hint = fmt::format(
          "a new name does not make a different key trusted; if the machine was reinstalled, "
          "verify its new key and run 'gedge device rekey {}'",
          pin->device);
      return std::unexpected(e);
    }
    if (!s && pinned_by_flag && s.error().code == ErrorCode::host_key) {
      Error e = s.error();
      e.message = fmt::format("host key of {}:{} does not match --host-key: {}", host, target.port,
                              e.message);
      e.hint =
          "check the fingerprint you were given (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the "
          "device)";
      return std::unexpected(e);
    }
    return s;
  };

  DeviceAddResult result;
  std::unique_ptr<SshSession> sess;
  if (req.password) {
    // Bootstrap: password once, install gedge's key, then prove key login on a new connection.
    GEDGE_TRY_ASSIGN(auto key, read_public_key(paths));
    SshOptions po = opts;
    po.password = req.password;
    GEDGE_TRY_ASSIGN(auto boot, connect(po));
    std::string line = key.public_line;
    std::string b64 = line.substr(line.find(' ') + 1);
    b64 = b64.substr(0, b64.find(' '));
    GEDGE_TRY_ASSIGN(auto r,
                     boot->exec({"sh", "-c", kInstallKeyScript, "gedge-bootstrap", line, b64}));
    if (r.exit_code != 0)
      return fail(ErrorCode::failure, fmt::format("device '{}': cannot install gedge's key: {}",
                                                  req.name, r.err.empty() ? r.out : r.err));
    result.bootstrapped = r.out.find("added") != std::string::npos;
    rep.step(req.name, result.bootstrapped ? "gedge's key installed in ~/.ssh/authorized_keys"
                                           : "gedge's key already authorized");
    target.host_key = boot->host_key();  // the key we just accepted
    boot.reset();
    SshOptions ko = opts;
    ko.use_agent = false;
    SshTarget kt = target;
    kt.identity.clear();
    kt.extra_identities.clear();
    auto proved = SshSession::connect(kt, ko);
    if (!proved) {
      Error e = proved.error();
      e.message = fmt::format("device '{}': key login failed after installing gedge's key: {}",
                              req.name, e.message);
      e.hint = "check sshd's PubkeyAuthentication and AuthorizedKeysFile settings on the device";
      return std::unexpected(e);
    }
    sess = std::move(*proved);
  } else {
    GEDGE_TRY_ASSIGN(sess, connect(opts));
  }
  HostKey hk = sess->host_key();

  // Facts and the current token, in one round trip.
  GEDGE_TRY_ASSIGN(auto fr, sess->exec({"sh", "-c", facts_script()}));
  auto facts = parse_facts(fr.out);
  if (!facts.value("complete", false))
    return fail(ErrorCode::failure,
                fmt::format("device '{}': facts script failed: {}", req.name, fr.err));
  std::string token = facts.value("token", "");
  nlohmann::json topo = facts["topology_xml"];
  facts.erase("token");
  facts.erase("topology_xml");
  facts.erase("complete");
  facts["has_topology"] = !topo.is_null();

  // Is this machine already registered under another name?
  std::string token_hash;
  bool issue = token.empty();
  if (!token.empty()) {
    token_hash = sha256_hex(token);
    GEDGE_TRY_ASSIGN(auto others,
                     inv.query("SELECT name FROM devices WHERE token_hash = ? AND name <> ?",
                               {token_hash, req.name}));
    if (!others.empty()) {
      if (!req.force)
        return fail(
            ErrorCode::conflict,
            fmt::format(
                "the machine at {} is already registered as device '{}' (its device token says so)",
                host, others.front()["name"].get<std::string>()),
            "pass --force to register it under this name too (the old entry will fail 'device "
            "check')");
      issue = true;  // --force: this name takes the machine over
    }
  }
  if (issue) {
    token = random_token();
    token_hash = sha256_hex(token);
    GEDGE_TRY(sess->mkdirs(".config/gedge", 0700));
    GEDGE_TRY(sess->put_file(kDeviceTokenPath, token + "\n", 0600));
    result.token_issued = true;
    rep.step(req.name, "device token issued");
  }

  std::string user = sess->user();
  int port = sess->port();
  GEDGE_TRY_ASSIGN(double rtt, sess->rtt_ms());
  // Store how it authenticated: a key that worked from the ssh config becomes the identity.
  std::string auth = sess->auth_method();
  if (auth == "identity") {
    target.identity = sess->auth_identity();
    if (target.certificate.empty() && ::access((target.identity + "-cert.pub").c_str(), R_OK) == 0)
      target.certificate = target.identity + "-cert.pub";
  }
  if (auth == "password" || auth.empty()) auth = "gedge_key";
  sess.reset();
  SqlValue alias_v = resolved.alias.empty() ? SqlValue(nullptr) : SqlValue(resolved.alias);
  SqlValue agent_v =
      target.identity_agent.empty() ? SqlValue(nullptr) : SqlValue(target.identity_agent);
  SqlValue cert_v = target.certificate.empty() ? SqlValue(nullptr) : SqlValue(target.certificate);
  SqlValue jump_v = nullptr;
  if (target.jump) {
    const auto& j = *target.jump;
    jump_v = nlohmann::json{{"host", j.host},
                            {"port", j.port},
                            {"user", j.user},
                            {"identity", j.identity},
                            {"host_key",
                             {{"type", j.host_key.type},
                              {"fingerprint", j.host_key.fingerprint},
                              {"public_key", j.host_key.public_key}}}}
                 .dump();
  }

  std::string now = now_rfc3339();
  // Facts are the device's own text (hostname, os-release), which need not be UTF-8.
  std::string facts_text = facts.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string identity = target.identity;
  std::string labels = labels_text(req.labels);
  std::string groups_text = req.groups ? nlohmann::json(*req.groups).dump() : std::string();
  bool changed = true;
  GEDGE_TRY(inv.write([&](Inventory& db) -> Result<void> {
    // The port may come from ssh_config, and another process may have pinned the address meanwhile.
    GEDGE_TRY_ASSIGN(auto now_pin, address_pin(db, host, port, req.name,
                                               target.jump ? target.jump->host : std::string()));
    if (now_pin && now_pin->key.fingerprint != hk.fingerprint)
      return fail(
          ErrorCode::host_key,
          fmt::format("{}:{} is pinned with host key {} by device '{}'; the device presented {}",
                      host, port, now_pin->key.fingerprint, now_pin->device, hk.fingerprint),
          fmt::format(
              "if the machine was reinstalled, verify its new key and run 'gedge device rekey {}'",
              now_pin->device));
    GEDGE_TRY_ASSIGN(auto cur, db.query("SELECT * FROM devices WHERE name = ?", {req.name}));
    if (!cur.empty()) {
      auto& c = cur.front();
      bool identical = c["host"] == host && c["port"] == port && c["user"] == user &&
                       c["host_key_fp"] == hk.fingerprint && c["token_hash"] == token_hash &&
                       (req.labels.empty() ||
                        parse_json_text(c["labels"], {}) == nlohmann::json::parse(labels)) &&
                       (req.tier.empty() || c["tier"] == req.tier) &&
                       (req.site.empty() || c["site"] == req.site) &&
                       (!req.groups || c["groups"] == groups_text);
      if (!identical && !req.force && !existing)
        return fail(
            ErrorCode::conflict,
            fmt::format("device '{}' was registered by another gedge process meanwhile", req.name),
            "run 'gedge device show " + req.name + "' and add again with --force if needed");
      changed = !identical;
      std::string lab = req.labels.empty() ? c["labels"].get<std::string>() : labels;
      SqlValue tier =
          req.tier.empty()
              ? (c["tier"].is_string() ? SqlValue(c["tier"].get<std::string>()) : SqlValue(nullptr))
              : SqlValue(req.tier);
      SqlValue site =
          req.site.empty()
              ? (c["site"].is_string() ? SqlValue(c["site"].get<std::string>()) : SqlValue(nullptr))
              : SqlValue(req.site);
      GEDGE_TRY(db.exec(
          "UPDATE devices SET host=?, port=?, user=?, identity=?, tier=?, site=?, labels=?, "
          "host_key_type=?, "
          "host_key_fp=?, token_hash=?, facts=?, topology_xml=?, status='ok', last_seen=?, "
          "rtt_ms=?, updated_at=?, "
          "alias=?, certificate=?, identity_agent=?, auth=?, proxy_jump=?, groups=? WHERE name=?",
          {host,
           int64_t(port),
           user,
           identity.empty() ? SqlValue(nullptr) : SqlValue(identity),
           tier,
           site,
           lab,
           hk.type,
           hk.fingerprint,
           token_hash,
           facts_text,
           topo.is_null() ? SqlValue(nullptr) : SqlValue(topo.get<std::string>()),
           now,
           rtt,
           now,
           alias_v,
           cert_v,
           agent_v,
           auth,
           jump_v,
           req.groups ? groups_text : c["groups"].get<std::string>(),
           req.name}));
      return {};
    }
    GEDGE_TRY(
        db.exec("INSERT INTO devices (name, host, port, user, identity, tier, site, labels, "
                "host_key_type, host_key_fp, "
                "token_hash, facts, topology_xml, status, last_seen, rtt_ms, created_at, "
                "updated_at, alias, certificate, "
                "identity_agent, auth, proxy_jump, groups) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'ok',?,?,?,?,?,?,?,?,?,?)",
                {req.name,
                 host,
                 int64_t(port),
                 user,
                 identity.empty() ? SqlValue(nullptr) : SqlValue(identity),
                 req.tier.empty() ? SqlValue(nullptr) : SqlValue(req.tier),
                 req.site.empty() ? SqlValue(nullptr) : SqlValue(req.site),
                 labels,
                 hk.type,
                 hk.fingerprint,
                 token_hash,
                 facts_text,
                 topo.is_null() ? SqlValue(nullptr) : SqlValue(topo.get<std::string>()),
                 now,
                 rtt,
                 now,
                 now,
                 alias_v,
                 cert_v,
                 agent_v,
                 auth,
                 jump_v,
                 req.groups ? groups_text : std::string("[]")}));
    return {};
  }));
  if (result.token_issued || result.bootstrapped) changed = true;
  // Every OpenSSH call (Ansible, cluster export, the jump) looks keys up by HostKeyAlias.
  GEDGE_TRY(
      known_hosts_update(paths.known_hosts, req.name, hk.public_key, legacy_marker(host, port)));
  GEDGE_TRY(known_hosts_update(paths.known_hosts, jump_alias(req.name),
                               target.jump ? target.jump->host_key.public_key : std::string()));
  if (existing) {
    // --force moved the device: its old address's legacy line goes when no other device is there.
    SshTarget old = target_of(*existing);
    if (old.host != host || (old.port ? old.port : 22) != port)
      GEDGE_TRY(release_known_host(inv, paths, old));
  }
  result.changed = changed;
  GEDGE_TRY_ASSIGN(auto stored, load_device(inv, req.name));
  result.device = device_json(stored);
  return result;
}

bool in_groups(const nlohmann::json& groups, const std::vector<std::string>& want) {
  for (const auto& g : want)
    if (!groups.is_array() || std::find(groups.begin(), groups.end(), g) == groups.end())
      return false;
  return true;
}

bool labels_match(const nlohmann::json& labels,
                  const std::vector<std::pair<std::string, std::string>>& want) {
  for (const auto& [k, v] : want) {
    if (!labels.is_object() || !labels.contains(k)) return false;
    const auto& got = labels[k];
    if (!got.is_string() || got.get<std::string>() != v) return false;
  }
  return true;
}

namespace {

// The selector's tier, groups and labels as a WHERE clause over `devices` with bound parameters,
// so SQLite skips the rows that do not match before gedge parses anything. The rules are
// labels_match's and in_groups's: a label matches a string value equal to it, a group a string
// element of the groups array, and a column that is not valid JSON matches nothing.
std::string selector_where(const DeviceSelector& sel, std::vector<SqlValue>& params) {
  std::string where;
  auto add = [&where](std::string_view cond) {
    where += where.empty() ? " WHERE " : " AND ";
    where += cond;
  };
  if (!sel.tier.empty()) {
    add("tier = ?");
    params.emplace_back(sel.tier);
  }
  for (const auto& g : sel.groups) {
    add("CASE WHEN json_valid(groups) AND json_type(groups) = 'array' THEN EXISTS (SELECT 1 FROM "
        "json_each(devices.groups) WHERE type = 'text' AND value = ?) ELSE 0 END");
    params.emplace_back(g);
  }
  for (const auto& [k, v] : sel.labels) {
    add("CASE WHEN json_valid(labels) AND json_type(labels) = 'object' THEN EXISTS (SELECT 1 FROM "
        "json_each(devices.labels) WHERE key = ? AND type = 'text' AND value = ?) ELSE 0 END");
    params.emplace_back(k);
    params.emplace_back(v);
  }
  return where;
}

}  // namespace

Result<std::vector<std::string>> select_devices(Inventory& inv, const DeviceSelector& sel) {
  if (!sel.names.empty()) {
    for (const auto& n : sel.names) GEDGE_TRY(load_device(inv, n));
    return sel.names;
  }
  if (!sel.all && sel.labels.empty() && sel.tier.empty() && sel.groups.empty())
    return fail(ErrorCode::usage, "no devices selected",
                "name devices, or use --all, --group NAME or --label k=v");
  std::vector<SqlValue> params;
  std::string where = selector_where(sel, params);
  GEDGE_TRY_ASSIGN(auto rows,
                   inv.query("SELECT name FROM devices" + where + " ORDER BY name", params));
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(std::move(r["name"].get_ref<std::string&>()));
  if (out.empty() && !sel.all)
    return fail(ErrorCode::not_found, "no registered device matches the selection",
                "see 'gedge device ls'");
  return out;
}

Result<nlohmann::json> device_list(Inventory& inv, const DeviceSelector& filter) {
  std::vector<SqlValue> params;
  std::string where = selector_where(filter, params);
  GEDGE_TRY_ASSIGN(auto rows,
                   inv.query("SELECT * FROM devices" + where + " ORDER BY name", params));
  nlohmann::json out = nlohmann::json::array();
  out.get_ref<nlohmann::json::array_t&>().reserve(rows.size());
  for (auto& r : rows) {
    out.push_back(device_json(std::move(r)));
    r = nullptr;  // the row's remains go now, not all at once at the end
  }
  return out;
}

Result<bool> device_list_json(Inventory& inv, const DeviceSelector& filter, std::string& out) {
  std::vector<SqlValue> params;
  std::string sql = "SELECT * FROM devices" + selector_where(filter, params) + " ORDER BY name";
  sqlite3* db = inv.raw();
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
    return fail(ErrorCode::failure, fmt::format("inventory: prepare: {}", sqlite3_errmsg(db)));
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st(raw, sqlite3_finalize);
  for (std::size_t i = 0; i < params.size(); ++i) {  // the selector binds only text
    const auto& v = std::get<std::string>(params[i]);
    if (sqlite3_bind_text(raw, static_cast<int>(i + 1), v.data(), static_cast<int>(v.size()),
                          SQLITE_TRANSIENT) != SQLITE_OK)
      return fail(ErrorCode::failure, fmt::format("inventory: bind: {}", sqlite3_errmsg(db)));
  }
  std::map<std::string, int, std::less<>> index;
  for (int c = 0; c < sqlite3_column_count(raw); ++c) index[sqlite3_column_name(raw, c)] = c;
  auto col = [&index](std::string_view name) {
    auto it = index.find(name);
    return it == index.end() ? -1 : it->second;
  };
  // A column's value as Inventory::query reads it; strings reuse one buffer.
  nlohmann::json text = std::string(), number, null;
  auto value = [&](int c) -> const nlohmann::json& {
    if (c < 0) return null;
    switch (sqlite3_column_type(raw, c)) {
      case SQLITE_INTEGER:
        number = sqlite3_column_int64(raw, c);
        return number;
      case SQLITE_FLOAT:
        number = sqlite3_column_double(raw, c);
        return number;
      case SQLITE_NULL:
        return null;
      default: {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(raw, c));
        text.get_ref<std::string&>().assign(p ? p : "",
                                            static_cast<std::size_t>(sqlite3_column_bytes(raw, c)));
        return text;
      }
    }
  };
  auto owned = [&](int c) { return nlohmann::json(value(c)); };
  // The device object's members in the order dump() prints them (std::map: sorted by key); the
  // unit test compares this with rendering device_list's result.
  struct Member {
    const char* key;
    int column;  // -1: composed below
  };
  const Member members[] = {
      {"alias", col("alias")},
      {"auth", col("auth")},
      {"certificate", col("certificate")},
      {"facts", -1},
      {"groups", -1},
      {"host", col("host")},
      {"host_key", -1},
      {"identity", col("identity")},
      {"identity_agent", col("identity_agent")},
      {"labels", -1},
      {"last_seen", col("last_seen")},
      {"name", col("name")},
      {"port", col("port")},
      {"proxy_jump", -1},
      {"rtt_ms", col("rtt_ms")},
      {"site", col("site")},
      {"status", col("status")},
      {"tier", col("tier")},
      {"user", col("user")},
  };
  const int c_facts = col("facts"), c_groups = col("groups"), c_labels = col("labels"),
            c_jump = col("proxy_jump"), c_kt = col("host_key_type"), c_kf = col("host_key_fp");
  using Serializer = nlohmann::detail::serializer<nlohmann::json>;
  Serializer ser(nlohmann::detail::output_adapter<char, std::string>(out), ' ',
                 nlohmann::json::error_handler_t::strict);
  constexpr unsigned kStep = 2, kMember = 4;  // array elements at 2, their members at 4
  std::string empty_facts;  // the facts of a device never checked ("{}"), printed once
  {
    Serializer once(nlohmann::detail::output_adapter<char, std::string>(empty_facts), ' ',
                    nlohmann::json::error_handler_t::strict);
    once.dump(facts_object(nlohmann::json::object()), true, false, kStep, kMember);
  }
  bool first = true;
  try {
    for (;;) {
      int rc = sqlite3_step(raw);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW)
        return fail(ErrorCode::failure, fmt::format("inventory: query: {}", sqlite3_errmsg(db)));
      out += first ? "[\n  {\n" : ",\n  {\n";
      first = false;
      bool first_member = true;
      for (const auto& m : members) {
        out += first_member ? "    \"" : ",\n    \"";
        first_member = false;
        out += m.key;
        out += "\": ";
        std::string_view key = m.key;
        if (m.column >= 0 || (key != "facts" && key != "groups" && key != "host_key" &&
                              key != "labels" && key != "proxy_jump")) {
          ser.dump(value(m.column), true, false, kStep, kMember);
        } else if (key == "facts") {
          const auto& f = value(c_facts);
          if (f.is_string() && f.get_ref<const std::string&>() == "{}")
            out += empty_facts;
          else
            ser.dump(facts_object(parse_json_text(f, nlohmann::json::object())), true, false, kStep,
                     kMember);
        } else if (key == "groups") {
          ser.dump(parse_json_text(value(c_groups), nlohmann::json::array()), true, false, kStep,
                   kMember);
        } else if (key == "labels") {
          ser.dump(parse_json_text(value(c_labels), nlohmann::json::object()), true, false, kStep,
                   kMember);
        } else if (key == "host_key") {
          ser.dump(nlohmann::json{{"type", owned(c_kt)}, {"fingerprint", owned(c_kf)}}, true, false,
                   kStep, kMember);
        } else {
          ser.dump(jump_object(parse_json_text(value(c_jump), nullptr)), true, false, kStep,
                   kMember);
        }
      }
      out += "\n  }";
    }
  } catch (const nlohmann::json::type_error&) {
    return false;  // a string that is not UTF-8: only the lossless rendering may print it
  }
  out += first ? "[]" : "\n]";
  return true;
}

Result<nlohmann::json> device_show(Inventory& inv, std::string_view name) {
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, name));
  auto d = device_json(row);
  d["token_registered"] = row["token_hash"].is_string();
  d["topology_xml_bytes"] =
      row["topology_xml"].is_string() ? row["topology_xml"].get<std::string>().size() : 0;
  d["created_at"] = row["created_at"];
  d["updated_at"] = row["updated_at"];
  GEDGE_TRY_ASSIGN(
      auto clusters,
      inv.query("SELECT cluster FROM cluster_members WHERE device = ? ORDER BY cluster",
                {std::string(name)}));
  d["clusters"] = nlohmann::json::array();
  for (const auto& c : clusters) d["clusters"].push_back(c["cluster"]);
  return d;
}

Result<nlohmann::json> device_remove(Inventory& inv, const Paths& paths, std::string_view name,
                                     bool force) {
  nlohmann::json removed;
  GEDGE_TRY(inv.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY_ASSIGN(auto row, load_device(db, name));
    GEDGE_TRY_ASSIGN(auto clusters, db.query("SELECT cluster FROM cluster_members WHERE device = ?",
                                             {std::string(name)}));
    if (!clusters.empty() && !force)
      return fail(ErrorCode::conflict,
                  fmt::format("device '{}' is a member of cluster '{}'", name,
                              clusters.front()["cluster"].get<std::string>()),
                  "remove it from the cluster first (gedge cluster leave), or pass --force");
    removed = device_json(row);
    GEDGE_TRY(db.exec("DELETE FROM devices WHERE name = ?", {std::string(name)}));
    return {};
  }));
  SshTarget kh;
  kh.host = removed["host"].get<std::string>();
  kh.port = removed["port"].get<int>();
  GEDGE_TRY(known_hosts_update(paths.known_hosts, name, ""));
  GEDGE_TRY(known_hosts_update(paths.known_hosts, jump_alias(name), ""));
  GEDGE_TRY(release_known_host(inv, paths, kh));
  return removed;
}

Result<RekeyPlan> device_rekey_probe(Inventory& inv, const Paths& paths, std::string_view name,
                                     double timeout_s) {
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, name));
  auto t = target_of(row);
  RekeyPlan plan;
  plan.name = std::string(name);
  plan.old_key = t.host_key;
  GEDGE_TRY_ASSIGN(plan.new_key, probe_host_key(t, default_ssh_options(paths, timeout_s)));
  plan.changed = plan.new_key.fingerprint != plan.old_key.fingerprint;
  return plan;
}

Result<void> device_rekey_apply(Inventory& inv, const Paths& paths, const RekeyPlan& plan,
                                double timeout_s) {
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, plan.name));
  auto t = target_of(row);
  t.host_key = plan.new_key;
  // Prove the new key and our login before pinning it.
  GEDGE_TRY_ASSIGN(auto sess, SshSession::connect(t, default_ssh_options(paths, timeout_s)));
  sess.reset();
  std::string now = now_rfc3339();
  int port = row["port"].get<int>();
  std::string jump_host = t.jump ? t.jump->host : std::string();
  std::vector<std::string> moved, jumped;
  GEDGE_TRY(inv.write([&](Inventory& db) -> Result<void> {
    moved = {plan.name};
    jumped.clear();
    // The pin belongs to the address (behind the same jump host, if any): every device
    // registered at it moves to the new key.
    GEDGE_TRY_ASSIGN(
        auto same,
        db.query("SELECT name, proxy_jump FROM devices WHERE host = ? AND port = ? AND name <> ?",
                 {t.host, int64_t(port), plan.name}));
    for (const auto& r : same) {
      auto j = parse_json_text(r["proxy_jump"], nullptr);
      if ((j.is_object() ? j.value("host", "") : std::string()) == jump_host)
        moved.push_back(r["name"].get<std::string>());
    }
    for (const auto& n : moved)
      GEDGE_TRY(
          db.exec("UPDATE devices SET host_key_type=?, host_key_fp=?, status='unknown', "
                  "updated_at=? WHERE name=?",
                  {plan.new_key.type, plan.new_key.fingerprint, now, n}));
    // Devices reached through this address (their ProxyJump) pinned its key as <device>/jump
    // when they were added: those pins move with it.
    if (!t.jump) {
      GEDGE_TRY_ASSIGN(
          auto behind,
          db.query("SELECT name, proxy_jump FROM devices WHERE proxy_jump IS NOT NULL"));
      for (const auto& r : behind) {
        auto j = parse_json_text(r["proxy_jump"], nullptr);
        if (!j.is_object() || j.value("host", "") != t.host || j.value("port", 22) != port)
          continue;
        j["host_key"] = {{"type", plan.new_key.type},
                         {"fingerprint", plan.new_key.fingerprint},
                         {"public_key", plan.new_key.public_key}};
        std::string n = r["name"].get<std::string>();
        GEDGE_TRY(db.exec("UPDATE devices SET proxy_jump=?, updated_at=? WHERE name=?",
                          {j.dump(), now, n}));
        jumped.push_back(n);
      }
    }
    return {};
  }));
  for (const auto& n : moved)
    GEDGE_TRY(known_hosts_update(paths.known_hosts, n, plan.new_key.public_key,
                                 legacy_marker(t.host, port)));
  std::vector<std::pair<std::string, std::string>> jump_lines;
  for (const auto& n : jumped) jump_lines.emplace_back(jump_alias(n), plan.new_key.public_key);
  GEDGE_TRY(known_hosts_set(paths.known_hosts, jump_lines));
  return {};
}

}  // namespace gedge
