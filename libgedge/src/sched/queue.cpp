// The durable request queue (the inventory's RequestQueue) and the inventory-backed world.
//
// GS-Scheduler kept its queues in process memory (lost on restart) and moved at most 6 jobs per
// 5 s tick; here every transition is one SQLite transaction, and claiming is a BEGIN IMMEDIATE
// write, so two `gedge sched run` processes never take the same request.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

#include "gedge/document.hpp"
#include "gedge/inventory.hpp"
#include "gedge/report.hpp"
#include "gedge/sched.hpp"
#include "gedge/stores.hpp"

namespace gedge::sched {

using nlohmann::json;

namespace {

json parse_or(const std::optional<std::string>& v, json fallback) {
  if (!v) return fallback;
  try {
    return json::parse(*v);
  } catch (...) {
    return fallback;
  }
}

json parse_or(const json& v, json fallback) {
  return v.is_string()
             ? parse_or(std::optional<std::string>(v.get<std::string>()), std::move(fallback))
             : fallback;
}

json opt(const std::optional<std::string>& v) {
  return v ? json(*v) : json();
}

json row_json(const QueuedRequest& r) {
  json out = {{"id", r.id},
              {"state", r.state},
              {"priority", r.priority > 0 ? "high" : "normal"},
              {"policy", r.policy},
              {"attempts", r.attempts},
              {"placements", parse_or(r.placements, nullptr)},
              {"error", opt(r.error)},
              {"claimed_by", opt(r.claimed_by)},
              {"claimed_at", opt(r.claimed_at)},
              {"runner", parse_or(r.runner, nullptr)},
              {"created_at", r.created_at},
              {"updated_at", r.updated_at}};
  return out;
}

// The row as claim_next returns it: the table's columns.
json raw_json(const QueuedRequest& r) {
  return json{{"id", r.id},
              {"state", r.state},
              {"priority", r.priority},
              {"policy", r.policy},
              {"options", r.options},
              {"spec", r.spec},
              {"attempts", r.attempts},
              {"placements", opt(r.placements)},
              {"error", opt(r.error)},
              {"claimed_by", opt(r.claimed_by)},
              {"claimed_at", opt(r.claimed_at)},
              {"runner", opt(r.runner)},
              {"queue_pos", r.queue_pos},
              {"not_before", r.not_before},
              {"created_at", r.created_at},
              {"updated_at", r.updated_at}};
}

// The request a queued one stands for: its stored flags, built as `sched place` builds them.
Result<Request> request_from_options(const json& o) {
  return build_request(flags_from_options(o));
}

// When a request re-queued after `attempts` failures is due again: after its backoff.
int64_t due_after(int64_t attempts) {
  return static_cast<int64_t>(std::time(nullptr)) + retry_backoff_s(static_cast<int>(attempts));
}

Result<World> world_for(Inventory& inv, const json& o) {
  if (o.contains("state") && o["state"].is_string() && !o["state"].get<std::string>().empty()) {
    return read_state(o["state"].get<std::string>());
  }
  return world_from_inventory(inv);
}

}  // namespace

Result<json> submit(Inventory& inv, const SubmitRequest& r) {
  // The same checks as place: a request that can never be valid is refused now (exit 2).
  // The clusters, node and source are checked against the world the run will place in.
  GEDGE_TRY_ASSIGN(auto wl, parse_workload(r.spec, r.origin));
  GEDGE_TRY_ASSIGN(auto req, request_from_options(r.options));
  GEDGE_TRY_ASSIGN(auto world, world_for(inv, r.options));
  GEDGE_TRY(check_request(world, wl, req));
  GEDGE_TRY_ASSIGN(int64_t id,
                   RequestQueue(inv).enqueue(r.priority, std::string(policy_name(req.policy)),
                                             r.spec, r.options.dump(), r.priority > 0));
  return json{{"id", id},
              {"state", "enqueued"},
              {"policy", std::string(policy_name(req.policy))},
              {"priority", r.priority > 0 ? "high" : "normal"}};
}
json runner_identity() {
  auto first_line = [](const char* path) {
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    return line;
  };
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return json{{"host", std::string(host)},
              {"boot_id", first_line("/proc/sys/kernel/random/boot_id")},
              {"pid", static_cast<int64_t>(::getpid())},
              {"start", process_start(::getpid())}};
}

// Field 22 of /proc/PID/stat (start time in clock ticks since boot); "" when PID does not run.
std::string process_start(int64_t pid) {
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!std::getline(f, stat)) return "";
  auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return "";
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && (rest >> field); ++i)
    if (i == 22) return field;
  return "";
}

RunnerLiveness runner_liveness(const json& runner, const std::string& claimed_by) {
  json me = runner_identity();
  if (runner.is_object()) {
    if (runner.value("host", "") != me["host"].get<std::string>()) return RunnerLiveness::unknown;
    if (runner.value("boot_id", "") != me["boot_id"].get<std::string>())
      return RunnerLiveness::dead;  // rebooted
    auto pid = runner.value("pid", int64_t{0});
    if (pid <= 0) return RunnerLiveness::unknown;
    std::string start = process_start(pid);
    // Gone, or the PID now belongs to a process started later.
    return !start.empty() && start == runner.value("start", "") ? RunnerLiveness::alive
                                                                : RunnerLiveness::dead;
  }
  // Claimed before leases were recorded: only the default "pid-N" label can be checked.
  if (claimed_by.starts_with("pid-")) {
    std::string digits = claimed_by.substr(4);
    if (!digits.empty() && digits.size() < 10 &&
        digits.find_first_not_of("0123456789") == std::string::npos)
      return process_start(std::stoll(digits)).empty() ? RunnerLiveness::dead
                                                       : RunnerLiveness::alive;
  }
  return RunnerLiveness::unknown;
}

Result<std::vector<int64_t>> requeue_dead_claims(Inventory& inv) {
  std::vector<int64_t> requeued;
  GEDGE_TRY(inv.write([&](Inventory& tx) -> Result<void> {
    RequestQueue q(tx);
    GEDGE_TRY_ASSIGN(auto claimed, q.list("dispatched"));
    GEDGE_TRY_ASSIGN(auto scheduling, q.list("scheduling"));
    claimed.insert(claimed.end(), scheduling.begin(), scheduling.end());
    std::sort(claimed.begin(), claimed.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    for (const auto& r : claimed) {
      std::string by = r.claimed_by.value_or("");
      if (runner_liveness(parse_or(r.runner, nullptr), by) != RunnerLiveness::dead) continue;
      std::string why =
          fmt::format("runner {} died holding this request; re-queued", by.empty() ? "?" : by);
      GEDGE_TRY_ASSIGN(bool back, q.requeue(r.id, r.attempts, why, /*front=*/true,
                                            r.attempts > 0 ? due_after(r.attempts) : 0));
      if (back) requeued.push_back(r.id);
    }
    return {};
  }));
  for (auto id : requeued)
    log_line("warn", fmt::format("sched: request {} re-queued (its runner died)", id));
  return requeued;
}

Result<std::optional<json>> claim_next(Inventory& inv, const std::string& worker,
                                       const std::set<std::int64_t>& skip, std::int64_t now,
                                       bool retry_now) {
  if (now == 0) now = static_cast<std::int64_t>(std::time(nullptr));
  std::optional<json> claimed;
  GEDGE_TRY(inv.write([&](Inventory& tx) -> Result<void> {
    // In queue order, the first request not taken earlier in this run whose backoff has passed.
    RequestQueue q(tx);
    GEDGE_TRY_ASSIGN(auto pick,
                     q.next_due(skip, retry_now ? std::nullopt : std::optional<int64_t>(now)));
    if (!pick) return {};
    GEDGE_TRY_ASSIGN(auto row, q.get(*pick));
    GEDGE_TRY_ASSIGN(bool mine, q.claim(*pick, worker, runner_identity().dump()));
    if (!mine) return {};
    claimed = raw_json(row);
    (*claimed)["state"] = "dispatched";
    return {};
  }));
  return claimed;
}

Result<json> run_queue(Inventory& inv, const RunOptions& o) {
  std::string worker = o.worker.empty() ? fmt::format("pid-{}", ::getpid()) : o.worker;
  json done = json::array();
  std::set<std::int64_t> taken;  // each request at most once per run
  // Claims of runners that died (killed, crashed, the machine rebooted) go back to the queue; a
  // live runner's claim is never taken, so no request runs twice at once.
  GEDGE_TRY(requeue_dead_claims(inv));
  std::string runner = runner_identity().dump();
  RequestQueue queue(inv);
  int n = 0;
  while (o.max <= 0 || n < o.max) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
    GEDGE_TRY_ASSIGN(auto next, claim_next(inv, worker, taken, o.now, o.retry_now));
    if (!next) break;
    ++n;
    int64_t id = (*next)["id"].get<int64_t>();
    taken.insert(id);
    GEDGE_TRY_ASSIGN(bool mine, queue.start(id, worker, runner));
    if (!mine) continue;  // canceled between claim and start
    json options = parse_or((*next)["options"], json::object());
    Result<Placement> placed = [&]() -> Result<Placement> {
      GEDGE_TRY_ASSIGN(auto wl, parse_workload((*next)["spec"].get<std::string>(),
                                               fmt::format("request {}", id)));
      GEDGE_TRY_ASSIGN(auto req, request_from_options(options));
      GEDGE_TRY_ASSIGN(auto world, world_for(inv, options));
      return place(world, wl, req);
    }();
    GEDGE_TRY(inv.write([&](Inventory& tx) -> Result<void> {
      RequestQueue q(tx);
      GEDGE_TRY_ASSIGN(auto row, q.get(id));
      if (row.state != "scheduling") return {};  // canceled meanwhile: leave it so
      if (placed) return q.complete(id, to_json(*placed).dump());
      int64_t attempts = row.attempts + 1;
      QueueDecision d = permanent_failure(placed.error().code)
                            ? QueueDecision{"failed", false}
                            : after_failure(static_cast<int>(attempts));
      if (d.state != "enqueued") return q.fail(id, attempts, placed.error().message);
      GEDGE_TRY(q.requeue(id, attempts, placed.error().message, d.front, due_after(attempts)));
      return {};
    }));
    GEDGE_TRY_ASSIGN(auto row, queue.get(id));
    done.push_back(row_json(row));
  }
  return done;
}

Result<json> list_requests(Inventory& inv, const std::string& state) {
  static const std::set<std::string> states = {"enqueued",  "dispatched", "scheduling",
                                               "completed", "failed",     "canceled"};
  if (!state.empty() && !states.contains(state))
    return fail(ErrorCode::usage, fmt::format("unknown state '{}'", state),
                "states: enqueued, dispatched, scheduling, completed, failed, canceled");
  GEDGE_TRY_ASSIGN(auto rows, RequestQueue(inv).list(state));
  json out = json::array();
  for (const auto& r : rows) out.push_back(row_json(r));
  return out;
}

Result<json> cancel(Inventory& inv, int64_t id) {
  json result;
  GEDGE_TRY(inv.write([&](Inventory& tx) -> Result<void> {
    RequestQueue q(tx);
    GEDGE_TRY_ASSIGN(auto row, q.get(id));
    if (row.state == "canceled") {
      result = row_json(row);
      result["changed"] = false;
      return {};
    }
    if (row.state == "completed" || row.state == "failed")
      return fail(ErrorCode::conflict, fmt::format("request {} is already {}", id, row.state),
                  "only queued requests can be canceled");
    GEDGE_TRY(q.cancel(id));
    GEDGE_TRY_ASSIGN(auto updated, q.get(id));
    result = row_json(updated);
    result["changed"] = true;
    return {};
  }));
  return result;
}

Result<void> record_rtts(Inventory& inv, const std::string& src,
                         const std::vector<std::pair<std::string, double>>& rtts) {
  return RttStore(inv).record(src, rtts);
}

// The inventory as a World: clusters and their members (facts: cpus, memory_bytes, gpus;
// labels; tier from the cluster, else the device), readiness from the device status, what
// gedge already placed (services with a sched placement), and measured RTTs as links.
// Intra-cluster latency is the median measured between members, else 0.5 ms (one LAN).
Result<World> world_from_inventory(Inventory& inv) {
  World w;
  GEDGE_TRY_ASSIGN(w.devices, DeviceStore(inv).names());
  ClusterStore store(inv);
  GEDGE_TRY_ASSIGN(auto clusters, store.list());
  GEDGE_TRY_ASSIGN(auto members, store.member_devices());
  std::map<std::string, std::vector<std::string>> cluster_of_device;
  for (const auto& c : clusters) {
    Cluster cl;
    cl.name = c.name;
    cl.tier = c.tier;
    for (const auto& m : members) {
      if (m.cluster != c.name) continue;
      Node n;
      n.name = m.device;
      json facts = parse_or(std::make_optional(m.facts), json::object());
      json labels = parse_or(std::make_optional(m.labels), json::object());
      if (facts.contains("cpus") && facts["cpus"].is_number())
        n.capacity.cpu = facts["cpus"].get<double>();
      if (facts.contains("memory_bytes") && facts["memory_bytes"].is_number())
        n.capacity.memory = facts["memory_bytes"].get<double>();
      if (facts.contains("gpus")) {
        if (facts["gpus"].is_array())
          n.capacity.gpu = static_cast<double>(facts["gpus"].size());
        else if (facts["gpus"].is_number())
          n.capacity.gpu = facts["gpus"].get<double>();
      }
      if (labels.is_object())
        for (auto it = labels.begin(); it != labels.end(); ++it)
          if (it.value().is_string()) n.labels[it.key()] = it.value().get<std::string>();
      const std::string& status = m.status;
      const std::string& mstate = m.member_state;
      n.ready = status != "unreachable" && status != "down" && status != "failed" &&
                status != "auth_failed" && status != "host_key_changed" && mstate != "failed" &&
                mstate != "left";
      if (cl.tier.empty()) cl.tier = m.tier;
      cluster_of_device[n.name].push_back(cl.name);
      cl.nodes.push_back(std::move(n));
    }
    if (cl.tier != "local" && cl.tier != "neighbor" && cl.tier != "cloud") cl.tier = "";
    w.clusters.push_back(std::move(cl));
  }
  // Work gedge already placed: services whose placement is a sched placement.
  GEDGE_TRY_ASSIGN(auto services, ServiceStore(inv).all());
  for (const auto& s : services) {
    if (s.state == "removed" || s.state == "failed" || s.state == "stopped") continue;
    json pl = parse_or(s.placement, json());
    if (!pl.is_object() || !pl.contains("placements")) continue;
    auto wl = parse_workload(s.spec, "service");
    if (!wl) continue;
    for (const auto& p : pl["placements"]) {
      for (const auto& stage : wl->stages) {
        if (stage.name != p.value("stage", "")) continue;
        for (auto& c : w.clusters)
          for (auto& n : c.nodes)
            if (c.name == p.value("cluster", "") && n.name == p.value("node", "")) {
              Resources need = stage.request;
              if (stage.compute_gpu_ms)
                need.gpu = p.value("gpu", false) ? std::max(1.0, stage.request.gpu) : 0;
              n.allocated.cpu += need.cpu, n.allocated.memory += need.memory,
                  n.allocated.gpu += need.gpu;
            }
      }
    }
  }
  // Measured RTTs: src device -> dst device becomes src <-> cluster/dst for each cluster of dst.
  GEDGE_TRY_ASSIGN(auto rtts, RttStore(inv).all());
  std::map<std::pair<std::string, std::string>, std::vector<double>> between;  // cluster pairs
  std::map<std::string, std::vector<double>> intra;
  for (const auto& r : rtts) {
    const std::string& src = r.src;
    const std::string& dst = r.dst;
    double ms = r.ms;
    auto it = cluster_of_device.find(dst);
    if (it == cluster_of_device.end()) {
      w.latency.links.push_back({src, dst, ms});
      continue;
    }
    for (const auto& c : it->second) {
      w.latency.links.push_back({src, c + "/" + dst, ms});
      if (auto sit = cluster_of_device.find(src); sit != cluster_of_device.end())
        for (const auto& sc : sit->second) {
          if (sc == c)
            intra[c].push_back(ms);
          else
            between[{std::min(sc, c), std::max(sc, c)}].push_back(ms);
        }
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (const auto& [pair, v] : between)
    w.latency.links.push_back({pair.first, pair.second, median(v)});
  std::vector<double> all_intra;
  for (const auto& [c, v] : intra) all_intra.insert(all_intra.end(), v.begin(), v.end());
  w.latency.intra_cluster = all_intra.empty() ? 0.5 : median(all_intra);
  // A device that is itself a member is 0 ms from its own node (data that starts on the node
  // where a stage runs does not cross the network). Measured links still win for other pairs.
  for (const auto& [dev, clusters] : cluster_of_device)
    for (const auto& c : clusters) w.latency.links.push_back({dev, c + "/" + dev, 0.0});
  // Duplicate (a, b) links (two measurements in both directions) keep the last; fine for lookups.
  finalize(w);
  return w;
}

std::optional<Error> run_error(const json& rows) {
  int failed = 0;
  for (const auto& r : rows) failed += r["state"] == "failed";
  if (failed == 0) return std::nullopt;
  return Error{ErrorCode::partial,
               fmt::format("{} of {} requests failed for good", failed, rows.size()),
               "see 'gedge sched ls --state failed'"};
}

}  // namespace gedge::sched
