// device add: validation, the address pin, password bootstrap, device token, facts.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <regex>

#include "device_detail.hpp"
#include "gedge/device.hpp"
#include "gedge/keys.hpp"
#include "gedge/known_hosts.hpp"
#include "gedge/openssh.hpp"
#include "gedge/stores.hpp"

namespace gedge {

using namespace detail;

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
// An address behind jump hosts is another machine than the same address elsewhere: only
// devices reached through the same chain of jump hosts (chain_key; "" = none) count.
Result<std::optional<AddressPin>> address_pin(Inventory& inv, const std::string& host, int port,
                                              const std::string& except,
                                              const std::string& chain = "") {
  GEDGE_TRY_ASSIGN(auto rows, DeviceStore(inv).at_address(host, port));
  for (const auto& r : rows) {
    const auto& fp = r["host_key_fp"];
    if (r["name"] == except || !fp.is_string() || fp.get_ref<const std::string&>().empty() ||
        chain_key_of(r["proxy_jump"]) != chain)
      continue;
    AddressPin p;
    p.device = r["name"].get<std::string>();
    p.key.type = r["host_key_type"].is_string() ? r["host_key_type"].get<std::string>() : "";
    p.key.fingerprint = r["host_key_fp"].get<std::string>();
    return std::optional<AddressPin>(p);
  }
  return std::optional<AddressPin>();
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
  GEDGE_TRY_ASSIGN(auto existing, DeviceStore(inv).row(req.name));

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
                                         chain_key(target.jump)));
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
  if (target.jump) GEDGE_TRY(pin_jump_keys(inv, target, existing, opts, req, rep));

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
    GEDGE_TRY_ASSIGN(auto other, DeviceStore(inv).with_token(token_hash, req.name));
    if (other) {
      if (!req.force)
        return fail(
            ErrorCode::conflict,
            fmt::format(
                "the machine at {} is already registered as device '{}' (its device token says so)",
                host, *other),
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
  auto opt = [](const std::string& v) {
    return v.empty() ? std::nullopt : std::optional<std::string>(v);
  };
  DeviceRecord rec;
  rec.name = req.name;
  rec.host = host;
  rec.port = port;
  rec.user = user;
  rec.identity = opt(target.identity);
  rec.tier = opt(req.tier);
  rec.site = opt(req.site);
  rec.labels = labels_text(req.labels);
  rec.host_key_type = hk.type;
  rec.host_key_fp = hk.fingerprint;
  rec.token_hash = token_hash;
  // Facts are the device's own text (hostname, os-release), which need not be UTF-8.
  rec.facts = facts.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (!topo.is_null()) rec.topology_xml = topo.get<std::string>();
  rec.rtt_ms = rtt;
  rec.alias = opt(resolved.alias);
  rec.certificate = opt(target.certificate);
  rec.identity_agent = opt(target.identity_agent);
  rec.auth = auth;
  if (target.jump) rec.proxy_jump = jump_record(*target.jump).dump();
  const std::string groups_text = req.groups ? nlohmann::json(*req.groups).dump() : "[]";
  rec.groups = groups_text;
  rec.now = now_rfc3339();
  bool changed = true;
  GEDGE_TRY(inv.write([&](Inventory& db) -> Result<void> {
    // The port may come from ssh_config, and another process may have pinned the address meanwhile.
    GEDGE_TRY_ASSIGN(auto now_pin, address_pin(db, host, port, req.name, chain_key(target.jump)));
    if (now_pin && now_pin->key.fingerprint != hk.fingerprint)
      return fail(
          ErrorCode::host_key,
          fmt::format("{}:{} is pinned with host key {} by device '{}'; the device presented {}",
                      host, port, now_pin->key.fingerprint, now_pin->device, hk.fingerprint),
          fmt::format(
              "if the machine was reinstalled, verify its new key and run 'gedge device rekey {}'",
              now_pin->device));
    DeviceStore devices(db);
    GEDGE_TRY_ASSIGN(auto cur, devices.row(req.name));
    if (!cur) return devices.insert(rec);
    auto& c = *cur;
    bool identical = c["host"] == host && c["port"] == port && c["user"] == user &&
                     c["host_key_fp"] == hk.fingerprint && c["token_hash"] == token_hash &&
                     (req.labels.empty() ||
                      parse_json_text(c["labels"], {}) == nlohmann::json::parse(rec.labels)) &&
                     (req.tier.empty() || c["tier"] == req.tier) &&
                     (req.site.empty() || c["site"] == req.site) &&
                     (!req.groups || c["groups"] == groups_text);
    if (!identical && !req.force && !existing)
      return fail(
          ErrorCode::conflict,
          fmt::format("device '{}' was registered by another gedge process meanwhile", req.name),
          "run 'gedge device show " + req.name + "' and add again with --force if needed");
    changed = !identical;
    // What the request leaves out stays as it was.
    auto column = [&c](const char* k) {
      return c[k].is_string() ? std::optional<std::string>(c[k].get<std::string>()) : std::nullopt;
    };
    DeviceRecord upd = rec;
    if (req.labels.empty()) upd.labels = c["labels"].get<std::string>();
    if (req.tier.empty()) upd.tier = column("tier");
    if (req.site.empty()) upd.site = column("site");
    if (!req.groups) upd.groups = c["groups"].get<std::string>();
    return devices.update(upd);
  }));
  if (result.token_issued || result.bootstrapped) changed = true;
  // Every OpenSSH call (Ansible, cluster export, the jump) looks keys up by HostKeyAlias.
  GEDGE_TRY(
      known_hosts_update(paths.known_hosts, req.name, hk.public_key, legacy_marker(host, port)));
  // One line per hop ("<device>/jump", "<device>/jump-1", ...); a shorter chain's stale lines go.
  std::vector<std::pair<std::string, std::string>> hop_lines;
  std::vector<JumpHost> hops;
  if (target.jump) hops = jump_hops(*target.jump);
  for (std::size_t i = 0; i < kMaxJumpHops; ++i)
    hop_lines.emplace_back(fmt::format("{}/jump-{}", req.name, i + 1), std::string());
  hop_lines.emplace_back(jump_alias(req.name), std::string());
  for (const auto& h : hops)
    for (auto& [alias, line] : hop_lines)
      if (alias == h.alias) line = h.host_key.public_key;
  GEDGE_TRY(known_hosts_set(paths.known_hosts, hop_lines));
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

}  // namespace gedge
