// Per-sandbox locks: flock(2) on a lock file, exclusive for mutations and shared for reads,
// with a bounded wait. An exclusive holder writes what it is doing into the lock file, so a
// waiter that gives up can say who holds it:
//
//   ASSIGN_OR_RETURN(Lock lock, Lock::Acquire(dir + "/lock", Lock::kExclusive, absl::Seconds(10),
//                                             "sandbox abc", "hotplug"));
//   // -> on timeout: "sandbox abc is busy: hotplug by pid 4242 since 2026-11-22T06:20:01Z"
//
// The lock is released when the Lock is destroyed (or the process dies: flock locks go with the
// descriptor, so a killed holder never leaves a stale lock).
#ifndef RUNVM_PERSIST_LOCK_H_
#define RUNVM_PERSIST_LOCK_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/fd.h"

namespace runvm::persist {

class Lock {
 public:
  enum Mode { kShared, kExclusive };

  static absl::StatusOr<Lock> Acquire(const std::string& path, Mode mode, absl::Duration wait,
                                      absl::string_view what, absl::string_view purpose);

  Lock(Lock&&) noexcept = default;
  Lock& operator=(Lock&&) noexcept = default;
  ~Lock();

 private:
  Lock(Fd fd, bool exclusive) : fd_(std::move(fd)), exclusive_(exclusive) {}
  Fd fd_;
  bool exclusive_ = false;
};

}  // namespace runvm::persist

#endif  // RUNVM_PERSIST_LOCK_H_
