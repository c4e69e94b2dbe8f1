// Table sched_requests: the scheduler's durable request queue. Claiming is a BEGIN IMMEDIATE
// write, so two `gedge sched run` processes never take the same request; the next due request is
// one indexed query (sched_requests_queue: state, queue_pos, id) that stops at the first row
// whose not_before has passed.
#include <fmt/format.h>

#include "gedge/report.hpp"
#include "gedge/stores.hpp"

namespace gedge {

namespace {

constexpr const char* kColumns =
    "id, state, priority, policy, options, spec, attempts, placements, error, claimed_by, "
    "claimed_at, runner, "
    "queue_pos, not_before, created_at, updated_at";

std::optional<std::string> opt_text(const SqlRow& v) {
  if (v.is_string()) return v.get<std::string>();
  return std::nullopt;
}

QueuedRequest from_row(const SqlRow& r) {
  QueuedRequest q;
  q.id = r.at("id").get<int64_t>();
  q.state = r.at("state").get<std::string>();
  q.priority = r.at("priority").get<int64_t>();
  q.policy = r.at("policy").get<std::string>();
  q.spec = r.at("spec").get<std::string>();
  q.options = r.at("options").is_string() ? r.at("options").get<std::string>() : "{}";
  q.attempts = r.at("attempts").get<int64_t>();
  q.placements = opt_text(r.at("placements"));
  q.error = opt_text(r.at("error"));
  q.claimed_by = opt_text(r.at("claimed_by"));
  q.claimed_at = opt_text(r.at("claimed_at"));
  q.runner = opt_text(r.at("runner"));
  q.queue_pos = r.at("queue_pos").get<double>();
  q.not_before = r.at("not_before").get<int64_t>();
  q.created_at = r.at("created_at").get<std::string>();
  q.updated_at = r.at("updated_at").get<std::string>();
  return q;
}

}  // namespace

// Position at the front of the enqueued requests or the back of all of them.
Result<double> RequestQueue::position(bool front) {
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv_.query(front ? "SELECT MIN(queue_pos) AS p FROM sched_requests WHERE state = 'enqueued'"
                       : "SELECT MAX(queue_pos) AS p FROM sched_requests"));
  if (rows.empty() || rows[0]["p"].is_null()) return 0.0;
  double p = rows[0]["p"].get<double>();
  return front ? p - 1 : p + 1;
}

Result<int64_t> RequestQueue::enqueue(int64_t priority, const std::string& policy,
                                      const std::string& spec, const std::string& options,
                                      bool front) {
  int64_t id = 0;
  GEDGE_TRY(inv_.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY_ASSIGN(double pos, RequestQueue(tx).position(front));
    std::string now = now_rfc3339();
    GEDGE_TRY(tx.exec(
        "INSERT INTO sched_requests (state, priority, policy, spec, options, attempts, queue_pos, "
        "not_before, created_at, updated_at) VALUES ('enqueued', ?, ?, ?, ?, 0, ?, 0, ?, ?)",
        {priority, policy, spec, options, pos, now, now}));
    id = tx.last_insert_rowid();
    return {};
  }));
  return id;
}

Result<QueuedRequest> RequestQueue::get(int64_t id) {
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv_.query(fmt::format("SELECT {} FROM sched_requests WHERE id = ?", kColumns), {id}));
  if (rows.empty())
    return gedge::fail(ErrorCode::not_found, fmt::format("no scheduling request {}", id),
                       "see 'gedge sched ls'");
  return from_row(rows.front());
}

Result<std::vector<QueuedRequest>> RequestQueue::list(const std::string& state) {
  auto queried =
      state.empty()
          ? inv_.query(fmt::format("SELECT {} FROM sched_requests ORDER BY id", kColumns))
          : inv_.query(
                fmt::format("SELECT {} FROM sched_requests WHERE state = ? ORDER BY id", kColumns),
                {state});
  GEDGE_TRY_ASSIGN(auto rows, std::move(queried));
  std::vector<QueuedRequest> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(from_row(r));
  return out;
}

Result<std::optional<int64_t>> RequestQueue::next_due(const std::set<int64_t>& skip,
                                                      std::optional<int64_t> now) {
  nlohmann::json ids = nlohmann::json::array();
  for (auto id : skip) ids.push_back(id);
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT id FROM sched_requests INDEXED BY sched_requests_queue "
                              "WHERE state = 'enqueued' AND (? OR not_before <= ?) "
                              "AND id NOT IN (SELECT value FROM json_each(?)) "
                              "ORDER BY queue_pos, id LIMIT 1",
                              {int64_t{now ? 0 : 1}, now.value_or(0), ids.dump()}));
  if (rows.empty()) return std::optional<int64_t>{};
  return std::optional<int64_t>{rows.front()["id"].get<int64_t>()};
}

Result<bool> RequestQueue::claim(int64_t id, const std::string& worker, const std::string& runner) {
  int64_t n = 0;
  GEDGE_TRY(inv_.write([&](Inventory& tx) -> Result<void> {
    std::string at = now_rfc3339();
    GEDGE_TRY_ASSIGN(
        n,
        tx.exec("UPDATE sched_requests SET state = 'dispatched', claimed_by = ?, claimed_at = ?, "
                "runner = ?, updated_at = ? WHERE id = ? AND state = 'enqueued'",
                {worker, at, runner, at, id}));
    return {};
  }));
  return n == 1;
}

Result<bool> RequestQueue::start(int64_t id, const std::string& worker, const std::string& runner) {
  int64_t n = 0;
  GEDGE_TRY(inv_.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY_ASSIGN(
        n, tx.exec("UPDATE sched_requests SET state = 'scheduling', updated_at = ? "
                   "WHERE id = ? AND state = 'dispatched' AND claimed_by = ? AND runner = ?",
                   {now_rfc3339(), id, worker, runner}));
    return {};
  }));
  return n == 1;
}

Result<void> RequestQueue::complete(int64_t id, const std::string& placements) {
  return inv_.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(
        tx.exec("UPDATE sched_requests SET state = 'completed', placements = ?, error = NULL, "
                "updated_at = ? "
                "WHERE id = ?",
                {placements, now_rfc3339(), id}));
    return {};
  });
}

Result<bool> RequestQueue::requeue(int64_t id, int64_t attempts, const std::string& error,
                                   bool front, int64_t not_before) {
  int64_t n = 0;
  GEDGE_TRY(inv_.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY_ASSIGN(double pos, RequestQueue(tx).position(front));
    GEDGE_TRY_ASSIGN(
        n, tx.exec("UPDATE sched_requests SET state = 'enqueued', attempts = ?, error = ?, "
                   "queue_pos = ?, not_before = ?, claimed_by = NULL, claimed_at = NULL, "
                   "runner = NULL, updated_at = ? "
                   "WHERE id = ? AND state IN ('dispatched', 'scheduling')",
                   {attempts, error, pos, not_before, now_rfc3339(), id}));
    return {};
  }));
  return n == 1;
}

Result<void> RequestQueue::fail(int64_t id, int64_t attempts, const std::string& error) {
  return inv_.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(tx.exec(
        "UPDATE sched_requests SET state = 'failed', attempts = ?, error = ?, claimed_by = NULL, "
        "claimed_at = NULL, runner = NULL, updated_at = ? WHERE id = ?",
        {attempts, error, now_rfc3339(), id}));
    return {};
  });
}

Result<void> RequestQueue::cancel(int64_t id) {
  return inv_.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(tx.exec("UPDATE sched_requests SET state = 'canceled', updated_at = ? WHERE id = ?",
                      {now_rfc3339(), id}));
    return {};
  });
}

Result<std::vector<Completion>> RequestQueue::completions() {
  GEDGE_TRY_ASSIGN(
      auto rows, inv_.query("SELECT id, state FROM sched_requests "
                            "WHERE state NOT IN ('completed', 'failed', 'canceled') ORDER BY id"));
  std::vector<Completion> out;
  for (const auto& r : rows)
    out.push_back({std::to_string(r["id"].get<int64_t>()), r["state"].get<std::string>()});
  return out;
}

}  // namespace gedge
