// The queue's re-queue rule, kept apart from the SQLite code so it stays pure.
#include "gedge/sched.hpp"

namespace gedge::sched {

QueueDecision after_failure(int attempts) {
  if (attempts > kFailForGoodAfter) return {"failed", false};
  return {"enqueued", attempts > kFrontAfterFailures};
}

}  // namespace gedge::sched
