// Containers: the OCI lifecycle (create, start, state, kill, delete) on top of sandboxes.
//
//   Containers containers({.root = "/run/runvm", .load_config = ...});
//   ASSIGN_OR_RETURN(Child shim, containers.Create({.id = "c1", .bundle = "/b"}));
//   shim.Release();                               // the engine's subreaper adopts it
//   RETURN_IF_ERROR(containers.Start("c1"));
//   ASSIGN_OR_RETURN(OciState s, containers.State("c1"));
//
// A container without pod annotations gets its own sandbox VM with the same id; so does a pod's
// sandbox container, and the pod's other containers join its VM (runtime/oci/pod.h). Each
// container's record is <root>/<id>/container.json (format "runvm.container", docs/state.md), next
// to the sandbox's record for the container that owns the VM; every change to it is made under the
// lock of the sandbox it runs in. What runs where:
//   host   the shim (`runvm shim`, the container's pid for the engine), holding the engine's stdio
//   guest  the container's processes, created by the agent from the bundle's config.json on the
//          rootfs bound into the sandbox's shared directory (read-only when root.readonly)
// Status: "created" and "running" while the shim lives (it exits with the workload), "stopped"
// afterwards. A create killed half way is reported stopped; delete removes what it left.
#ifndef RUNVM_RUNTIME_OCI_CONTAINERS_H_
#define RUNVM_RUNTIME_OCI_CONTAINERS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/process.h"
#include "proto/agent_protocol.h"
#include "proto/oci_spec.h"
#include "runtime/config/loader.h"
#include "runtime/oci/exec_spec.h"
#include "runtime/oci/record.h"

namespace runvm {

class Sandboxes;

struct CreateRequest {
  std::string id;
  std::string bundle;
  std::string pid_file;        // written with the shim's pid: digits only
  std::string console_socket;  // the shim sends the terminal's master here (process.terminal)
  bool detach = true;          // the shim gets its own session
};

struct ContainersOptions {
  std::string root = "/run/runvm";
  absl::Duration lock_wait = absl::Seconds(30);
  std::function<absl::StatusOr<LoadedConfig>()> load_config;
  // How the shim is started: this binary, and the global flags it passes on (--log ...).
  std::string self_exe = "/proc/self/exe";
  std::vector<std::string> shim_flags;
  bool systemd_cgroup = false;  // cgroupsPath is slice:prefix:name
  // The VMs (runtime/sandbox/vm.h): QEMU's under `root` when unset; a fake in unit tests.
  std::shared_ptr<Sandboxes> sandboxes;
};

class Containers {
 public:
  explicit Containers(ContainersOptions options);

  // Creates the container (booting its sandbox) and its shim, which is returned running: the
  // caller releases it (create) or waits for it (run). All or nothing.
  absl::StatusOr<Child> Create(const CreateRequest& request);
  absl::Status Start(const std::string& id);
  // A further process in the running container, with its own shim (returned running, like
  // Create's). Ports of earlier execs that have finished are unplugged first.
  absl::StatusOr<Child> Exec(const ExecRequest& request);
  // `signal` as a name (KILL, SIGKILL) or a number; with `all`, every process of the container.
  absl::Status Kill(const std::string& id, const std::string& signal, bool all);
  // Without `force` a running container is refused; with it, it is killed, and an unknown id is
  // not an error.
  absl::Status Delete(const std::string& id, bool force);
  absl::StatusOr<OciState> State(const std::string& id);
  // The container's processes, with the guest's pids (the container runs in the guest's kernel:
  // host pids do not exist for it). FailedPrecondition "container not running" once stopped.
  absl::StatusOr<std::vector<agent_proto::ProcessEntry>> Processes(const std::string& id);
  // Freezes the container's cgroup in the guest; when the sandbox holds this container alone,
  // the VM is stopped as well (QMP stop). `state` says paused. Resume undoes both.
  absl::Status Pause(const std::string& id);
  absl::Status Resume(const std::string& id);
  // Merges `resources` into the container's: the pod's VM grows by vCPU and memory hotplug to
  // Kata's size (refused beyond default_maxvcpus or maxmem, nothing changed), then the guest
  // cgroup takes the limits (lowering them takes effect there; the VM keeps its size).
  absl::Status Update(const std::string& id, const oci::Resources& resources);
  // The container's cgroup figures, read in the guest. `after_exit`: also those of a container
  // that has stopped but is not yet deleted (its last figures; events reads its OOM kills).
  absl::StatusOr<agent_proto::CgroupStats> Stats(const std::string& id, bool after_exit = false);
  // Every container under the root, by id. Reads without locking (records are replaced
  // atomically), so it never waits for another invocation.
  absl::StatusOr<std::vector<OciState>> List();

 private:
  ContainersOptions options_;
  std::shared_ptr<Sandboxes> sandboxes_;
};

}  // namespace runvm

#endif  // RUNVM_RUNTIME_OCI_CONTAINERS_H_
