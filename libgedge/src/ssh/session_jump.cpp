// The ProxyJump hop of an SshSession: `ssh -W` through the jump host.
#include <fcntl.h>
#include <fmt/format.h>
#include <libssh/libssh.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "gedge/fd.hpp"
#include "gedge/openssh.hpp"
#include "gedge/ssh.hpp"
#include "session_impl.hpp"

extern char** environ;

namespace gedge::session_detail {

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
  UniqueFd kfd(::mkstemp(tmpl.data()));
  if (!kfd)
    return fail(ErrorCode::failure, fmt::format("cannot create a file in {}", dir.string()));
  im.jump_kh = tmpl;
  auto lines = jump_known_hosts_lines(j, im.target.name);
  if (!lines) return std::unexpected(lines.error());
  std::string line = *lines;
  bool wrote = ::write(kfd.get(), line.data(), line.size()) == static_cast<ssize_t>(line.size());
  kfd.reset();
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
  for (const auto& h : jump_hops(j))
    diag(1, fmt::format("ssh {}: through jump host {}@{}:{} (ssh -W, jump key {} pinned as {})",
                        im.target.name, h.user, h.host, h.port, h.host_key.fingerprint, h.alias));
  auto argv_s =
      jump_argv(cmd, j, im.target.host, std::to_string(im.target.port > 0 ? im.target.port : 22));
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return fail(ErrorCode::failure, "socketpair failed");
  UniqueFd sv[2] = {UniqueFd(pair[0]), UniqueFd(pair[1])}, ep[2];
  if (make_pipe(ep) != 0) return fail(ErrorCode::failure, "pipe failed");
  pid_t pid = ::fork();
  if (pid < 0) return fail(ErrorCode::failure, "fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);  // its own group, with every hop's ssh under it (see end_jump)
    ::dup2(sv[1].get(), 0);
    ::dup2(sv[1].get(), 1);
    if (o.verbosity < 2) ::dup2(ep[1].get(), 2);
    ::execve(argv[0], argv.data(), environ);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: the group exists before either side goes on
  sv[1].reset();
  ep[1].reset();
  im.jump_pid = pid;
  im.jump_err = std::move(ep[0]);
  socket_t fd = sv[0].get();
  if (ssh_options_set(im.s, SSH_OPTIONS_FD, &fd) != SSH_OK)
    return fail(ErrorCode::internal, "libssh refused the jump connection");
  sv[0].release();  // the session's now: libssh closes it
  return {};
}

}  // namespace gedge::session_detail
