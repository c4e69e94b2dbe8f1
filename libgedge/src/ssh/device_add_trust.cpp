// device add's resolution of --host (ssh -G) and its host-key trust: the operator's known_hosts
// files and the jump host's pin.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "device_detail.hpp"
#include "gedge/device.hpp"
#include "gedge/keys.hpp"
#include "gedge/known_hosts.hpp"
#include "gedge/openssh.hpp"
#include "gedge/stores.hpp"

namespace gedge {

namespace detail {

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
    // Every hop, outermost first (ProxyJump a,b and a jump host's own ProxyJump, as OpenSSH
    // takes them), each pinned on its own when the device is added.
    GEDGE_TRY_ASSIGN(auto hops, resolve_proxy_jump(rh->proxy_jump, req.ssh_config));
    t.jump = jump_chain(std::move(hops), req.name);
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

// Pins one jump host's key (`before`: the hops before it, already pinned; it is reached through
// them): the key a registered device at that address behind the same hops has, the key this
// device's earlier registration pinned there, or one accepted like the device's own
// (--accept-new, the prompt). Anything else is host_key, with nothing stored.
static Result<HostKey> pin_jump_key(Inventory& inv, const JumpHost& j,
                                    const std::vector<JumpHost>& before, const SshTarget& device,
                                    const std::optional<SqlRow>& existing, const SshOptions& opts,
                                    const DeviceAddRequest& req, Reporter& rep) {
  SshTarget jt;
  jt.name = req.name + " (jump host)";
  jt.host = j.host;
  jt.port = j.port;
  jt.user = j.user;
  // The hops before it run as they will for the device: the device's keys are offered to them.
  if (!device.identity.empty()) jt.extra_identities.push_back(device.identity);
  for (const auto& e : device.extra_identities) jt.extra_identities.push_back(e);
  jt.identity_agent = device.identity_agent;
  if (!before.empty()) jt.jump = jump_chain(before, req.name);
  const std::string chain = chain_key(jt.jump);
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
    // The same hop (same address behind the same hops) of this device's earlier registration.
    auto old = target_of(*existing);
    if (old.jump) {
      std::vector<JumpHost> mine = before;
      mine.push_back(j);
      const std::string want = chain_key(jump_chain(mine, req.name));
      auto old_hops = jump_hops(*old.jump);
      for (std::size_t i = 0; i < old_hops.size(); ++i) {
        std::vector<JumpHost> upto(old_hops.begin(), old_hops.begin() + static_cast<long>(i) + 1);
        if (chain_key(jump_chain(upto, req.name)) != want ||
            old_hops[i].host_key.fingerprint.empty())
          continue;
        if (old_hops[i].host_key.fingerprint != presented->fingerprint)
          return mismatch(fmt::format("device '{}'", req.name), old_hops[i].host_key.fingerprint);
        return *presented;
      }
    }
  }
  GEDGE_TRY_ASSIGN(auto rows, DeviceStore(inv).at_address(j.host, j.port));
  for (const auto& r : rows) {
    if (!r["host_key_fp"].is_string() || chain_key_of(r["proxy_jump"]) != chain) continue;
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

// Pins every hop of the device's jump chain in order, each reached through the ones before it.
Result<void> pin_jump_keys(Inventory& inv, SshTarget& target, const std::optional<SqlRow>& existing,
                           const SshOptions& opts, const DeviceAddRequest& req, Reporter& rep) {
  auto hops = jump_hops(*target.jump);
  std::vector<JumpHost> before;
  for (auto& h : hops) {
    GEDGE_TRY_ASSIGN(h.host_key, pin_jump_key(inv, h, before, target, existing, opts, req, rep));
    rep.step(req.name,
             fmt::format("{} jump host {}@{}:{} ({})", before.empty() ? "through" : "then through",
                         h.user, h.host, h.port, h.host_key.fingerprint));
    before.push_back(h);
  }
  target.jump = jump_chain(std::move(before), req.name);
  return {};
}

}  // namespace detail

}  // namespace gedge
