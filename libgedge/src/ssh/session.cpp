// SshSession's shared parts: diagnostics, the libssh helpers the session files share, option
// defaults, quoting, gedge's known_hosts rewrites and the session accessors. Connecting and
// authenticating: session_connect.cpp; the ProxyJump hop: session_jump.cpp; exec, SFTP and the
// RTT probe: session_exec.cpp.
#include <fcntl.h>
#include <fmt/format.h>
#include <libssh/libssh.h>
#include <unistd.h>

#include <mutex>
#include <set>

#include "gedge/fd.hpp"
#include "gedge/known_hosts.hpp"
#include "gedge/report.hpp"
#include "gedge/ssh.hpp"
#include "session_impl.hpp"

namespace gedge {

namespace session_detail {

Diagnostics g_diag;

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

}  // namespace session_detail

using namespace session_detail;

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

Result<void> known_hosts_set(const std::filesystem::path& file,
                             const std::vector<std::pair<std::string, std::string>>& lines,
                             std::string_view legacy_marker) {
  if (file.empty() || lines.empty()) return {};
  std::set<std::string> markers;
  for (const auto& l : lines) markers.insert(l.first);
  // Serialise concurrent gedge processes; a rewrite must not lose another's line.
  std::string lock_path = file.string() + ".lock";
  // The lock is held until lfd closes (on return).
  UniqueFd lfd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lfd) return fail(ErrorCode::failure, fmt::format("cannot open {}", lock_path));
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(lfd.get(), F_SETLKW, &fl) != 0)
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

}  // namespace gedge
