// The system OpenSSH client: `ssh -G` resolution and the `ssh -W` jump command (argv, no shell);
// host certificates are openssh_cert.cpp.
#include "gedge/openssh.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include "gedge/document.hpp"
#include "gedge/fd.hpp"
#include "gedge/report.hpp"
#include "gedge/text.hpp"
#include "openssh_internal.hpp"

extern char** environ;

namespace gedge {

namespace openssh_detail {

Result<Captured> run_capture(const std::vector<std::string>& argv, double limit_s) {
  UniqueFd outp[2], errp[2];
  if (make_pipe(outp) != 0 || make_pipe(errp) != 0) return fail(ErrorCode::failure, "pipe failed");
  std::vector<std::string> a = argv;
  std::vector<char*> av;
  for (auto& s : a) av.push_back(s.data());
  av.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return fail(ErrorCode::failure, "fork failed");
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(outp[1].get(), 1);
    ::dup2(errp[1].get(), 2);
    ::execve(av[0], av.data(), environ);
    ::_exit(127);
  }
  outp[1].reset();
  errp[1].reset();
  Captured c;
  auto end = std::chrono::steady_clock::now() +
             std::chrono::milliseconds(static_cast<int64_t>(limit_s * 1000));
  bool open_out = true, open_err = true, killed = false;
  while (open_out || open_err) {
    pollfd p[2] = {{open_out ? outp[0].get() : -1, POLLIN, 0},
                   {open_err ? errp[0].get() : -1, POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    end - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0 || cancel_requested()) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (::poll(p, 2, static_cast<int>(std::min<int64_t>(left, 200))) < 0 && errno != EINTR) break;
    char buf[4096];
    for (int k = 0; k < 2; ++k) {
      if (!(p[k].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = ::read(p[k].fd, buf, sizeof buf);
      if (n > 0)
        (k == 0 ? c.out : c.err).append(buf, static_cast<size_t>(n));
      else if (n == 0 || errno != EINTR)
        (k == 0 ? open_out : open_err) = false;
    }
  }
  outp[0].reset();
  errp[0].reset();
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
  if (killed)
    return fail(ErrorCode::failure, fmt::format("{} did not finish within {} s", argv[0], limit_s));
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return c;
}

std::string ssh_path_value(const std::string& path) {
  bool plain = !path.empty();
  for (unsigned char c : path)
    if (!(std::isalnum(c) ||
          std::string_view("/._+,:@=-").find(static_cast<char>(c)) != std::string_view::npos))
      plain = false;
  if (plain) return path;
  std::string v = "\"";
  for (char c : path) {
    if (c == '"' || c == '\\') v += '\\';
    if (c == '%') v += '%';
    v += c;
  }
  return v + "\"";
}

}  // namespace openssh_detail

namespace {

using openssh_detail::run_capture;
using openssh_detail::ssh_path_value;

// OpenSSH's tokens in IdentityFile/CertificateFile (the ones that make sense after resolution).
std::string expand_path(const std::string& v, const std::string& home,
                        const std::string& local_user, const std::string& host,
                        const std::string& user, int port) {
  std::string out;
  std::size_t i = 0;
  if (v.size() >= 1 && v[0] == '~' && (v.size() == 1 || v[1] == '/')) {
    out = home;
    i = 1;
  }
  for (; i < v.size(); ++i) {
    if (v[i] != '%' || i + 1 == v.size()) {
      out += v[i];
      continue;
    }
    char t = v[++i];
    switch (t) {
      case '%':
        out += '%';
        break;
      case 'd':
        out += home;
        break;
      case 'u':
        out += local_user;
        break;
      case 'h':
        out += host;
        break;
      case 'r':
        out += user;
        break;
      case 'p':
        out += std::to_string(port);
        break;
      default:
        out += '%', out += t;
    }
  }
  return out;
}

std::string first_line(const std::string& s) {
  std::istringstream in(s);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.find("Pseudo-terminal") != std::string::npos || line.empty()) continue;
    out += (out.empty() ? "" : "; ") + line;
  }
  return out;
}

}  // namespace

ResolvedHost parse_ssh_G(std::string_view text, const std::string& home,
                         const std::string& local_user) {
  ResolvedHost r;
  std::vector<std::string> ids, certs;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    auto sp = line.find(' ');
    if (sp == std::string::npos) continue;
    std::string key = lower(line.substr(0, sp)), val = line.substr(sp + 1);
    if (key == "hostname")
      r.host = val;
    else if (key == "port")
      r.port = std::atoi(val.c_str());
    else if (key == "user")
      r.user = val;
    else if (key == "identityfile")
      ids.push_back(val);
    else if (key == "certificatefile")
      certs.push_back(val);
    else if (key == "proxyjump")
      r.proxy_jump = val == "none" ? "" : val;
    else if (key == "proxycommand")
      r.proxy_command = val != "none";
    else if (key == "identityagent")
      r.identity_agent = (val == "none" || val == "SSH_AUTH_SOCK") ? "" : val;
  }
  for (const auto& v : ids)
    r.identity_files.push_back(expand_path(v, home, local_user, r.host, r.user, r.port));
  for (const auto& v : certs)
    r.certificate_files.push_back(expand_path(v, home, local_user, r.host, r.user, r.port));
  if (!r.identity_agent.empty())
    r.identity_agent = expand_path(r.identity_agent, home, local_user, r.host, r.user, r.port);
  return r;
}

Result<AddressSpec> parse_address(std::string_view text, std::string_view what) {
  AddressSpec a;
  std::string s(text);
  auto bad = [&](std::string_view why) {
    return fail(
        ErrorCode::usage, fmt::format("invalid {} '{}': {}", what, text, why),
        "give HOST, USER@HOST, HOST:PORT or USER@HOST:PORT (an ssh config alias is a HOST)");
  };
  if (s.rfind("ssh://", 0) == 0) s = s.substr(6);
  if (auto at = s.rfind('@'); at != std::string::npos) {
    a.user = s.substr(0, at);
    s = s.substr(at + 1);
    if (a.user.empty()) return bad("empty user");
  }
  std::string port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos) return bad("unclosed '['");
    a.host = s.substr(1, close - 1);
    std::string rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return bad("text after ']'");
      port = rest.substr(1);
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    a.host = s.substr(0, s.find(':'));
    port = s.substr(s.find(':') + 1);
  } else {
    a.host = s;  // a bare IPv6 address has several ':' and no port
  }
  if (a.host.empty()) return bad("empty host");
  if (a.host[0] == '-' || a.host.find_first_of(" \t\n\r/,@") != std::string::npos)
    return bad("not a host name");
  if (!a.user.empty() &&
      (a.user[0] == '-' || a.user.find_first_of(" \t\n\r/:@,") != std::string::npos))
    return bad("not a user name");
  if (!port.empty() || (s.size() && s.back() == ':')) {
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos)
      return bad("the port is not a number");
    a.port = std::atoi(port.c_str());
    if (a.port < 1 || a.port > 65535) return bad("the port is not in 1..65535");
  }
  return a;
}

Result<std::string> find_ssh(const std::string& program) {
  auto missing = [&] {
    return fail(ErrorCode::failure, fmt::format("the OpenSSH client '{}' was not found", program),
                "install it (apt-get install openssh-client): gedge uses it for ssh config "
                "aliases, ProxyJump "
                "and Ansible");
  };
  if (program.find('/') != std::string::npos) {
    if (::access(program.c_str(), X_OK) == 0) return program;
    return missing();
  }
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::istringstream in(p);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) continue;
    auto cand = std::filesystem::path(dir) / program;
    if (::access(cand.c_str(), X_OK) == 0) return cand.string();
  }
  return missing();
}

Result<ResolvedHost> resolve_ssh_host(const std::string& host, const std::string& user, int port,
                                      const std::string& config_file, const std::string& program) {
  GEDGE_TRY_ASSIGN(auto exe, find_ssh(program));
  std::vector<std::string> argv = {exe, "-G"};
  if (!config_file.empty()) {
    // A regular, readable file of bounded size (ssh would wait for a FIFO's writer).
    if (auto r = read_input_file(config_file, 16u << 20, "ssh config file"); !r)
      return fail(ErrorCode::usage, r.error().message, "check --ssh-config / GEDGE_SSH_CONFIG");
    argv.insert(argv.end(), {"-F", config_file});
  }
  if (!user.empty()) argv.insert(argv.end(), {"-l", user});
  if (port > 0) argv.insert(argv.end(), {"-p", std::to_string(port)});
  argv.insert(argv.end(), {"--", host});
  GEDGE_TRY_ASSIGN(auto c, run_capture(argv, 10));
  if (c.status != 0)
    return fail(ErrorCode::usage,
                fmt::format("ssh -G {} failed (exit {}): {}", host, c.status, first_line(c.err)),
                config_file.empty() ? "check ~/.ssh/config" : fmt::format("check {}", config_file));
  const char* h = std::getenv("HOME");
  std::string home = h ? h : "";
  std::string local_user;
  if (passwd* pw = ::getpwuid(::geteuid())) {
    local_user = pw->pw_name;
    if (home.empty()) home = pw->pw_dir;
  }
  auto r = parse_ssh_G(c.out, home, local_user);
  if (r.host.empty())
    return fail(ErrorCode::failure, fmt::format("ssh -G {} printed no hostname", host));
  return r;
}

namespace {

Result<void> resolve_hops(const std::string& spec, const std::string& config_file,
                          const std::string& program, std::vector<JumpHost>& out, int depth) {
  auto too_many = [&] {
    return fail(ErrorCode::usage,
                fmt::format("ProxyJump {} needs more than {} hops (a loop in the ssh config?)",
                            spec, kMaxJumpHops),
                "check the ProxyJump lines of the jump hosts in the ssh config");
  };
  if (depth > static_cast<int>(kMaxJumpHops)) return too_many();
  std::istringstream in(spec);
  std::string part;
  bool first = true;
  while (std::getline(in, part, ',')) {
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.erase(0, 1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.pop_back();
    if (part.empty())
      return fail(ErrorCode::usage, fmt::format("ProxyJump '{}' has an empty hop", spec),
                  "write ProxyJump HOP[,HOP...]");
    GEDGE_TRY_ASSIGN(auto ja, parse_address(part, "ProxyJump hop"));
    GEDGE_TRY_ASSIGN(auto jr, resolve_ssh_host(ja.host, ja.user, ja.port, config_file, program));
    if (first) {
      // `ssh -W .. a` reads a's own config: its ProxyJump comes first, a ProxyCommand is refused.
      if (jr.proxy_command)
        return fail(
            ErrorCode::usage,
            fmt::format("the jump host {} has a ProxyCommand, which gedge does not run", ja.host),
            "use ProxyJump for jump hosts");
      if (!jr.proxy_jump.empty())
        GEDGE_TRY(resolve_hops(jr.proxy_jump, config_file, program, out, depth + 1));
    }
    first = false;
    JumpHost j;
    j.host = jr.host;
    j.port = jr.port;
    j.user = jr.user;
    for (const auto& f : jr.identity_files)
      if (::access(f.c_str(), R_OK) == 0) {
        j.identity = f;
        break;
      }
    out.push_back(std::move(j));
    if (out.size() > kMaxJumpHops) return too_many();
  }
  if (first)
    return fail(ErrorCode::usage, fmt::format("ProxyJump '{}' names no host", spec),
                "write ProxyJump HOP[,HOP...]");
  return {};
}

}  // namespace

Result<std::vector<JumpHost>> resolve_proxy_jump(const std::string& spec,
                                                 const std::string& config_file,
                                                 const std::string& program) {
  std::vector<JumpHost> hops;
  GEDGE_TRY(resolve_hops(spec, config_file, program, hops, 0));
  return hops;
}

std::vector<std::string> jump_argv(const JumpCommand& cmd, const JumpHost& jump,
                                   const std::string& dest_host, const std::string& dest_port) {
  std::vector<std::string> a = {
      cmd.program,
      "-F",
      "/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "UserKnownHostsFile=" + ssh_path_value(cmd.known_hosts.string()),
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "HostKeyAlias=" + jump.alias,
      "-o",
      "CheckHostIP=no",
      "-o",
      fmt::format("ConnectTimeout={}", std::max(1, static_cast<int>(cmd.connect_timeout_s))),
      "-o",
      "ServerAliveInterval=5",
      "-o",
      "ServerAliveCountMax=3"};
  std::vector<std::string> ids;
  if (!jump.identity.empty()) ids.push_back(jump.identity);
  for (const auto& i : cmd.identities)
    if (!i.empty() && std::find(ids.begin(), ids.end(), i) == ids.end()) ids.push_back(i);
  for (const auto& i : ids) a.insert(a.end(), {"-i", i});
  if (!cmd.identity_agent.empty())
    a.insert(a.end(), {"-o", "IdentityAgent=" + ssh_path_value(cmd.identity_agent)});
  if (!jump.via.empty()) {
    // The previous hop as this hop's ProxyCommand (it has the hops before it in turn).
    JumpHost prev = jump.via.back();
    prev.via.assign(jump.via.begin(), jump.via.end() - 1);
    a.insert(a.end(), {"-o", "ProxyCommand=" + jump_proxy_command(cmd, prev)});
  }
  // OpenSSH's default log level: the jump's "connect failed: Connection refused" is an INFO line,
  // and it is what the error message carries.
  if (cmd.verbosity > 0)
    a.push_back("-" + std::string(static_cast<size_t>(std::min(cmd.verbosity, 3)), 'v'));
  a.insert(a.end(), {"-p", std::to_string(jump.port > 0 ? jump.port : 22)});
  if (!jump.user.empty()) a.insert(a.end(), {"-l", jump.user});
  a.insert(a.end(), {"-W", "[" + dest_host + "]:" + dest_port, "--", jump.host});
  return a;
}

std::string jump_proxy_command(const JumpCommand& cmd, const JumpHost& jump) {
  auto argv = jump_argv(cmd, jump, "%h", "%p");
  std::string out;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    std::string w = argv[i];
    bool dest = i > 0 && argv[i - 1] == "-W";  // our own %h/%p tokens stay
    if (!dest) {
      std::string esc;
      for (char c : w) esc += c == '%' ? std::string("%%") : std::string(1, c);
      w = esc;
    }
    bool plain = !w.empty();
    for (unsigned char c : w)
      if (!(std::isalnum(c) ||
            std::string_view("@%+=:,./_-").find(static_cast<char>(c)) != std::string_view::npos))
        plain = false;
    out += (out.empty() ? "" : " ") + (plain ? w : shell_quote(w));
  }
  return out;
}

std::vector<JumpHost> jump_hops(const JumpHost& jump) {
  std::vector<JumpHost> hops = jump.via;
  hops.push_back(jump);
  for (auto& h : hops) h.via.clear();
  return hops;
}

Result<std::string> jump_known_hosts_lines(const JumpHost& jump, std::string_view device) {
  std::string out;
  for (const auto& h : jump_hops(jump)) {
    if (h.host_key.public_key.empty())
      return fail(ErrorCode::host_key,
                  fmt::format("device '{}': the jump host {}:{} ({}) has no pinned host key",
                              device, h.host, h.port, h.alias),
                  fmt::format("add the device again: gedge device add {} --force", device));
    out += fmt::format("{} {}\n", h.alias, h.host_key.public_key);
  }
  return out;
}

std::string shlex_quote(std::string_view word) {
  bool plain = !word.empty();
  for (unsigned char c : word)
    if (!(std::isalnum(c) ||
          std::string_view("@%+=:,./-_").find(static_cast<char>(c)) != std::string_view::npos))
      plain = false;
  if (plain) return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'')
      out += "'\"'\"'";
    else
      out += c;
  }
  return out + "'";
}

}  // namespace gedge
