// Sandboxes across invocations: the sandbox record, its lock, and the reconciliation every
// invocation does before it acts, so that a runtime killed at any instant leaves nothing the next
// one cannot finish or undo.
//
//   SandboxStore sandboxes({.root = "/run/runvm"});
//   RETURN_IF_ERROR(sandboxes.Create("abc", spec, /*wait_guest=*/true));
//   ASSIGN_OR_RETURN(std::unique_ptr<Sandbox> sb, sandboxes.Open("abc", "hotplug"));
//   ASSIGN_OR_RETURN(qemu::Hotplug * hp, sb->hotplug());     // locked and reconciled
//   ASSIGN_OR_RETURN(qemu::PluggedDevice d, hp->AddDisk({.path = "/srv/d.img"}));
//   RETURN_IF_ERROR(sb->Save());
//
// On disk (docs/state.md): <root>/<id>/sandbox.json, format "runvm.sandbox", and <root>/<id>/lock;
// the VM's sockets and logs live in <root>/.vm/<16 hex digits>/.
//
// Steps and what the next invocation does when a runtime dies in one (the record says which):
//   boot   rolled back: every process carrying the sandbox's marker is killed, the run
//          directory removed; the sandbox is "stopped" with a note saying why.
//   stop   carried through; delete carried through (the sandbox then no longer exists).
//   hotplug steps: qemu::Hotplug::Reconcile.
// A sandbox whose QEMU has exited is reported "stopped"; one whose recorded QEMU pid now belongs
// to another process is "lost": that process is never signalled, and delete only removes files.
#ifndef RUNVM_RUNTIME_SANDBOX_STORE_H_
#define RUNVM_RUNTIME_SANDBOX_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "hypervisor/qemu/hotplug.h"
#include "hypervisor/qemu/vm.h"
#include "network/endpoint.h"
#include "nlohmann/json_fwd.hpp"
#include "persist/lock.h"
#include "persist/store.h"

namespace runvm::qmp {
class Client;
}

namespace runvm {

inline constexpr char kSandboxFormat[] = "runvm.sandbox";
inline constexpr int kSandboxVersion = 1;

// Recorded statuses; "lost" is only ever reported, never recorded.
inline constexpr char kCreating[] = "creating";
inline constexpr char kRunning[] = "running";
inline constexpr char kStopped[] = "stopped";
inline constexpr char kLost[] = "lost";

// Sandbox-level steps an intent can name.
inline constexpr char kStepBoot[] = "boot";
inline constexpr char kStepStop[] = "stop";
inline constexpr char kStepDelete[] = "delete";

struct SandboxRecord {
  std::string id;
  std::string created;  // RFC 3339, UTC
  std::string status;   // kCreating, kRunning or kStopped
  std::string intent;   // kStepBoot, kStepStop, kStepDelete while one runs; empty otherwise
  std::string run_dir;  // known before the boot starts anything
  std::string note;     // why the sandbox stopped when runvm did not stop it
  std::optional<qemu::RunningVm> vm;
  // The pod's network namespace carried into the VM (runtime/sandbox/network.h); absent when the
  // sandbox has none (host network, internetworking_model = "none").
  std::optional<network::PodNetwork> network;
};

nlohmann::json SandboxToJson(const SandboxRecord& record);
// Strict: every field present with its type; errors name the field.
absl::StatusOr<SandboxRecord> SandboxFromJson(const nlohmann::json& j);

// What `state` and `list` show.
struct SandboxView {
  std::string id;
  std::string status;  // the recorded one, or stopped/lost by the recorded QEMU's identity
  std::string detail;  // why it is stopped or lost; or what is wrong with the record
  std::optional<SandboxRecord> record;  // absent when the record is unreadable
};

// An opened sandbox: its lock is held and its record reconciled until it is destroyed.
class Sandbox {
 public:
  ~Sandbox();
  SandboxRecord& record() { return record_; }
  const qemu::ReconcileReport& report() const { return report_; }
  // The running VM's hotplug, connected and reconciled. FailedPrecondition when the sandbox is
  // not running (the message says why).
  absl::StatusOr<qemu::Hotplug*> hotplug();
  // QMP stop and cont: the whole VM, vCPUs and devices, paused or resumed.
  absl::Status PauseVm() { return SetVmRunning(false); }
  absl::Status ResumeVm() { return SetVmRunning(true); }
  // The host thread ids of the VM's vCPUs (QMP query-cpus-fast).
  absl::StatusOr<std::vector<int>> VcpuThreads();
  absl::Status Save();

 private:
  friend class SandboxStore;
  Sandbox(persist::Lock lock, persist::Store store, SandboxRecord record,
          qemu::HotplugOptions options);
  absl::Status Reconcile(bool connect);
  absl::Status SetVmRunning(bool running);

  persist::Lock lock_;
  persist::Store store_;
  SandboxRecord record_;
  qemu::HotplugOptions options_;
  std::string not_running_;  // why hotplug() is refused
  std::unique_ptr<qmp::Client> qmp_;
  std::optional<qemu::Hotplug> hotplug_;
  qemu::ReconcileReport report_;
};

struct SandboxStoreOptions {
  std::string root = "/run/runvm";
  // How long an invocation waits for another one working on the same sandbox.
  absl::Duration lock_wait = absl::Seconds(30);
  qemu::HotplugOptions hotplug;  // the checkpoint is set per sandbox
};

class SandboxStore {
 public:
  explicit SandboxStore(SandboxStoreOptions options);

  // Where the sandboxes' run directories go: <root>/.vm.
  std::string SocketBase() const;

  // Boots a sandbox VM (spec.sandbox_id is the id; spec.socket_base is set here) and records it;
  // with `wait_guest`, also waits until its guest is up. All or nothing: a failure stops what was
  // started and removes the record. AlreadyExists for an existing id.
  absl::Status Create(qemu::VmSpec spec, bool wait_guest);

  // Locks the sandbox exclusively, loads and reconciles it (with `connect`, also with QEMU over
  // QMP). NotFound: "sandbox X does not exist".
  absl::StatusOr<std::unique_ptr<Sandbox>> Open(const std::string& id, absl::string_view purpose,
                                                bool connect = true);

  // Stops the VM; the record stays, "stopped". A stopped sandbox is left as it is.
  absl::Status Stop(const std::string& id);

  // Stops what runs (only processes whose identity still matches the record, and the helpers
  // carrying the sandbox's marker) and removes the record. Without `force`, a running sandbox is
  // refused; with it, an unknown id is not an error.
  absl::Status Delete(const std::string& id, bool force);

  // One sandbox, read under a shared lock (reconciled first when an intent is pending).
  absl::StatusOr<SandboxView> State(const std::string& id);
  // Every sandbox under the root, unreadable records included; one that another invocation is
  // changing right now is listed as "busy" (list never waits).
  absl::StatusOr<std::vector<SandboxView>> List();

  // For records that live next to the sandbox's (runtime/oci/containers.h): the store, the
  // sandbox's directory, and its lock taken shared (readers) under the store's bounded wait.
  const persist::Store& records() const { return store_; }
  std::string Dir(const std::string& id) const { return options_.root + "/" + id; }
  absl::StatusOr<persist::Lock> LockShared(const std::string& id, absl::string_view purpose) const {
    return LockSandbox(id, persist::Lock::kShared, purpose);
  }

 private:
  std::string Key(const std::string& id) const { return id + "/sandbox.json"; }
  absl::StatusOr<persist::Lock> LockSandbox(const std::string& id, persist::Lock::Mode mode,
                                            absl::string_view purpose,
                                            std::optional<absl::Duration> wait = {}) const;
  // The error for an id without a readable record: NotFound, or what happened to the record.
  absl::Status WhyNoRecord(const std::string& id, const absl::Status& load_error) const;
  absl::StatusOr<SandboxView> View(const std::string& id);
  absl::Status RemoveSandboxDir(const std::string& id) const;

  SandboxStoreOptions options_;
  persist::Store store_;
};

// runc's rule for container ids, without a leading dot (the root's own entries start with one),
// and at most kMaxIdLength characters: above every engine's (podman's and CRI-O's 64 hex digits,
// containerd's 76), and short enough that every file name made from an id ("<id>.mount<i>" in
// the shared directory) stays under NAME_MAX. Names with a tighter limit (ports, sockets) are
// digests of the id.
inline constexpr size_t kMaxIdLength = 128;
absl::Status ValidateSandboxId(absl::string_view id);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_SANDBOX_STORE_H_
