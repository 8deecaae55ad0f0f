#include "runtime/host/check.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/fd.h"
#include "base/process.h"
#include "hypervisor/qemu/accel_probe.h"
#include "hypervisor/qemu/vm.h"
#include "network/tcfilter.h"
#include "runtime/sandbox/agent_client.h"
#include "runtime/sandbox/boot.h"

namespace runvm {
namespace {

// Whether pods' network namespaces can be carried into their VMs with the configured model.
CheckResult PodNetworkCheck(const std::string& model) {
  if (model == "none") {
    return {CheckLevel::kInfo, "pod network",
            "internetworking_model = \"none\": pods have loopback only"};
  }
  if (model != "tcfilter") {
    return {CheckLevel::kFail, "pod network",
            absl::StrCat("internetworking_model = \"", model,
                         "\" is not built into this runvm (\"tcfilter\" or \"none\")")};
  }
  absl::Status probe = network::ProbeTcFilter();
  if (!probe.ok()) {
    return {CheckLevel::kFail, "pod network",
            absl::StrCat("tcfilter does not work here: ", probe.message())};
  }
  return {CheckLevel::kOk, "pod network",
          "tcfilter: multi-queue taps and tc u32 filters with mirred redirect work"};
}

// Who QEMU runs as once it has started (docs/security.md); SELinux is not applied by runvm.
CheckResult ConfinementCheck(const std::string& user) {
  if (user.empty()) {
    return {CheckLevel::kInfo, "qemu confinement",
            "hypervisor_user = \"\": QEMU runs as root with every capability"};
  }
  absl::Status st = qemu::CheckHypervisorUser(user);
  if (!st.ok()) return {CheckLevel::kFail, "qemu confinement", std::string(st.message())};
  return {CheckLevel::kOk, "qemu confinement",
          absl::StrCat("QEMU drops to user ", user, " and every capability once started")};
}

CheckResult SelinuxCheck() {
  // selinuxfs is where the kernel says whether SELinux is on (what libselinux reads).
  if (::access("/sys/fs/selinux/enforce", F_OK) != 0) {
    return {CheckLevel::kInfo, "selinux", "off on this host (no labels to apply)"};
  }
  return {CheckLevel::kFail, "selinux",
          "on, and runvm does not apply process.selinuxLabel or linux.mountLabel: QEMU runs with "
          "runvm's own label"};
}

// "QEMU emulator version 7.2.22 (Debian ...)" -> "7.2.22"; empty when QEMU does not answer.
std::string QemuVersion(const std::string& qemu, std::string* error) {
  absl::StatusOr<Pipe> pipe = MakePipe();
  if (!pipe.ok()) {
    *error = std::string(pipe.status().message());
    return "";
  }
  SpawnOptions opts{.argv = {qemu, "-version"}};
  opts.fds[1] = pipe->write.get();
  absl::StatusOr<Child> child = Spawn(opts);
  if (!child.ok()) {
    *error = std::string(child.status().message());
    return "";
  }
  pipe->write.reset();
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipe->read.get(), buf, sizeof buf)) > 0) text.append(buf, n);
  absl::StatusOr<ExitStatus> exit = child->Wait(absl::Now() + absl::Seconds(10));
  const std::string kPrefix = "QEMU emulator version ";
  size_t at = text.find(kPrefix);
  if (!exit.ok() || !exit->exited || exit->code != 0 || at == std::string::npos) {
    *error = absl::StrCat(qemu, " -version did not report a QEMU version");
    return "";
  }
  std::string version = text.substr(at + kPrefix.size());
  return version.substr(0, version.find_first_of(" \n"));
}

std::string CgroupLayout(const std::string& root) {
  if (::access((root + "/cgroup.controllers").c_str(), F_OK) == 0) return "v2 (unified)";
  if (::access((root + "/unified/cgroup.controllers").c_str(), F_OK) == 0) return "v1 (hybrid)";
  if (::access((root + "/memory").c_str(), F_OK) == 0) return "v1 (legacy)";
  return "";
}

}  // namespace

// Boots a throwaway VM with the configuration and reports how long its guest took.
CheckResult BootCheck(const LoadedConfig& loaded, const std::string& accelerator,
                      const std::string& socket_base) {
  absl::StatusOr<int64_t> memory = qemu::HostMemoryMib();
  if (!memory.ok()) return {CheckLevel::kFail, "boot", std::string(memory.status().message())};
  qemu::VmSpec spec{.config = loaded.config.hypervisor,
                    .sandbox_id = absl::StrCat("check-", ::getpid()),
                    .accelerator = accelerator,
                    .host_memory_mib = *memory,
                    .socket_base = socket_base};
  absl::Time start = absl::Now();
  absl::StatusOr<qemu::RunningVm> vm = qemu::StartVm(spec);
  if (!vm.ok()) return {CheckLevel::kFail, "boot", std::string(vm.status().message())};
  absl::Duration qmp_ready = absl::Now() - start;
  absl::StatusOr<AgentClient> agent =
      AgentClient::Connect(vm->agent_socket(), absl::Now() + absl::Seconds(60));
  absl::Duration guest_ready = absl::Now() - start;
  const std::string kernel = agent.ok() ? agent->hello().kernel : "";
  const std::string agent_error(agent.status().message());
  agent = absl::CancelledError();  // let go of the agent socket before QEMU is stopped
  absl::Status stopped = qemu::StopVm(*vm);
  if (kernel.empty()) return {CheckLevel::kFail, "boot", agent_error};
  if (!stopped.ok()) return {CheckLevel::kFail, "boot", std::string(stopped.message())};
  auto ms = [](absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d), " ms"); };
  return {CheckLevel::kOk, "boot",
          absl::StrCat("a sandbox VM (", accelerator == "kvm" ? "KVM" : "TCG",
                       ") answered on QMP in ", ms(qmp_ready), " and its guest agent (", kernel,
                       ") answered in ", ms(guest_ready), "; stopped and removed")};
}

std::vector<CheckResult> CheckHost(const LoadedConfig& loaded, const HostPaths& paths,
                                   const CheckOptions& options) {
  std::vector<CheckResult> out;
  const config::QemuConfig& q = loaded.config.hypervisor;
  out.push_back(
      {CheckLevel::kInfo, "configuration", absl::StrCat(loaded.file, " (", loaded.via, ")")});

  std::vector<std::string> file_problems = CheckConfigFiles(loaded);
  for (const std::string& p : file_problems) out.push_back({CheckLevel::kFail, "files", p});

  std::string error;
  if (::access(q.path.c_str(), X_OK) == 0) {
    std::string version = QemuVersion(q.path, &error);
    if (version.empty()) {
      out.push_back({CheckLevel::kFail, "qemu", error});
    } else {
      out.push_back({CheckLevel::kOk, "qemu", absl::StrCat(q.path, " (QEMU ", version, ")")});
    }
  }
  for (auto [name, path] : {std::pair<const char*, const std::string*>{"kernel", &q.kernel},
                            {"initrd", &q.initrd},
                            {"image", &q.image}}) {
    if (!path->empty() && ::access(path->c_str(), R_OK) == 0) {
      out.push_back({CheckLevel::kOk, name, *path});
    }
  }
  if (q.shared_fs == "virtio-fs" && ::access(q.virtio_fs_daemon.c_str(), X_OK) == 0) {
    out.push_back({CheckLevel::kOk, "virtiofsd", q.virtio_fs_daemon});
  }

  std::string accelerator = "tcg";
  absl::StatusOr<Accelerator> accel = ResolveAccelerator(q, paths.kvm);
  if (accel.ok()) {
    out.push_back({CheckLevel::kOk, "accelerator", accel->how});
    accelerator = accel->name;
  } else {
    out.push_back({CheckLevel::kFail, "accelerator", std::string(accel.status().message())});
  }

  bool vsock = ::access(paths.vhost_vsock.c_str(), F_OK) == 0;
  if (q.use_vsock && !vsock) {
    out.push_back({CheckLevel::kFail, "vhost-vsock",
                   absl::StrCat(paths.vhost_vsock, " is absent but use_vsock = true")});
  } else {
    out.push_back(
        {CheckLevel::kInfo, "vhost-vsock",
         vsock ? absl::StrCat(paths.vhost_vsock, " present")
               : absl::StrCat(paths.vhost_vsock, " absent: the agent channel is virtio-serial")});
  }
  bool vhost_net = ::access(paths.vhost_net.c_str(), F_OK) == 0;
  out.push_back(
      {CheckLevel::kInfo, "vhost-net",
       vhost_net ? absl::StrCat(paths.vhost_net, " present")
                 : absl::StrCat(paths.vhost_net, " absent: network devices run without vhost")});
  out.push_back(PodNetworkCheck(loaded.config.runtime.internetworking_model));
  out.push_back(ConfinementCheck(loaded.config.hypervisor.hypervisor_user));
  out.push_back(SelinuxCheck());

  std::string layout = CgroupLayout(paths.cgroup_root);
  if (layout.empty()) {
    out.push_back({CheckLevel::kFail, "cgroups",
                   absl::StrCat("no cgroup hierarchy found at ", paths.cgroup_root)});
  } else {
    out.push_back({CheckLevel::kOk, "cgroups", absl::StrCat(layout, " at ", paths.cgroup_root)});
  }
  if (options.boot) {
    bool failed = false;
    for (const CheckResult& r : out) failed |= r.level == CheckLevel::kFail;
    if (failed) {
      out.push_back({CheckLevel::kInfo, "boot", "not attempted: the checks above failed"});
    } else {
      out.push_back(BootCheck(loaded, accelerator, options.socket_base));
    }
  }
  return out;
}

bool RenderCheck(const std::vector<CheckResult>& results, std::string* out) {
  bool pass = true;
  for (CheckResult r : results) {
    // One line per check: a helper's multi-line error text is folded.
    absl::StrReplaceAll({{"\n", "; "}}, &r.detail);
    const char* tag = r.level == CheckLevel::kOk     ? "ok  "
                      : r.level == CheckLevel::kInfo ? "info"
                                                     : "FAIL";
    pass &= r.level != CheckLevel::kFail;
    absl::StrAppend(out, tag, "  ", r.name, ": ", r.detail, "\n");
  }
  absl::StrAppend(out, pass ? "This host can run runvm sandboxes.\n"
                            : "This host cannot run runvm sandboxes; see the FAIL lines.\n");
  return pass;
}

}  // namespace runvm
