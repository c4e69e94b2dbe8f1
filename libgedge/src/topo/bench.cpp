// The A/B harness: the same command unpinned (A) and pinned (B), interleaved so that drift in
// background load hits both sides, with medians, p95 and a bootstrap interval for the speedup.
#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "gedge/fd.hpp"
#include "gedge/topo.hpp"

namespace gedge::topo {

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double percentile(std::vector<double> v, double pct) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(pct / 100.0 * static_cast<double>(v.size())));
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

namespace {

constexpr int kMpolBind = 2;  // MPOL_BIND from <linux/mempolicy.h>

// Runs argv once with the given affinity (and memory nodes), output to /dev/null; seconds.
Result<double> run_once(const std::vector<std::string>& argv, const IndexSet& cpus,
                        const IndexSet* mems) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned c : cpus)
    if (c < CPU_SETSIZE) CPU_SET(c, &set);
  unsigned long nodemask[16] = {};
  if (mems)
    for (unsigned n : *mems)
      if (n < 16 * 64) nodemask[n / 64] |= 1UL << (n % 64);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return fail(ErrorCode::failure, "cannot open /dev/null");
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    return fail(ErrorCode::failure, fmt::format("fork failed: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    ::dup2(devnull.get(), 0);
    ::dup2(devnull.get(), 1);
    ::dup2(devnull.get(), 2);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) ::_exit(126);
    if (mems && ::syscall(SYS_set_mempolicy, kMpolBind, nodemask, 16 * 64) != 0) ::_exit(126);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  devnull.reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fail(ErrorCode::failure, "waitpid failed");
    if (cancel_requested()) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, &status, 0);
      return fail(ErrorCode::interrupted, "interrupted");
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    return fail(ErrorCode::not_found, fmt::format("cannot run '{}'", argv[0]),
                "check the command and PATH");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
    return fail(ErrorCode::failure, "setting the benchmark's CPU or memory binding failed");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return fail(ErrorCode::failure,
                fmt::format("benchmark command '{}' failed ({} {})", argv[0],
                            WIFEXITED(status) ? "exit" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status)),
                "the command must succeed on its own before it can be measured");
  return std::chrono::duration<double>(t1 - t0).count();
}

nlohmann::json stats(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  double sd = v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0;
  return {{"median_s", median(v)},
          {"p95_s", percentile(v, 95)},
          {"mean_s", mean},
          {"stdev_s", sd},
          {"min_s", *std::min_element(v.begin(), v.end())},
          {"max_s", *std::max_element(v.begin(), v.end())},
          {"samples_s", v}};
}

}  // namespace

Result<nlohmann::json> bench(const BenchRequest& req, Reporter& reporter) {
  if (req.argv.empty())
    return fail(ErrorCode::usage, "no command to benchmark",
                "usage: gedge tune bench [flags] -- CMD ARGS...");
  if (req.runs < 2 || req.runs > 10000)
    return fail(ErrorCode::usage, "--runs must be between 2 and 10000");
  if (req.pinned.cpus.empty()) return fail(ErrorCode::usage, "the pinned plan has no CPUs");
  const IndexSet* mems = req.membind ? &req.pinned.memory_nodes : nullptr;
  std::size_t total = static_cast<std::size_t>(2 * (req.runs + req.warmup));
  std::size_t done = 0;
  for (int w = 0; w < req.warmup; ++w) {
    GEDGE_TRY(run_once(req.argv, req.baseline_cpus, nullptr));
    GEDGE_TRY(run_once(req.argv, req.pinned.cpus, mems));
    done += 2;
    reporter.progress("bench warm-up", done, total);
  }
  std::vector<double> a, b;
  for (int i = 0; i < req.runs; ++i) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
    // ABBA order: each side goes first half of the time.
    bool a_first = i % 2 == 0;
    for (int k = 0; k < 2; ++k) {
      bool pinned = (k == 0) != a_first;
      GEDGE_TRY_ASSIGN(double s, run_once(req.argv, pinned ? req.pinned.cpus : req.baseline_cpus,
                                          pinned ? mems : nullptr));
      (pinned ? b : a).push_back(s);
      reporter.progress("bench", ++done, total);
    }
  }
  // Bootstrap the ratio of medians (fixed seed: the same samples give the same interval).
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::size_t> pick(0, a.size() - 1);
  std::vector<double> ratios;
  for (int r = 0; r < 2000; ++r) {
    std::vector<double> ra(a.size()), rb(b.size());
    for (auto& x : ra) x = a[pick(rng)];
    for (auto& x : rb) x = b[pick(rng)];
    double mb = median(rb);
    if (mb > 0) ratios.push_back(median(ra) / mb);
  }
  std::vector<double> paired;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (b[i] > 0) paired.push_back(a[i] / b[i]);
  double speedup = median(b) > 0 ? median(a) / median(b) : 0.0;
  return nlohmann::json{{"command", req.argv},
                        {"runs", req.runs},
                        {"warmup", req.warmup},
                        {"order", "interleaved ABBA (A unpinned, B pinned)"},
                        {"unpinned", stats(a)},
                        {"pinned", stats(b)},
                        {"baseline_cpuset", format_list(req.baseline_cpus)},
                        {"speedup", speedup},
                        {"speedup_ci95", {percentile(ratios, 2.5), percentile(ratios, 97.5)}},
                        {"speedup_paired_iqr", {percentile(paired, 25), percentile(paired, 75)}},
                        {"improvement_pct", (speedup - 1.0) * 100.0},
                        {"membind", req.membind}};
}

}  // namespace gedge::topo
