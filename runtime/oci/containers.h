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
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/process.h"
#include "base/process_identity.h"
#include "nlohmann/json_fwd.hpp"
#include "proto/agent_protocol.h"
#include "proto/oci_spec.h"
#include "runtime/config/loader.h"
#include "runtime/oci/exec_spec.h"

namespace runvm {

inline constexpr char kContainerFormat[] = "runvm.container";
inline constexpr int kContainerVersion = 1;

// OCI statuses (runtime-spec "state").
inline constexpr char kOciCreating[] = "creating";
inline constexpr char kOciCreated[] = "created";
inline constexpr char kOciRunning[] = "running";
inline constexpr char kOciStopped[] = "stopped";
inline constexpr char kOciPaused[] = "paused";

// A process exec'd into a running container, until the next exec finds it finished and
// reclaims its port.
struct ExecRecord {
  std::string id;           // "<container>/<exec id>" is its name in the agent
  std::string port_device;  // hot-plug id of its stdio port
  std::optional<ProcessIdentity> shim;
};

struct ContainerRecord {
  std::string id;
  std::string sandbox_id;
  std::string bundle;   // absolute
  std::string rootfs;   // absolute, on the host
  std::string created;  // RFC 3339, UTC
  std::string status;   // creating, created, running, paused or stopped (as last recorded)
  std::map<std::string, std::string> annotations;
  std::vector<std::string> shares;  // mount points this container added in the shared dir
  std::string port_device;          // hot-plug id of its stdio port; "" until plugged
  std::optional<ProcessIdentity> shim;
  int64_t guest_pid = 0;
  std::vector<ExecRecord> execs;
  // linux.resources, with every update merged in: what the pod's size counts (runtime/oci/pod.h).
  oci::Resources resources;
  // pause stopped the VM as well (QMP stop): the sandbox holds this container alone.
  bool vm_paused = false;
  // Host cgroups (runtime/host/cgroups.h): where its shims go (for the container that owns the
  // VM, also where the pod's vCPUs or whole VMM go), the mode it was placed in, and the cgroups
  // it made, removed with it.
  std::string cgroup;
  bool sandbox_cgroup_only = false;
  std::vector<std::string> host_cgroups;
};

nlohmann::json ContainerToJson(const ContainerRecord& record);
absl::StatusOr<ContainerRecord> ContainerFromJson(const nlohmann::json& j);

// What `state` prints.
struct OciState {
  std::string id;
  int pid = 0;  // the shim's; 0 once stopped
  std::string status;
  std::string bundle;
  std::string rootfs;
  std::string created;
  std::string owner;
  std::map<std::string, std::string> annotations;
};
// runc's layout: ociVersion, id, pid, status, bundle, rootfs, created, owner, annotations.
nlohmann::ordered_json OciStateToJson(const OciState& state);
std::string OciStateJson(const OciState& state);  // indented as runc prints it

struct CreateRequest {
  std::string id;
  std::string bundle;
  std::string pid_file;        // written with the shim's pid: digits only
  std::string console_socket;  // the shim sends the terminal's master here (process.terminal)
  bool detach = true;          // the shim gets its own session
};

// runvm exec: the process comes from `process_json` (an OCI process object, as engines pass with
// --process) or from the container's own with `args` and the overrides.

struct ContainersOptions {
  std::string root = "/run/runvm";
  absl::Duration lock_wait = absl::Seconds(30);
  std::function<absl::StatusOr<LoadedConfig>()> load_config;
  // How the shim is started: this binary, and the global flags it passes on (--log ...).
  std::string self_exe = "/proc/self/exe";
  std::vector<std::string> shim_flags;
  bool systemd_cgroup = false;  // cgroupsPath is slice:prefix:name
};

class Containers {
 public:
  explicit Containers(ContainersOptions options) : options_(std::move(options)) {}

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
};

// runc's signal syntax: "9", "KILL", "SIGKILL", "sigkill"; InvalidArgument otherwise.
absl::StatusOr<int> ParseSignal(const std::string& text);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_OCI_CONTAINERS_H_
