// Bounded-concurrency fan-out: a fixed pool of worker threads, each taking the next target,
// connecting once and running all of that target's work on the one session.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "gedge/report.hpp"
#include "gedge/ssh.hpp"

namespace gedge {

namespace {

// Descriptors one connection in flight may hold at once: its socket, a ProxyJump's socketpair end
// and stderr pipe, a known_hosts or key file being read. kSpareFds: the rest of the process.
constexpr rlim_t kFdsPerHost = 4, kSpareFds = 64;

// How many connections can be in flight at once: `want`, after raising the soft descriptor limit
// toward the hard one when `want` needs more (a default soft limit of 1024 would otherwise fail
// devices past a few hundred with EMFILE, reported as unreachable); fewer when the hard limit is
// lower, so the rest wait for a free worker instead of failing.
std::size_t fit_descriptor_limit(std::size_t want) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return want;
  rlim_t need = static_cast<rlim_t>(want) * kFdsPerHost + kSpareFds;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    rlimit up = rl;
    up.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : std::min(need, rl.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
  }
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return want;
  if (rl.rlim_cur <= kSpareFds + kFdsPerHost) return 1;
  return std::min<std::size_t>(want, (rl.rlim_cur - kSpareFds) / kFdsPerHost);
}

}  // namespace

std::vector<int64_t> fan_out_raw(
    const std::vector<SshTarget>& targets, const FanOutOptions& opts,
    const std::function<void(std::size_t, const Result<SshSession*>&)>& work) {
  std::vector<int64_t> ms(targets.size(), 0);
  if (targets.empty()) return ms;
  std::atomic<std::size_t> next{0};
  std::mutex done_mu;
  std::size_t done = 0;

  auto finish = [&](std::size_t i, bool ok) {
    if (!opts.on_done) return;
    std::lock_guard lk(done_mu);
    ++done;
    opts.on_done(done, targets.size(), targets[i].name, ok);
  };

  // A target's work must not take the process down (an exception escaping a thread aborts):
  // whatever it throws is handed back to it as that target's failure.
  auto guarded = [&](std::size_t i, const Result<SshSession*>& s) {
    try {
      work(i, s);
    } catch (const std::exception& e) {
      work(i, fail(ErrorCode::failure, fmt::format("device '{}': {}", targets[i].name, e.what()),
                   "an unexpected reply from the device; run gedge device check on it"));
    }
  };
  auto worker = [&] {
    for (;;) {
      std::size_t i = next.fetch_add(1);
      if (i >= targets.size()) return;
      auto start = SshClock::now();
      if (cancel_requested()) {
        guarded(i, fail(ErrorCode::interrupted, "interrupted before connecting"));
        finish(i, false);
        continue;
      }
      SshOptions so = opts.ssh;
      auto own = start + std::chrono::milliseconds(static_cast<int64_t>(so.timeout_s * 1000));
      if (opts.deadline) {
        if (SshClock::now() >= *opts.deadline) {
          guarded(i, fail(ErrorCode::unreachable,
                          fmt::format("device '{}': overall deadline passed before connecting",
                                      targets[i].name),
                          "raise --timeout or --parallel"));
          finish(i, false);
          continue;
        }
        own = std::min(own, *opts.deadline);
      }
      so.deadline = so.deadline ? std::min(*so.deadline, own) : own;
      auto sess = SshSession::connect(targets[i], so);
      bool ok = sess.has_value();
      if (sess)
        guarded(i, sess->get());
      else
        guarded(i, std::unexpected(sess.error()));
      sess = fail(ErrorCode::internal, "closed");  // disconnect before counting the target done
      ms[i] =
          std::chrono::duration_cast<std::chrono::milliseconds>(SshClock::now() - start).count();
      finish(i, ok);
    }
  };

  std::size_t n = fit_descriptor_limit(std::clamp<std::size_t>(
      static_cast<std::size_t>(std::max(1, opts.parallel)), 1, targets.size()));
  if (n == 1) {
    worker();
    return ms;
  }
  std::vector<std::thread> pool;
  pool.reserve(n);
  for (std::size_t k = 0; k < n; ++k) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  return ms;
}

}  // namespace gedge
