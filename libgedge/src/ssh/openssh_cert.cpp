// Host certificates through the system OpenSSH client: libssh 0.10 cannot verify them, so `ssh -v`
// connects with the CA lines as its known_hosts and its log says whether the certificate held.
#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "gedge/fd.hpp"
#include "gedge/openssh.hpp"
#include "openssh_internal.hpp"

namespace gedge {

using openssh_detail::run_capture;
using openssh_detail::ssh_path_value;

std::string host_cert_algorithms(const std::string& key_type) {
  if (key_type == "ssh-ed25519") return "ssh-ed25519-cert-v01@openssh.com";
  if (key_type.rfind("ecdsa-sha2-", 0) == 0) return key_type + "-cert-v01@openssh.com";
  if (key_type == "ssh-rsa" || key_type.rfind("rsa-sha2-", 0) == 0)
    return "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com";
  return "";
}

std::vector<std::string> host_cert_argv(const HostCertQuery& q, const std::string& known_hosts,
                                        const std::string& proxy_command) {
  std::vector<std::string> a = {
      q.program, "-F", "/dev/null", "-v", "-T", "-o", "BatchMode=yes", "-o",
      "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + ssh_path_value(known_hosts), "-o",
      "GlobalKnownHostsFile=/dev/null", "-o", "HostKeyAlias=" + q.host, "-o", "CheckHostIP=no",
      "-o", "UpdateHostKeys=no", "-o",
      fmt::format("ConnectTimeout={}", std::max(1, static_cast<int>(q.connect_timeout_s))),
      // Only the host key is wanted: no key, agent or password is offered.
      "-o", "PubkeyAuthentication=no", "-o", "PasswordAuthentication=no", "-o",
      "KbdInteractiveAuthentication=no", "-o", "GSSAPIAuthentication=no", "-o",
      "HostbasedAuthentication=no", "-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes"};
  if (auto algs = host_cert_algorithms(q.key_type); !algs.empty())
    a.insert(a.end(), {"-o", "HostKeyAlgorithms=" + algs});
  if (!proxy_command.empty()) a.insert(a.end(), {"-o", "ProxyCommand=" + proxy_command});
  a.insert(a.end(), {"-p", std::to_string(q.port > 0 ? q.port : 22)});
  if (!q.user.empty()) a.insert(a.end(), {"-l", q.user});
  a.insert(a.end(), {"--", q.host, "true"});
  return a;
}

Result<HostCertVerdict> parse_host_cert_log(std::string_view err) {
  HostCertVerdict v;
  std::istringstream in{std::string(err)};
  std::string line, why;
  bool presented = false, matched = false, past_kex = false, failed = false, negotiate = false;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (auto p = line.find("Server host certificate: "); p != std::string::npos) {
      // "<alg> SHA256:<key>, serial N ID "..." CA <type> SHA256:<ca> valid ..."
      presented = true;
      std::istringstream ws(line.substr(p + 25));
      std::string alg, fp;
      ws >> alg >> fp;
      if (!fp.empty() && fp.back() == ',') fp.pop_back();
      v.fingerprint = fp;
      if (auto ca = line.find(" CA "); ca != std::string::npos) {
        std::istringstream cs(line.substr(ca + 4));
        std::string type, cfp;
        cs >> type >> cfp;
        v.ca_fingerprint = cfp;
      }
      v.detail = line.substr(p);
    } else if (line.find("is known and matches the") != std::string::npos &&
               line.find("host certificate") != std::string::npos) {
      matched = true;
    } else if (line.find("SSH2_MSG_NEWKEYS sent") != std::string::npos) {
      past_kex = true;
    } else if (line.find("Host key verification failed") != std::string::npos) {
      failed = true;
    } else if (line.find("no matching host key type found") != std::string::npos) {
      negotiate = true;
      why = line;
    } else if (line.rfind("debug", 0) != 0 && !line.empty() && line[0] != '@' &&
               line.rfind("OpenSSH_", 0) != 0 &&
               line.find("Permission denied") == std::string::npos) {
      if (why.empty() || line.find("Certificate invalid") != std::string::npos ||
          line.find("revoked") != std::string::npos)
        why = line;
    }
  }
  if (negotiate) {
    v.detail = "the host presents no certificate for its key type (" + why + ")";
    v.fingerprint.clear();
    return v;
  }
  if (presented || failed) {
    v.certified = presented && matched && past_kex && !failed && !v.fingerprint.empty();
    if (!v.certified) {
      bool reason = why.find("Certificate invalid") != std::string::npos ||
                    why.find("revoked") != std::string::npos;
      if (presented && !matched && !reason)
        v.detail =
            fmt::format("its certificate is signed by CA {}, not by a CA listed for the host",
                        v.ca_fingerprint);
      else
        v.detail = why.empty() ? "OpenSSH did not accept the host certificate" : why;
      if (!presented) v.detail += " (the host presented no certificate)";
    }
    return v;
  }
  return fail(
      ErrorCode::unreachable,
      fmt::format("cannot check the host certificate: {}", why.empty() ? "ssh said nothing" : why),
      "is the device up and sshd running?");
}

Result<HostCertVerdict> verify_host_certificate(const HostCertQuery& q) {
  GEDGE_TRY_ASSIGN(auto exe, find_ssh(q.program));
  if (q.host.empty() || q.host.find_first_of("*?!, \t\n") != std::string::npos || q.host[0] == '-')
    return fail(ErrorCode::usage,
                fmt::format("cannot check a host certificate for host '{}'", q.host));
  std::string text;
  for (const auto& k : q.ca_keys) text += fmt::format("@cert-authority {} {}\n", q.host, k);
  for (const auto& k : q.revoked) text += fmt::format("@revoked * {}\n", k);
  if (q.jump) {
    GEDGE_TRY_ASSIGN(auto lines, jump_known_hosts_lines(*q.jump, q.host));
    text += lines;
  }
  auto dir = std::filesystem::temp_directory_path();
  std::string path = (dir / "gedge-cert-kh-XXXXXX").string();
  UniqueFd fd(::mkstemp(path.data()));
  if (!fd) return fail(ErrorCode::failure, fmt::format("cannot create a file in {}", dir.string()));
  struct Remove {
    std::string p;
    ~Remove() { ::unlink(p.c_str()); }
  } remove{path};
  bool wrote = ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
  fd.reset();
  if (!wrote) return fail(ErrorCode::failure, fmt::format("cannot write {}", path));
  std::string proxy;
  if (q.jump) {
    JumpCommand jc;
    jc.program = exe;
    jc.known_hosts = path;
    jc.identities = q.jump_identities;
    jc.connect_timeout_s = q.connect_timeout_s;
    proxy = jump_proxy_command(jc, *q.jump);
  }
  HostCertQuery qq = q;
  qq.program = exe;
  GEDGE_TRY_ASSIGN(auto c, run_capture(host_cert_argv(qq, path, proxy), q.connect_timeout_s + 10));
  return parse_host_cert_log(c.err);
}

}  // namespace gedge
