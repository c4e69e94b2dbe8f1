// Internals shared by the SshSession files (not public API): diagnostics, libssh helpers and
// SshSession::Impl.
#pragma once

#include <fmt/format.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>

#include "gedge/fd.hpp"
#include "gedge/report.hpp"
#include "gedge/ssh.hpp"

namespace gedge {

namespace session_detail {

using Clock = SshClock;

struct Diagnostics {
  std::atomic<int> verbosity{0};
  std::atomic<Reporter*> rep{nullptr};
  std::mutex m;
};
extern Diagnostics g_diag;

void diag(int level, const std::string& msg);
// libssh's log (thread-local in libssh: installed on every connecting thread).
void libssh_log(int priority, const char* function, const char* buffer, void* userdata);
void init_libssh();

struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using Key = std::unique_ptr<std::remove_pointer_t<ssh_key>, KeyFree>;

std::string where(const SshTarget& t, ssh_session s);
std::string label_of(const SshTarget& t);
long remaining_ms(Clock::time_point deadline);
Result<HostKey> describe_key(ssh_key key);
std::string key_line_of(ssh_key key);

}  // namespace session_detail

struct SshSession::Impl {
  using Clock = session_detail::Clock;
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
  UniqueFd jump_err;
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
      // The jump's ssh leads its own process group, which holds the nested ProxyCommands of a
      // multi-hop chain too: end them all, and wait (bounded) until the last has gone, so that
      // nothing they print (with -vv they share gedge's stderr) comes after gedge's own output.
      if (::kill(-jump_pid, SIGTERM) != 0) ::kill(jump_pid, SIGTERM);
      ::waitpid(jump_pid, nullptr, 0);
      for (int i = 0; i < 100 && ::kill(-jump_pid, 0) == 0; ++i) ::usleep(10000);
      jump_pid = -1;
    }
    jump_err.reset();
    if (!jump_kh.empty()) ::unlink(jump_kh.c_str()), jump_kh.clear();
  }

  // What the jump's ssh said on stderr (waits up to 1 s for it to finish saying it).
  std::string jump_said() {
    if (!jump_err) return {};
    std::string out;
    auto end = Clock::now() + std::chrono::seconds(1);
    for (;;) {
      pollfd p{jump_err.get(), POLLIN, 0};
      long ms = session_detail::remaining_ms(end);
      if (ms <= 0 || ::poll(&p, 1, static_cast<int>(ms)) <= 0) break;
      char buf[2048];
      ssize_t n = ::read(jump_err.get(), buf, sizeof buf);
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
    long ms = session_detail::remaining_ms(deadline);
    if (ms <= 0)
      return fail(ErrorCode::unreachable,
                  fmt::format("device {}: timed out ({})", session_detail::where(target, s), what),
                  "raise --timeout, or check the device with 'gedge device check -v'");
    long sec = ms / 1000, usec = (ms % 1000) * 1000;
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &sec);
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usec);
    return {};
  }

  Error lost(std::string_view what) const {
    // A dead connection (sshd stopped, link down) during an operation is "unreachable".
    return Error{ErrorCode::unreachable,
                 fmt::format("device {}: {} failed: {}", session_detail::where(target, s), what,
                             ssh_get_error(s)),
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
                  fmt::format("device {}: the SFTP subsystem is not available",
                              session_detail::where(target, s)),
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
    return Error{
        ec, fmt::format("device {}: {} {}: {}", session_detail::where(target, s), what, path, why),
        ""};
  }
};

namespace session_detail {

// Starts `ssh -W` through the target's jump host and hands libssh the connection
// (session_jump.cpp).
Result<void> start_jump(SshSession::Impl& im, const SshOptions& o);

}  // namespace session_detail

}  // namespace gedge
