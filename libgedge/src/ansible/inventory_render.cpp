// The private Ansible inventory gedge writes per run, and the verified known_hosts it points at.
#include <fmt/format.h>
#include <libssh/libssh.h>

#include <sstream>

#include "gedge/ansible.hpp"
#include "gedge/openssh.hpp"
#include "gedge/output.hpp"

namespace gedge::ansible {

std::string point_kubeconfig_at(std::string_view text, const std::string& host) {
  static constexpr std::string_view kLoopback = "https://127.0.0.1:";
  bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  std::string base = fmt::format("https://{}{}{}:", v6 ? "[" : "", host, v6 ? "]" : "");
  // One pass, left to right: the replacement is never searched again (a server at 127.0.0.1
  // looped for ever here, holding the database's write lock).
  std::string out;
  std::size_t from = 0;
  for (std::size_t p; (p = text.find(kLoopback, from)) != std::string_view::npos;
       from = p + kLoopback.size()) {
    out.append(text.substr(from, p - from));
    out += base;
  }
  out.append(text.substr(from));
  return out;
}

std::string known_hosts_marker(const std::string& host, int port) {
  return (port == 0 || port == 22) ? host : fmt::format("[{}]:{}", host, port);
}

Result<std::string> key_fingerprint(const std::string& key_type, const std::string& base64) {
  ssh_key key = nullptr;
  auto type = ssh_key_type_from_name(key_type.c_str());
  if (type == SSH_KEYTYPE_UNKNOWN ||
      ssh_pki_import_pubkey_base64(base64.c_str(), type, &key) != SSH_OK)
    return fail(ErrorCode::usage, fmt::format("cannot parse a '{}' public key", key_type));
  unsigned char* hash = nullptr;
  size_t len = 0;
  int rc = ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len);
  ssh_key_free(key);
  if (rc != SSH_OK) return fail(ErrorCode::internal, "cannot hash a public key");
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  std::string out = fp ? fp : "";
  ssh_string_free_char(fp);
  return out;
}

Result<std::string> verified_known_hosts_lines(std::string_view text, const std::string& host,
                                               int port, const std::string& pinned_fp,
                                               const std::string& device) {
  if (pinned_fp.empty())
    return fail(ErrorCode::host_key, fmt::format("device '{}' has no pinned host key", device),
                fmt::format("gedge device check {}", device));
  const std::string marker = known_hosts_marker(host, port);
  const std::string& alias = device;
  std::string out;
  bool seen_other = false;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line[0] == '@') continue;  // no markers/revocations
    std::istringstream ls(line);
    std::string hosts, type, b64;
    if (!(ls >> hosts >> type >> b64)) continue;
    bool match = false;
    std::istringstream hs(hosts);
    std::string h;
    while (std::getline(hs, h, ','))
      if (h == alias || h == marker) match = true;
    if (!match) continue;
    auto fp = key_fingerprint(type, b64);
    if (fp && *fp == pinned_fp) {
      auto l = fmt::format("{} {} {}\n", alias, type, b64);
      if (out.find(l) == std::string::npos) out += l;
    } else
      seen_other = true;
  }
  if (out.empty())
    return fail(ErrorCode::host_key,
                seen_other
                    ? fmt::format("the known_hosts key of device '{}' ({}) does not match its "
                                  "pinned fingerprint {}",
                                  device, marker, pinned_fp)
                    : fmt::format("no known_hosts entry for device '{}' ({}) in gedge's "
                                  "known_hosts",
                                  device, marker),
                fmt::format("gedge device check {}   (or gedge device rekey {})", device, device));
  return out;
}

Result<std::string> device_known_hosts_lines(std::string_view text, const SshTarget& t) {
  GEDGE_TRY_ASSIGN(
      auto lines, verified_known_hosts_lines(text, t.host, t.port, t.host_key.fingerprint, t.name));
  if (t.jump) {
    // One line per hop: each hop's ssh (nested ProxyCommands) checks its own alias.
    GEDGE_TRY_ASSIGN(auto hops, jump_known_hosts_lines(*t.jump, t.name));
    lines += hops;
  }
  return lines;
}

InventoryHost inventory_host(const SshTarget& t, const std::filesystem::path& gedge_key,
                             const std::filesystem::path& known_hosts, double connect_timeout_s,
                             nlohmann::json vars) {
  InventoryHost h;
  h.name = t.name;
  h.address = t.host;
  h.port = t.port > 0 ? t.port : 22;
  h.user = t.user;
  h.vars = std::move(vars);
  h.host_key_alias = t.name;
  h.identity_agent = t.identity_agent;
  h.certificate = t.certificate;
  if (t.auth == "agent") {
    // The agent holds the key: no key file, no IdentitiesOnly (it would hide the agent's keys).
    h.identities_only = false;
  } else {
    h.identity = t.identity.empty() ? gedge_key.string() : t.identity;
  }
  if (t.jump) {
    JumpCommand cmd;
    cmd.known_hosts = known_hosts;
    if (!h.identity.empty()) cmd.identities.push_back(h.identity);
    cmd.identity_agent = t.identity_agent;
    cmd.connect_timeout_s = connect_timeout_s;
    h.proxy_command = jump_proxy_command(cmd, *t.jump);
  }
  return h;
}

std::string ssh_file_option(const std::string& option, const std::string& path) {
  bool plain = !path.empty();
  for (unsigned char c : path)
    if (!(std::isalnum(c) ||
          std::string_view("/._+,:@=-").find(static_cast<char>(c)) != std::string_view::npos))
      plain = false;
  if (plain) return fmt::format("-o {}={}", option, path);
  // ssh reads the value with its own word splitting (quotes, backslash escapes) and expands
  // %-tokens; Ansible splits ansible_ssh_common_args like a POSIX shell (shlex). Quote for both.
  std::string ssh_value = "\"";
  for (char c : path) {
    if (c == '"' || c == '\\') ssh_value += '\\';
    if (c == '%') ssh_value += '%';
    ssh_value += c;
  }
  ssh_value += '"';
  std::string word = "'";
  for (char c : option + "=" + ssh_value) {
    if (c == '\'')
      word += "'\"'\"'";
    else
      word += c;
  }
  return "-o " + word + "'";
}

std::string render_inventory(const InventorySpec& spec) {
  // ssh options shared by every host: host keys checked against gedge's verified file only.
  std::string kh = spec.known_hosts.string();
  std::string ssh_args = fmt::format(
      "-F /dev/null -o StrictHostKeyChecking=yes {} {} -o BatchMode=yes -o CheckHostIP=no -o "
      "ConnectTimeout={} "
      "-o ServerAliveInterval=5 -o ServerAliveCountMax=3",
      ssh_file_option("UserKnownHostsFile", kh), ssh_file_option("GlobalKnownHostsFile", kh),
      static_cast<int>(spec.connect_timeout_s < 1 ? 1 : spec.connect_timeout_s));
  // ServerAlive: a device whose link drops mid-build (an established, persisted ssh connection
  // that no longer gets answers) becomes unreachable after ~15 s instead of hanging the build.
  nlohmann::json hosts = nlohmann::json::object();
  for (const auto& h : spec.hosts) {
    nlohmann::json v = h.vars.is_object() ? h.vars : nlohmann::json::object();
    v["ansible_host"] = h.address;
    v["ansible_port"] = h.port;
    v["ansible_user"] = h.user;
    if (!h.identity.empty()) v["ansible_ssh_private_key_file"] = h.identity;
    // Per host: the alias its key is pinned under, how it authenticates, its jump hop.
    std::string extra;
    auto opt = [&](const std::string& o) {
      extra += (extra.empty() ? "-o " : " -o ") + shlex_quote(o);
    };
    if (!h.host_key_alias.empty()) opt("HostKeyAlias=" + h.host_key_alias);
    if (h.identities_only && !h.identity.empty()) opt("IdentitiesOnly=yes");
    if (!h.identity_agent.empty())
      extra += (extra.empty() ? "" : " ") + ssh_file_option("IdentityAgent", h.identity_agent);
    if (!h.certificate.empty())
      extra += (extra.empty() ? "" : " ") + ssh_file_option("CertificateFile", h.certificate);
    if (!h.proxy_command.empty()) opt("ProxyCommand=" + h.proxy_command);
    if (!extra.empty()) v["ansible_ssh_extra_args"] = extra;
    hosts[h.name] = v;
  }
  nlohmann::json vars = spec.group_vars.is_object() ? spec.group_vars : nlohmann::json::object();
  vars["ansible_python_interpreter"] = "/usr/bin/python3";
  vars["ansible_ssh_common_args"] = ssh_args;
  vars["ansible_connection"] = "ssh";
  nlohmann::json inv = {
      {"all", {{"children", {{spec.group, {{"hosts", hosts}, {"vars", vars}}}}}}}};
  return "---\n# Written by gedge for one run; host keys are checked against " + kh + ".\n" +
         to_yaml(inv);
}

}  // namespace gedge::ansible
