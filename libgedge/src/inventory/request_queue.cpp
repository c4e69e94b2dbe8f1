// Table sched_requests: the scheduler's durable request queue.
#include "gedge/stores.hpp"

namespace gedge {

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
