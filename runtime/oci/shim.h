// The per-container shim: `runvm shim`, re-executed by `create` and detached from it. It is what
// the engine sees as the container's process (its pid goes to --pid-file and into `state`):
//
//   - it holds the stdio the engine handed to `create` (fds 0-2) and relays it to and from the
//     container process's port (a hot-plugged virtio-serial port; proto/io_frame.h);
//   - with --console-socket (process.terminal), it opens a terminal, sends its master over the
//     socket as runc does (SCM_RIGHTS), keeps the slave in raw mode as its controlling terminal
//     and relays that instead: the terminal's line discipline is the guest's, and a resize of
//     the master (SIGWINCH here) travels as a resize frame;
//   - it exits with the workload's exit status (128 + signal when the workload was killed), so an
//     engine that reaps its children as a subreaper sees an ordinary child exit;
//   - it passes on the signals it receives (ForwardedSignals) to the process, as runc's
//     foreground process does, so that an engine signalling the pid it was given (containerd's
//     kill of an exec) reaches the workload; the runtime itself ends a shim with SIGKILL;
//   - it carries the sandbox's helper marker, so stopping the sandbox ends it too.
//
// Readiness: the shim writes "ok" to the fd named by --ready-fd once it is connected to the port,
// or the reason it could not start; `create` returns only after that.
#ifndef RUNVM_RUNTIME_OCI_SHIM_H_
#define RUNVM_RUNTIME_OCI_SHIM_H_

#include <signal.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/process.h"

namespace runvm {

struct ShimOptions {
  std::string id;
  std::string port_socket;  // the host side of the port (QEMU listens)
  int ready_fd = -1;
  std::string console_socket;  // empty: no terminal
};

// Runs the shim; returns its exit status.
int RunShim(const ShimOptions& options);

// The other side: a shim started for a container or an exec.
struct ShimStart {
  std::string self_exe;            // this binary
  std::vector<std::string> flags;  // global flags passed on (--root, --log, ...)
  std::string name;                // "<id>" or "<id>/<exec id>"
  std::string port_socket;
  std::string console_socket;  // absolute; empty: no terminal
  bool detach = true;          // a session of its own
  std::string run_dir;         // the sandbox's: the shim carries its helper marker
};
// Starts `runvm shim` holding our fds 0-2 (none with a terminal: runc's behaviour, so a caller
// reading create's output sees it end) and returns it once it is connected to the port (and has
// sent the terminal's master); the reason it gave otherwise.
absl::StatusOr<Child> StartShim(const ShimStart& start);

// The signals a shim passes on: those a process is sent to end, interrupt, reload or wake it.
// Not the uncatchable ones, SIGCHLD, SIGPIPE (its own writes), SIGWINCH (a resize, with a
// terminal), job control (the shim stops as any host process would) or the faults.
sigset_t ForwardedSignals();

// `run` and `exec` in the foreground: waits for the shim, passing on each forwarded signal sent
// to this process. One the kernel sent (a terminal's ^C) is not passed on, as the shim, in the
// same process group, has it already. The signals stay blocked: the caller is finishing.
absl::StatusOr<ExitStatus> WaitPassingSignals(Child& shim);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_OCI_SHIM_H_
