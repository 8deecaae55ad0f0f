// Spawning helper processes with an explicit fd map, and waiting for them with a deadline.
//
//   SpawnOptions opts{.argv = {"/usr/bin/qemu-system-x86_64", "-version"}};
//   opts.fds[1] = pipe.write.get();   // child's stdout
//   ASSIGN_OR_RETURN(Child child, Spawn(opts));
//   ASSIGN_OR_RETURN(auto exit, child.Wait(absl::Now() + absl::Seconds(2)));
//
// The child gets exactly the descriptors in `fds` (child fd -> parent fd); every other
// descriptor is closed before exec, whatever its close-on-exec flag. argv[0] is executed as a
// path (no PATH search). A failing exec is reported by Spawn() itself, with errno and the path.
#ifndef RUNVM_BASE_PROCESS_H_
#define RUNVM_BASE_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/fd.h"

namespace runvm {

struct SpawnOptions {
  std::vector<std::string> argv;
  // Child fd -> parent fd. Unmapped 0-2 are connected to /dev/null.
  std::map<int, int> fds;
  // Environment as NAME=VALUE; nullopt inherits the caller's.
  std::optional<std::vector<std::string>> env;
  // setsid() in the child, so it survives its parent's session and terminal.
  bool new_session = false;
  // The child's working directory; empty: the caller's. A failing chdir is reported like a
  // failing exec.
  std::string cwd;
  // The child's umask; -1: the caller's.
  int umask = -1;
};

// How a process ended: exactly one of exited/signaled holds.
struct ExitStatus {
  bool exited = false;
  int code = 0;    // valid when exited
  int signal = 0;  // valid when !exited
  // Shell convention: the exit code, or 128 + signal.
  int ShellCode() const { return exited ? code : 128 + signal; }
};

// A spawned child. Owns its pidfd; destroying a Child that was not waited for kills and reaps it
// so no zombie or stray helper survives an error path. Use Release() to let it run on.
class Child {
 public:
  Child(pid_t pid, Fd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  Child(Child&&) noexcept = default;
  Child& operator=(Child&&) noexcept;
  ~Child();

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }

  // Waits until the child exits or `deadline` passes (DeadlineExceeded, child left running).
  absl::StatusOr<ExitStatus> Wait(absl::Time deadline);
  // Sends `sig` through the pidfd (never to a recycled pid).
  absl::Status Signal(int sig);
  // Forgets the child without killing it.
  void Release();

 private:
  void KillAndReap();
  pid_t pid_ = -1;
  Fd pidfd_;
  bool reaped_ = false;
};

absl::StatusOr<Child> Spawn(const SpawnOptions& options);

}  // namespace runvm

#endif  // RUNVM_BASE_PROCESS_H_
