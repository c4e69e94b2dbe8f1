// Progress, warnings and cancellation: the library never prints; it tells a Reporter.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

namespace gedge {

class Reporter {
 public:
  virtual ~Reporter() = default;
  // Long work: `done` of `total` units of `task` (total 0 = unknown).
  virtual void progress(std::string_view task, std::size_t done, std::size_t total) {
    (void)task, (void)done, (void)total;
  }
  // One finished step on one target, e.g. ("edge1", "podman installed").
  virtual void step(std::string_view target, std::string_view what) { (void)target, (void)what; }
  virtual void info(std::string_view msg) { (void)msg; }
  virtual void warn(std::string_view msg) { (void)msg; }
};

// A Reporter that drops everything (tests, -q).
Reporter& null_reporter();

// Cooperative cancellation (Ctrl-C). The CLI's signal handler calls request_cancel();
// long-running library loops check cancel_requested() and return ErrorCode::interrupted.
void request_cancel() noexcept;
bool cancel_requested() noexcept;
void reset_cancel() noexcept;

// Child process groups gedge started (ansible-playbook): a second Ctrl-C, which exits at once,
// first kills them so nothing keeps running behind gedge's back. kill_child_groups is
// async-signal-safe (a fixed table of atomics); at most 32 groups are tracked.
void track_child_group(int pgid) noexcept;
void untrack_child_group(int pgid) noexcept;
void kill_child_groups(int sig) noexcept;

// While one of these lives, cancel_requested() is false on this thread: for the few steps that
// must finish after Ctrl-C to leave things whole (e.g. restarting the old replica of a rolling
// replace). Keep the shielded work short and bounded by deadlines.
class CancelShield {
 public:
  CancelShield() noexcept;
  ~CancelShield();
  CancelShield(const CancelShield&) = delete;
  CancelShield& operator=(const CancelShield&) = delete;
};

// UTC timestamp, RFC 3339 with seconds ("2026-11-22T17:28:30Z").
std::string now_rfc3339();

// Appends a line to the log file under GEDGE_HOME/log (no-op until set_log_file is called).
// Never pass secrets here.
void set_log_file(const std::string& path);
void log_line(std::string_view level, std::string_view msg);

}  // namespace gedge
