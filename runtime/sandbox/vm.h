// The seam between the OCI library (runtime/oci) and the sandboxes' VMs: everything a container
// verb asks of a VM goes through these two interfaces, so that a fake (tests/testing/
// fake_sandboxes.h) can stand in for QEMU and every rollback path of create, exec and delete is
// reachable by a unit test.
//
//   std::unique_ptr<Sandboxes> sandboxes = QemuSandboxes({.root = "/run/runvm"});
//   RETURN_IF_ERROR(sandboxes->Boot("abc", loaded));             // VM up, its agent answering
//   ASSIGN_OR_RETURN(std::unique_ptr<SandboxVm> vm, sandboxes->Open("abc", "create"));
//   ASSIGN_OR_RETURN(qemu::PluggedDevice port, vm->AddSerialPort("io-0123456789abcdef"));
//   ASSIGN_OR_RETURN(std::unique_ptr<GuestAgent> agent, vm->Agent(deadline));
//
// An opened SandboxVm holds the sandbox's lock until it is destroyed; each change it makes to the
// VM is saved in the sandbox record before it returns (also when it fails half way, so that the
// record always says what is plugged).
#ifndef RUNVM_RUNTIME_SANDBOX_VM_H_
#define RUNVM_RUNTIME_SANDBOX_VM_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "persist/lock.h"
#include "persist/store.h"
#include "proto/agent_protocol.h"
#include "runtime/config/loader.h"
#include "runtime/sandbox/store.h"

namespace runvm {

// The guest agent, as the OCI verbs use it (runtime/sandbox/agent_client.h is the real one).
class GuestAgent {
 public:
  virtual ~GuestAgent() = default;
  // The agent's answer; an "error" answer is FailedPrecondition with the agent's message.
  virtual absl::StatusOr<agent_proto::Message> Call(agent_proto::Message request,
                                                    absl::Time deadline) = 0;
};

// One sandbox, opened: its lock held and its record reconciled.
class SandboxVm {
 public:
  virtual ~SandboxVm() = default;
  // The record as it is now (record().vm is set while the VM runs).
  virtual const SandboxRecord& record() const = 0;
  // FailedPrecondition naming the sandbox and the reason when its VM does not run.
  absl::Status CheckRunning() const;
  // Whether devices can be plugged and unplugged now: the VM runs and QMP answered (opened with
  // `connect`); FailedPrecondition saying why not.
  virtual absl::Status CheckCanPlug() const = 0;

  virtual absl::StatusOr<qemu::PluggedDevice> AddSerialPort(const std::string& name) = 0;
  virtual absl::StatusOr<qemu::VcpuResult> AddVcpus(int count) = 0;
  virtual absl::StatusOr<qemu::MemoryResult> AddMemory(int64_t mib) = 0;
  // Unplugs a device this sandbox's record lists.
  virtual absl::Status Unplug(const std::string& device) = 0;
  // QMP stop and cont: the whole VM, vCPUs and devices.
  virtual absl::Status PauseVm() = 0;
  virtual absl::Status ResumeVm() = 0;
  // The host thread ids of the VM's vCPUs.
  virtual absl::StatusOr<std::vector<int>> VcpuThreads() = 0;
  // A connection to the guest's agent (FailedPrecondition when the VM does not run).
  virtual absl::StatusOr<std::unique_ptr<GuestAgent>> Agent(absl::Time deadline) = 0;
};

// The sandboxes under one root.
class Sandboxes {
 public:
  virtual ~Sandboxes() = default;
  // Boots sandbox `id` with the configuration, waits until its agent answers and carries the
  // pod's network namespace `netns` (a path; empty: none) into it. All or nothing; AlreadyExists
  // for an existing sandbox.
  virtual absl::Status Boot(const std::string& id, const LoadedConfig& loaded,
                            const std::string& netns) = 0;
  // Locks and reconciles sandbox `id` (with `connect`, also over QMP: needed to change the VM).
  // NotFound: "sandbox X does not exist".
  virtual absl::StatusOr<std::unique_ptr<SandboxVm>> Open(const std::string& id,
                                                          absl::string_view purpose,
                                                          bool connect = true) = 0;
  // Stops what runs and removes the sandbox's directory. With `force` also a running one, and an
  // unknown id is no error.
  virtual absl::Status Delete(const std::string& id, bool force) = 0;
  // Whether sandbox `id` has a record (a booted sandbox, running or not).
  virtual bool Exists(const std::string& id) const = 0;

  // For records that live next to the sandbox's (runtime/oci): the store over the root, the
  // sandbox's directory, and its lock taken shared (readers) under the bounded wait.
  virtual const persist::Store& records() const = 0;
  virtual std::string Dir(const std::string& id) const = 0;
  virtual absl::StatusOr<persist::Lock> LockShared(const std::string& id,
                                                   absl::string_view purpose) const = 0;
};

// The real ones: SandboxStore and qemu::Hotplug, the agent over its socket.
std::unique_ptr<Sandboxes> QemuSandboxes(SandboxStoreOptions options);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_SANDBOX_VM_H_
