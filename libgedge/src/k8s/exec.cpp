// Exec credential plugins (client.authentication.k8s.io/v1 and v1beta1), as client-go runs them:
// execve (no shell) with the process environment plus the kubeconfig's env and
// KUBERNETES_EXEC_INFO; stdin is /dev/null unless the plugin may be interactive and stdin is a
// terminal; stdout is the ExecCredential; stderr is kept for the error when the plugin fails.
// Credentials are cached in memory for this run until their expirationTimestamp (never on disk).
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>

#include "gedge/fd.hpp"
#include "gedge/k8s.hpp"
#include "gedge/report.hpp"

extern char** environ;

namespace gedge::k8s {
namespace {

using Clock = std::chrono::system_clock;

struct Cached {
  ExecCredentials creds;
};
std::mutex g_mu;
std::map<std::string, Cached> g_cache;

std::string last_lines(const std::string& s, std::size_t n) {
  std::string t = s;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  std::size_t pos = t.size();
  for (std::size_t i = 0; i < n && pos != std::string::npos && pos > 0; ++i)
    pos = t.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? t : t.substr(pos + 1);
}

// RFC 3339 ("2026-12-03T07:00:00Z", fractional seconds and offsets accepted).
std::optional<Clock::time_point> parse_time(const std::string& s) {
  std::tm tm{};
  const char* p = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!p) return std::nullopt;
  if (*p == '.')
    while (*++p >= '0' && *p <= '9') {
    }
  long offset = 0;
  if (*p == 'Z' || *p == 'z') {
    ++p;
  } else if (*p == '+' || *p == '-') {
    int hh = 0, mm = 0;
    if (std::sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2) return std::nullopt;
    offset = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
    p += 6;
  } else {
    return std::nullopt;
  }
  if (*p) return std::nullopt;
  return Clock::from_time_t(timegm(&tm) - offset);
}

// The command as execve needs it: absolute, relative to the kubeconfig, or found on PATH.
Result<std::string> find_command(const ExecConfig& e) {
  if (e.command.find('/') != std::string::npos) return e.command;
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= p.size()) {
    auto colon = p.find(':', start);
    std::string dir =
        p.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::filesystem::path cand =
        std::filesystem::path(dir.empty() ? std::string_view(".") : std::string_view(dir)) /
        e.command;
    if (::access(cand.c_str(), X_OK) == 0) return cand.string();
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return fail(ErrorCode::auth,
              fmt::format("exec plugin '{}' ({}) not found on PATH", e.command, e.where),
              e.install_hint.empty() ? "install it, or fix user.exec.command in the kubeconfig"
                                     : e.install_hint);
}

Result<ExecCredentials> run(const ExecConfig& e, double timeout_s) {
  GEDGE_TRY_ASSIGN(auto cmd, find_command(e));
  bool tty = ::isatty(0) == 1;
  bool interactive = e.interactive_mode != "Never" && tty;
  if (e.interactive_mode == "Always" && !tty)
    return fail(
        ErrorCode::auth,
        fmt::format(
            "exec plugin '{}' ({}) needs a terminal (interactiveMode: Always) and stdin is not one",
            e.command, e.where));
  nlohmann::json info = {{"apiVersion", e.api_version},
                         {"kind", "ExecCredential"},
                         {"spec", {{"interactive", interactive}}}};
  if (e.provide_cluster_info) info["spec"]["cluster"] = e.cluster_info;

  std::vector<std::string> envs;
  std::map<std::string, std::string> overrides;
  for (const auto& [k, v] : e.env) overrides[k] = v;
  overrides["KUBERNETES_EXEC_INFO"] = info.dump();
  for (char** p = environ; p && *p; ++p) {
    std::string kv = *p;
    auto eq = kv.find('=');
    if (eq != std::string::npos && overrides.contains(kv.substr(0, eq))) continue;
    envs.push_back(kv);
  }
  for (const auto& [k, v] : overrides) envs.push_back(k + "=" + v);
  std::vector<std::string> args{cmd};
  args.insert(args.end(), e.args.begin(), e.args.end());
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& x : envs) envp.push_back(x.data());
  envp.push_back(nullptr);

  UniqueFd out[2], err[2];
  if (make_pipe(out) != 0 || make_pipe(err) != 0) return fail(ErrorCode::failure, "pipe failed");
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  pid_t pid = ::fork();
  if (pid < 0) return fail(ErrorCode::failure, "fork failed");
  if (pid == 0) {
    if (!interactive) ::setpgid(0, 0);  // an interactive plugin stays in the terminal's group
    ::dup2(interactive ? 0 : devnull.get(), 0);
    ::dup2(out[1].get(), 1);
    if (!interactive) ::dup2(err[1].get(), 2);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "gedge: cannot execute the exec plugin\n";
    [[maybe_unused]] auto w = ::write(err[1].get(), msg, sizeof msg - 1);
    ::_exit(127);
  }
  if (!interactive) {
    ::setpgid(pid, pid);
    track_child_group(pid);
  }
  out[1].reset();
  err[1].reset();
  devnull.reset();

  std::string sout, serr;
  auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<long>((timeout_s > 0 ? timeout_s : 60) * 1000));
  bool open_out = true, open_err = !interactive;
  if (interactive) err[0].reset();
  bool killed = false, timed_out = false;
  while (open_out || open_err) {
    if (cancel_requested() || std::chrono::steady_clock::now() > deadline) {
      timed_out = !cancel_requested();
      ::kill(interactive ? pid : -pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd fds[2];
    int n = 0;
    if (open_out) fds[n++] = {out[0].get(), POLLIN, 0};
    if (open_err) fds[n++] = {err[0].get(), POLLIN, 0};
    if (::poll(fds, n, 200) <= 0) continue;
    for (int i = 0; i < n; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      bool is_out = fds[i].fd == out[0].get();
      if (r <= 0) {
        (is_out ? open_out : open_err) = false;
        continue;
      }
      std::string& into = is_out ? sout : serr;
      if (into.size() < (1u << 20)) into.append(buf, static_cast<std::size_t>(r));
    }
  }
  out[0].reset();
  err[0].reset();
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!interactive) untrack_child_group(pid);
  if (killed && !timed_out)
    return fail(ErrorCode::interrupted, fmt::format("exec plugin '{}': interrupted", e.command));
  if (timed_out)
    return fail(ErrorCode::auth, fmt::format("exec plugin '{}' ({}) did not finish within {:.0f} s",
                                             e.command, e.where, timeout_s > 0 ? timeout_s : 60));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string how = WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                        : fmt::format("signal {}", WTERMSIG(status));
    std::string tail = last_lines(serr, 5);
    return fail(ErrorCode::auth,
                fmt::format("exec plugin '{}' ({}) failed ({}){}{}", e.command, e.where, how,
                            tail.empty() ? "" : ": ", tail),
                e.install_hint);
  }
  auto j = nlohmann::json::parse(sout, nullptr, false);
  auto bad = [&](const std::string& why) {
    return fail(ErrorCode::auth, fmt::format("exec plugin '{}' ({}): {}", e.command, e.where, why));
  };
  if (!j.is_object() || j.value("kind", "") != "ExecCredential")
    return bad("its output is not an ExecCredential");
  if (j.value("apiVersion", "") != e.api_version)
    return bad(fmt::format("it answered apiVersion '{}', the kubeconfig asks for '{}'",
                           j.value("apiVersion", ""), e.api_version));
  auto st = j.value("status", nlohmann::json::object());
  if (!st.is_object()) return bad("status is not an object");
  ExecCredentials c;
  auto s = [&](const char* k) {
    return st.contains(k) && st[k].is_string() ? st[k].get<std::string>() : std::string();
  };
  c.token = s("token");
  c.client_cert_pem = s("clientCertificateData");
  c.client_key_pem = s("clientKeyData");
  if (c.client_cert_pem.empty() != c.client_key_pem.empty())
    return bad("it returned a client certificate without a key (or a key without a certificate)");
  if (c.token.empty() && c.client_cert_pem.empty())
    return bad("it returned neither a token nor a client certificate");
  for (unsigned char ch : c.token)
    if (ch < 0x20 || ch == 0x7f) return bad("its token contains control characters");
  if (auto exp = s("expirationTimestamp"); !exp.empty()) {
    auto t = parse_time(exp);
    if (!t) return bad(fmt::format("expirationTimestamp '{}' is not RFC 3339", exp));
    c.expires = *t;
  }
  return c;
}

std::string cache_key(const ExecConfig& e) {
  nlohmann::json k = {{"v", e.api_version},
                      {"c", e.command},
                      {"a", e.args},
                      {"i", e.cluster_info},
                      {"m", e.interactive_mode}};
  for (const auto& [n, v] : e.env) k["e"].push_back({n, v});
  return k.dump();
}

}  // namespace

Result<ExecCredentials> exec_credentials(const ExecConfig& e, double timeout_s, bool refresh) {
  std::string key = cache_key(e);
  {
    std::lock_guard lk(g_mu);
    auto it = g_cache.find(key);
    if (it != g_cache.end()) {
      if (!refresh && (!it->second.creds.expires ||
                       *it->second.creds.expires > Clock::now() + std::chrono::seconds(10)))
        return it->second.creds;
      g_cache.erase(it);
    }
  }
  GEDGE_TRY_ASSIGN(auto c, run(e, timeout_s));
  std::lock_guard lk(g_mu);
  g_cache[key] = Cached{c};
  return c;
}

}  // namespace gedge::k8s
