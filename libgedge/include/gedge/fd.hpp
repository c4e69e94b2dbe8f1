// UniqueFd: the one owner of a POSIX file descriptor. It closes the descriptor exactly once (on
// destruction, reset or close()), moves and never copies; -1 means "none".
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace gedge {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  // Gives the descriptor up without closing it.
  int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the descriptor held (if any) and holds `fd` instead.
  void reset(int fd = -1) noexcept {
    int old = std::exchange(fd_, fd);
    if (old >= 0) ::close(old);
  }
  // Closes now and returns close(2)'s result (0, or -1 with errno set: a file written through
  // the descriptor may report its last write error only here). 0 when nothing is held.
  int close() noexcept {
    int old = std::exchange(fd_, -1);
    return old >= 0 ? ::close(old) : 0;
  }

 private:
  int fd_ = -1;
};

// pipe2(2) into two owners: ends[0] reads, ends[1] writes. 0, or -1 with errno set.
inline int make_pipe(UniqueFd (&ends)[2], int flags = O_CLOEXEC) noexcept {
  int fds[2];
  if (::pipe2(fds, flags) != 0) return -1;
  ends[0].reset(fds[0]);
  ends[1].reset(fds[1]);
  return 0;
}

}  // namespace gedge
