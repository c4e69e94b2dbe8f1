// SshSession over libssh: connect (non-blocking, so Ctrl-C and deadlines are honoured), pinned
// host-key verification, key/agent/password authentication, exec, SFTP and the RTT probe.
#include <fcntl.h>
#include <fmt/format.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>  // ssh_send_keepalive (a client-side call despite the header)
#include <libssh/sftp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "gedge/known_hosts.hpp"
#include "gedge/openssh.hpp"
#include "gedge/report.hpp"
#include "gedge/ssh.hpp"

extern char** environ;

namespace gedge {

namespace {

using Clock = SshClock;

struct Diagnostics {
  std::atomic<int> verbosity{0};
  std::atomic<Reporter*> rep{nullptr};
  std::mutex m;
} g_diag;

void diag(int level, const std::string& msg) {
  if (g_diag.verbosity.load() < level) return;
  Reporter* r = g_diag.rep.load();
  if (!r) return;
  std::lock_guard l(g_diag.m);
  r->info(msg);
}

// libssh's log (thread-local in libssh: installed on every connecting thread).
void libssh_log(int priority, const char* function, const char* buffer, void* userdata) {
  (void)priority, (void)function, (void)userdata;
  diag(3, fmt::format("libssh: {}", buffer));
}

void init_libssh() {
  static std::once_flag once;
  std::call_once(once, [] { ssh_init(); });
}

struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using Key = std::unique_ptr<std::remove_pointer_t<ssh_key>, KeyFree>;

std::string where(const SshTarget& t, ssh_session s) {
  unsigned int port = 0;
  ssh_options_get_port(s, &port);
  std::string label = t.name.empty() ? t.host : t.name;
  return fmt::format("'{}' ({}:{})", label, t.host, port ? port : 22);
}

std::string label_of(const SshTarget& t) {
  return t.name.empty() ? t.host : t.name;
}

long remaining_ms(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<long>(left);
}

Result<HostKey> describe_key(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK)
    return fail(ErrorCode::internal, "cannot hash the server's host key");
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  HostKey hk{ssh_key_type_to_char(ssh_key_type(key)), fp ? fp : "", ""};
  ssh_string_free_char(fp);
  return hk;
}

std::string key_line_of(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) return {};
  std::string line = fmt::format("{} {}", ssh_key_type_to_char(ssh_key_type(key)), b64);
  ssh_string_free_char(b64);
  return line;
}

}  // namespace

struct SshSession::Impl {
  SshTarget target;
  SshOptions opts;
  ssh_session s = nullptr;
  sftp_session sftp = nullptr;
  HostKey key;
  std::string key_line;
  Clock::time_point deadline;
  std::string auth_method, auth_identity;
  // The ProxyJump hop: `ssh -W` child, its stderr, and the known_hosts file made for it.
  pid_t jump_pid = -1;
  int jump_err = -1;
  std::string jump_kh;

  ~Impl() {
    if (sftp) sftp_free(sftp);
    if (s) {
      ssh_disconnect(s);
      ssh_free(s);
    }
    end_jump();
  }

  void end_jump() {
    if (jump_pid > 0) {
      ::kill(jump_pid, SIGTERM);
      ::waitpid(jump_pid, nullptr, 0);
      jump_pid = -1;
    }
    if (jump_err >= 0) ::close(jump_err), jump_err = -1;
    if (!jump_kh.empty()) ::unlink(jump_kh.c_str()), jump_kh.clear();
  }

  // What the jump's ssh said on stderr (waits up to 1 s for it to finish saying it).
  std::string jump_said() {
    if (jump_err < 0) return {};
    std::string out;
    auto end = Clock::now() + std::chrono::seconds(1);
    for (;;) {
      pollfd p{jump_err, POLLIN, 0};
      long ms = remaining_ms(end);
      if (ms <= 0 || ::poll(&p, 1, static_cast<int>(ms)) <= 0) break;
      char buf[2048];
      ssize_t n = ::read(jump_err, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    std::string lines, l;
    std::istringstream in(out);
    while (std::getline(in, l)) {
      while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
      if (l.empty() || l.rfind("debug", 0) == 0) continue;
      lines += (lines.empty() ? "" : "; ") + l;
    }
    return lines;
  }

  // Bounds the next blocking libssh call by the session deadline; errors once it has passed.
  Result<void> arm(std::string_view what) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
    long ms = remaining_ms(deadline);
    if (ms <= 0)
      return fail(ErrorCode::unreachable,
                  fmt::format("device {}: timed out ({})", where(target, s), what),
                  "raise --timeout, or check the device with 'gedge device check -v'");
    long sec = ms / 1000, usec = (ms % 1000) * 1000;
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &sec);
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usec);
    return {};
  }

  Error lost(std::string_view what) const {
    // A dead connection (sshd stopped, link down) during an operation is "unreachable".
    return Error{ErrorCode::unreachable,
                 fmt::format("device {}: {} failed: {}", where(target, s), what, ssh_get_error(s)),
                 "check the device with 'gedge device check'"};
  }

  Result<sftp_session> sftp_open() {
    if (sftp) return sftp;
    GEDGE_TRY(arm("sftp"));
    sftp = sftp_new(s);
    if (!sftp) return std::unexpected(lost("sftp"));
    if (sftp_init(sftp) != SSH_OK) {
      sftp_free(sftp);
      sftp = nullptr;
      return fail(ErrorCode::failure,
                  fmt::format("device {}: the SFTP subsystem is not available", where(target, s)),
                  "enable 'Subsystem sftp' in the device's sshd_config");
    }
    return sftp;
  }

  Error sftp_error(std::string_view what, const std::string& path) const {
    int code = sftp ? sftp_get_error(sftp) : 0;
    ErrorCode ec = ErrorCode::failure;
    std::string why = ssh_get_error(s);
    if (code == SSH_FX_NO_SUCH_FILE || code == SSH_FX_NO_SUCH_PATH) {
      ec = ErrorCode::not_found;
      why = "no such file";
    } else if (code == SSH_FX_PERMISSION_DENIED) {
      why = "permission denied";
    } else if (ssh_is_connected(s) == 0) {
      ec = ErrorCode::unreachable;
    }
    return Error{ec, fmt::format("device {}: {} {}: {}", where(target, s), what, path, why), ""};
  }
};

std::string shell_quote(std::string_view arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  out += '\'';
  return out;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += shell_quote(a);
  }
  return out;
}

void set_ssh_diagnostics(int verbosity, Reporter* rep) {
  g_diag.verbosity = verbosity;
  g_diag.rep = rep;
}

SshOptions default_ssh_options(const Paths& paths, double timeout_s) {
  SshOptions o;
  o.verbosity = g_diag.verbosity.load();
  o.timeout_s = timeout_s > 0 ? timeout_s : 30;
  o.connect_timeout_s = std::min(10.0, o.timeout_s);
  o.gedge_key = paths.key;
  o.known_hosts = paths.known_hosts;
  return o;
}

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

// Starts `ssh -W` through the target's jump host (execve, no shell) and hands libssh our end of
// a socket pair as its connection. The jump's key is checked by OpenSSH against a private
// known_hosts file holding only the pinned line; its stderr is kept for error messages.
Result<void> start_jump(SshSession::Impl& im, const SshOptions& o) {
  const JumpHost& j = *im.target.jump;
  if (j.host_key.public_key.empty())
    return fail(
        ErrorCode::host_key,
        fmt::format("device '{}': the jump host {} has no pinned host key", im.target.name, j.host),
        fmt::format("add the device again: gedge device add {} --force", im.target.name));
  GEDGE_TRY_ASSIGN(auto exe, find_ssh(o.ssh_program));
  auto dir = std::filesystem::temp_directory_path();
  std::string tmpl = (dir / "gedge-jump-kh-XXXXXX").string();
  int kfd = ::mkstemp(tmpl.data());
  if (kfd < 0)
    return fail(ErrorCode::failure, fmt::format("cannot create a file in {}", dir.string()));
  im.jump_kh = tmpl;
  std::string line = fmt::format("{} {}\n", j.alias, j.host_key.public_key);
  bool wrote = ::write(kfd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(kfd);
  if (!wrote) return fail(ErrorCode::failure, fmt::format("cannot write {}", tmpl));
  JumpCommand cmd;
  cmd.program = exe;
  cmd.known_hosts = im.jump_kh;
  if (!im.target.identity.empty()) cmd.identities.push_back(im.target.identity);
  // During device add the ssh config's keys are candidates for the jump too.
  for (const auto& extra : im.target.extra_identities) cmd.identities.push_back(extra);
  if (!o.gedge_key.empty() && ::access(o.gedge_key.c_str(), R_OK) == 0)
    cmd.identities.push_back(o.gedge_key.string());
  cmd.identity_agent = im.target.identity_agent;
  cmd.connect_timeout_s = o.connect_timeout_s;
  cmd.verbosity = o.verbosity >= 2 ? o.verbosity - 1 : 0;
  diag(1, fmt::format("ssh {}: through jump host {}@{}:{} (ssh -W, jump key {} pinned as {})",
                      im.target.name, j.user, j.host, j.port, j.host_key.fingerprint, j.alias));
  auto argv_s =
      jump_argv(cmd, j, im.target.host, std::to_string(im.target.port > 0 ? im.target.port : 22));
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int sv[2], ep[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return fail(ErrorCode::failure, "socketpair failed");
  if (::pipe2(ep, O_CLOEXEC) != 0) {
    ::close(sv[0]), ::close(sv[1]);
    return fail(ErrorCode::failure, "pipe failed");
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(sv[0]), ::close(sv[1]), ::close(ep[0]), ::close(ep[1]);
    return fail(ErrorCode::failure, "fork failed");
  }
  if (pid == 0) {
    ::dup2(sv[1], 0);
    ::dup2(sv[1], 1);
    if (o.verbosity < 2) ::dup2(ep[1], 2);
    ::execve(argv[0], argv.data(), environ);
    ::_exit(127);
  }
  ::close(sv[1]);
  ::close(ep[1]);
  im.jump_pid = pid;
  im.jump_err = ep[0];
  socket_t fd = sv[0];
  if (ssh_options_set(im.s, SSH_OPTIONS_FD, &fd) != SSH_OK) {
    ::close(fd);
    return fail(ErrorCode::internal, "libssh refused the jump connection");
  }
  return {};
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

}  // namespace

Result<void> known_hosts_set(const std::filesystem::path& file,
                             const std::vector<std::pair<std::string, std::string>>& lines,
                             std::string_view legacy_marker) {
  if (file.empty() || lines.empty()) return {};
  std::set<std::string> markers;
  for (const auto& l : lines) markers.insert(l.first);
  // Serialise concurrent gedge processes; a rewrite must not lose another's line.
  std::string lock_path = file.string() + ".lock";
  int lfd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lfd < 0) return fail(ErrorCode::failure, fmt::format("cannot open {}", lock_path));
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lfd};
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(lfd, F_SETLKW, &fl) != 0)
    return fail(ErrorCode::conflict, fmt::format("cannot lock {}", lock_path));
  std::string old;
  if (auto r = read_file(file)) old = *r;
  std::string out;
  size_t pos = 0;
  while (pos < old.size()) {
    size_t nl = old.find('\n', pos);
    std::string line = old.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? old.size() : nl + 1;
    if (line.empty()) continue;
    auto hosts = line.substr(0, line.find(' '));
    if (markers.contains(hosts) || (!legacy_marker.empty() && hosts == legacy_marker)) continue;
    out += line + "\n";
  }
  for (const auto& [marker, key_line] : lines)
    if (!key_line.empty()) out += fmt::format("{} {}\n", marker, key_line);
  return write_file_atomic(file, out, 0600);
}

Result<void> known_hosts_update(const std::filesystem::path& file, std::string_view alias,
                                const std::string& key_line, std::string_view legacy_marker) {
  return known_hosts_set(file, {{std::string(alias), key_line}}, legacy_marker);
}

SshSession::SshSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SshSession::~SshSession() = default;

const SshTarget& SshSession::target() const {
  return impl_->target;
}
const HostKey& SshSession::host_key() const {
  return impl_->key;
}

std::string SshSession::user() const {
  char* u = nullptr;
  if (ssh_options_get(impl_->s, SSH_OPTIONS_USER, &u) != SSH_OK || !u) return impl_->target.user;
  std::string out = u;
  ssh_string_free_char(u);
  return out;
}

const std::string& SshSession::auth_method() const {
  return impl_->auth_method;
}
const std::string& SshSession::auth_identity() const {
  return impl_->auth_identity;
}

int SshSession::port() const {
  unsigned int p = 0;
  ssh_options_get_port(impl_->s, &p);
  return p ? static_cast<int>(p) : 22;
}

namespace {

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

Result<ExecResult> SshSession::exec(const std::vector<std::string>& argv,
                                    std::optional<std::string_view> stdin_data, bool sudo) {
  return exec_impl(argv, stdin_data, sudo, nullptr);
}

Result<ExecResult> SshSession::exec(const std::vector<std::string>& argv,
                                    std::string_view stdin_data, bool sudo,
                                    const std::function<void(std::size_t)>& on_sent) {
  return exec_impl(argv, stdin_data, sudo, nullptr, &on_sent);
}

Result<ExecResult> SshSession::exec_stream(const std::vector<std::string>& argv,
                                           const std::function<void(std::string_view)>& on_stdout,
                                           bool sudo) {
  return exec_impl(argv, std::nullopt, sudo, &on_stdout);
}

Result<ExecResult> SshSession::exec_impl(const std::vector<std::string>& argv,
                                         std::optional<std::string_view> stdin_data, bool sudo,
                                         const std::function<void(std::string_view)>* on_stdout,
                                         const std::function<void(std::size_t)>* on_sent) {
  auto& im = *impl_;
  ssh_session s = im.s;
  if (argv.empty()) return fail(ErrorCode::usage, "no command to run");
  std::string cmd = shell_join(argv);
  if (sudo) cmd = "sudo -n -- " + cmd;
  auto start = Clock::now();
  GEDGE_TRY(im.arm("exec"));
  ssh_channel ch = ssh_channel_new(s);
  if (!ch) return std::unexpected(im.lost("opening a channel"));
  struct ChanFree {
    ssh_channel c;
    ~ChanFree() {
      ssh_channel_close(c);
      ssh_channel_free(c);
    }
  } guard{ch};
  if (ssh_channel_open_session(ch) != SSH_OK) return std::unexpected(im.lost("opening a channel"));
  if (ssh_channel_request_exec(ch, cmd.c_str()) != SSH_OK) return std::unexpected(im.lost("exec"));
  if (stdin_data && !stdin_data->empty()) {
    std::string_view rest = *stdin_data;
    while (!rest.empty()) {
      GEDGE_TRY(im.arm("writing stdin"));
      uint32_t chunk = static_cast<uint32_t>(std::min<size_t>(rest.size(), 1 << 16));
      int n = ssh_channel_write(ch, rest.data(), chunk);
      if (n == SSH_ERROR) return std::unexpected(im.lost("writing stdin"));
      rest.remove_prefix(static_cast<size_t>(n));
      if (on_sent) (*on_sent)(stdin_data->size() - rest.size());
    }
  }
  ssh_channel_send_eof(ch);

  ExecResult r;
  char buf[16384];
  for (;;) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
    if (remaining_ms(im.deadline) <= 0)
      return fail(
          ErrorCode::unreachable,
          fmt::format("device {}: command did not finish before the timeout", where(im.target, s)),
          "raise --timeout for long-running commands");
    int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 100);
    if (n == SSH_ERROR) return std::unexpected(im.lost("reading output"));
    if (n > 0) {
      if (on_stdout)
        (*on_stdout)(std::string_view(buf, static_cast<size_t>(n)));
      else
        r.out.append(buf, static_cast<size_t>(n));
    }
    int m;
    while ((m = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1)) > 0)
      r.err.append(buf, static_cast<size_t>(m));
    if (m == SSH_ERROR) return std::unexpected(im.lost("reading output"));
    if (n == 0 && ssh_channel_is_eof(ch)) break;
    if (ssh_channel_is_closed(ch)) break;
  }
  GEDGE_TRY(im.arm("exit status"));
  r.exit_code = ssh_channel_get_exit_status(ch);
  r.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  return r;
}

Result<void> SshSession::put_file(const std::string& remote_path, std::string_view bytes,
                                  unsigned mode) {
  auto& im = *impl_;
  GEDGE_TRY_ASSIGN(sftp_session sf, im.sftp_open());
  std::string tmp = remote_path + fmt::format(".gedge-tmp-{}", ::getpid());
  GEDGE_TRY(im.arm("sftp write"));
  sftp_file f = sftp_open(sf, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode & 07777);
  if (!f) return std::unexpected(im.sftp_error("cannot create", tmp));
  size_t off = 0;
  while (off < bytes.size()) {
    auto armed = im.arm("sftp write");
    if (!armed) {
      sftp_close(f);
      return std::unexpected(armed.error());
    }
    size_t chunk = std::min<size_t>(bytes.size() - off, 32768);
    ssize_t n = sftp_write(f, bytes.data() + off, chunk);
    if (n <= 0) {
      sftp_close(f);
      return std::unexpected(im.sftp_error("cannot write", tmp));
    }
    off += static_cast<size_t>(n);
  }
  if (sftp_close(f) != SSH_OK) return std::unexpected(im.sftp_error("cannot write", tmp));
  // The server's umask applies at open; set the mode exactly.
  if (sftp_chmod(sf, tmp.c_str(), mode & 07777) != 0)
    return std::unexpected(im.sftp_error("cannot chmod", tmp));
  return rename(tmp, remote_path);
}

Result<std::string> SshSession::read_file(const std::string& remote_path) {
  auto& im = *impl_;
  GEDGE_TRY_ASSIGN(sftp_session sf, im.sftp_open());
  GEDGE_TRY(im.arm("sftp read"));
  sftp_file f = sftp_open(sf, remote_path.c_str(), O_RDONLY, 0);
  if (!f) return std::unexpected(im.sftp_error("cannot read", remote_path));
  std::string out;
  char buf[32768];
  for (;;) {
    auto armed = im.arm("sftp read");
    if (!armed) {
      sftp_close(f);
      return std::unexpected(armed.error());
    }
    ssize_t n = sftp_read(f, buf, sizeof buf);
    if (n < 0) {
      sftp_close(f);
      return std::unexpected(im.sftp_error("cannot read", remote_path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  sftp_close(f);
  return out;
}

Result<bool> SshSession::exists(const std::string& remote_path) {
  auto& im = *impl_;
  GEDGE_TRY_ASSIGN(sftp_session sf, im.sftp_open());
  GEDGE_TRY(im.arm("sftp stat"));
  sftp_attributes a = sftp_stat(sf, remote_path.c_str());
  if (a) {
    sftp_attributes_free(a);
    return true;
  }
  int code = sftp_get_error(sf);
  if (code == SSH_FX_NO_SUCH_FILE || code == SSH_FX_NO_SUCH_PATH) return false;
  return std::unexpected(im.sftp_error("cannot stat", remote_path));
}

Result<void> SshSession::mkdirs(const std::string& remote_path, unsigned mode) {
  auto& im = *impl_;
  GEDGE_TRY_ASSIGN(sftp_session sf, im.sftp_open());
  std::string prefix;
  size_t pos = 0;
  if (!remote_path.empty() && remote_path[0] == '/') {
    prefix = "/";
    pos = 1;
  }
  while (pos <= remote_path.size()) {
    size_t slash = remote_path.find('/', pos);
    std::string part =
        remote_path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    pos = slash == std::string::npos ? remote_path.size() + 1 : slash + 1;
    if (part.empty()) continue;
    prefix += (prefix.empty() || prefix.back() == '/') ? part : "/" + part;
    GEDGE_TRY(im.arm("sftp mkdir"));
    if (sftp_mkdir(sf, prefix.c_str(), mode & 07777) == 0) continue;
    int code = sftp_get_error(sf);
    if (code == SSH_FX_FILE_ALREADY_EXISTS) continue;
    // Servers answer "failure" for an existing directory too: check before giving up.
    sftp_attributes a = sftp_stat(sf, prefix.c_str());
    if (a && a->type == SSH_FILEXFER_TYPE_DIRECTORY) {
      sftp_attributes_free(a);
      continue;
    }
    if (a) sftp_attributes_free(a);
    return std::unexpected(im.sftp_error("cannot create directory", prefix));
  }
  return {};
}

Result<void> SshSession::rename(const std::string& from, const std::string& to) {
  auto& im = *impl_;
  GEDGE_TRY_ASSIGN(sftp_session sf, im.sftp_open());
  GEDGE_TRY(im.arm("sftp rename"));
  // libssh uses posix-rename@openssh.com when offered (atomic replace).
  if (sftp_rename(sf, from.c_str(), to.c_str()) == 0) return {};
  // Plain SFTPv3 rename refuses to replace: remove the target and retry.
  sftp_unlink(sf, to.c_str());
  if (sftp_rename(sf, from.c_str(), to.c_str()) == 0) return {};
  return std::unexpected(im.sftp_error("cannot rename to " + to + ":", from));
}

Result<double> SshSession::rtt_ms() {
  auto& im = *impl_;
  GEDGE_TRY(im.arm("rtt"));
  auto start = Clock::now();
  // keepalive@openssh.com with want_reply: libssh waits for the server's answer
  // (REQUEST_FAILURE), so this is exactly one round trip and no work on the server.
  if (ssh_send_keepalive(im.s) != SSH_OK || ssh_is_connected(im.s) == 0)
    return std::unexpected(im.lost("rtt probe"));
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
  return static_cast<double>(us) / 1000.0;
}

}  // namespace gedge
