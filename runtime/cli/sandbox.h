// `runvm sandbox ...`: the operator's verbs on sandbox VMs themselves, below the OCI commands.
//
//   runvm sandbox create [--no-wait] ID             boot a sandbox VM (waits for its guest)
//   runvm sandbox plug disk ID PATH [--read-only] [--driver D]
//   runvm sandbox plug nic ID --tap NAME --mac MAC [--netns PATH] [--queues N]
//   runvm sandbox plug vfio ID DEVICE                (BDF, short BDF, mdev UUID, /dev/vfio/N)
//   runvm sandbox plug cpus ID N
//   runvm sandbox plug memory ID MIB
//   runvm sandbox unplug ID DEVICE-ID
//   runvm sandbox stop ID
//   runvm sandbox delete [--force] ID
//   runvm sandbox state ID                           JSON
//   runvm sandbox list [--format table|json]
//
// Every verb but list takes the sandbox's lock (shared for state), reconciles an interrupted
// operation first, and saves before and after each step. plug prints the plugged device(s) as
// JSON. RUNVM_LOCK_WAIT (a duration such as "500ms" or "30s", default 30s) bounds the wait for
// another invocation working on the same sandbox.
#ifndef RUNVM_RUNTIME_CLI_SANDBOX_H_
#define RUNVM_RUNTIME_CLI_SANDBOX_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/config/loader.h"

namespace runvm {

struct SandboxCommand {
  std::string verb;  // create, plug, unplug, stop, delete, state, list
  std::string id;
  std::string kind;  // plug: disk, nic, vfio, cpus, memory
  std::string path;  // disk path, or the VFIO device
  bool read_only = false;
  std::string driver;
  std::string tap, netns, mac;
  int queues = 0;
  int64_t amount = 0;  // cpus: count; memory: MiB
  std::string device;  // unplug
  bool wait_guest = true;
  bool force = false;
  std::string format = "table";
};

// Runs `command` with state under `root`; output goes to stdout. `load` gives the effective
// configuration (only create needs it).
absl::Status RunSandboxCommand(const SandboxCommand& command, const std::string& root,
                               const std::function<absl::StatusOr<LoadedConfig>()>& load);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_CLI_SANDBOX_H_
