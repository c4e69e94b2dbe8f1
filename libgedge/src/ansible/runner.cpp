// ansible-playbook by fork/execve (no shell), events read from a pipe as they are written.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "gedge/ansible.hpp"
#include "gedge/fd.hpp"
#include "gedge/paths.hpp"
#include "gedge/report.hpp"

extern char** environ;

namespace gedge::ansible {

std::optional<Event> parse_event(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.empty() || line.front() != '{') return std::nullopt;
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("event") || !j["event"].is_string()) return std::nullopt;
  Event e;
  e.type = j["event"].get<std::string>();
  auto str = [&](const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  e.host = str("host");
  e.task = str("task");
  e.msg = str("msg");
  e.diff = str("diff");
  e.changed = j.value("changed", false);
  e.check_mode_skip = j.value("check_mode_skip", false);
  if (e.type == "stats" && j.contains("hosts") && j["hosts"].is_object()) e.stats = j["hosts"];
  // A persisted ssh connection whose link dropped mid-run stalls; Ansible's become-prompt timer
  // (timeout + 2 s) fires before ssh notices and reports a task failure. It is a lost host.
  if (e.type == "failed" &&
      e.msg.find("waiting for privilege escalation prompt") != std::string::npos)
    e.type = "unreachable";
  static const char* known[] = {"play_start",  "task_start", "ok",   "failed",
                                "unreachable", "skipped",    "stats"};
  for (const char* k : known)
    if (e.type == k) return e;
  return std::nullopt;
}

std::vector<std::string> playbook_argv(const RunSpec& spec) {
  std::vector<std::string> argv = {spec.ansible_playbook,
                                   "-i",
                                   (spec.run_dir / "inventory.yml").string(),
                                   "-e",
                                   "@" + (spec.run_dir / "vars.json").string(),
                                   "--forks",
                                   std::to_string(spec.forks < 1 ? 1 : spec.forks)};
  if (!spec.limit.empty()) {
    std::string l;
    for (const auto& h : spec.limit) l += (l.empty() ? "" : ",") + h;
    argv.insert(argv.end(), {"--limit", l});
  }
  if (!spec.skip_tags.empty()) {
    std::string t;
    for (const auto& s : spec.skip_tags) t += (t.empty() ? "" : ",") + s;
    argv.insert(argv.end(), {"--skip-tags", t});
  }
  if (spec.check) argv.insert(argv.end(), {"--check", "--diff"});
  argv.push_back(spec.playbook.string());
  return argv;
}

std::string render_ansible_cfg(const RunSpec& spec) {
  return fmt::format(
      "# Written by gedge for one run.\n"
      "[defaults]\n"
      "host_key_checking = True\n"
      "stdout_callback = gedge_events\n"
      "callback_plugins = {0}/callback_plugins\n"
      "roles_path = {0}/roles\n"
      "retry_files_enabled = False\n"
      "interpreter_python = /usr/bin/python3\n"
      "nocows = True\n"
      "timeout = {1}\n"
      "[ssh_connection]\n"
      "pipelining = True\n",
      spec.playbook_dir.string(), spec.timeout_s < 1 ? 1 : spec.timeout_s);
}

std::map<std::string, std::string> playbook_env(const RunSpec& spec, int events_fd) {
  return {{"ANSIBLE_CONFIG", (spec.run_dir / "ansible.cfg").string()},
          {"ANSIBLE_STDOUT_CALLBACK", "gedge_events"},
          {"ANSIBLE_CALLBACKS_ENABLED", "gedge_events"},
          {"ANSIBLE_CALLBACK_PLUGINS", (spec.playbook_dir / "callback_plugins").string()},
          {"ANSIBLE_ROLES_PATH", (spec.playbook_dir / "roles").string()},
          {"ANSIBLE_HOST_KEY_CHECKING", "True"},
          {"ANSIBLE_RETRY_FILES_ENABLED", "False"},
          {"ANSIBLE_NOCOLOR", "1"},
          {"ANSIBLE_FORCE_COLOR", "0"},
          {"ANSIBLE_LOCAL_TEMP", (spec.run_dir / "tmp").string()},
          {"PYTHONUNBUFFERED", "1"},
          {"GEDGE_EVENTS_FD", std::to_string(events_fd)}};
}

namespace {

std::string tail_lines(const std::filesystem::path& p, int n) {
  auto text = read_file(p);
  if (!text) return {};
  const std::string& s = *text;
  size_t pos = s.size();
  int lines = 0;
  while (pos > 0 && lines <= n) {
    pos = s.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    ++lines;
  }
  auto out = s.substr(pos);
  while (!out.empty() && (out.front() == '\n')) out.erase(0, 1);
  return out;
}

Result<std::string> which(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return prog;
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    std::string dir = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!dir.empty()) {
      auto cand = std::filesystem::path(dir) / prog;
      if (::access(cand.c_str(), X_OK) == 0) return cand.string();
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return fail(ErrorCode::failure, fmt::format("{} not found on PATH", prog),
              "install Ansible: apt-get install ansible-core");
}

// The child's descriptor for the event pipe's write end.
constexpr int kEventsFd = 3;

// The environment ansible-playbook runs with: gedge's (playbook_env) over this process's, less
// any ANSIBLE_* of the caller's.
std::vector<std::string> child_env(const RunSpec& spec) {
  auto add = playbook_env(spec, kEventsFd);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    auto key = kv.substr(0, kv.find('='));
    if (add.count(std::string(key)) || key.starts_with("ANSIBLE_")) continue;  // ours win
    env_s.emplace_back(kv);
  }
  for (const auto& [k, v] : add) env_s.push_back(k + "=" + v);
  return env_s;
}

// ansible-playbook in its own process group (gedge forwards Ctrl-C itself), stdin /dev/null, its
// output to `log_fd`, the event pipe's write end as kEventsFd, in `cwd`.
Result<pid_t> spawn(std::vector<std::string> argv_s, std::vector<std::string> env_s,
                    const std::string& cwd, const UniqueFd& log_fd, const UniqueFd& events) {
  std::vector<char*> argv, envp;
  for (auto& x : argv_s) argv.push_back(x.data());
  argv.push_back(nullptr);
  for (auto& x : env_s) envp.push_back(x.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return fail(ErrorCode::failure, "fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(log_fd.get(), 1);
    ::dup2(log_fd.get(), 2);
    ::dup2(events.get(), kEventsFd);  // dup2 clears O_CLOEXEC on the new descriptor
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  return pid;
}

// Reads the event pipe until it closes and the child has exited: each event to `on_event`, the
// stats into `rr`; on Ctrl-C or should_stop, SIGINT to the group (SIGKILL 10 s later). Returns
// the child's wait status.
int pump_events(pid_t pid, const UniqueFd& events, RunResult& rr,
                const std::function<void(const Event&)>& on_event,
                const std::function<bool()>& should_stop) {
  const int fd = events.get();
  std::string buf;
  bool eof = false;
  int status = 0;
  bool exited = false;
  // When SIGKILL follows the SIGINT (never until stop()). Not an optional: g++ 12 reports a false
  // -Wmaybe-uninitialized for it here.
  auto kill_at = std::chrono::steady_clock::time_point::max();
  auto stop = [&](bool interrupted) {
    if (rr.stopped) return;
    rr.stopped = true;
    rr.interrupted = interrupted;
    ::kill(-pid, SIGINT);
    kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  };
  while (!eof || !exited) {
    if (!eof) {
      pollfd pfd{fd, POLLIN, 0};
      int pr = ::poll(&pfd, 1, 200);
      if (pr > 0) {
        char chunk[8192];
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n > 0) {
          buf.append(chunk, static_cast<size_t>(n));
          size_t nl;
          while ((nl = buf.find('\n')) != std::string::npos) {
            auto ev = parse_event(std::string_view(buf).substr(0, nl));
            buf.erase(0, nl + 1);
            if (!ev) continue;
            if (ev->type == "stats") rr.stats = ev->stats;
            if (on_event) on_event(*ev);
          }
        } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
          eof = true;
        }
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!exited) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) exited = true;
    }
    if (exited && !eof) {
      // Grandchildren (ssh ControlPersist masters) may keep the pipe open: drain what is there.
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, 0) <= 0) eof = true;
    }
    if (!rr.stopped) {
      if (cancel_requested())
        stop(true);
      else if (should_stop && should_stop())
        stop(false);
    }
    if (!exited && std::chrono::steady_clock::now() > kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = std::chrono::steady_clock::time_point::max();
    }
  }
  return status;
}

}  // namespace

Result<RunResult> run_playbook(const RunSpec& spec,
                               const std::function<void(const Event&)>& on_event,
                               const std::function<bool()>& should_stop) {
  std::error_code ec;
  std::filesystem::create_directories(spec.run_dir / "tmp", ec);
  if (ec)
    return fail(ErrorCode::failure,
                fmt::format("cannot create {}: {}", spec.run_dir.string(), ec.message()));
  ::chmod(spec.run_dir.c_str(), 0700);
  GEDGE_TRY(write_file_atomic(spec.run_dir / "inventory.yml", spec.inventory_text, 0600));
  GEDGE_TRY(write_file_atomic(spec.run_dir / "vars.json", spec.extra_vars.dump(2) + "\n", 0600));
  GEDGE_TRY(write_file_atomic(spec.run_dir / "ansible.cfg", render_ansible_cfg(spec), 0600));
  GEDGE_TRY_ASSIGN(auto exe, which(spec.ansible_playbook));

  RunResult rr;
  rr.log = spec.run_dir / "ansible.log";
  UniqueFd log_fd(::open(rr.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!log_fd) return fail(ErrorCode::failure, fmt::format("cannot write {}", rr.log.string()));
  UniqueFd pipefd[2];
  if (make_pipe(pipefd) != 0) return fail(ErrorCode::failure, "pipe failed");
  RunSpec named = spec;
  named.ansible_playbook = exe;
  GEDGE_TRY_ASSIGN(pid_t pid, spawn(playbook_argv(named), child_env(spec), spec.run_dir.string(),
                                    log_fd, pipefd[1]));
  track_child_group(pid);
  pipefd[1].reset();
  log_fd.reset();
  int status = pump_events(pid, pipefd[0], rr, on_event, should_stop);
  untrack_child_group(pid);
  pipefd[0].reset();
  rr.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  rr.log_tail = tail_lines(rr.log, 15);
  return rr;
}

}  // namespace gedge::ansible
