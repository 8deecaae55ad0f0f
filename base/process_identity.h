// A process identity: pid + start time + executable. A bare pid can be reused by an unrelated
// process after the original exits; an identity cannot, so runvm only ever signals a process
// whose current identity equals the recorded one.
//
//   ASSIGN_OR_RETURN(ProcessIdentity qemu, ReadProcessIdentity(pid));
//   ...later, maybe in another invocation...
//   if (IsAlive(qemu)) { ASSIGN_OR_RETURN(Fd pidfd, OpenVerifiedPidfd(qemu)); ... }
#ifndef RUNVM_BASE_PROCESS_IDENTITY_H_
#define RUNVM_BASE_PROCESS_IDENTITY_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/fd.h"

namespace runvm {

struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t start_time = 0;  // clock ticks since boot (/proc/<pid>/stat field 22)
  std::string exe;          // /proc/<pid>/exe
  bool operator==(const ProcessIdentity&) const = default;
};

// NotFound when no such process (or it is a zombie: it has exited).
absl::StatusOr<ProcessIdentity> ReadProcessIdentity(pid_t pid);

// True when a live process has exactly this identity.
bool IsAlive(const ProcessIdentity& id);

// A pidfd for the process, opened only if it still has this identity (checked after opening, so
// the pidfd can never refer to a successor). NotFound when it has exited or the pid was reused.
absl::StatusOr<Fd> OpenVerifiedPidfd(const ProcessIdentity& id);

// Waits until the pidfd's process exits (reaping it when it is our child). False on timeout.
bool WaitPidfdExit(int pidfd, pid_t pid, absl::Time deadline);

// The live processes whose initial environment holds exactly `entry` ("NAME=value"), this
// process excepted. runvm marks the helpers it starts for a sandbox this way, so that they can be
// found again when a crash lost their pids.
std::vector<ProcessIdentity> FindProcessesWithEnv(absl::string_view entry);

// Sends `sig` through a pidfd.
absl::Status SignalPidfd(int pidfd, int sig);

}  // namespace runvm

#endif  // RUNVM_BASE_PROCESS_IDENTITY_H_
