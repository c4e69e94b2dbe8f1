// The queue's re-queue rule, kept apart from the SQLite code so it stays pure.
#include "gedge/sched.hpp"

namespace gedge::sched {

QueueDecision after_failure(int attempts) {
  if (attempts > kFailForGoodAfter) return {"failed", false};
  return {"enqueued", attempts > kFrontAfterFailures};
}

bool permanent_failure(ErrorCode code) {
  return code == ErrorCode::usage || code == ErrorCode::not_found;
}

int retry_backoff_s(int attempts) {
  if (attempts <= 0) return 0;
  int s = 30;
  for (int i = 1; i < attempts && s < 600; ++i) s *= 2;
  return s < 600 ? s : 600;
}

}  // namespace gedge::sched
