// `create`: a container, in a VM of its own or joining its pod's, as a short sequence of named
// steps with one owner of rollback (Creation::Undo).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "proto/agent_protocol.h"
#include "runtime/config/annotations.h"
#include "runtime/host/cgroups.h"
#include "runtime/oci/bundle.h"
#include "runtime/oci/container_store.h"
#include "runtime/oci/containers.h"
#include "runtime/oci/pod.h"
#include "runtime/oci/shim.h"

namespace runvm {
namespace {

std::string Now() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", absl::Now(), absl::UTCTimeZone());
}

// What create reads and checks before it makes anything.
struct Prepared {
  std::string bundle;  // absolute
  oci::Spec spec;
  std::string rootfs;  // absolute
  PodRole role;
  std::string cgroups_path;  // resolved; "" when the spec names none
  std::string netns;         // the pod's network namespace (a sandbox's own VM only); "" for none
};

absl::StatusOr<Prepared> PrepareBundle(const CreateRequest& req, bool systemd_cgroup) {
  RETURN_IF_ERROR(ValidateSandboxId(req.id));
  Prepared p{.bundle = Absolute(req.bundle)};
  ASSIGN_OR_RETURN(p.spec, ReadBundle(p.bundle));
  if (p.spec.process.terminal && req.console_socket.empty()) {
    return absl::InvalidArgumentError(
        "cannot allocate tty if runc will detach without setting console socket");
  }
  if (!p.spec.process.terminal && !req.console_socket.empty()) {
    return absl::InvalidArgumentError(
        "cannot use console socket if runc will not detach or allocate tty");
  }
  p.rootfs = Absolute(absl::StartsWith(p.spec.root.path, "/") ? p.spec.root.path
                                                              : p.bundle + "/" + p.spec.root.path);
  struct stat st;
  if (::stat(p.rootfs.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(p.bundle, "/config.json: root.path: ", p.rootfs, " is not a directory"));
  }
  // A relative bind source is the bundle's (runc's reading), resolved here so that the guest
  // never resolves one; one that leaves the bundle is refused.
  for (size_t i = 0; i < p.spec.mounts.size(); ++i) {
    oci::Mount& m = p.spec.mounts[i];
    if (!IsBindMount(m) || m.source.empty() || absl::StartsWith(m.source, "/")) continue;
    const std::string resolved = Absolute(p.bundle + "/" + m.source);
    if (!absl::StartsWith(resolved, p.bundle + "/")) {
      return absl::InvalidArgumentError(absl::StrCat(p.bundle, "/config.json: mounts[", i, "] (",
                                                     m.destination, "): the relative source ",
                                                     m.source, " leaves the bundle"));
    }
    m.source = resolved;
  }
  // SELinux labels are not applied (docs/security.md): said, never silently dropped.
  for (const auto& [field, label] :
       {std::pair{"process.selinuxLabel", &p.spec.process.selinux_label},
        std::pair{"linux.mountLabel", &p.spec.linux.mount_label}}) {
    if (label->empty()) continue;
    LogWarning(absl::StrCat("container ", req.id, ": ", field, " \"", *label,
                            "\" is not applied: runvm does not implement SELinux labels"));
  }
  ASSIGN_OR_RETURN(p.role, PodRoleOf(req.id, p.spec.annotations));
  ASSIGN_OR_RETURN(p.cgroups_path, ResolveCgroupsPath(p.spec.linux.cgroups_path, systemd_cgroup));
  if (p.role.kind != PodRole::kMember) {
    // A namespace by path is the pod's (its CNI plugins made it): the VM's boot carries it in
    // (runtime/sandbox/network.h). None at all is the host's network, which a VM cannot share:
    // said, not silently dropped.
    auto net = std::find_if(p.spec.linux.namespaces.begin(), p.spec.linux.namespaces.end(),
                            [](const oci::Namespace& ns) { return ns.type == "network"; });
    if (net == p.spec.linux.namespaces.end()) {
      LogWarning(absl::StrCat("container ", req.id,
                              ": its spec shares the host's network namespace, which a VM cannot;"
                              " it has the VM's loopback only"));
    } else {
      p.netns = net->path;
    }
    RETURN_IF_ERROR(MapNamespaces(p.role, 0, p.spec.linux.namespaces));
  }
  return p;
}

// One create. Every step records what it is about to make before it makes it, so that Undo, the
// only rollback, removes what the record says whichever step failed; and a create killed at any
// point leaves a record that `delete` finishes the same way.
class Creation {
 public:
  Creation(const ContainersOptions& options, Sandboxes& sandboxes, const CreateRequest& req,
           Prepared prepared)
      : options_(options),
        sandboxes_(sandboxes),
        store_(sandboxes),
        req_(req),
        p_(std::move(prepared)),
        member_(p_.role.kind == PodRole::kMember) {}

  absl::StatusOr<Child> Run() {
    RETURN_IF_ERROR(ReserveRecord());  // nothing made yet when it fails
    absl::StatusOr<Child> shim = Steps();
    if (!shim.ok()) Undo(shim.status());
    return shim;
  }

 private:
  absl::StatusOr<Child> Steps() {
    if (member_) RETURN_IF_ERROR(JoinPod());
    RUNVM_FAILPOINT("container.create.after-record");
    if (!member_) {
      RETURN_IF_ERROR(BootOwnSandbox());
      RUNVM_FAILPOINT("container.create.after-boot");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<SandboxVm> vm, sandboxes_.Open(r_.sandbox_id, "create"));
    RETURN_IF_ERROR(vm->CheckRunning());
    if (member_) RETURN_IF_ERROR(CheckPodSandbox());
    RETURN_IF_ERROR(PlaceVmm(*vm));
    RETURN_IF_ERROR(GrowToFit(store_, *vm, req_.id, r_.resources));
    RETURN_IF_ERROR(ShareBundle(*vm));
    ASSIGN_OR_RETURN(qemu::PluggedDevice port, PlugPort(*vm));
    RETURN_IF_ERROR(CreateInGuest(*vm));
    RUNVM_FAILPOINT("container.create.before-shim");
    return StartShim(*vm, port);
  }

  // <root>/<id>/ and the record, "creating". AlreadyExists for an id in use.
  absl::Status ReserveRecord() {
    RETURN_IF_ERROR(MakeDirectories(options_.root, 0700));
    const std::string dir = sandboxes_.Dir(req_.id);
    if (::mkdir(dir.c_str(), 0700) != 0) {
      if (errno == EEXIST) {
        return absl::AlreadyExistsError(absl::StrCat("container with id exists: ", req_.id));
      }
      return ErrnoError(absl::StrCat("mkdir ", dir));
    }
    r_ = {.id = req_.id,
          .sandbox_id = p_.role.sandbox_id,
          .bundle = p_.bundle,
          .rootfs = p_.rootfs,
          .created = Now(),
          .status = ContainerStatus::kCreating,
          .annotations = p_.spec.annotations,
          .resources = p_.spec.linux.resources.value_or(oci::Resources{})};
    if (absl::Status st = store_.Save(r_); !st.ok()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      return st;
    }
    return absl::OkStatus();
  }

  // A pod member: its sandbox must be a pod's sandbox container that exists. Its shim goes where
  // the sandbox's do, or with sandbox_cgroup_only off into a cgroup of its own.
  absl::Status JoinPod() {
    const std::string& sandbox_id = p_.role.sandbox_id;
    absl::StatusOr<ContainerRecord> sandbox = store_.Load(sandbox_id);
    if (!sandbox.ok() || sandbox->sandbox_id != sandbox_id || !sandboxes_.Exists(sandbox_id)) {
      return absl::NotFoundError(
          absl::StrCat("container ", req_.id, ": its sandbox ", sandbox_id,
                       sandbox.ok() && sandbox->sandbox_id != sandbox_id
                           ? " is a container of another sandbox, not a sandbox"
                           : " does not exist"));
    }
    r_.sandbox_cgroup_only = sandbox->sandbox_cgroup_only;
    if (sandbox->sandbox_cgroup_only || p_.cgroups_path.empty()) {
      r_.cgroup = sandbox->sandbox_cgroup_only ? sandbox->cgroup : "";
      return store_.Save(r_);
    }
    ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
    return MakeCgroups(cg, PlaceMember(cg, p_.cgroups_path));
  }

  // Records the placement (the cgroups to make first), then makes them.
  absl::Status MakeCgroups(const HostCgroups& cg, const Placement& placement) {
    r_.cgroup = placement.cgroup;
    r_.sandbox_cgroup_only = placement.sandbox_cgroup_only;
    r_.host_cgroups = placement.to_make;
    vmm_cgroup_ = placement.vmm;
    RETURN_IF_ERROR(store_.Save(r_));
    for (const std::string& c : {placement.vmm, placement.cgroup}) {
      if (!c.empty()) RETURN_IF_ERROR(cg.Create(c));
    }
    return absl::OkStatus();
  }

  // The container's own sandbox VM, with the configuration its annotations allow, its host
  // cgroups made first.
  absl::Status BootOwnSandbox() {
    ASSIGN_OR_RETURN(LoadedConfig loaded, options_.load_config());
    RETURN_IF_ERROR(ApplyAnnotations(p_.spec.annotations, HostFactsNow(), loaded.config));
    for (const std::string& w : loaded.warnings) LogWarning(w);
    if (!p_.cgroups_path.empty()) {
      ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
      RETURN_IF_ERROR(
          MakeCgroups(cg, PlaceSandboxOwner(cg, p_.cgroups_path, req_.id,
                                            loaded.config.runtime.sandbox_cgroup_only)));
    }
    return sandboxes_.Boot(req_.id, loaded, p_.netns);
  }

  // A member joins a pod whose sandbox container still runs, in its namespaces.
  absl::Status CheckPodSandbox() {
    ASSIGN_OR_RETURN(ContainerRecord sandbox, store_.Load(r_.sandbox_id));
    if (LiveStatus(sandbox) == ContainerStatus::kStopped) {
      return absl::FailedPreconditionError(absl::StrCat(
          "container ", req_.id, ": its sandbox container ", r_.sandbox_id, " has stopped"));
    }
    return MapNamespaces(p_.role, sandbox.guest_pid, p_.spec.linux.namespaces);
  }

  // QEMU and its helpers into the cgroup placed for them (the VM's owner only).
  absl::Status PlaceVmm(SandboxVm& vm) {
    if (vmm_cgroup_.empty()) return absl::OkStatus();
    const qemu::RunningVm& running = *vm.record().vm;
    ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
    RETURN_IF_ERROR(cg.Join(vmm_cgroup_, running.qemu.pid));
    for (const auto* helper : {&running.virtiofsd, &running.watcher}) {
      if (*helper && IsAlive(**helper)) RETURN_IF_ERROR(cg.Join(vmm_cgroup_, (*helper)->pid));
    }
    if (r_.sandbox_cgroup_only) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::vector<int> threads, vm.VcpuThreads());
    return PlaceVcpus(r_.cgroup, threads);
  }

  // The rootfs and every bind mount's source, into the shared directory; the spec's sources
  // become their guest paths. A read-only root is shared writable until the agent has made the
  // mount points the spec needs in it (as runc does before its read-only remount; containerd's
  // snapshots are writable for this reason), then made read-only (MakeRootReadOnly).
  absl::Status ShareBundle(SandboxVm& vm) {
    const std::string& shared_dir = vm.record().vm->shared_dir;
    const std::string guest_share = agent_proto::kGuestShareMount;
    r_.shares.push_back(shared_dir + "/" + req_.id);
    RETURN_IF_ERROR(store_.Save(r_));
    RETURN_IF_ERROR(BindInto(p_.rootfs, r_.shares.back(), /*readonly=*/false));
    for (size_t i = 0; i < p_.spec.mounts.size(); ++i) {
      oci::Mount& m = p_.spec.mounts[i];
      if (!IsBindMount(m)) continue;
      const std::string name = absl::StrCat(req_.id, ".mount", i);
      r_.shares.push_back(shared_dir + "/" + name);
      RETURN_IF_ERROR(store_.Save(r_));
      if (absl::Status st = BindInto(m.source, r_.shares.back(), HasOption(m, "ro")); !st.ok()) {
        return Annotate(st, absl::StrCat("mounts[", i, "] (", m.destination, ")"));
      }
      m.source = guest_share + "/" + name;
    }
    return absl::OkStatus();
  }

  // The container's stdio port (the record names it once it is plugged).
  absl::StatusOr<qemu::PluggedDevice> PlugPort(SandboxVm& vm) {
    ASSIGN_OR_RETURN(qemu::PluggedDevice port, vm.AddSerialPort(StdioPortName(req_.id)));
    r_.port_device = port.id;
    RETURN_IF_ERROR(store_.Save(r_));
    return port;
  }

  // The container in the guest, created by the agent (its process waits for start).
  absl::Status CreateInGuest(SandboxVm& vm) {
    const absl::Time deadline = absl::Now() + kAgentTimeout;
    ASSIGN_OR_RETURN(std::unique_ptr<GuestAgent> agent, vm.Agent(deadline));
    ASSIGN_OR_RETURN(
        agent_proto::Message reply,
        agent->Call({.type = agent_proto::kCreateContainer,
                     .fields = agent_proto::ToFields(agent_proto::CreateContainer{
                         .id = req_.id,
                         .rootfs = std::string(agent_proto::kGuestShareMount) + "/" + req_.id,
                         .spec_json = oci::SpecToJson(p_.spec, /*indent=*/-1),
                         .stdio_port = StdioPortName(req_.id)})},
                    deadline));
    ASSIGN_OR_RETURN(agent_proto::Created created, agent_proto::CreatedFrom(reply));
    r_.guest_pid = created.pid;
    if (p_.spec.root.readonly) {
      RETURN_IF_ERROR(MakeReadOnly(vm.record().vm->shared_dir + "/" + req_.id));
    }
    return absl::OkStatus();
  }

  // The shim, in the container's cgroup, recorded; then --pid-file.
  absl::StatusOr<Child> StartShim(SandboxVm& vm, const qemu::PluggedDevice& port) {
    ASSIGN_OR_RETURN(
        Child child,
        runvm::StartShim(
            {.self_exe = options_.self_exe,
             .flags = options_.shim_flags,
             .name = req_.id,
             .port_socket = port.source,
             .console_socket = req_.console_socket.empty() ? "" : Absolute(req_.console_socket),
             .detach = req_.detach,
             .run_dir = vm.record().vm->run_dir}));
    RETURN_IF_ERROR(JoinHostCgroup(r_.cgroup, child.pid()));
    ASSIGN_OR_RETURN(r_.shim, ReadProcessIdentity(child.pid()));
    r_.status = ContainerStatus::kCreated;
    RETURN_IF_ERROR(store_.Save(r_));
    if (!req_.pid_file.empty()) {
      RETURN_IF_ERROR(WriteFileAtomic(Absolute(req_.pid_file), absl::StrCat(child.pid()), 0644));
    }
    return child;
  }

  // Removes what the record says this create made: a member's additions to its pod's VM, or the
  // container's own sandbox (the VM, its helpers, the shares, the records); then its host
  // cgroups and its directory.
  void Undo(const absl::Status& cause) {
    LogDebug(absl::StrCat("create ", req_.id, " failed, removing what it made: ", cause.message()));
    if (member_) {
      (void)RemoveMember(store_, req_.id, /*force=*/true);
    } else {
      (void)sandboxes_.Delete(req_.id, /*force=*/true);
    }
    (void)RemoveHostCgroups(r_.host_cgroups);
    std::error_code ec;
    std::filesystem::remove_all(sandboxes_.Dir(req_.id), ec);
  }

  const ContainersOptions& options_;
  Sandboxes& sandboxes_;
  ContainerStore store_;
  const CreateRequest& req_;
  Prepared p_;
  const bool member_;
  ContainerRecord r_;
  std::string vmm_cgroup_;  // where QEMU and its helpers go, for a container that owns its VM
};

}  // namespace

absl::StatusOr<Child> Containers::Create(const CreateRequest& req) {
  ASSIGN_OR_RETURN(Prepared prepared, PrepareBundle(req, options_.systemd_cgroup));
  return Creation(options_, *sandboxes_, req, std::move(prepared)).Run();
}

}  // namespace runvm
