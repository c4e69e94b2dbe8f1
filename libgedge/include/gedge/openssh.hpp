// The system OpenSSH client as gedge uses it: `ssh -G` resolves an ssh config alias into the
// connection record gedge stores for a device, and `ssh -W` carries a session through a jump
// host (libssh 0.10 has no native ProxyJump). Every call is an argv run by execve, never a shell.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/report.hpp"
#include "gedge/ssh.hpp"

namespace gedge {

// What OpenSSH would use for one host, from `ssh -G`.
struct ResolvedHost {
  std::string host;  // HostName
  int port = 22;
  std::string user;
  std::vector<std::string> identity_files;     // ~, %d, %u, %h, %r, %% expanded; in config order
  std::vector<std::string> certificate_files;  // expanded likewise
  std::string proxy_jump;                      // as configured; "" when none
  std::string identity_agent;                  // socket path; "" when none or $SSH_AUTH_SOCK
  bool proxy_command = false;                  // a ProxyCommand is configured (gedge refuses it)
};

// Parses `ssh -G` output (pure): `home` and `local_user` expand ~, %d and %u.
ResolvedHost parse_ssh_G(std::string_view out, const std::string& home,
                         const std::string& local_user);

// "[user@]host[:port]" (also "[user@][v6addr]:port" and "ssh://user@host:port"); usage error
// naming `what` when malformed. port 0 = not given.
struct AddressSpec {
  std::string user, host;
  int port = 0;
};
Result<AddressSpec> parse_address(std::string_view text, std::string_view what);

// Absolute path of the OpenSSH client `program` (PATH lookup unless it has a '/'); failure with
// an install hint when it is missing.
Result<std::string> find_ssh(const std::string& program = "ssh");

// Runs `ssh -G [-F config_file] [-l user] [-p port] host` (no shell, 10 s limit). config_file
// empty: OpenSSH's own default (~/.ssh/config, /etc/ssh/ssh_config). Errors: usage when ssh
// rejects the host or config (its message included), failure when ssh is missing.
Result<ResolvedHost> resolve_ssh_host(const std::string& host, const std::string& user, int port,
                                      const std::string& config_file,
                                      const std::string& program = "ssh");

// How the jump's ssh authenticates and verifies: gedge's known_hosts file holding
// `jump.alias`'s line, the keys to offer, the agent, OpenSSH's -v level.
struct JumpCommand {
  std::string program = "ssh";
  std::filesystem::path known_hosts;
  std::vector<std::string> identities;  // -i each (after jump.identity)
  std::string identity_agent;
  double connect_timeout_s = 10;
  int verbosity = 0;  // -v count (0..3)
};

// argv (argv[0] = program) of `ssh -W DEST through jump`: -F /dev/null (the resolved record is
// the truth), BatchMode, StrictHostKeyChecking=yes against cmd.known_hosts only, HostKeyAlias
// jump.alias. dest_host/dest_port as given; in a ProxyCommand pass "%h"/"%p".
std::vector<std::string> jump_argv(const JumpCommand& cmd, const JumpHost& jump,
                                   const std::string& dest_host, const std::string& dest_port);

// The same command as an OpenSSH ProxyCommand value: each word POSIX-shell quoted, '%' doubled
// (ssh expands %-tokens before its shell runs the line), destination [%h]:%p.
std::string jump_proxy_command(const JumpCommand& cmd, const JumpHost& jump);

// -v for every SSH connection this process makes, shown through `rep` (from any thread, one
// line at a time): 1 = connection steps (address, jump, host key, which key authenticated),
// 2 = + key exchange, cipher, server banner and each key tried (and OpenSSH's -v for the jump
// hop, on stderr), 3 = + libssh's own log. 0 turns it off. Set once by the CLI.
void set_ssh_diagnostics(int verbosity, Reporter* rep);

// Quotes one word for Python's shlex.split (how Ansible splits ansible_ssh_*_args).
std::string shlex_quote(std::string_view word);

}  // namespace gedge
