// Starting and stopping a sandbox VM: the per-sandbox run directory, pre-bound sockets,
// virtiofsd, QEMU (detached, paused), readiness over QMP, cold setup and `cont`; and a stop that
// leaves nothing behind and never signals a process that is not the one recorded.
//
//   VmSpec spec{.config = loaded.config.hypervisor, .sandbox_id = id, .accelerator = "tcg",
//               .host_memory_mib = HostMemoryMib()};
//   ASSIGN_OR_RETURN(RunningVm vm, StartVm(spec));    // persisted by the caller
//   // the guest is up once its agent answers on vm.agent_socket() (runtime/sandbox/agent_client.h)
//   ...
//   RETURN_IF_ERROR(StopVm(vm));                      // also fine when already stopped
//
// Socket paths are short by construction: every socket lives in <socket_base>/<16 hex digits of
// a digest of the sandbox id>/, whatever --root is (default base /run/runvm/vm, 32 bytes from
// the longest socket name to the limit). A base too long for sun_path is refused with the
// length and the limit, never truncated.
#ifndef RUNVM_HYPERVISOR_QEMU_VM_H_
#define RUNVM_HYPERVISOR_QEMU_VM_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/process_identity.h"
#include "hypervisor/qemu/hotplug_state.h"
#include "proto/config.h"

namespace runvm::qemu {

inline constexpr char kDefaultSocketBase[] = "/run/runvm/vm";

struct VmSpec {
  config::QemuConfig config;  // resolved and clamped
  std::string sandbox_id;
  std::string accelerator;  // resolved: "kvm" or "tcg"
  int64_t host_memory_mib = 0;
  std::string socket_base = kDefaultSocketBase;
  absl::Duration start_timeout = absl::Seconds(10);
};

// What a running VM is, for the state record.
struct RunningVm {
  std::string sandbox_id;
  std::string uuid;
  std::string run_dir;
  // <run_dir>/shared: where runvm binds what the guest gets; only the host sees it (the guest is
  // served <run_dir>/view, a read-only bind of it: see docs/security.md).
  std::string shared_dir;
  ProcessIdentity qemu;
  std::optional<ProcessIdentity> virtiofsd;
  // A small detached process (comm "runvm-watch") that ends the sandbox when virtiofsd dies and
  // ends virtiofsd when QEMU is gone; it exits with them.
  std::optional<ProcessIdentity> watcher;
  // The configuration the VM was built from (later edits of configuration.toml never change a
  // running sandbox) and the maxmem it got.
  config::QemuConfig config;
  std::string accelerator;  // resolved: "kvm" or "tcg"
  int64_t max_memory_mib = 0;
  HotplugState hotplug;

  std::string qmp_socket() const { return run_dir + "/qmp.sock"; }
  std::string qmp_events_socket() const { return run_dir + "/qmp-events.sock"; }
  std::string agent_socket() const { return run_dir + "/agent.sock"; }
  std::string console_socket() const { return run_dir + "/console.sock"; }
};

// OK when `user` (hypervisor_user) is empty or an existing user other than root; else an error
// that names it. `runvm check` reports it too.
absl::Status CheckHypervisorUser(const std::string& user);

// The run directory of a sandbox: <socket_base>/<32 hex digits of the id's SHA-256>.
std::string RunDirFor(const std::string& socket_base, const std::string& sandbox_id);

// Starts the VM and returns once QEMU answers on QMP and runs. With virtiofsd, a watcher is
// started as well: QEMU keeps running when virtiofsd dies (its shared filesystem just stops),
// so the watcher sends QEMU SIGTERM then. On any failure everything
// started or created so far is stopped and removed, and the error carries QEMU's (or
// virtiofsd's) own text when it exited.
absl::StatusOr<RunningVm> StartVm(const VmSpec& spec);

// QMP quit, wait up to `timeout`, then SIGKILL (only a process whose identity still matches);
// stops virtiofsd and any unrecorded helper carrying the sandbox's marker; removes sockets and
// directories. Stopping a stopped or vanished VM succeeds.
absl::Status StopVm(const RunningVm& vm, absl::Duration timeout = absl::Seconds(5));

// The environment entry QEMU and virtiofsd of a sandbox are started with
// ("RUNVM_SANDBOX_DIR=<run dir>"): it finds them again when a crash lost their pids.
std::string HelperMarker(const std::string& run_dir);

// Removes the socket base once no sandbox has a run directory in it (a state root is left as
// empty as runc leaves its own); StartVm makes it again.
void RemoveSocketBaseIfEmpty(const std::string& socket_base);

// Ends every process carrying the sandbox's marker (each through a verified pidfd: SIGKILL, then
// waits for it) and removes the run directory; for a boot that was killed before its processes
// were recorded. Returns the processes it ended.
absl::StatusOr<std::vector<ProcessIdentity>> CollectStrays(const std::string& run_dir);

// Host RAM in MiB (/proc/meminfo MemTotal).
absl::StatusOr<int64_t> HostMemoryMib();

}  // namespace runvm::qemu

#endif  // RUNVM_HYPERVISOR_QEMU_VM_H_
