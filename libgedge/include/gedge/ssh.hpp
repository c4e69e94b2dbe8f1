// SSH to edge devices with libssh: pinned host keys, exec with safely quoted argv, SFTP, an
// application-level RTT probe, and a bounded-concurrency fan-out over many devices.
//
// Every connection verifies the host key against the fingerprint pinned in the inventory; a
// different key is ErrorCode::host_key with the old and new fingerprints. Every blocking call
// is bounded by the session's deadline and returns ErrorCode::interrupted on Ctrl-C.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/inventory.hpp"
#include "gedge/paths.hpp"

namespace gedge {

using SshClock = std::chrono::steady_clock;

struct HostKey {
  std::string type;         // "ssh-ed25519", "ecdsa-sha2-nistp256", ...
  std::string fingerprint;  // "SHA256:..." (OpenSSH format)
  std::string
      public_key;  // "type base64" as in known_hosts (empty when only pinned by fingerprint)
};

// A ProxyJump hop. The device is reached through `ssh -W` on it (OpenSSH, run by execve with
// strict host-key checking against `host_key` under HostKeyAlias `alias`); see gedge/openssh.hpp.
struct JumpHost {
  std::string host;
  int port = 22;
  std::string user;
  std::string identity;  // key for the jump (empty: the device's identity, gedge's key, the agent)
  std::string alias;     // HostKeyAlias its key is pinned under ("<device>/jump")
  HostKey host_key;      // pinned; public_key ("type base64") is what OpenSSH verifies
  // The hops before this one, outermost first (`ProxyJump a,b,c`: c's via is {a, b}), each with
  // its own pinned key and alias ("<device>/jump-1", ...) and an empty via. This hop's ssh
  // reaches its host through a ProxyCommand running the previous hop's ssh, and so on: every
  // hop verifies its own pin (`ssh -J` would not pass HostKeyAlias or UserKnownHostsFile on).
  std::vector<JumpHost> via;
};

// Where and as whom to connect: the resolved record (device add resolves ssh config aliases
// with `ssh -G` once; nothing here depends on ~/.ssh/config afterwards). Port 0 means 22 and an
// empty user the local user.
struct SshTarget {
  std::string name;  // device name (used in results and messages; the HostKeyAlias)
  std::string host;
  int port = 0;
  std::string user;
  std::string identity;        // explicit private key file; empty = gedge's key, then the agent
  HostKey host_key;            // pinned key; empty fingerprint = unknown (see SshOptions)
  std::string certificate;     // OpenSSH user certificate for `identity` (KEY-cert.pub)
  std::string identity_agent;  // agent socket (empty: $SSH_AUTH_SOCK)
  std::optional<JumpHost> jump;
  // How the device authenticated when added: "identity", "gedge_key" or "agent" ("" = unknown:
  // identity, else gedge's key). Ansible forces IdentitiesOnly unless this is "agent".
  std::string auth;
  // Further private keys tried (not required) after `identity` (ssh config IdentityFile entries
  // during `device add`).
  std::vector<std::string> extra_identities;
};

struct SshOptions {
  double connect_timeout_s = 10;      // TCP connect + handshake + auth
  double timeout_s = 30;              // per-session budget (connect + all operations)
  std::filesystem::path gedge_key;    // gedge's private key (Paths::key); tried when present
  std::filesystem::path known_hosts;  // gedge-managed known_hosts; keys accepted here are added
  bool use_agent = true;              // try ssh-agent keys ($SSH_AUTH_SOCK)
  // Bootstrap only: authenticate with this password instead of keys. Never logged.
  std::optional<std::string> password;
  // When the target has no pinned key: accept the presented key (TOFU, `--accept-new`), or ask
  // `confirm_new_key` (the CLI's TTY prompt). Neither: ErrorCode::host_key naming the key.
  bool accept_new = false;
  std::function<bool(const HostKey& presented)> confirm_new_key;
  // Absolute end for everything on this session (default: now + timeout_s at connect).
  std::optional<SshClock::time_point> deadline;
  // 0..3 (-v count): OpenSSH's -v for the jump; connection steps through `reporter`.
  int verbosity = 0;
  // The OpenSSH client used for ProxyJump hops (resolved on PATH unless absolute).
  std::string ssh_program = "ssh";
};

// Defaults for a gedge home: gedge's key, gedge's known_hosts, the given --timeout.
SshOptions default_ssh_options(const Paths& paths, double timeout_s = 30);

struct ExecResult {
  int exit_code = -1;  // remote exit status; -1 when killed by a signal / none reported
  std::string out;     // stdout
  std::string err;     // stderr
  int64_t duration_ms = 0;
};

// Quotes one argument for a POSIX shell: 'it'\''s'. Empty string becomes ''.
std::string shell_quote(std::string_view arg);
// Joins argv into one remote command line, each argument quoted.
std::string shell_join(const std::vector<std::string>& argv);

class SshSession {
 public:
  // Connects, verifies the host key (see SshOptions), authenticates. Errors:
  // unreachable (refused, timeout, DNS), host_key (unknown or changed key), auth, interrupted.
  static Result<std::unique_ptr<SshSession>> connect(const SshTarget& target,
                                                     const SshOptions& opts);
  ~SshSession();
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  const SshTarget& target() const;
  // The key the server presented (verified or newly accepted).
  const HostKey& host_key() const;
  // Effective user and port.
  std::string user() const;
  int port() const;
  // What authenticated: "identity" (target.identity or an extra identity: auth_identity()),
  // "gedge_key", "agent" or "password".
  const std::string& auth_method() const;
  const std::string& auth_identity() const;

  // Runs argv (each argument shell-quoted; never concatenated raw) with optional stdin bytes;
  // sudo prefixes `sudo -n --` (passwordless sudo; a password prompt fails instead of hanging).
  // A non-zero remote exit is a successful Result with exit_code set.
  Result<ExecResult> exec(const std::vector<std::string>& argv,
                          std::optional<std::string_view> stdin_data = std::nullopt,
                          bool sudo = false);
  // Same, with `on_sent(n)` called after each write of stdin (n: bytes of stdin_data written
  // so far): progress for large payloads.
  Result<ExecResult> exec(const std::vector<std::string>& argv, std::string_view stdin_data,
                          bool sudo, const std::function<void(std::size_t sent)>& on_sent);
  // Same, but stdout goes to `on_stdout` as it arrives (ExecResult::out stays empty): for
  // following logs. Runs until the command ends, the session deadline, or Ctrl-C.
  Result<ExecResult> exec_stream(const std::vector<std::string>& argv,
                                 const std::function<void(std::string_view)>& on_stdout,
                                 bool sudo = false);

  // SFTP. Relative paths are relative to the login user's home directory.
  // put_file writes a temporary file and renames it over remote_path (atomic), with `mode`.
  Result<void> put_file(const std::string& remote_path, std::string_view bytes,
                        unsigned mode = 0644);
  Result<std::string> read_file(const std::string& remote_path);  // not_found when missing
  Result<void> mkdirs(const std::string& remote_path, unsigned mode = 0755);  // like mkdir -p
  Result<void> rename(const std::string& from, const std::string& to);        // replaces `to`
  Result<bool> exists(const std::string& remote_path);

  // One application-level round trip over the established session (a keepalive global
  // request and its reply), in milliseconds: sees proxies and userspace delays, needs no raw
  // sockets.
  Result<double> rtt_ms();

  struct Impl;

 private:
  explicit SshSession(std::unique_ptr<Impl> impl);
  Result<ExecResult> exec_impl(const std::vector<std::string>& argv,
                               std::optional<std::string_view> stdin_data, bool sudo,
                               const std::function<void(std::string_view)>* on_stdout,
                               const std::function<void(std::size_t)>* on_sent = nullptr);
  std::unique_ptr<Impl> impl_;
};

// Connects once (verifying the host key against the gedge known_hosts/fingerprint rules) without
// authenticating and returns the key the server presents. For `device add` / `rekey`.
Result<HostKey> probe_host_key(const SshTarget& target, const SshOptions& opts);

// Loads a registered device as a target: not_found (exit 4) when no such device.
Result<SshTarget> device_target(Inventory& inv, const Paths& paths, std::string_view name);

// Adds or replaces the known_hosts line for `alias` (the HostKeyAlias every OpenSSH call uses:
// the device name, or "<device>/jump") in the gedge-managed file; an empty key_line removes it.
// Lines under `legacy_marker` (the "[host]:port" form of older gedge versions) are dropped too.
// Safe against concurrent gedge processes (file lock).
Result<void> known_hosts_update(const std::filesystem::path& file, std::string_view alias,
                                const std::string& key_line, std::string_view legacy_marker = {});

// ---- fan-out -------------------------------------------------------------------------------

template <typename T>
struct FanOutResult {
  std::string device;  // SshTarget::name
  Result<T> result;    // the per-target function's result, or the connect error
  int64_t duration_ms = 0;
};

struct FanOutOptions {
  int parallel = 64;  // at most this many sessions at once
  SshOptions ssh;     // per-session options (timeout_s is the per-device budget)
  // Overall end: targets not started by then fail with unreachable ("deadline passed").
  std::optional<SshClock::time_point> deadline;
  // Called (from worker threads, serialised) as each target finishes: done count, total.
  std::function<void(std::size_t done, std::size_t total, const std::string& device, bool ok)>
      on_done;
};

// Runs `work(index, session)` for each target on `parallel` worker threads, one connection per
// target reused for all of that target's steps; a connect failure is passed as the error instead.
// Targets not started when cancel_requested() or the deadline hits get interrupted/unreachable.
// Returns each target's wall time (connect + work) in milliseconds.
std::vector<int64_t> fan_out_raw(
    const std::vector<SshTarget>& targets, const FanOutOptions& opts,
    const std::function<void(std::size_t, const Result<SshSession*>&)>& work);

// Typed fan-out: results in the order of `targets`.
template <typename T>
std::vector<FanOutResult<T>> fan_out(const std::vector<SshTarget>& targets,
                                     const FanOutOptions& opts,
                                     const std::function<Result<T>(SshSession&)>& fn) {
  std::vector<FanOutResult<T>> out;
  out.reserve(targets.size());
  for (const auto& t : targets)
    out.push_back(FanOutResult<T>{t.name, fail(ErrorCode::interrupted, "not started"), 0});
  auto ms = fan_out_raw(targets, opts, [&](std::size_t i, const Result<SshSession*>& s) {
    if (!s)
      out[i].result = std::unexpected(s.error());
    else
      out[i].result = fn(**s);
  });
  for (std::size_t i = 0; i < out.size() && i < ms.size(); ++i) out[i].duration_ms = ms[i];
  return out;
}

}  // namespace gedge
