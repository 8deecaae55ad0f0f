#include "runtime/oci/containers.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/digest.h"
#include "base/failpoint.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "hypervisor/qemu/vm.h"
#include "nlohmann/json.hpp"
#include "persist/fields.h"
#include "proto/agent_protocol.h"
#include "proto/oci_spec.h"
#include "runtime/config/annotations.h"
#include "runtime/host/cgroups.h"
#include "runtime/host/check.h"
#include "runtime/oci/pod.h"
#include "runtime/sandbox/agent_client.h"
#include "runtime/sandbox/store.h"

extern char** environ;

namespace runvm {
namespace {

using Json = nlohmann::json;

constexpr char kRecordName[] = "container.json";
constexpr char kOciVersion[] = "1.0.2";
constexpr absl::Duration kAgentTimeout = absl::Seconds(30);
constexpr absl::Duration kShimReadyTimeout = absl::Seconds(10);

std::string Key(const std::string& id) { return id + "/" + kRecordName; }

// The virtio-serial port of a container's or an exec's stdio ("<id>" or "<id>/<exec id>"): a
// digest, so that its length does not depend on the id's (engines use 64 hex digits and more).
std::string StdioPortName(const std::string& process) { return "io-" + ShortDigest(process); }

std::string Now() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", absl::Now(), absl::UTCTimeZone());
}

absl::Status NotExist(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("container ", id, " does not exist"));
}

// runc's text, which containerd maps to NotFound on kill.
constexpr char kNotRunning[] = "container not running";
absl::Status NotRunning() { return absl::FailedPreconditionError(kNotRunning); }
bool IsNotRunning(const absl::Status& st) {
  return absl::IsFailedPrecondition(st) && st.message() == kNotRunning;
}

// The status as it is now: a created or running container whose shim has gone has stopped.
std::string LiveStatus(const ContainerRecord& r) {
  if (r.status == kOciCreated || r.status == kOciRunning || r.status == kOciPaused) {
    return r.shim && IsAlive(*r.shim) ? r.status : kOciStopped;
  }
  // A create that is not in progress (the lock was free) was interrupted: nothing runs.
  return kOciStopped;
}

bool IsBindMount(const oci::Mount& m) {
  if (m.type == "bind") return true;
  for (const std::string& o : m.options) {
    if (o == "bind" || o == "rbind") return true;
  }
  return false;
}

bool HasOption(const oci::Mount& m, absl::string_view option) {
  for (const std::string& o : m.options) {
    if (o == option) return true;
  }
  return false;
}

// Binds `source` (a directory or a file) at `target` in the shared directory. Read-only binds are
// made read-only before they are attached (open_tree, mount_setattr, move_mount), so that the
// copy the shared directory's propagation gives virtiofsd is read-only as well: a remount after
// the fact would not propagate.
absl::Status BindInto(const std::string& source, const std::string& target, bool readonly) {
  struct stat st;
  if (::stat(source.c_str(), &st) != 0) return ErrnoError(absl::StrCat("stat ", source));
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError(absl::StrCat("mkdir ", target));
    }
  } else {
    Fd f(::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    if (!f.valid()) return ErrnoError(absl::StrCat("create ", target));
  }
  if (!readonly) {
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      return ErrnoError(absl::StrCat("bind ", source, " at ", target));
    }
    return absl::OkStatus();
  }
  Fd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, source.c_str(),
                                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
  if (!tree.valid()) return ErrnoError(absl::StrCat("open_tree ", source));
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                sizeof attr) != 0) {
    return ErrnoError(absl::StrCat("make the bind of ", source, " read-only"));
  }
  if (::syscall(SYS_move_mount, tree.get(), "", AT_FDCWD, target.c_str(),
                MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return ErrnoError(absl::StrCat("attach the bind of ", source, " at ", target));
  }
  return absl::OkStatus();
}

// Makes the bind at `target` (and every mount below it) read-only, without following a symlink
// at `target` itself.
absl::Status MakeReadOnly(const std::string& target) {
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::syscall(SYS_mount_setattr, AT_FDCWD, target.c_str(), AT_RECURSIVE | AT_SYMLINK_NOFOLLOW,
                &attr, sizeof attr) != 0) {
    return ErrnoError(absl::StrCat("make ", target, " read-only"));
  }
  return absl::OkStatus();
}

// The container's record and its sandbox, opened for a change (the sandbox's lock is held).
struct Opened {
  std::unique_ptr<Sandbox> sandbox;
  ContainerRecord record;
};

class Session {
 public:
  explicit Session(const ContainersOptions& o)
      : sandboxes_({.root = o.root, .lock_wait = o.lock_wait}) {}

  SandboxStore& sandboxes() { return sandboxes_; }

  absl::Status Save(const ContainerRecord& r) {
    return sandboxes_.records().Save(Key(r.id), kContainerFormat, kContainerVersion,
                                     ContainerToJson(r));
  }

  absl::StatusOr<ContainerRecord> Load(const std::string& id) {
    absl::StatusOr<Json> j =
        sandboxes_.records().Load(Key(id), kContainerFormat, kContainerVersion);
    if (absl::IsNotFound(j.status())) return NotExist(id);
    if (!j.ok()) return j.status();
    absl::StatusOr<ContainerRecord> r = ContainerFromJson(*j);
    if (!r.ok()) return Annotate(r.status(), sandboxes_.records().PathOf(Key(id)));
    return r;
  }

  // Locks the sandbox the container runs in and loads both records. A pod member whose
  // sandbox has gone is not running.
  absl::StatusOr<Opened> Open(const std::string& id, absl::string_view purpose,
                              bool connect = false) {
    RETURN_IF_ERROR(ValidateSandboxId(id));
    if (::access(sandboxes_.Dir(id).c_str(), F_OK) != 0) return NotExist(id);
    // Which sandbox: read without its lock (records are replaced atomically), then again
    // under it.
    ASSIGN_OR_RETURN(ContainerRecord first, Load(id));
    absl::StatusOr<std::unique_ptr<Sandbox>> sb =
        sandboxes_.Open(first.sandbox_id, purpose, connect);
    if (absl::IsNotFound(sb.status())) {
      return first.sandbox_id == id ? NotExist(id) : NotRunning();
    }
    if (!sb.ok()) return sb.status();
    ASSIGN_OR_RETURN(ContainerRecord r, Load(id));
    return Opened{*std::move(sb), std::move(r)};
  }

  // Every container whose record names sandbox `sandbox_id` (read without locks: each is written
  // under that sandbox's lock, or before its container first takes it).
  std::vector<ContainerRecord> Members(const std::string& sandbox_id) {
    std::vector<ContainerRecord> out;
    absl::StatusOr<std::vector<std::string>> names = sandboxes_.records().List("");
    if (!names.ok()) return out;
    for (const std::string& name : *names) {
      if (name.front() == '.') continue;
      absl::StatusOr<ContainerRecord> r = Load(name);
      if (r.ok() && r->sandbox_id == sandbox_id) out.push_back(*std::move(r));
    }
    return out;
  }

  absl::StatusOr<AgentClient> Agent(Sandbox& sb) {
    const SandboxRecord& s = sb.record();
    if (s.status != kRunning || !s.vm) {
      return absl::FailedPreconditionError(
          absl::StrCat("sandbox ", s.id, " is not running", s.note.empty() ? "" : ": ", s.note));
    }
    return AgentClient::Connect(s.vm->agent_socket(), absl::Now() + kAgentTimeout);
  }

  // Asks the agent about a container that has not stopped; NotRunning() when it has, also when
  // it stopped between the check here and the agent's.
  absl::StatusOr<agent_proto::Message> AskLive(Opened& o, agent_proto::Message request) {
    if (LiveStatus(o.record) == kOciStopped) return NotRunning();
    if (o.record.vm_paused && request.type != agent_proto::kResume) {
      return absl::FailedPreconditionError(
          absl::StrCat("container ", o.record.id, " is paused with its VM: resume it first"));
    }
    ASSIGN_OR_RETURN(AgentClient agent, Agent(*o.sandbox));
    absl::StatusOr<agent_proto::Message> reply =
        agent.Call(std::move(request), absl::Now() + kAgentTimeout);
    if (!reply.ok() && absl::StrContains(reply.status().message(), "is not running")) {
      return NotRunning();
    }
    return reply;
  }

 private:
  SandboxStore sandboxes_;
};

absl::StatusOr<oci::Spec> ReadBundle(const std::string& bundle) {
  const std::string path = bundle + "/config.json";
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return Annotate(text.status(), "bundle");
  absl::StatusOr<oci::Spec> spec = oci::ParseSpec(*text);
  if (!spec.ok()) return Annotate(spec.status(), path);
  if (absl::Status st = spec->Validate(); !st.ok()) return Annotate(st, path);
  return spec;
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) return path;
  std::string out = p.lexically_normal().string();  // "/b/." becomes "/b/"
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// The shim: this binary again, holding our fds 0-2, marked as one of the sandbox's helpers;
// returned once it is connected to the process's port (and has sent the terminal's master).
absl::StatusOr<Child> SpawnShim(const ContainersOptions& options, const std::string& name,
                                const std::string& port_socket, const std::string& console_socket,
                                bool detach, const std::string& run_dir) {
  ASSIGN_OR_RETURN(Pipe ready, MakePipe());
  SpawnOptions so{.argv = {options.self_exe}};
  for (const std::string& flag : options.shim_flags) so.argv.push_back(flag);
  for (const char* arg : {"shim", "--port", port_socket.c_str(), "--ready-fd", "3"}) {
    so.argv.push_back(arg);
  }
  if (!console_socket.empty()) {
    so.argv.insert(so.argv.end(), {"--console-socket", Absolute(console_socket)});
  }
  so.argv.push_back(name);
  // With a terminal the process's stdio is the pty sent over the console socket, and the
  // caller's own stdio is not kept (as runc): an engine that reads create's output to its end
  // (go-runc, a shell's $(...)) sees it close when create exits. The shim's own words go to
  // --log.
  so.fds = {{3, ready.write.get()}};
  if (console_socket.empty()) so.fds.insert({{0, 0}, {1, 1}, {2, 2}});
  so.env.emplace();
  for (char** e = environ; *e != nullptr; ++e) so.env->push_back(*e);
  so.env->push_back(qemu::HelperMarker(run_dir));
  so.new_session = detach;
  ASSIGN_OR_RETURN(Child child, Spawn(so));
  ready.write.reset();
  ASSIGN_OR_RETURN(std::string said,
                   ReadToEnd(ready.read.get(), 4096, absl::Now() + kShimReadyTimeout));
  if (said != "ok") {
    return absl::InternalError(said.empty() ? "the shim exited before it was ready" : said);
  }
  return child;
}

}  // namespace

// ---- the record ----

Json ContainerToJson(const ContainerRecord& r) {
  Json j = Json::object();
  j["id"] = r.id;
  j["sandbox_id"] = r.sandbox_id;
  j["bundle"] = r.bundle;
  j["rootfs"] = r.rootfs;
  j["created"] = r.created;
  j["status"] = r.status;
  j["annotations"] = r.annotations;
  j["shares"] = r.shares;
  j["port_device"] = r.port_device;
  j["shim"] = r.shim ? persist::IdentityToJson(*r.shim) : Json(nullptr);
  j["guest_pid"] = r.guest_pid;
  Json execs = Json::array();
  for (const ExecRecord& e : r.execs) {
    execs.push_back({{"id", e.id},
                     {"port_device", e.port_device},
                     {"shim", e.shim ? persist::IdentityToJson(*e.shim) : Json(nullptr)}});
  }
  j["execs"] = std::move(execs);
  j["resources"] = Json::parse(oci::ResourcesToJson(r.resources));
  j["vm_paused"] = r.vm_paused;
  j["cgroup"] = r.cgroup;
  j["sandbox_cgroup_only"] = r.sandbox_cgroup_only;
  j["host_cgroups"] = r.host_cgroups;
  return j;
}

absl::StatusOr<ContainerRecord> ContainerFromJson(const Json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("container record: not an object");
  const persist::Fields f(j, "container record");
  ContainerRecord r;
  for (auto [field, out] : {std::pair<const char*, std::string*>{"id", &r.id},
                            {"sandbox_id", &r.sandbox_id},
                            {"bundle", &r.bundle},
                            {"rootfs", &r.rootfs},
                            {"created", &r.created},
                            {"status", &r.status},
                            {"port_device", &r.port_device}}) {
    ASSIGN_OR_RETURN(*out, f.String(field));
  }
  if (r.status != kOciCreating && r.status != kOciCreated && r.status != kOciRunning &&
      r.status != kOciPaused && r.status != kOciStopped) {
    return absl::InvalidArgumentError(
        absl::StrCat("container record: status \"", r.status,
                     "\" is not creating, created, running, paused or stopped"));
  }
  ASSIGN_OR_RETURN(r.annotations, f.StringMap("annotations"));
  ASSIGN_OR_RETURN(r.shares, f.Strings("shares"));
  ASSIGN_OR_RETURN(r.shim, f.OptionalIdentity("shim"));
  ASSIGN_OR_RETURN(r.guest_pid, f.Int("guest_pid"));
  auto execs = j.find("execs");
  if (execs != j.end()) {
    if (!execs->is_array()) return f.Missing("execs", "a list");
    for (const Json& e : *execs) {
      if (!e.is_object()) return f.Missing("execs[]", "an object");
      const persist::Fields ef(e, "container record: execs[]");
      ExecRecord x;
      ASSIGN_OR_RETURN(x.id, ef.String("id"));
      ASSIGN_OR_RETURN(x.port_device, ef.String("port_device"));
      ASSIGN_OR_RETURN(x.shim, ef.OptionalIdentity("shim"));
      r.execs.push_back(std::move(x));
    }
  }
  // Records written before pods (issue 8) have neither.
  if (auto res = j.find("resources"); res != j.end()) {
    absl::StatusOr<oci::Resources> parsed = oci::ParseResources(res->dump());
    if (!parsed.ok()) return Annotate(parsed.status(), "container record");
    r.resources = *std::move(parsed);
  }
  for (auto [field, out] : {std::pair<const char*, bool*>{"vm_paused", &r.vm_paused},
                            {"sandbox_cgroup_only", &r.sandbox_cgroup_only}}) {
    if (j.contains(field)) {
      ASSIGN_OR_RETURN(*out, f.Bool(field));
    }
  }
  if (j.contains("cgroup")) {
    ASSIGN_OR_RETURN(r.cgroup, f.String("cgroup"));
  }
  if (j.contains("host_cgroups")) {
    ASSIGN_OR_RETURN(r.host_cgroups, f.Strings("host_cgroups"));
  }
  return r;
}

std::string OciStateJson(const OciState& s) { return OciStateToJson(s).dump(2); }

nlohmann::ordered_json OciStateToJson(const OciState& s) {
  nlohmann::ordered_json j;
  j["ociVersion"] = kOciVersion;
  j["id"] = s.id;
  j["pid"] = s.pid;
  j["status"] = s.status;
  j["bundle"] = s.bundle;
  j["rootfs"] = s.rootfs;
  j["created"] = s.created;
  j["owner"] = s.owner;
  j["annotations"] = s.annotations;
  return j;
}

absl::StatusOr<int> ParseSignal(const std::string& text) {
  int number = 0;
  if (absl::SimpleAtoi(text, &number)) {
    if (number > 0 && number <= SIGRTMAX) return number;
    return absl::InvalidArgumentError(absl::StrCat("invalid signal \"", text, "\""));
  }
  std::string name = absl::AsciiStrToUpper(text);
  if (absl::StartsWith(name, "SIG")) name = name.substr(3);
  static const std::pair<const char*, int> kSignals[] = {
      {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
      {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
      {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
      {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
      {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
      {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
      {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
      {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},
      {"SYS", SIGSYS}};
  for (const auto& [n, value] : kSignals) {
    if (name == n) return value;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown signal \"", text, "\""));
}

// ---- the lifecycle ----

namespace {

// ---- host cgroups (runtime/host/cgroups.h) ----

std::string ParentOf(const std::string& path) { return path.substr(0, path.rfind('/')); }
std::string BaseOf(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// Decides where the processes of a container that owns its VM go, records it in `r` (with the
// cgroups that will have to be made), and returns where QEMU and its helpers go.
std::string PlaceOwner(const HostCgroups& cg, const std::string& path, bool only,
                       ContainerRecord& r) {
  if (path.empty()) return "";
  std::string vmm;
  if (only) {
    r.cgroup = vmm = ParentOf(path) + "/runvm_" + r.id;
  } else {
    r.cgroup = ParentOf(path) + "/runvm_" + BaseOf(path);
    // Under v1 only the vCPU threads join the pod's cgroup (PlaceVcpus); v2 cannot split them.
    vmm = cg.unified() ? r.cgroup : "/runvm_overhead/" + r.id;
  }
  r.sandbox_cgroup_only = only;
  for (const std::string& c : {vmm, r.cgroup}) {
    for (std::string& m : cg.Missing(c)) {
      if (std::find(r.host_cgroups.begin(), r.host_cgroups.end(), m) == r.host_cgroups.end()) {
        r.host_cgroups.push_back(std::move(m));
      }
    }
  }
  return vmm;
}

// Removes the host cgroups a container made (its processes have ended).
absl::Status RemoveCgroups(const ContainerRecord& r) {
  if (r.host_cgroups.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
  return cg.Remove(r.host_cgroups);
}

// Puts a process into the container's cgroup, if it has one.
absl::Status JoinCgroup(const std::string& cgroup, pid_t pid) {
  if (cgroup.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
  return cg.Join(cgroup, pid);
}

// sandbox_cgroup_only = false under cgroup v1: the VM's vCPU threads (new ones too, after a
// vCPU plug) go to the cgroup of the container that owns the VM, the rest of QEMU stays out.
absl::Status PlaceVcpus(Session& s, Sandbox& sb) {
  absl::StatusOr<ContainerRecord> owner = s.Load(sb.record().id);
  if (!owner.ok() || owner->sandbox_cgroup_only || owner->cgroup.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
  if (cg.unified()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<int> threads, sb.VcpuThreads());
  for (int tid : threads) RETURN_IF_ERROR(cg.JoinThread(owner->cgroup, tid));
  return absl::OkStatus();
}

// Grows the sandbox's VM to what its containers need (runtime/oci/pod.h), `id` counted with
// `resources` instead of what its record says. Checked before anything changes.
absl::Status Grow(Session& s, Sandbox& sb, const std::string& id, const oci::Resources& resources) {
  const qemu::RunningVm& vm = *sb.record().vm;
  std::vector<oci::Resources> all = {resources};
  for (const ContainerRecord& m : s.Members(sb.record().id)) {
    if (m.id != id) all.push_back(m.resources);
  }
  const VmSize want = PodSize(vm, all);
  RETURN_IF_ERROR(CheckFits(want, vm, "container " + id));
  const VmSize have = CurrentSize(vm);
  if (want.vcpus <= have.vcpus && want.memory_mib <= have.memory_mib) return absl::OkStatus();
  ASSIGN_OR_RETURN(qemu::Hotplug * hp, sb.hotplug());
  if (want.vcpus > have.vcpus) {
    absl::StatusOr<qemu::VcpuResult> added = hp->AddVcpus(want.vcpus - have.vcpus);
    RETURN_IF_ERROR(sb.Save());
    RETURN_IF_ERROR(added.status());
    RETURN_IF_ERROR(PlaceVcpus(s, sb));
  }
  if (want.memory_mib > have.memory_mib) {
    absl::StatusOr<qemu::MemoryResult> added = hp->AddMemory(want.memory_mib - have.memory_mib);
    RETURN_IF_ERROR(sb.Save());
    RETURN_IF_ERROR(added.status());
  }
  return absl::OkStatus();
}

// Ends a shim (or an exec's) that still runs: the one whose identity the record holds.
void EndShim(const std::optional<ProcessIdentity>& shim) {
  if (!shim) return;
  absl::StatusOr<Fd> pidfd = OpenVerifiedPidfd(*shim);
  if (!pidfd.ok()) return;
  (void)SignalPidfd(pidfd->get(), SIGKILL);
  (void)WaitPidfdExit(pidfd->get(), shim->pid, absl::Now() + absl::Seconds(5));
}

// Undoes what a pod member added to its sandbox (its processes in the guest, shims, ports,
// shares) and removes its record. Each step tolerates having been done already, so a delete
// killed half way is finished by the next. The VM keeps its size (runtime/oci/pod.h).
absl::Status RemoveMember(Session& s, const std::string& id, bool force) {
  absl::StatusOr<ContainerRecord> first = s.Load(id);
  if (!first.ok()) {
    // Unreadable: only a forced delete removes it, leaving whatever it had added to its sandbox
    // (unknown now) to go with the sandbox.
    if (!force) return first.status();
  } else {
    absl::StatusOr<std::unique_ptr<Sandbox>> opened =
        s.sandboxes().Open(first->sandbox_id, "delete", /*connect=*/true);
    if (opened.ok()) {
      Sandbox& sb = **opened;
      ASSIGN_OR_RETURN(ContainerRecord r, s.Load(id));
      const std::string status = LiveStatus(r);
      if (!force && (status == kOciRunning || status == kOciPaused)) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot delete container ", id, " that is not stopped: ", status));
      }
      if (sb.record().status == kRunning && sb.record().vm) {
        if (r.vm_paused) (void)sb.SetRunState(true);
        absl::StatusOr<AgentClient> agent = s.Agent(sb);
        if (agent.ok()) {
          absl::StatusOr<agent_proto::Message> destroyed =
              agent->Call({.type = agent_proto::kDestroy,
                           .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})},
                          absl::Now() + kAgentTimeout);
          if (!destroyed.ok() &&
              !absl::StrContains(destroyed.status().message(), "does not exist")) {
            return Annotate(destroyed.status(), "delete container " + id);
          }
        }
      }
      EndShim(r.shim);
      for (const ExecRecord& e : r.execs) EndShim(e.shim);
      RETURN_IF_ERROR(Annotate(RemoveCgroups(r), "delete container " + id));
      if (absl::StatusOr<qemu::Hotplug*> hp = sb.hotplug(); hp.ok()) {
        std::vector<std::string> ports = {r.port_device};
        for (const ExecRecord& e : r.execs) ports.push_back(e.port_device);
        for (const std::string& port : ports) {
          if (port.empty() || !sb.record().vm->hotplug.Find(port)) continue;
          absl::Status st = (*hp)->Remove(port);
          RETURN_IF_ERROR(sb.Save());
          RETURN_IF_ERROR(Annotate(st, absl::StrCat("delete container ", id, ": its port")));
        }
      }
      for (auto it = r.shares.rbegin(); it != r.shares.rend(); ++it) {
        if (::umount2(it->c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
          return ErrnoError(absl::StrCat("delete container ", id, ": unmount ", *it));
        }
        std::error_code ec;
        std::filesystem::remove(*it, ec);  // the mount point: an empty directory or file
      }
    } else if (!absl::IsNotFound(opened.status())) {
      return opened.status();
    }
    // A sandbox that is gone took everything the member had added with it.
  }
  std::error_code ec;
  std::filesystem::remove_all(s.sandboxes().Dir(id), ec);
  if (ec) return ErrnoError(ec.value(), "remove " + s.sandboxes().Dir(id));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Child> Containers::Create(const CreateRequest& req) {
  RETURN_IF_ERROR(ValidateSandboxId(req.id));
  const std::string bundle = Absolute(req.bundle);
  ASSIGN_OR_RETURN(oci::Spec spec, ReadBundle(bundle));
  if (spec.process.terminal && req.console_socket.empty()) {
    return absl::InvalidArgumentError(
        "cannot allocate tty if runc will detach without setting console socket");
  }
  if (!spec.process.terminal && !req.console_socket.empty()) {
    return absl::InvalidArgumentError(
        "cannot use console socket if runc will not detach or allocate tty");
  }
  const std::string rootfs = Absolute(
      absl::StartsWith(spec.root.path, "/") ? spec.root.path : bundle + "/" + spec.root.path);
  struct stat st;
  if (::stat(rootfs.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(bundle, "/config.json: root.path: ", rootfs, " is not a directory"));
  }
  ASSIGN_OR_RETURN(const PodRole role, PodRoleOf(req.id, spec.annotations));
  ASSIGN_OR_RETURN(const std::string cgroups_path,
                   ResolveCgroupsPath(spec.linux.cgroups_path, options_.systemd_cgroup));
  if (role.kind != PodRole::kMember) {
    // Said, not silently dropped: the VM's network is its own loopback until the pod's
    // namespace is carried into it.
    auto net = std::find_if(spec.linux.namespaces.begin(), spec.linux.namespaces.end(),
                            [](const oci::Namespace& ns) { return ns.type == "network"; });
    if (net == spec.linux.namespaces.end()) {
      LogWarning(absl::StrCat("container ", req.id,
                              ": its spec shares the host's network namespace, which a VM cannot;"
                              " it has the VM's loopback only"));
    } else if (!net->path.empty()) {
      LogWarning(absl::StrCat("container ", req.id, ": its network namespace ", net->path,
                              " is not carried into the VM yet; it has the VM's loopback only"));
    }
    RETURN_IF_ERROR(MapNamespaces(role, 0, spec.linux.namespaces));
  }

  Session s(options_);
  std::error_code ec;
  std::filesystem::create_directories(options_.root, ec);
  const std::string dir = s.sandboxes().Dir(req.id);
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat("container with id exists: ", req.id));
    }
    return ErrnoError(absl::StrCat("mkdir ", dir));
  }
  ContainerRecord r{.id = req.id,
                    .sandbox_id = role.sandbox_id,
                    .bundle = bundle,
                    .rootfs = rootfs,
                    .created = Now(),
                    .status = kOciCreating,
                    .annotations = spec.annotations,
                    .resources = spec.linux.resources.value_or(oci::Resources{})};
  auto abandon = [&](absl::Status cause) {
    (void)RemoveCgroups(r);
    std::filesystem::remove_all(dir, ec);
    return cause;
  };
  if (role.kind == PodRole::kMember) {
    // The sandbox must be a pod's sandbox container that exists.
    absl::StatusOr<ContainerRecord> sandbox = s.Load(role.sandbox_id);
    if (!sandbox.ok() || sandbox->sandbox_id != role.sandbox_id ||
        ::access((s.sandboxes().Dir(role.sandbox_id) + "/sandbox.json").c_str(), F_OK) != 0) {
      return abandon(
          absl::NotFoundError(absl::StrCat("container ", req.id, ": its sandbox ", role.sandbox_id,
                                           sandbox.ok() && sandbox->sandbox_id != role.sandbox_id
                                               ? " is a container of another sandbox, not a sandbox"
                                               : " does not exist")));
    }
    // Its shim goes where the sandbox's do, or with sandbox_cgroup_only off into a cgroup of
    // its own.
    r.sandbox_cgroup_only = sandbox->sandbox_cgroup_only;
    if (sandbox->sandbox_cgroup_only || cgroups_path.empty()) {
      r.cgroup = sandbox->sandbox_cgroup_only ? sandbox->cgroup : "";
    } else {
      absl::StatusOr<HostCgroups> cg = HostCgroups::Detect();
      if (!cg.ok()) return abandon(cg.status());
      r.cgroup = ParentOf(cgroups_path) + "/runvm_" + BaseOf(cgroups_path);
      r.host_cgroups = cg->Missing(r.cgroup);
      if (absl::Status st = s.Save(r); !st.ok()) return abandon(st);
      if (absl::Status st = cg->Create(r.cgroup); !st.ok()) return abandon(st);
    }
  }
  if (absl::Status st = s.Save(r); !st.ok()) return abandon(st);
  RUNVM_FAILPOINT("container.create.after-record");

  std::string vmm_cgroup;  // where QEMU and its helpers go, for a container that owns its VM
  if (role.kind != PodRole::kMember) {
    // The sandbox VM, with the configuration the annotations allow.
    absl::StatusOr<LoadedConfig> loaded = options_.load_config();
    if (!loaded.ok()) return abandon(loaded.status());
    if (absl::Status st = ApplyAnnotations(spec.annotations, HostFactsNow(), loaded->config);
        !st.ok()) {
      return abandon(st);
    }
    for (const std::string& w : loaded->warnings) LogWarning(w);
    if (std::vector<std::string> problems = CheckConfigFiles(*loaded); !problems.empty()) {
      return abandon(absl::FailedPreconditionError(problems.front()));
    }
    if (!cgroups_path.empty()) {
      absl::StatusOr<HostCgroups> cg = HostCgroups::Detect();
      if (!cg.ok()) return abandon(cg.status());
      vmm_cgroup = PlaceOwner(*cg, cgroups_path, loaded->config.runtime.sandbox_cgroup_only, r);
      if (absl::Status st = s.Save(r); !st.ok()) return abandon(st);
      for (const std::string& c : {vmm_cgroup, r.cgroup}) {
        if (absl::Status st = cg->Create(c); !st.ok()) return abandon(st);
      }
    }
    absl::StatusOr<Accelerator> accel = ResolveAccelerator(loaded->config.hypervisor);
    if (!accel.ok()) return abandon(accel.status());
    absl::StatusOr<int64_t> host_memory = qemu::HostMemoryMib();
    if (!host_memory.ok()) return abandon(host_memory.status());
    // A failed boot removes the sandbox's directory, this record included.
    if (absl::Status st = s.sandboxes().Create({.config = loaded->config.hypervisor,
                                                .sandbox_id = req.id,
                                                .accelerator = accel->name,
                                                .host_memory_mib = *host_memory},
                                               /*wait_guest=*/true);
        !st.ok()) {
      (void)RemoveCgroups(r);
      return st;
    }
    RUNVM_FAILPOINT("container.create.after-boot");
  }

  // From here a failure deletes what was made: the sandbox, which ends and removes everything
  // below, or for a pod member what it added to its sandbox.
  absl::StatusOr<Child> shim = [&]() -> absl::StatusOr<Child> {
    ASSIGN_OR_RETURN(std::unique_ptr<Sandbox> sb, s.sandboxes().Open(r.sandbox_id, "create"));
    ASSIGN_OR_RETURN(qemu::Hotplug * hp, sb->hotplug());
    const qemu::RunningVm& vm = *sb->record().vm;
    if (role.kind == PodRole::kMember) {
      ASSIGN_OR_RETURN(ContainerRecord sandbox, s.Load(r.sandbox_id));
      if (LiveStatus(sandbox) == kOciStopped) {
        return absl::FailedPreconditionError(absl::StrCat(
            "container ", req.id, ": its sandbox container ", r.sandbox_id, " has stopped"));
      }
      RETURN_IF_ERROR(MapNamespaces(role, sandbox.guest_pid, spec.linux.namespaces));
    }
    if (!vmm_cgroup.empty()) {
      ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
      RETURN_IF_ERROR(cg.Join(vmm_cgroup, vm.qemu.pid));
      for (const auto* helper : {&vm.virtiofsd, &vm.watcher}) {
        if (*helper && IsAlive(**helper)) RETURN_IF_ERROR(cg.Join(vmm_cgroup, (*helper)->pid));
      }
      RETURN_IF_ERROR(PlaceVcpus(s, *sb));
    }
    RETURN_IF_ERROR(Grow(s, *sb, req.id, r.resources));
    // The rootfs and every bind mount's source, into the shared directory.
    const std::string guest_share = agent_proto::kGuestShareMount;
    r.shares.push_back(vm.shared_dir + "/" + req.id);
    RETURN_IF_ERROR(s.Save(r));
    // A read-only root is shared writable until the agent has made the mount points the spec
    // needs in it (as runc does before its read-only remount; containerd's snapshots are
    // writable for this reason), then made read-only on the host as well as in the guest.
    RETURN_IF_ERROR(BindInto(rootfs, r.shares.back(), /*readonly=*/false));
    for (size_t i = 0; i < spec.mounts.size(); ++i) {
      oci::Mount& m = spec.mounts[i];
      if (!IsBindMount(m) || !absl::StartsWith(m.source, "/")) continue;
      const std::string name = absl::StrCat(req.id, ".mount", i);
      r.shares.push_back(vm.shared_dir + "/" + name);
      RETURN_IF_ERROR(s.Save(r));
      if (absl::Status st = BindInto(m.source, r.shares.back(), HasOption(m, "ro")); !st.ok()) {
        return Annotate(st, absl::StrCat("mounts[", i, "] (", m.destination, ")"));
      }
      m.source = guest_share + "/" + name;
    }
    // Its stdio port, and the container in the guest.
    const std::string port_name = StdioPortName(req.id);
    absl::StatusOr<qemu::PluggedDevice> port = hp->AddSerialPort(port_name);
    RETURN_IF_ERROR(sb->Save());
    RETURN_IF_ERROR(port.status());
    r.port_device = port->id;
    RETURN_IF_ERROR(s.Save(r));
    ASSIGN_OR_RETURN(AgentClient agent, s.Agent(*sb));
    ASSIGN_OR_RETURN(agent_proto::Message reply,
                     agent.Call({.type = agent_proto::kCreateContainer,
                                 .fields = agent_proto::ToFields(agent_proto::CreateContainer{
                                     .id = req.id,
                                     .rootfs = guest_share + "/" + req.id,
                                     .spec_json = oci::SpecToJson(spec, /*indent=*/-1),
                                     .stdio_port = port_name})},
                                absl::Now() + kAgentTimeout));
    ASSIGN_OR_RETURN(agent_proto::Created created, agent_proto::CreatedFrom(reply));
    r.guest_pid = created.pid;
    if (spec.root.readonly) RETURN_IF_ERROR(MakeReadOnly(vm.shared_dir + "/" + req.id));
    RUNVM_FAILPOINT("container.create.before-shim");

    ASSIGN_OR_RETURN(Child child, SpawnShim(options_, req.id, port->source, req.console_socket,
                                            req.detach, vm.run_dir));
    RETURN_IF_ERROR(JoinCgroup(r.cgroup, child.pid()));
    ASSIGN_OR_RETURN(ProcessIdentity id, ReadProcessIdentity(child.pid()));
    r.shim = id;
    r.status = kOciCreated;
    RETURN_IF_ERROR(s.Save(r));
    if (!req.pid_file.empty()) {
      RETURN_IF_ERROR(WriteFileAtomic(Absolute(req.pid_file), absl::StrCat(child.pid()), 0644));
    }
    return child;
  }();
  if (!shim.ok()) {
    LogDebug(absl::StrCat("create ", req.id,
                          " failed, removing what it made: ", shim.status().message()));
    if (role.kind == PodRole::kMember) {
      (void)RemoveMember(s, req.id, /*force=*/true);
    } else {
      (void)s.sandboxes().Delete(req.id, /*force=*/true);
      (void)RemoveCgroups(r);
    }
  }
  return shim;
}

namespace {

std::string RandomHex() {
  absl::StatusOr<std::string> uuid = ReadFile("/proc/sys/kernel/random/uuid", 64);
  std::string hex = uuid.ok() ? *uuid : absl::StrCat(::getpid());
  hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
  return hex.substr(0, 12);
}

}  // namespace

absl::StatusOr<Child> Containers::Exec(const ExecRequest& req) {
  RETURN_IF_ERROR(ValidateSandboxId(req.id));
  Session s(options_);
  absl::StatusOr<Opened> opened = s.Open(req.id, "exec", /*connect=*/true);
  if (IsNotRunning(opened.status())) {
    return absl::FailedPreconditionError("cannot exec in a stopped container");
  }
  if (!opened.ok()) return opened.status();
  Sandbox& sb = *opened->sandbox;
  ContainerRecord& r = opened->record;
  const std::string status = LiveStatus(r);
  if (status == kOciStopped) {
    return absl::FailedPreconditionError("cannot exec in a stopped container");
  }
  if (status == kOciPaused) {
    return absl::FailedPreconditionError("cannot exec in a paused container");
  }
  ASSIGN_OR_RETURN(std::string spec_json, ExecSpec(r.bundle, req));
  ASSIGN_OR_RETURN(qemu::Hotplug * hp, sb.hotplug());
  ASSIGN_OR_RETURN(AgentClient agent, s.Agent(sb));
  const absl::Time deadline = absl::Now() + kAgentTimeout;
  // Earlier execs that have finished give their ports back (a sandbox has 30).
  for (auto it = r.execs.begin(); it != r.execs.end();) {
    if (it->shim && IsAlive(*it->shim)) {
      ++it;
      continue;
    }
    (void)agent.Call({.type = agent_proto::kDestroy,
                      .fields = agent_proto::ToFields(agent_proto::ContainerRef{it->id})},
                     deadline);
    if (absl::Status st = hp->Remove(it->port_device); !st.ok()) {
      LogWarning(absl::StrCat("exec ", it->id, ": its port stays: ", st.message()));
    }
    it = r.execs.erase(it);
  }
  RETURN_IF_ERROR(sb.Save());
  RETURN_IF_ERROR(s.Save(r));

  const std::string eid = RandomHex();
  const std::string name = req.id + "/" + eid;
  const std::string port_name = StdioPortName(name);
  absl::StatusOr<qemu::PluggedDevice> port = hp->AddSerialPort(port_name);
  RETURN_IF_ERROR(sb.Save());
  RETURN_IF_ERROR(port.status());
  r.execs.push_back({.id = name, .port_device = port->id});
  RETURN_IF_ERROR(s.Save(r));
  ASSIGN_OR_RETURN(agent_proto::Message reply,
                   agent.Call({.type = agent_proto::kExecProcess,
                               .fields = agent_proto::ToFields(agent_proto::CreateContainer{
                                   .id = name, .spec_json = spec_json, .stdio_port = port_name})},
                              deadline));
  RETURN_IF_ERROR(agent_proto::CreatedFrom(reply).status());
  ASSIGN_OR_RETURN(Child child, SpawnShim(options_, name, port->source, req.console_socket,
                                          req.detach, sb.record().vm->run_dir));
  RETURN_IF_ERROR(JoinCgroup(r.cgroup, child.pid()));
  ASSIGN_OR_RETURN(ProcessIdentity shim, ReadProcessIdentity(child.pid()));
  r.execs.back().shim = shim;
  RETURN_IF_ERROR(s.Save(r));
  if (!req.pid_file.empty()) {
    RETURN_IF_ERROR(WriteFileAtomic(Absolute(req.pid_file), absl::StrCat(child.pid()), 0644));
  }
  return child;
}

absl::Status Containers::Start(const std::string& id) {
  Session s(options_);
  ASSIGN_OR_RETURN(Opened o, s.Open(id, "start"));
  const std::string status = LiveStatus(o.record);
  if (status == kOciRunning) {
    return absl::FailedPreconditionError("cannot start an already running container");
  }
  if (status != kOciCreated) {
    return absl::FailedPreconditionError("cannot start a container that has stopped");
  }
  ASSIGN_OR_RETURN(AgentClient agent, s.Agent(*o.sandbox));
  RETURN_IF_ERROR(agent
                      .Call({.type = agent_proto::kStartContainer,
                             .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})},
                            absl::Now() + kAgentTimeout)
                      .status());
  o.record.status = kOciRunning;
  return s.Save(o.record);
}

absl::Status Containers::Kill(const std::string& id, const std::string& signal, bool all) {
  ASSIGN_OR_RETURN(int sig, ParseSignal(signal));
  Session s(options_);
  absl::StatusOr<ContainerRecord> peek = s.Load(id);
  const bool vm_paused = peek.ok() && peek->vm_paused;
  ASSIGN_OR_RETURN(Opened o, s.Open(id, "kill", /*connect=*/vm_paused));
  if (o.record.vm_paused) {
    // The VM runs again (the container stays frozen: paused), so that what the signal does
    // (a SIGKILL ends even a frozen process) reaches the shim.
    RETURN_IF_ERROR(o.sandbox->SetRunState(true));
    o.record.vm_paused = false;
    RETURN_IF_ERROR(s.Save(o.record));
  }
  absl::Status st = s.AskLive(o, {.type = agent_proto::kSignal,
                                  .fields = agent_proto::ToFields(agent_proto::SignalRequest{
                                      .id = id, .signal = sig, .all = all})})
                        .status();
  // runc: with --all, a container with nothing left to signal is no error.
  if (all && IsNotRunning(st)) return absl::OkStatus();
  return st;
}

absl::StatusOr<std::vector<agent_proto::ProcessEntry>> Containers::Processes(
    const std::string& id) {
  Session s(options_);
  ASSIGN_OR_RETURN(Opened o, s.Open(id, "ps"));
  ASSIGN_OR_RETURN(agent_proto::Message reply,
                   s.AskLive(o, {.type = agent_proto::kProcesses,
                                 .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})}));
  ASSIGN_OR_RETURN(agent_proto::ProcessList list, agent_proto::ProcessListFrom(reply));
  return list.processes;
}

absl::Status Containers::Delete(const std::string& id, bool force) {
  RETURN_IF_ERROR(ValidateSandboxId(id));
  Session s(options_);
  if (::access(s.sandboxes().Dir(id).c_str(), F_OK) != 0) {
    return force ? absl::OkStatus() : NotExist(id);
  }
  absl::StatusOr<ContainerRecord> first = s.Load(id);
  if (first.ok() && first->sandbox_id != id) return RemoveMember(s, id, force);
  {
    ASSIGN_OR_RETURN(persist::Lock lock, s.sandboxes().LockShared(id, "delete"));
    absl::StatusOr<ContainerRecord> r = s.Load(id);
    if (r.ok() && !force) {
      const std::string status = LiveStatus(*r);
      if (status == kOciRunning || status == kOciPaused) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot delete container ", id, " that is not stopped: ", status));
      }
    }
  }
  // The sandbox goes, and with it the VM, the shims (marked helpers; a pod's other containers'
  // too, whose records then say stopped), the shares and the records. A sandbox that never
  // booted (a create killed before) leaves only the directory. Then the host cgroups it made.
  absl::Status st = s.sandboxes().Delete(id, /*force=*/true);
  if (!st.ok()) return st;
  if (first.ok()) RETURN_IF_ERROR(Annotate(RemoveCgroups(*first), "delete container " + id));
  std::error_code ec;
  std::filesystem::remove_all(s.sandboxes().Dir(id), ec);
  if (ec) return ErrnoError(ec.value(), "remove " + s.sandboxes().Dir(id));
  return absl::OkStatus();
}

absl::Status Containers::Pause(const std::string& id) {
  Session s(options_);
  ASSIGN_OR_RETURN(Opened o, s.Open(id, "pause", /*connect=*/true));
  const std::string status = LiveStatus(o.record);
  if (status == kOciPaused) return absl::FailedPreconditionError("container already paused");
  if (status != kOciRunning) {
    return absl::FailedPreconditionError(absl::StrCat("container not running: ", status));
  }
  RETURN_IF_ERROR(s.AskLive(o, {.type = agent_proto::kPause,
                                .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})})
                      .status());
  // Alone in its sandbox: the whole VM stops as well, and costs the host nothing meanwhile.
  o.record.vm_paused = s.Members(o.record.sandbox_id).size() == 1;
  if (o.record.vm_paused) RETURN_IF_ERROR(o.sandbox->SetRunState(false));
  o.record.status = kOciPaused;
  return s.Save(o.record);
}

absl::Status Containers::Resume(const std::string& id) {
  Session s(options_);
  ASSIGN_OR_RETURN(Opened o, s.Open(id, "resume", /*connect=*/true));
  if (LiveStatus(o.record) != kOciPaused) {
    return absl::FailedPreconditionError("container not paused");
  }
  if (o.record.vm_paused) RETURN_IF_ERROR(o.sandbox->SetRunState(true));
  o.record.vm_paused = false;
  o.record.status = kOciRunning;
  RETURN_IF_ERROR(s.Save(o.record));
  return s
      .AskLive(o, {.type = agent_proto::kResume,
                   .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})})
      .status();
}

absl::Status Containers::Update(const std::string& id, const oci::Resources& update) {
  RETURN_IF_ERROR(update.Validate());
  Session s(options_);
  ASSIGN_OR_RETURN(Opened o, s.Open(id, "update", /*connect=*/true));
  const std::string status = LiveStatus(o.record);
  if (status == kOciStopped) return NotRunning();
  if (status == kOciPaused && o.record.vm_paused) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", id, " is paused with its VM: resume it first"));
  }
  oci::Resources merged = o.record.resources;
  merged.Merge(update);
  RETURN_IF_ERROR(merged.Validate());
  RETURN_IF_ERROR(Grow(s, *o.sandbox, id, merged));
  RETURN_IF_ERROR(s.AskLive(o, {.type = agent_proto::kUpdate,
                                .fields = agent_proto::ToFields(
                                    agent_proto::UpdateRequest{id, oci::ResourcesToJson(update)})})
                      .status());
  o.record.resources = std::move(merged);
  return s.Save(o.record);
}

absl::StatusOr<agent_proto::CgroupStats> Containers::Stats(const std::string& id, bool after_exit) {
  Session s(options_);
  ASSIGN_OR_RETURN(Opened o, s.Open(id, "stats"));
  if (o.record.vm_paused) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", id, " is paused with its VM: no figures until it resumes"));
  }
  const agent_proto::Message request = {
      .type = agent_proto::kStats, .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})};
  absl::StatusOr<agent_proto::Message> reply;
  if (after_exit && LiveStatus(o.record) == kOciStopped) {
    ASSIGN_OR_RETURN(AgentClient agent, s.Agent(*o.sandbox));
    reply = agent.Call(request, absl::Now() + kAgentTimeout);
  } else {
    reply = s.AskLive(o, request);
  }
  if (!reply.ok()) return reply.status();
  return agent_proto::CgroupStatsFrom(*reply);
}

namespace {

OciState StateOf(const ContainerRecord& r) {
  OciState out{.id = r.id,
               .status = LiveStatus(r),
               .bundle = r.bundle,
               .rootfs = r.rootfs,
               .created = r.created,
               .annotations = r.annotations};
  if (out.status != kOciStopped && r.shim) out.pid = r.shim->pid;
  return out;
}

}  // namespace

absl::StatusOr<OciState> Containers::State(const std::string& id) {
  RETURN_IF_ERROR(ValidateSandboxId(id));
  Session s(options_);
  if (::access(s.sandboxes().Dir(id).c_str(), F_OK) != 0) return NotExist(id);
  ASSIGN_OR_RETURN(persist::Lock lock, s.sandboxes().LockShared(id, "state"));
  ASSIGN_OR_RETURN(ContainerRecord r, s.Load(id));
  return StateOf(r);
}

absl::StatusOr<std::vector<OciState>> Containers::List() {
  Session s(options_);
  std::vector<OciState> out;
  ASSIGN_OR_RETURN(std::vector<std::string> names, s.sandboxes().records().List(""));
  for (const std::string& id : names) {
    if (id.front() == '.') continue;
    absl::StatusOr<Json> j =
        s.sandboxes().records().Load(Key(id), kContainerFormat, kContainerVersion);
    if (!j.ok()) continue;  // not a container (a bare sandbox), or gone meanwhile
    absl::StatusOr<ContainerRecord> r = ContainerFromJson(*j);
    if (r.ok()) out.push_back(StateOf(*r));
  }
  return out;
}

}  // namespace runvm
