// SshSession's work on an open session: exec (with stdin, streaming), SFTP (put, read, stat,
// mkdir -p, rename) and the RTT probe.
#include <fcntl.h>
#include <fmt/format.h>
#include <libssh/libssh.h>
#include <libssh/server.h>  // ssh_send_keepalive (a client-side call despite the header)
#include <libssh/sftp.h>
#include <unistd.h>

#include "gedge/ssh.hpp"
#include "session_impl.hpp"

namespace gedge {

using namespace session_detail;

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
