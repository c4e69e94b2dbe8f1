// SshSession::connect over libssh: connect (non-blocking, so Ctrl-C and deadlines are honoured),
// pinned host-key verification, key/agent/password authentication; and probe_host_key.
#include <fcntl.h>
#include <fmt/format.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "gedge/ssh.hpp"
#include "session_impl.hpp"

namespace gedge {

using namespace session_detail;

namespace {

// Creates the libssh session for the resolved record; no ssh config file is read.
Result<ssh_session> new_session(const SshTarget& t, const SshOptions& o) {
  (void)o;
  init_libssh();
  ssh_session s = ssh_new();
  if (!s) return fail(ErrorCode::internal, "cannot create an SSH session");
  auto bad = [&](std::string msg) {
    ssh_free(s);
    return fail(ErrorCode::usage, std::move(msg));
  };
  if (ssh_options_set(s, SSH_OPTIONS_HOST, t.host.c_str()) != SSH_OK)
    return bad(fmt::format("invalid host '{}'", t.host));
  bool no_auto = false;
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no_auto);
  if (t.port > 0) {
    unsigned int port = static_cast<unsigned int>(t.port);
    ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  }
  if (!t.user.empty() && ssh_options_set(s, SSH_OPTIONS_USER, t.user.c_str()) != SSH_OK)
    return bad(fmt::format("invalid user '{}'", t.user));
  if (!t.identity_agent.empty())
    ssh_options_set(s, SSH_OPTIONS_IDENTITY_AGENT, t.identity_agent.c_str());
  // gedge verifies host keys itself (pinned fingerprints); libssh must not consult or write
  // ~/.ssh/known_hosts behind our back.
  if (!t.host_key.type.empty()) {
    // Ask for the pinned key's algorithm, so a server with several host keys presents the one
    // we pinned rather than whichever the default preference picks.
    std::string algs =
        t.host_key.type == "ssh-rsa" ? "rsa-sha2-512,rsa-sha2-256,ssh-rsa" : t.host_key.type;
    ssh_options_set(s, SSH_OPTIONS_HOSTKEYS, algs.c_str());
  }
  int strict = 0;
  ssh_options_set(s, SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict);
  ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
  ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  if (g_diag.verbosity.load() >= 3) {
    ssh_set_log_callback(libssh_log);
    ssh_set_log_level(SSH_LOG_PROTOCOL);
  }
  return s;
}

// Non-blocking connect polled in slices, so Ctrl-C and the deadline end it promptly even when
// the host blackholes packets.
Result<void> connect_socket(ssh_session s, const SshTarget& t, Clock::time_point connect_deadline) {
  ssh_set_blocking(s, 0);
  for (;;) {
    int rc = ssh_connect(s);
    if (rc == SSH_OK) break;
    if (rc == SSH_ERROR) {
      std::string why = ssh_get_error(s);
      return fail(ErrorCode::unreachable,
                  fmt::format("device {}: cannot connect: {}", where(t, s), why),
                  "is the device up and sshd running? try 'gedge device check'");
    }
    if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
    long ms = remaining_ms(connect_deadline);
    if (ms <= 0)
      return fail(ErrorCode::unreachable, fmt::format("device {}: connect timed out", where(t, s)),
                  "is the device up and its network reachable? raise --timeout for slow links");
    int fd = ssh_get_fd(s);
    if (fd >= 0) {
      pollfd p{fd, POLLIN | POLLOUT, 0};
      ::poll(&p, 1, static_cast<int>(std::min(ms, 50L)));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ssh_set_blocking(s, 1);
  return {};
}

Result<std::unique_ptr<SshSession::Impl>> open_and_verify(const SshTarget& target,
                                                          const SshOptions& opts) {
  auto impl = std::make_unique<SshSession::Impl>();
  impl->target = target;
  impl->opts = opts;
  auto now = Clock::now();
  impl->deadline = opts.deadline.value_or(
      now + std::chrono::milliseconds(static_cast<int64_t>(opts.timeout_s * 1000)));
  auto connect_deadline = std::min(
      impl->deadline,
      now + std::chrono::milliseconds(static_cast<int64_t>(opts.connect_timeout_s * 1000)));
  GEDGE_TRY_ASSIGN(impl->s, new_session(target, opts));
  diag(1, fmt::format("ssh {}: connecting to {}@{}:{}",
                      target.name.empty() ? target.host : target.name,
                      target.user.empty() ? "(local user)" : target.user, target.host,
                      target.port > 0 ? target.port : 22));
  if (target.jump) GEDGE_TRY(start_jump(*impl, opts));
  if (auto c = connect_socket(impl->s, target, connect_deadline); !c) {
    Error e = c.error();
    if (target.jump && e.code != ErrorCode::interrupted) {
      // libssh only sees the pipe close; the jump's ssh says why (refused, no route, host key).
      std::string said = impl->jump_said();
      e.message =
          fmt::format("{} (through jump host {}@{}:{}: {})", e.message, target.jump->user,
                      target.jump->host, target.jump->port, said.empty() ? "no message" : said);
      if (said.find("Host key verification failed") != std::string::npos ||
          said.find("REMOTE HOST IDENTIFICATION HAS CHANGED") != std::string::npos) {
        e.code = ErrorCode::host_key;
        e.hint = fmt::format(
            "the jump host's key is not the one pinned for {}; verify it, then add the device "
            "again "
            "with --force",
            target.name);
      } else if (said.find("Permission denied") != std::string::npos) {
        e.code = ErrorCode::auth;
        e.hint =
            "the jump host refused the login: check the jump user and key (ProxyJump in the ssh "
            "config)";
      } else {
        e.hint = "check the jump host and that it can reach the device";
      }
    }
    return std::unexpected(e);
  }

  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(impl->s, &raw) != SSH_OK)
    return fail(ErrorCode::failure,
                fmt::format("device {}: no host key presented", where(target, impl->s)));
  Key key(raw);
  GEDGE_TRY_ASSIGN(impl->key, describe_key(key.get()));
  if (g_diag.verbosity.load() >= 2) {
    const char* banner = ssh_get_serverbanner(impl->s);
    const char* kex = ssh_get_kex_algo(impl->s);
    const char* cin = ssh_get_cipher_in(impl->s);
    const char* hin = ssh_get_hmac_in(impl->s);
    diag(2, fmt::format("ssh {}: server {}, key exchange {}, cipher {}, mac {}", label_of(target),
                        banner ? banner : "?", kex ? kex : "?", cin ? cin : "?", hin ? hin : "?"));
  }
  impl->key_line = key_line_of(key.get());
  impl->key.public_key = impl->key_line;
  const std::string& pinned = target.host_key.fingerprint;
  const std::string& got = impl->key.fingerprint;
  diag(1, fmt::format("ssh {}: host key {} {} ({})", label_of(target), impl->key.type, got,
                      pinned.empty()
                          ? "not pinned yet"
                          : (pinned == got ? "matches the pin" : "DOES NOT match the pin")));
  std::string label = target.name.empty() ? target.host : target.name;
  if (!pinned.empty()) {
    if (pinned != got)
      return fail(
          ErrorCode::host_key,
          fmt::format("host key of device {} changed: pinned {} {}, presented {} {}",
                      where(target, impl->s), target.host_key.type, pinned, impl->key.type, got),
          fmt::format("if the device was reinstalled, verify the new key and run "
                      "'gedge device rekey {}'; otherwise this may be an attack",
                      label));
  } else {
    bool ok = opts.accept_new || (opts.confirm_new_key && opts.confirm_new_key(impl->key));
    if (!ok)
      return fail(ErrorCode::host_key,
                  fmt::format("unknown host key for {}: {} {}", where(target, impl->s),
                              impl->key.type, got),
                  fmt::format("verify the fingerprint out of band, then pass --host-key {} "
                              "(or --accept-new to trust it on first use)",
                              got));
  }
  return impl;
}

std::string fs_name(const std::string& p) {
  return std::filesystem::path(p).filename().string();
}

Error auth_error(const SshTarget& t, ssh_session s, const std::string& user, std::string_view how) {
  return Error{
      ErrorCode::auth,
      fmt::format("device {}: authentication refused for user '{}' ({})", where(t, s), user, how),
      "install gedge's key (gedge device key) or bootstrap it with --password-file; "
      "check --user and --identity"};
}

}  // namespace

Result<HostKey> probe_host_key(const SshTarget& target, const SshOptions& opts) {
  SshOptions o = opts;
  o.accept_new = true;
  SshTarget t = target;
  t.host_key = {};
  GEDGE_TRY_ASSIGN(auto impl, open_and_verify(t, o));
  return impl->key;
}

Result<std::unique_ptr<SshSession>> SshSession::connect(const SshTarget& target,
                                                        const SshOptions& opts) {
  GEDGE_TRY_ASSIGN(auto impl, open_and_verify(target, opts));
  ssh_session s = impl->s;
  std::unique_ptr<SshSession> sess(new SshSession(std::move(impl)));
  std::string user = sess->user();
  auto& im = *sess->impl_;

  if (opts.password) {
    GEDGE_TRY(im.arm("password authentication"));
    int rc = ssh_userauth_password(s, nullptr, opts.password->c_str());
    if (rc == SSH_AUTH_SUCCESS) {
      im.auth_method = "password";
      return sess;
    }
    if (rc == SSH_AUTH_ERROR) return std::unexpected(im.lost("password authentication"));
    return std::unexpected(auth_error(target, s, user, "password refused"));
  }

  std::vector<std::string> tried;
  auto try_file = [&](const std::filesystem::path& file, bool required) -> Result<bool> {
    ssh_key k = nullptr;
    if (ssh_pki_import_privkey_file(file.c_str(), nullptr, nullptr, nullptr, &k) != SSH_OK) {
      if (required)
        return fail(ErrorCode::usage, fmt::format("cannot read identity file {}", file.string()),
                    "give an unencrypted private key, or load it into ssh-agent");
      return false;
    }
    Key key(k);
    // An OpenSSH user certificate for this key: the target's CertificateFile, else KEY-cert.pub.
    std::string cert = (file == target.identity && !target.certificate.empty())
                           ? target.certificate
                           : file.string() + "-cert.pub";
    if (::access(cert.c_str(), R_OK) == 0) {
      ssh_key c = nullptr;
      if (ssh_pki_import_cert_file(cert.c_str(), &c) != SSH_OK ||
          ssh_pki_copy_cert_to_privkey(c, key.get()) != SSH_OK) {
        if (c) ssh_key_free(c);
        return fail(ErrorCode::usage,
                    fmt::format("cannot use the certificate {} with {}", cert, file.string()),
                    "the certificate must be the OpenSSH user certificate of that key");
      }
      ssh_key_free(c);
      tried.push_back(fs_name(cert));
    }
    GEDGE_TRY(im.arm("authentication"));
    int rc = ssh_userauth_publickey(s, nullptr, key.get());
    tried.push_back(file.filename().string());
    diag(2, fmt::format("ssh {}: public key {}: {}", label_of(target), file.string(),
                        rc == SSH_AUTH_SUCCESS ? "accepted" : "refused"));
    if (rc == SSH_AUTH_ERROR) return std::unexpected(im.lost("authentication"));
    return rc == SSH_AUTH_SUCCESS;
  };
  auto done = [&](const char* method, std::string identity) {
    diag(1, fmt::format("ssh {}: authenticated as {} with {}{}", label_of(target), user, method,
                        identity.empty() ? "" : " " + identity));
    im.auth_method = method;
    im.auth_identity = std::move(identity);
    return std::move(sess);
  };
  if (!target.identity.empty()) {
    GEDGE_TRY_ASSIGN(bool accepted, try_file(target.identity, true));
    if (accepted) return done("identity", target.identity);
  }
  for (const auto& extra : target.extra_identities) {
    if (extra.empty() || ::access(extra.c_str(), R_OK) != 0) continue;
    GEDGE_TRY_ASSIGN(bool accepted, try_file(extra, false));
    if (accepted) return done("identity", extra);
  }
  if (!opts.gedge_key.empty() && ::access(opts.gedge_key.c_str(), R_OK) == 0) {
    GEDGE_TRY_ASSIGN(bool accepted, try_file(opts.gedge_key, false));
    if (accepted) return done("gedge_key", "");
  }
  if (opts.use_agent && (::getenv("SSH_AUTH_SOCK") || !target.identity_agent.empty())) {
    GEDGE_TRY(im.arm("authentication"));
    int rc = ssh_userauth_agent(s, nullptr);
    tried.push_back("ssh-agent");
    diag(2, fmt::format("ssh {}: ssh-agent keys: {}", label_of(target),
                        rc == SSH_AUTH_SUCCESS ? "accepted" : "refused"));
    if (rc == SSH_AUTH_SUCCESS) return done("agent", "");
    if (rc == SSH_AUTH_ERROR && ssh_is_connected(s) == 0)
      return std::unexpected(im.lost("authentication"));
  }
  std::string how = "tried: ";
  for (size_t i = 0; i < tried.size(); ++i) how += (i ? ", " : "") + tried[i];
  if (tried.empty()) how = "no key available";
  return std::unexpected(auth_error(target, s, user, how));
}

}  // namespace gedge
