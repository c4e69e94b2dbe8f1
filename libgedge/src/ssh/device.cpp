// The device registry: add (host-key policy, password bootstrap, device token, facts), ls, show,
// rm, rekey, and loading a registered device as an SSH target.
#include "gedge/device.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <unistd.h>

#include <regex>

#include "device_detail.hpp"
#include "gedge/keys.hpp"

namespace gedge {

namespace detail {

nlohmann::json parse_json_text(const nlohmann::json& v, nlohmann::json fallback) {
  if (!v.is_string()) return fallback;
  auto j = nlohmann::json::parse(v.get<std::string>(), nullptr, false);
  return j.is_discarded() ? fallback : j;
}

nlohmann::json device_json(const SqlRow& r) {
  auto facts = parse_json_text(r.value("facts", nlohmann::json()), nlohmann::json::object());
  nlohmann::json f{{"arch", facts.value("arch", nlohmann::json())},
                   {"os", facts.value("os", nlohmann::json())},
                   {"kernel", facts.value("kernel", nlohmann::json())},
                   {"cpus", facts.value("cpus", nlohmann::json())},
                   {"memory_bytes", facts.value("memory_bytes", nlohmann::json())},
                   {"disk_free_bytes", facts.value("disk_free_bytes", nlohmann::json())},
                   {"gpus", facts.value("gpus", nlohmann::json::array())},
                   {"container_runtime", facts.value("container_runtime", nlohmann::json())}};
  for (auto it = facts.begin(); it != facts.end(); ++it)
    if (!f.contains(it.key())) f[it.key()] = it.value();
  return nlohmann::json{
      {"name", r["name"]},
      {"host", r["host"]},
      {"port", r["port"]},
      {"user", r["user"]},
      {"identity", r["identity"]},
      {"tier", r["tier"]},
      {"site", r["site"]},
      {"labels", parse_json_text(r["labels"], nlohmann::json::object())},
      {"status", r["status"]},
      {"last_seen", r["last_seen"]},
      {"rtt_ms", r["rtt_ms"]},
      {"host_key", {{"type", r["host_key_type"]}, {"fingerprint", r["host_key_fp"]}}},
      {"facts", f},
  };
}

Result<SqlRow> load_device(Inventory& inv, std::string_view name) {
  GEDGE_TRY_ASSIGN(auto rows, inv.query("SELECT * FROM devices WHERE name = ?", {std::string(name)}));
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
  return t;
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
  if (req.host.empty() || req.host.find_first_of(" \t\n/@") != std::string::npos)
    return fail(ErrorCode::usage, fmt::format("invalid --host '{}'", req.host));
  if (req.port < 0 || req.port > 65535) return fail(ErrorCode::usage, fmt::format("invalid --port {}", req.port));
  if (!req.tier.empty() && req.tier != "local" && req.tier != "neighbor" && req.tier != "cloud")
    return fail(ErrorCode::usage, fmt::format("invalid --tier '{}'", req.tier), "use local, neighbor or cloud");
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
Result<std::optional<AddressPin>> address_pin(Inventory& inv, const std::string& host, int port,
                                              const std::string& except) {
  GEDGE_TRY_ASSIGN(auto rows, inv.query("SELECT name, host_key_type, host_key_fp FROM devices WHERE host = ? AND "
                                        "port = ? AND name <> ? AND host_key_fp IS NOT NULL AND host_key_fp <> '' "
                                        "ORDER BY name LIMIT 1",
                                        {host, int64_t(port), except}));
  if (rows.empty()) return std::optional<AddressPin>();
  AddressPin p;
  p.device = rows[0]["name"].get<std::string>();
  p.key.type = rows[0]["host_key_type"].is_string() ? rows[0]["host_key_type"].get<std::string>() : "";
  p.key.fingerprint = rows[0]["host_key_fp"].get<std::string>();
  return std::optional<AddressPin>(p);
}

// known_hosts lines are shared by every device at their address: one is removed only when no
// device is registered there any more.
Result<void> release_known_host(Inventory& inv, const Paths& paths, const SshTarget& at) {
  int port = at.port ? at.port : 22;
  GEDGE_TRY_ASSIGN(auto left, inv.query("SELECT count(*) AS n FROM devices WHERE host = ? AND port = ?",
                                        {at.host, int64_t(port)}));
  if (!left.empty() && left[0]["n"].get<int64_t>() > 0) return {};
  SshTarget kh = at;
  kh.port = port;
  return known_hosts_update(paths.known_hosts, kh, "");
}

std::string labels_text(const std::map<std::string, std::string>& labels) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : labels) j[k] = v;
  return j.dump();
}

}  // namespace

Result<DeviceAddResult> device_add(Inventory& inv, const Paths& paths, const DeviceAddRequest& req, Reporter& rep) {
  GEDGE_TRY(validate(req));
  GEDGE_TRY_ASSIGN(auto existing_rows, inv.query("SELECT * FROM devices WHERE name = ?", {req.name}));
  std::optional<SqlRow> existing;
  if (!existing_rows.empty()) existing = existing_rows.front();

  SshTarget target;
  target.name = req.name;
  target.host = req.host;
  target.port = req.port;
  target.user = req.user;
  target.identity = req.identity;

  // A different registration under this name is a conflict before we touch the network.
  bool same_address = false;
  if (existing) {
    auto old = device_json(*existing);
    std::vector<std::string> diffs;
    if (old["host"] != req.host) diffs.push_back(fmt::format("host {} -> {}", old["host"].get<std::string>(), req.host));
    if (req.port && old["port"] != req.port) diffs.push_back(fmt::format("port {} -> {}", old["port"].dump(), req.port));
    if (!req.user.empty() && old["user"] != req.user)
      diffs.push_back(fmt::format("user {} -> {}", old["user"].get<std::string>(), req.user));
    if (!req.labels.empty() && old["labels"] != nlohmann::json::parse(labels_text(req.labels)))
      diffs.push_back("labels");
    if (!req.tier.empty() && old["tier"] != req.tier) diffs.push_back("tier");
    if (!req.site.empty() && old["site"] != req.site) diffs.push_back("site");
    if (!req.identity.empty() && old["identity"] != req.identity) diffs.push_back("identity");
    if (!req.host_key.empty() && old["host_key"]["fingerprint"] != req.host_key) diffs.push_back("host key");
    same_address = old["host"] == req.host && (!req.port || old["port"] == req.port);
    if (!diffs.empty() && !req.force) {
      std::string what;
      for (size_t i = 0; i < diffs.size(); ++i) what += (i ? ", " : "") + diffs[i];
      return fail(ErrorCode::conflict,
                  fmt::format("device '{}' is already registered with different values ({})", req.name, what),
                  "pass --force to replace the registration, or choose another name");
    }
    if (same_address) {
      // Re-add: the pinned key must still match (a changed key needs `device rekey`).
      if (!req.port) target.port = old["port"].get<int>();
      if (req.user.empty()) target.user = old["user"].get<std::string>();
      if (req.identity.empty() && old["identity"].is_string()) target.identity = old["identity"].get<std::string>();
      if (req.host_key.empty()) target.host_key = target_of(*existing).host_key;
    }
  }
  if (!req.host_key.empty()) target.host_key.fingerprint = req.host_key;

  // Host keys are pinned per address: a device already registered at this host:port fixes the
  // key accepted here, whatever the new name (--accept-new cannot take over an address).
  GEDGE_TRY_ASSIGN(auto pin, address_pin(inv, req.host, target.port ? target.port : 22, req.name));
  if (pin) {
    if (!req.host_key.empty() && req.host_key != pin->key.fingerprint)
      return fail(ErrorCode::host_key,
                  fmt::format("{}:{} is pinned with host key {} by device '{}'; --host-key {} differs", req.host,
                              target.port ? target.port : 22, pin->key.fingerprint, pin->device, req.host_key),
                  fmt::format("if the machine was reinstalled, verify its new key and run 'gedge device rekey {}'",
                              pin->device));
    if (target.host_key.fingerprint.empty()) target.host_key = pin->key;
  }

  SshOptions opts = default_ssh_options(paths, req.timeout_s);
  opts.accept_new = req.accept_new;
  opts.confirm_new_key = req.confirm_new_key;
  auto pinned_by_flag = !req.host_key.empty();

  auto connect = [&](const SshOptions& o) -> Result<std::unique_ptr<SshSession>> {
    auto s = SshSession::connect(target, o);
    if (!s && pin && !pinned_by_flag && s.error().code == ErrorCode::host_key) {
      Error e = s.error();
      e.message = fmt::format("{}:{} is pinned by device '{}': {}", req.host, target.port ? target.port : 22,
                              pin->device, e.message);
      e.hint = fmt::format("a new name does not make a different key trusted; if the machine was reinstalled, "
                           "verify its new key and run 'gedge device rekey {}'",
                           pin->device);
      return std::unexpected(e);
    }
    if (!s && pinned_by_flag && s.error().code == ErrorCode::host_key) {
      Error e = s.error();
      e.message = fmt::format("host key of {}:{} does not match --host-key: {}", req.host,
                              req.port ? req.port : 22, e.message);
      e.hint = "check the fingerprint you were given (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the device)";
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
    GEDGE_TRY_ASSIGN(auto r, boot->exec({"sh", "-c", kInstallKeyScript, "gedge-bootstrap", line, b64}));
    if (r.exit_code != 0)
      return fail(ErrorCode::failure,
                  fmt::format("device '{}': cannot install gedge's key: {}", req.name, r.err.empty() ? r.out : r.err));
    result.bootstrapped = r.out.find("added") != std::string::npos;
    rep.step(req.name, result.bootstrapped ? "gedge's key installed in ~/.ssh/authorized_keys"
                                           : "gedge's key already authorized");
    target.host_key = boot->host_key();  // the key we just accepted
    boot.reset();
    SshOptions ko = opts;
    ko.use_agent = false;
    ko.use_ssh_config = opts.use_ssh_config;
    SshTarget kt = target;
    kt.identity.clear();
    auto proved = SshSession::connect(kt, ko);
    if (!proved) {
      Error e = proved.error();
      e.message = fmt::format("device '{}': key login failed after installing gedge's key: {}", req.name, e.message);
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
    return fail(ErrorCode::failure, fmt::format("device '{}': facts script failed: {}", req.name, fr.err));
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
    GEDGE_TRY_ASSIGN(auto others, inv.query("SELECT name FROM devices WHERE token_hash = ? AND name <> ?", {token_hash, req.name}));
    if (!others.empty()) {
      if (!req.force)
        return fail(ErrorCode::conflict,
                    fmt::format("the machine at {} is already registered as device '{}' (its device token says so)",
                                req.host, others.front()["name"].get<std::string>()),
                    "pass --force to register it under this name too (the old entry will fail 'device check')");
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
  sess.reset();

  std::string now = now_rfc3339();
  // Facts are the device's own text (hostname, os-release), which need not be UTF-8.
  std::string facts_text = facts.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string identity = target.identity;
  std::string labels = labels_text(req.labels);
  bool changed = true;
  GEDGE_TRY(inv.write([&](Inventory& db) -> Result<void> {
    // The port may come from ssh_config, and another process may have pinned the address meanwhile.
    GEDGE_TRY_ASSIGN(auto now_pin, address_pin(db, req.host, port, req.name));
    if (now_pin && now_pin->key.fingerprint != hk.fingerprint)
      return fail(ErrorCode::host_key,
                  fmt::format("{}:{} is pinned with host key {} by device '{}'; the device presented {}", req.host,
                              port, now_pin->key.fingerprint, now_pin->device, hk.fingerprint),
                  fmt::format("if the machine was reinstalled, verify its new key and run 'gedge device rekey {}'",
                              now_pin->device));
    GEDGE_TRY_ASSIGN(auto cur, db.query("SELECT * FROM devices WHERE name = ?", {req.name}));
    if (!cur.empty()) {
      auto& c = cur.front();
      bool identical = c["host"] == req.host && c["port"] == port && c["user"] == user &&
                       c["host_key_fp"] == hk.fingerprint && c["token_hash"] == token_hash &&
                       (req.labels.empty() || parse_json_text(c["labels"], {}) == nlohmann::json::parse(labels)) &&
                       (req.tier.empty() || c["tier"] == req.tier) && (req.site.empty() || c["site"] == req.site);
      if (!identical && !req.force && !existing)
        return fail(ErrorCode::conflict,
                    fmt::format("device '{}' was registered by another gedge process meanwhile", req.name),
                    "run 'gedge device show " + req.name + "' and add again with --force if needed");
      changed = !identical;
      std::string lab = req.labels.empty() ? c["labels"].get<std::string>() : labels;
      SqlValue tier = req.tier.empty() ? (c["tier"].is_string() ? SqlValue(c["tier"].get<std::string>()) : SqlValue(nullptr))
                                       : SqlValue(req.tier);
      SqlValue site = req.site.empty() ? (c["site"].is_string() ? SqlValue(c["site"].get<std::string>()) : SqlValue(nullptr))
                                       : SqlValue(req.site);
      GEDGE_TRY(db.exec(
          "UPDATE devices SET host=?, port=?, user=?, identity=?, tier=?, site=?, labels=?, host_key_type=?, "
          "host_key_fp=?, token_hash=?, facts=?, topology_xml=?, status='ok', last_seen=?, rtt_ms=?, updated_at=? "
          "WHERE name=?",
          {req.host, int64_t(port), user, identity.empty() ? SqlValue(nullptr) : SqlValue(identity), tier, site, lab,
           hk.type, hk.fingerprint, token_hash, facts_text,
           topo.is_null() ? SqlValue(nullptr) : SqlValue(topo.get<std::string>()), now, rtt, now, req.name}));
      return {};
    }
    GEDGE_TRY(db.exec(
        "INSERT INTO devices (name, host, port, user, identity, tier, site, labels, host_key_type, host_key_fp, "
        "token_hash, facts, topology_xml, status, last_seen, rtt_ms, created_at, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'ok',?,?,?,?)",
        {req.name, req.host, int64_t(port), user, identity.empty() ? SqlValue(nullptr) : SqlValue(identity),
         req.tier.empty() ? SqlValue(nullptr) : SqlValue(req.tier), req.site.empty() ? SqlValue(nullptr) : SqlValue(req.site),
         labels, hk.type, hk.fingerprint, token_hash, facts_text,
         topo.is_null() ? SqlValue(nullptr) : SqlValue(topo.get<std::string>()), now, rtt, now, now}));
    return {};
  }));
  if (result.token_issued || result.bootstrapped) changed = true;
  SshTarget kh = target;
  kh.port = port;
  GEDGE_TRY(known_hosts_update(paths.known_hosts, kh, hk.public_key));
  if (existing) {
    // --force moved the device: its old address's line goes when no other device is there.
    SshTarget old = target_of(*existing);
    if (old.host != req.host || (old.port ? old.port : 22) != port) GEDGE_TRY(release_known_host(inv, paths, old));
  }
  result.changed = changed;
  GEDGE_TRY_ASSIGN(auto stored, load_device(inv, req.name));
  result.device = device_json(stored);
  return result;
}

bool labels_match(const nlohmann::json& labels, const std::vector<std::pair<std::string, std::string>>& want) {
  for (const auto& [k, v] : want) {
    if (!labels.is_object() || !labels.contains(k)) return false;
    const auto& got = labels[k];
    if (!got.is_string() || got.get<std::string>() != v) return false;
  }
  return true;
}

Result<std::vector<std::string>> select_devices(Inventory& inv, const DeviceSelector& sel) {
  if (!sel.names.empty()) {
    for (const auto& n : sel.names) GEDGE_TRY(load_device(inv, n));
    return sel.names;
  }
  if (!sel.all && sel.labels.empty() && sel.tier.empty())
    return fail(ErrorCode::usage, "no devices selected", "name devices, or use --all or --label k=v");
  GEDGE_TRY_ASSIGN(auto rows, inv.query("SELECT name, labels, tier FROM devices ORDER BY name"));
  std::vector<std::string> out;
  for (const auto& r : rows) {
    if (!sel.tier.empty() && r["tier"] != sel.tier) continue;
    if (!labels_match(parse_json_text(r["labels"], nlohmann::json::object()), sel.labels)) continue;
    out.push_back(r["name"].get<std::string>());
  }
  if (out.empty() && !sel.all)
    return fail(ErrorCode::not_found, "no registered device matches the selection", "see 'gedge device ls'");
  return out;
}

Result<nlohmann::json> device_list(Inventory& inv, const DeviceSelector& filter) {
  GEDGE_TRY_ASSIGN(auto rows, inv.query("SELECT * FROM devices ORDER BY name"));
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    if (!filter.tier.empty() && r["tier"] != filter.tier) continue;
    auto d = device_json(r);
    if (!labels_match(d["labels"], filter.labels)) continue;
    out.push_back(std::move(d));
  }
  return out;
}

Result<nlohmann::json> device_show(Inventory& inv, std::string_view name) {
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, name));
  auto d = device_json(row);
  d["token_registered"] = row["token_hash"].is_string();
  d["topology_xml_bytes"] = row["topology_xml"].is_string() ? row["topology_xml"].get<std::string>().size() : 0;
  d["created_at"] = row["created_at"];
  d["updated_at"] = row["updated_at"];
  GEDGE_TRY_ASSIGN(auto clusters, inv.query("SELECT cluster FROM cluster_members WHERE device = ? ORDER BY cluster", {std::string(name)}));
  d["clusters"] = nlohmann::json::array();
  for (const auto& c : clusters) d["clusters"].push_back(c["cluster"]);
  return d;
}

Result<nlohmann::json> device_remove(Inventory& inv, const Paths& paths, std::string_view name, bool force) {
  nlohmann::json removed;
  GEDGE_TRY(inv.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY_ASSIGN(auto row, load_device(db, name));
    GEDGE_TRY_ASSIGN(auto clusters, db.query("SELECT cluster FROM cluster_members WHERE device = ?", {std::string(name)}));
    if (!clusters.empty() && !force)
      return fail(ErrorCode::conflict,
                  fmt::format("device '{}' is a member of cluster '{}'", name, clusters.front()["cluster"].get<std::string>()),
                  "remove it from the cluster first (gedge cluster leave), or pass --force");
    removed = device_json(row);
    GEDGE_TRY(db.exec("DELETE FROM devices WHERE name = ?", {std::string(name)}));
    return {};
  }));
  SshTarget kh;
  kh.host = removed["host"].get<std::string>();
  kh.port = removed["port"].get<int>();
  GEDGE_TRY(release_known_host(inv, paths, kh));
  return removed;
}

Result<RekeyPlan> device_rekey_probe(Inventory& inv, const Paths& paths, std::string_view name, double timeout_s) {
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, name));
  auto t = target_of(row);
  RekeyPlan plan;
  plan.name = std::string(name);
  plan.old_key = t.host_key;
  GEDGE_TRY_ASSIGN(plan.new_key, probe_host_key(t, default_ssh_options(paths, timeout_s)));
  plan.changed = plan.new_key.fingerprint != plan.old_key.fingerprint;
  return plan;
}

Result<void> device_rekey_apply(Inventory& inv, const Paths& paths, const RekeyPlan& plan, double timeout_s) {
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, plan.name));
  auto t = target_of(row);
  t.host_key = plan.new_key;
  // Prove the new key and our login before pinning it.
  GEDGE_TRY_ASSIGN(auto sess, SshSession::connect(t, default_ssh_options(paths, timeout_s)));
  sess.reset();
  std::string now = now_rfc3339();
  GEDGE_TRY(inv.write([&](Inventory& db) -> Result<void> {
    // The pin belongs to the address: every device registered at it moves to the new key.
    GEDGE_TRY(db.exec("UPDATE devices SET host_key_type=?, host_key_fp=?, status='unknown', updated_at=? "
                      "WHERE name=? OR (host=? AND port=?)",
                      {plan.new_key.type, plan.new_key.fingerprint, now, plan.name, t.host, int64_t(row["port"].get<int>())}));
    return {};
  }));
  t.port = row["port"].get<int>();
  return known_hosts_update(paths.known_hosts, t, plan.new_key.public_key);
}

}  // namespace gedge
