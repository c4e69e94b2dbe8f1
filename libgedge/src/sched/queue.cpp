// The durable request queue (table sched_requests) and the inventory-backed world.
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

namespace gedge::sched {

using nlohmann::json;

namespace {

json parse_or(const json& v, json fallback) {
  if (!v.is_string()) return fallback;
  try {
    return json::parse(v.get<std::string>());
  } catch (...) {
    return fallback;
  }
}

json row_json(const SqlRow& r) {
  json out = {{"id", r.at("id")},
              {"state", r.at("state")},
              {"priority", r.at("priority").get<int64_t>() > 0 ? "high" : "normal"},
              {"policy", r.at("policy")},
              {"attempts", r.at("attempts")},
              {"placements", parse_or(r.value("placements", json()), nullptr)},
              {"error", r.value("error", json())},
              {"claimed_by", r.value("claimed_by", json())},
              {"claimed_at", r.value("claimed_at", json())},
              {"runner", parse_or(r.value("runner", json()), nullptr)},
              {"created_at", r.at("created_at")},
              {"updated_at", r.at("updated_at")}};
  return out;
}

constexpr const char* kColumns =
    "id, state, priority, policy, options, spec, attempts, placements, error, claimed_by, "
    "claimed_at, runner, queue_pos, "
    "created_at, updated_at";

Result<SqlRow> load_row(Inventory& inv, int64_t id) {
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv.query(fmt::format("SELECT {} FROM sched_requests WHERE id = ?", kColumns), {id}));
  if (rows.empty())
    return fail(ErrorCode::not_found, fmt::format("no scheduling request {}", id),
                "see 'gedge sched ls'");
  return rows.front();
}

// Position at the front or the back of the enqueued requests.
Result<double> queue_position(Inventory& inv, bool front) {
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv.query(front ? "SELECT MIN(queue_pos) AS p FROM sched_requests WHERE state = 'enqueued'"
                      : "SELECT MAX(queue_pos) AS p FROM sched_requests"));
  if (rows.empty() || rows[0]["p"].is_null()) return 0.0;
  double p = rows[0]["p"].get<double>();
  return front ? p - 1 : p + 1;
}

Result<Request> request_from_options(const json& o) {
  Request r;
  GEDGE_TRY_ASSIGN(r.policy, parse_policy(o.value("policy", "pipeline")));
  r.source = o.value("from", "");
  if (o.contains("clusters") && o["clusters"].is_string()) {
    GEDGE_TRY_ASSIGN(r.levels, parse_levels(o["clusters"].get<std::string>()));
  }
  r.node = o.value("node", "");
  if (o.contains("weights") && o["weights"].is_object()) {
    const json& w = o["weights"];
    r.weights.cpu = w.value("cpu", r.weights.cpu);
    r.weights.memory = w.value("memory", r.weights.memory);
    r.weights.gpu = w.value("gpu", r.weights.gpu);
  }
  if (o.contains("rank")) {
    GEDGE_TRY_ASSIGN(r.rank, parse_policy(o["rank"].get<std::string>()));
  }
  return r;
}

// Seconds since the epoch of an RFC 3339 UTC stamp as now_rfc3339() writes it; 0 if malformed.
std::int64_t epoch_of(const std::string& stamp) {
  std::tm tm{};
  const char* end = strptime(stamp.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

Result<World> world_for(Inventory& inv, const json& o) {
  if (o.contains("state") && o["state"].is_string() && !o["state"].get<std::string>().empty()) {
    std::string path = o["state"].get<std::string>();
    GEDGE_TRY_ASSIGN(auto text, read_input_file(path, 16u << 20, "state file"));
    return parse_state(text, path);
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
  int64_t id = 0;
  GEDGE_TRY(inv.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY_ASSIGN(double pos, queue_position(tx, r.priority > 0));
    std::string now = now_rfc3339();
    GEDGE_TRY(
        tx.exec("INSERT INTO sched_requests (state, priority, policy, spec, options, attempts, "
                "queue_pos, created_at, updated_at) "
                "VALUES ('enqueued', ?, ?, ?, ?, 0, ?, ?, ?)",
                {static_cast<int64_t>(r.priority), std::string(policy_name(req.policy)), r.spec,
                 r.options.dump(), pos, now, now}));
    id = tx.last_insert_rowid();
    return {};
  }));
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
    GEDGE_TRY_ASSIGN(auto rows,
                     tx.query("SELECT id, claimed_by, runner FROM sched_requests "
                              "WHERE state IN ('dispatched', 'scheduling') ORDER BY id"));
    for (const auto& r : rows) {
      std::string by =
          r.value("claimed_by", json()).is_string() ? r["claimed_by"].get<std::string>() : "";
      if (runner_liveness(parse_or(r.value("runner", json()), nullptr), by) != RunnerLiveness::dead)
        continue;
      int64_t id = r["id"].get<int64_t>();
      GEDGE_TRY_ASSIGN(double pos, queue_position(tx, /*front=*/true));
      GEDGE_TRY(tx.exec(
          "UPDATE sched_requests SET state = 'enqueued', claimed_by = NULL, claimed_at = NULL, "
          "runner = NULL, queue_pos = ?, error = ?, updated_at = ? "
          "WHERE id = ? AND state IN ('dispatched', 'scheduling')",
          {pos,
           fmt::format("runner {} died holding this request; re-queued", by.empty() ? "?" : by),
           now_rfc3339(), id}));
      requeued.push_back(id);
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
    GEDGE_TRY_ASSIGN(
        auto order,
        tx.query("SELECT id, attempts, updated_at FROM sched_requests WHERE state = 'enqueued' "
                 "ORDER BY queue_pos, id"));
    std::optional<int64_t> pick;
    for (const auto& o : order) {
      int64_t id = o["id"].get<int64_t>();
      if (skip.contains(id)) continue;
      int attempts = static_cast<int>(o["attempts"].get<int64_t>());
      if (!retry_now && attempts > 0 && o["updated_at"].is_string() &&
          epoch_of(o["updated_at"].get<std::string>()) + retry_backoff_s(attempts) > now)
        continue;
      pick = id;
      break;
    }
    if (!pick) return {};
    GEDGE_TRY_ASSIGN(auto row, load_row(tx, *pick));
    std::string at = now_rfc3339();
    GEDGE_TRY(
        tx.exec("UPDATE sched_requests SET state = 'dispatched', claimed_by = ?, claimed_at = ?, "
                "runner = ?, "
                "updated_at = ? WHERE id = ? AND state = 'enqueued'",
                {worker, at, runner_identity().dump(), at, *pick}));
    claimed = row;
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
  int n = 0;
  while (o.max <= 0 || n < o.max) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
    GEDGE_TRY_ASSIGN(auto next, claim_next(inv, worker, taken, o.now, o.retry_now));
    if (!next) break;
    ++n;
    int64_t id = (*next)["id"].get<int64_t>();
    taken.insert(id);
    bool mine = false;
    GEDGE_TRY(inv.write([&](Inventory& tx) -> Result<void> {
      GEDGE_TRY_ASSIGN(
          auto c, tx.exec("UPDATE sched_requests SET state = 'scheduling', updated_at = ? "
                          "WHERE id = ? AND state = 'dispatched' AND claimed_by = ? AND runner = ?",
                          {now_rfc3339(), id, worker, runner}));
      mine = c == 1;
      return {};
    }));
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
      GEDGE_TRY_ASSIGN(auto row, load_row(tx, id));
      if (row["state"] != "scheduling") return {};  // canceled meanwhile: leave it so
      std::string now = now_rfc3339();
      if (placed) {
        GEDGE_TRY(
            tx.exec("UPDATE sched_requests SET state = 'completed', placements = ?, error = NULL, "
                    "updated_at = ? WHERE id = ?",
                    {to_json(*placed).dump(), now, id}));
      } else {
        int attempts = static_cast<int>(row["attempts"].get<int64_t>()) + 1;
        QueueDecision d = permanent_failure(placed.error().code) ? QueueDecision{"failed", false}
                                                                 : after_failure(attempts);
        double pos = row["queue_pos"].get<double>();
        if (d.state == "enqueued") {
          GEDGE_TRY_ASSIGN(pos, queue_position(tx, d.front));
        }
        GEDGE_TRY(tx.exec(
            "UPDATE sched_requests SET state = ?, attempts = ?, error = ?, queue_pos = ?, "
            "claimed_by = NULL, "
            "claimed_at = NULL, runner = NULL, updated_at = ? WHERE id = ?",
            {d.state, static_cast<int64_t>(attempts), placed.error().message, pos, now, id}));
      }
      return {};
    }));
    GEDGE_TRY_ASSIGN(auto row, load_row(inv, id));
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
  auto queried =
      state.empty()
          ? inv.query(fmt::format("SELECT {} FROM sched_requests ORDER BY id", kColumns))
          : inv.query(
                fmt::format("SELECT {} FROM sched_requests WHERE state = ? ORDER BY id", kColumns),
                {state});
  GEDGE_TRY_ASSIGN(auto rows, std::move(queried));
  json out = json::array();
  for (const auto& r : rows) out.push_back(row_json(r));
  return out;
}

Result<json> cancel(Inventory& inv, int64_t id) {
  json result;
  GEDGE_TRY(inv.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY_ASSIGN(auto row, load_row(tx, id));
    std::string st = row["state"].get<std::string>();
    if (st == "canceled") {
      result = row_json(row);
      result["changed"] = false;
      return {};
    }
    if (st == "completed" || st == "failed")
      return fail(ErrorCode::conflict, fmt::format("request {} is already {}", id, st),
                  "only queued requests can be canceled");
    GEDGE_TRY(tx.exec("UPDATE sched_requests SET state = 'canceled', updated_at = ? WHERE id = ?",
                      {now_rfc3339(), id}));
    GEDGE_TRY_ASSIGN(auto updated, load_row(tx, id));
    result = row_json(updated);
    result["changed"] = true;
    return {};
  }));
  return result;
}

Result<void> record_rtts(Inventory& inv, const std::string& src,
                         const std::vector<std::pair<std::string, double>>& rtts) {
  return inv.write([&](Inventory& tx) -> Result<void> {
    std::string now = now_rfc3339();
    for (const auto& [dst, ms] : rtts)
      GEDGE_TRY(
          tx.exec("INSERT INTO rtts (src, dst, ms, measured_at) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT(src, dst) DO UPDATE SET ms = excluded.ms, measured_at = "
                  "excluded.measured_at",
                  {src, dst, ms, now}));
    return {};
  });
}

// The inventory as a World: clusters and their members (facts: cpus, memory_bytes, gpus;
// labels; tier from the cluster, else the device), readiness from the device status, what
// gedge already placed (services with a sched placement), and measured RTTs as links.
// Intra-cluster latency is the median measured between members, else 0.5 ms (one LAN).
Result<World> world_from_inventory(Inventory& inv) {
  World w;
  GEDGE_TRY_ASSIGN(auto devices, inv.query("SELECT name FROM devices ORDER BY name"));
  for (const auto& d : devices) w.devices.push_back(d["name"].get<std::string>());
  GEDGE_TRY_ASSIGN(auto clusters, inv.query("SELECT name, tier FROM clusters ORDER BY name"));
  GEDGE_TRY_ASSIGN(auto members, inv.query("SELECT m.cluster AS cluster, m.device AS device, "
                                           "m.state AS mstate, d.tier AS tier, d.labels AS labels, "
                                           "d.facts AS facts, d.status AS status FROM "
                                           "cluster_members m JOIN devices d ON d.name = m.device "
                                           "ORDER BY m.cluster, m.device"));
  std::map<std::string, std::vector<std::string>> cluster_of_device;
  for (const auto& c : clusters) {
    Cluster cl;
    cl.name = c["name"].get<std::string>();
    cl.tier = c["tier"].is_string() ? c["tier"].get<std::string>() : "";
    for (const auto& m : members) {
      if (m["cluster"] != c["name"]) continue;
      Node n;
      n.name = m["device"].get<std::string>();
      json facts = parse_or(m["facts"], json::object());
      json labels = parse_or(m["labels"], json::object());
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
      std::string status = m["status"].is_string() ? m["status"].get<std::string>() : "unknown";
      std::string mstate = m["mstate"].is_string() ? m["mstate"].get<std::string>() : "";
      n.ready = status != "unreachable" && status != "down" && status != "failed" &&
                status != "auth_failed" && status != "host_key_changed" && mstate != "failed" &&
                mstate != "left";
      if (cl.tier.empty() && m["tier"].is_string()) cl.tier = m["tier"].get<std::string>();
      cluster_of_device[n.name].push_back(cl.name);
      cl.nodes.push_back(std::move(n));
    }
    if (cl.tier != "local" && cl.tier != "neighbor" && cl.tier != "cloud") cl.tier = "";
    w.clusters.push_back(std::move(cl));
  }
  // Work gedge already placed: services whose placement is a sched placement.
  GEDGE_TRY_ASSIGN(auto services,
                   inv.query("SELECT name, cluster, spec, placement, state FROM services"));
  for (const auto& s : services) {
    std::string st = s["state"].is_string() ? s["state"].get<std::string>() : "";
    if (st == "removed" || st == "failed" || st == "stopped") continue;
    json pl = parse_or(s["placement"], json());
    if (!pl.is_object() || !pl.contains("placements") || !s["spec"].is_string()) continue;
    auto wl = parse_workload(s["spec"].get<std::string>(), "service");
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
  GEDGE_TRY_ASSIGN(auto rtts, inv.query("SELECT src, dst, ms FROM rtts ORDER BY src, dst"));
  std::map<std::pair<std::string, std::string>, std::vector<double>> between;  // cluster pairs
  std::map<std::string, std::vector<double>> intra;
  for (const auto& r : rtts) {
    std::string src = r["src"].get<std::string>(), dst = r["dst"].get<std::string>();
    double ms = r["ms"].get<double>();
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

}  // namespace gedge::sched
