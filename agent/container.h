// A container's init process, made from an OCI spec: new namespaces, the spec's mounts on the
// rootfs, pivot_root, masked and read-only paths, hostname, rlimits, user and groups,
// capabilities (libcap), no_new_privileges, seccomp (libseccomp), cwd and env; then it waits for
// Start() and execs the process.
//
//   ASSIGN_OR_RETURN(Container c, Container::Create({.id = "c1", .rootfs = "/run/shared/c1",
//                                                    .spec = spec, .stdio = {in, out, err}}));
//   RETURN_IF_ERROR(c.Start());
//   ASSIGN_OR_RETURN(ExitStatus st, c.Wait(absl::InfiniteFuture()));
//
// Everything that can fail is done before Create() returns, so a bad spec fails `create`, as in
// runc, with the step and the cause ("mount /proc (proc) on .../proc: Permission denied").
#ifndef RUNVM_AGENT_CONTAINER_H_
#define RUNVM_AGENT_CONTAINER_H_

#include <sys/types.h>

#include <array>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/fd.h"
#include "base/process.h"
#include "proto/oci_spec.h"

namespace runvm::agent {

struct ContainerConfig {
  std::string id;
  std::string rootfs;  // absolute; spec.root.path is ignored
  oci::Spec spec;
  std::array<int, 3> stdio = {-1, -1, -1};  // the process's 0, 1, 2 (-1: /dev/null)
  // The process gets a terminal instead of `stdio`: a pty opened in the container's own
  // /dev/ptmx (after its mounts, so that ttyname finds the slave there), as its 0-2 and
  // controlling terminal in a new session. Its master is terminal_master() of the container.
  bool terminal = false;
  // The cgroup the process is born in (clone3 CLONE_INTO_CGROUP); -1: the agent's. A new cgroup
  // namespace is then made inside it, so that the container sees its cgroup as the root.
  int cgroup_fd = -1;
};

struct Plan;  // container.cc

class Container {
 public:
  static absl::StatusOr<Container> Create(const ContainerConfig& config);
  // A further process in this container's namespaces (the init's, which must be running), from
  // `config.spec.process` (the rest of the spec says which namespaces, all joined from the init
  // whatever their paths, and the seccomp filter; rootfs and mounts are not used). Returned
  // started.
  absl::StatusOr<Container> Exec(const ContainerConfig& config) const;

  Container(Container&&) noexcept = default;
  Container& operator=(Container&&) noexcept = default;

  pid_t pid() const { return init_.pid(); }
  // Lets the process exec. FailedPrecondition when it was started already.
  absl::Status Start();
  absl::Status Signal(int sig) { return init_.Signal(sig); }
  absl::StatusOr<ExitStatus> Wait(absl::Time deadline) { return init_.Wait(deadline); }
  // The terminal's master (ContainerConfig::terminal); handed over once.
  Fd TakeTerminalMaster() { return std::move(terminal_master_); }

 private:
  static absl::StatusOr<Container> Launch(const Plan& plan, const ContainerConfig& config);
  Container(Child init, Fd start, Fd master)
      : init_(std::move(init)), start_(std::move(start)), terminal_master_(std::move(master)) {}
  Child init_;
  Fd start_;  // writing to it releases the process
  Fd terminal_master_;
};

}  // namespace runvm::agent

#endif  // RUNVM_AGENT_CONTAINER_H_
