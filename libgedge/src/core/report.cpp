#include "gedge/report.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <mutex>

#include "gedge/fd.hpp"

namespace gedge {

Reporter& null_reporter() {
  static Reporter r;
  return r;
}

namespace {
std::atomic<bool> g_cancel{false};
std::mutex g_log_mu;
UniqueFd g_log_fd;
}  // namespace

void request_cancel() noexcept {
  g_cancel.store(true);
}
static thread_local int t_shield = 0;
bool cancel_requested() noexcept {
  return t_shield == 0 && g_cancel.load();
}
CancelShield::CancelShield() noexcept {
  ++t_shield;
}
CancelShield::~CancelShield() {
  --t_shield;
}
void reset_cancel() noexcept {
  g_cancel.store(false);
}

namespace {
std::atomic<int> g_child_groups[32];
}  // namespace

void track_child_group(int pgid) noexcept {
  for (auto& slot : g_child_groups) {
    int empty = 0;
    if (slot.compare_exchange_strong(empty, pgid)) return;
  }
}

void untrack_child_group(int pgid) noexcept {
  for (auto& slot : g_child_groups) {
    int want = pgid;
    if (slot.compare_exchange_strong(want, 0)) return;
  }
}

void kill_child_groups(int sig) noexcept {
  for (auto& slot : g_child_groups) {
    int pgid = slot.load();
    if (pgid > 0) ::kill(-pgid, sig);
  }
}

std::string now_rfc3339() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {
// The log is rotated by size when a process opens it: gedge.log -> gedge.log.1 -> ... .3.
constexpr off_t kLogMaxBytes = 4 << 20;
constexpr int kLogKeep = 3;

UniqueFd open_log(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
}

// Rotates `path` when `fd` (open on it) has reached the limit. flock keeps two gedge processes
// from rotating twice; the inode check skips a file another process has rotated meanwhile.
UniqueFd rotate_if_full(const std::string& path, UniqueFd fd) {
  if (!fd || ::flock(fd.get(), LOCK_EX) != 0) return fd;
  struct stat open_st {
  }, named_st{};
  bool full = ::fstat(fd.get(), &open_st) == 0 && open_st.st_size >= kLogMaxBytes &&
              ::stat(path.c_str(), &named_st) == 0 && named_st.st_ino == open_st.st_ino;
  if (full) {
    for (int i = kLogKeep - 1; i >= 1; --i)
      ::rename((path + "." + std::to_string(i)).c_str(),
               (path + "." + std::to_string(i + 1)).c_str());
    ::rename(path.c_str(), (path + ".1").c_str());
  }
  ::flock(fd.get(), LOCK_UN);
  if (!full) return fd;
  fd.reset();
  return open_log(path);
}
}  // namespace

void set_log_file(const std::string& path) {
  std::lock_guard lk(g_log_mu);
  g_log_fd.reset();
  g_log_fd = rotate_if_full(path, open_log(path));
}

void log_line(std::string_view level, std::string_view msg) {
  std::lock_guard lk(g_log_mu);
  if (!g_log_fd) return;
  std::string line = now_rfc3339();
  line += " [";
  line += std::to_string(::getpid());
  line += "] ";
  line += level;
  line += " ";
  line += msg;
  line += "\n";
  // One write per line with O_APPEND keeps lines whole across processes.
  [[maybe_unused]] auto n = ::write(g_log_fd.get(), line.data(), line.size());
}

}  // namespace gedge
