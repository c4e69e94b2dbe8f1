// The system OpenSSH client as gedge uses it: `ssh -G` resolves an ssh config alias into the
// connection record gedge stores for a device, and `ssh -W` carries a session through a jump
// host (libssh 0.10 has no native ProxyJump). Every call is an argv run by execve, never a shell.
#pragma once

#include <filesystem>
#include <optional>
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

// The hops OpenSSH takes for `ProxyJump spec` ("a,b,c" or one hop; each [user@]host[:port] or an
// ssh config alias, resolved with `ssh -G` like the device), outermost first. As in OpenSSH
// (`ssh -J a,b,c` runs `ssh -J a,b -W .. c`), only the first hop's own ProxyJump from the config
// is followed, before it; the other hops' ProxyJump is not. A ProxyCommand on the first hop, an
// empty hop or more than kMaxJumpHops hops (a loop in the config) is a usage error. The hops'
// aliases are left empty; identity is each hop's first readable IdentityFile.
constexpr std::size_t kMaxJumpHops = 8;
Result<std::vector<JumpHost>> resolve_proxy_jump(const std::string& spec,
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
// jump.alias. dest_host/dest_port as given; in a ProxyCommand pass "%h"/"%p". A jump with hops
// before it (jump.via) gets `-o ProxyCommand=` the previous hop's command (jump_proxy_command),
// nested hop by hop: each hop's ssh checks its own alias's line in cmd.known_hosts.
std::vector<std::string> jump_argv(const JumpCommand& cmd, const JumpHost& jump,
                                   const std::string& dest_host, const std::string& dest_port);

// The same command as an OpenSSH ProxyCommand value: each word POSIX-shell quoted, '%' doubled
// (ssh expands %-tokens before its shell runs the line), destination [%h]:%p. Nesting is exact:
// an inner hop's ProxyCommand is one word of the outer one, its '%' doubled and quoted again.
std::string jump_proxy_command(const JumpCommand& cmd, const JumpHost& jump);

// Every hop from the outermost to `jump` itself, each with an empty via.
std::vector<JumpHost> jump_hops(const JumpHost& jump);

// "alias type base64\n" for every hop (what the jump's ssh processes verify); host_key naming
// the device and the hop when a hop has no pinned key.
Result<std::string> jump_known_hosts_lines(const JumpHost& jump, std::string_view device);

// -v for every SSH connection this process makes, shown through `rep` (from any thread, one
// line at a time): 1 = connection steps (address, jump, host key, which key authenticated),
// 2 = + key exchange, cipher, server banner and each key tried (and OpenSSH's -v for the jump
// hop, on stderr), 3 = + libssh's own log. 0 turns it off. Set once by the CLI.
void set_ssh_diagnostics(int verbosity, Reporter* rep);

// ---- host certificates (@cert-authority) ------------------------------------------------------
// libssh 0.10 neither negotiates host certificates by default nor verifies a CA signature, so a
// host certificate is verified by OpenSSH itself: `ssh` connects with a private known_hosts file
// holding only the @cert-authority keys that apply to the host and every @revoked key, strict
// checking, HostKeyAlias = the host as connected (the name the certificate must list as a
// principal), HostKeyAlgorithms = the certificate form of the key type gedge's own connection
// saw, and no authentication method. OpenSSH checks the CA's signature, the validity window, the
// principals, the certificate type (host) and revocation; with -v it names the key inside the
// certificate it accepted ("Server host certificate: ... SHA256:..."). The caller pins the plain
// key its libssh connection was presented only when that key's fingerprint equals this one.
//
// Why that is sound against a man in the middle: OpenSSH's connection only gets past key
// exchange (SSH2_MSG_NEWKEYS sent) when the server proved possession of the private key of a
// certificate the CA signed for this name; libssh's connection verified that its server holds
// the private key of the plain key it presented. Equal SHA-256 fingerprints mean the same key,
// so both servers hold the one private key the CA certified for this host. An attacker on either
// connection cannot present that key without its private half; the certificate itself is public
// and proves nothing by itself, which is why no certificate fetched separately (ssh-keyscan) is
// trusted.
struct HostCertQuery {
  std::string program = "ssh";
  std::string host;  // as connected (HostName); also the principal the certificate must list
  int port = 22;
  std::string user;
  std::string key_type;              // the plain key type gedge's connection was presented
  std::vector<std::string> ca_keys;  // "type base64" of the applicable @cert-authority lines
  std::vector<std::string> revoked;  // "type base64" of every @revoked line
  std::optional<JumpHost> jump;      // reached through it (its pinned key, as for libssh)
  std::vector<std::string> jump_identities;
  double connect_timeout_s = 10;
};

struct HostCertVerdict {
  bool certified = false;
  std::string fingerprint;     // SHA256 of the key inside the certificate OpenSSH accepted
  std::string ca_fingerprint;  // SHA256 of the CA that signed it (as OpenSSH printed it)
  std::string detail;          // why OpenSSH refused (its own words), or what it accepted
};

// The certificate host key algorithms for a plain key type ("" when unknown: OpenSSH's default).
std::string host_cert_algorithms(const std::string& key_type);

// argv of the verifying `ssh` (pure): known_hosts is the private file, proxy_command the jump
// (empty when none).
std::vector<std::string> host_cert_argv(const HostCertQuery& q, const std::string& known_hosts,
                                        const std::string& proxy_command);

// Reads OpenSSH's -v stderr (pure): certified only when it accepted a host certificate
// ("is known and matches the ... host certificate") and went on past key exchange with no
// "Host key verification failed". unreachable when ssh never got to a host key.
Result<HostCertVerdict> parse_host_cert_log(std::string_view err);

// Runs the check (no shell; the private known_hosts file is removed afterwards).
Result<HostCertVerdict> verify_host_certificate(const HostCertQuery& q);

// Quotes one word for Python's shlex.split (how Ansible splits ansible_ssh_*_args).
std::string shlex_quote(std::string_view word);

}  // namespace gedge
