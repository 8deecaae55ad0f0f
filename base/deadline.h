// Deadlines are absl::Time points; poll(2) wants milliseconds. One conversion for every caller.
#ifndef RUNVM_BASE_DEADLINE_H_
#define RUNVM_BASE_DEADLINE_H_

#include <climits>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace runvm {

// Milliseconds left until `deadline` for poll(2): 0 when it has passed, -1 (wait forever) for
// absl::InfiniteFuture(), otherwise rounded up so that poll never returns just before it.
inline int PollTimeoutMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left), INT_MAX - 1) + 1);
}

}  // namespace runvm

#endif  // RUNVM_BASE_DEADLINE_H_
