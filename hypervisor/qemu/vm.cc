#include "hypervisor/qemu/vm.h"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>

#include <nettle/sha2.h>

extern char** environ;

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/deadline.h"
#include "base/failpoint.h"
#include "base/file.h"
#include "base/process.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "hypervisor/qemu/command_line.h"
#include "hypervisor/qmp/client.h"

namespace runvm::qemu {
namespace {

constexpr char kQemuStderr[] = "qemu.stderr";
constexpr char kVirtiofsdLog[] = "virtiofsd.log";
// The longest name a socket in the run directory has.
constexpr char kLongestSocket[] = "/qmp-events.sock";
// A run directory is named by this many bytes of its sandbox id's SHA-256, in hex (RunDirFor).
constexpr size_t kRunDirDigestBytes = 16;
// The shared directory's two views (MakeSharedDirectory).
constexpr char kSharedDir[] = "shared";
constexpr char kGuestView[] = "view";

// The last part of a log file, for error messages: QEMU's own words.
std::string LogTail(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, 1 << 20);
  if (!text.ok()) return "";
  std::string t(absl::StripAsciiWhitespace(*text));
  if (t.size() > 800) t = "..." + t.substr(t.size() - 800);
  return t;
}

absl::StatusOr<std::string> NewUuid() {
  ASSIGN_OR_RETURN(std::string u, ReadFile("/proc/sys/kernel/random/uuid", 64));
  return std::string(absl::StripAsciiWhitespace(u));
}

std::string VirtiofsCacheMode(const std::string& kata) { return kata == "never" ? "none" : kata; }

absl::Status CheckReadable(absl::string_view key, const std::string& path) {
  if (path.empty() || ::access(path.c_str(), R_OK) == 0) return absl::OkStatus();
  return ErrnoError(absl::StrCat("hypervisor.qemu.", key, " ", path));
}

// The mount points at or below `dir` (from /proc/self/mountinfo, octal escapes decoded).
std::vector<std::string> MountsBelow(const std::string& dir) {
  std::vector<std::string> found;
  absl::StatusOr<std::string> info = ReadFile("/proc/self/mountinfo", 8 << 20);
  if (!info.ok()) return found;
  for (absl::string_view line : absl::StrSplit(*info, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 5) continue;
    const std::string point = UnescapeMountPath(f[4]);
    if (point == dir || absl::StartsWith(point, dir + "/")) found.push_back(point);
  }
  // Deepest first.
  std::sort(found.begin(), found.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return found;
}

// The shared directory, as two views of one directory (Kata's answer to CVE-2020-2026): runvm
// binds rootfs and volumes into `shared`, which only the host sees; the guest is served `view`,
// a read-only bind of it. The guest can therefore add, rename or replace no name at the top of
// the share: every name runvm creates there stays its own, whatever a hostile guest plants. A
// bind made in `shared` reaches `view` (its slave) with the flags it was made with, and from
// there virtiofsd's mount namespace (a slave of the host's).
absl::Status MakeSharedDirectory(const std::string& shared, const std::string& view) {
  for (const std::string& dir : {shared, view}) {
    if (::mkdir(dir.c_str(), 0700) != 0) return ErrnoError("mkdir " + dir);
  }
  // A shared mount of its own: with / private (as here) nothing bound into it after virtiofsd
  // started would reach virtiofsd.
  if (::mount(shared.c_str(), shared.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
      ::mount(nullptr, shared.c_str(), nullptr, MS_SHARED, nullptr) != 0) {
    return ErrnoError("make " + shared + " a shared mount");
  }
  if (::mount(shared.c_str(), view.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
      ::mount(nullptr, view.c_str(), nullptr, MS_SLAVE, nullptr) != 0 ||
      ::mount(nullptr, view.c_str(), nullptr,
              MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    return ErrnoError("make " + view + " a read-only view of " + shared);
  }
  return absl::OkStatus();
}

// Removes a run directory, after unmounting whatever is mounted in it (the shared directory,
// container rootfs bound into it). Never removes through a mount: if one stays, so does the tree.
void RemoveTree(const std::string& dir) {
  for (const std::string& point : MountsBelow(dir)) {
    ::umount2(point.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
  }
  if (!MountsBelow(dir).empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Stops one process by identity: optional polite step done by the caller, then SIGTERM/SIGKILL.
absl::Status EndProcess(const ProcessIdentity& id, absl::Duration grace, const char* what) {
  absl::StatusOr<Fd> pidfd = OpenVerifiedPidfd(id);
  if (!pidfd.ok()) return absl::OkStatus();  // gone, or the pid is someone else's now
  if (WaitPidfdExit(pidfd->get(), id.pid, absl::Now() + grace)) return absl::OkStatus();
  RETURN_IF_ERROR(SignalPidfd(pidfd->get(), SIGKILL));
  if (!WaitPidfdExit(pidfd->get(), id.pid, absl::Now() + absl::Seconds(5))) {
    return absl::InternalError(absl::StrCat(what, " (pid ", id.pid, ") survived SIGKILL"));
  }
  return absl::OkStatus();
}

// Forks the watcher: detached, holding nothing but the two pidfds (so no pipe or socket of the
// caller stays open through it). Only async-signal-safe calls after fork.
absl::StatusOr<ProcessIdentity> StartWatcher(const ProcessIdentity& qemu_id,
                                             const ProcessIdentity& virtiofsd_id) {
  ASSIGN_OR_RETURN(Fd qemu_fd, OpenVerifiedPidfd(qemu_id));
  ASSIGN_OR_RETURN(Fd fs_fd, OpenVerifiedPidfd(virtiofsd_id));
  ASSIGN_OR_RETURN(Fd devnull, OpenFile("/dev/null", O_RDWR));
  // The child says when it has its name and descriptors, so the caller (and a leak check) never
  // sees a half-made watcher.
  ASSIGN_OR_RETURN(Pipe ready, MakePipe());
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork the virtiofsd watcher");
  if (pid == 0) {
    ::setsid();
    ::prctl(PR_SET_NAME, "runvm-watch");
    for (int std_fd = 0; std_fd <= 2; ++std_fd) ::dup2(devnull.get(), std_fd);
    // Keep the two pidfds at 3 and 4 and the ready pipe at 5, close everything else.
    int q = ::fcntl(qemu_fd.get(), F_DUPFD_CLOEXEC, 100);
    int f = ::fcntl(fs_fd.get(), F_DUPFD_CLOEXEC, 100);
    int r = ::fcntl(ready.write.get(), F_DUPFD_CLOEXEC, 100);
    ::dup2(q, 3);
    ::dup2(f, 4);
    ::dup2(r, 5);
    ::close_range(6, UINT_MAX, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    [[maybe_unused]] ssize_t n = ::write(5, "r", 1);
    ::close(5);
    pollfd p[2] = {{3, POLLIN, 0}, {4, POLLIN, 0}};
    while (::poll(p, 2, -1) < 0) {
    }
    // Whichever went first, the other goes too (a pidfd signal never reaches a successor).
    ::syscall(SYS_pidfd_send_signal, p[0].revents ? 4 : 3, SIGTERM, nullptr, 0);
    ::_exit(0);
  }
  ready.write.reset();
  char c;
  ssize_t n;
  do {
    n = ::read(ready.read.get(), &c, 1);
  } while (n < 0 && errno == EINTR);
  // pid, start time and exe do not change with the child's new name.
  return ReadProcessIdentity(pid);
}

// The caller's environment plus the sandbox's marker.
std::vector<std::string> HelperEnvironment(const std::string& run_dir) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "RUNVM_SANDBOX_DIR=") && !absl::StartsWith(*e, "RUNVM_FAILPOINT=")) {
      env.emplace_back(*e);
    }
  }
  env.push_back(HelperMarker(run_dir));
  return env;
}

}  // namespace

std::string HelperMarker(const std::string& run_dir) {
  return absl::StrCat("RUNVM_SANDBOX_DIR=", run_dir);
}

absl::StatusOr<std::vector<ProcessIdentity>> CollectStrays(const std::string& run_dir) {
  std::vector<ProcessIdentity> ended;
  absl::Status result;
  for (const ProcessIdentity& id : FindProcessesWithEnv(HelperMarker(run_dir))) {
    absl::StatusOr<Fd> pidfd = OpenVerifiedPidfd(id);
    if (!pidfd.ok()) continue;  // gone meanwhile
    result.Update(SignalPidfd(pidfd->get(), SIGKILL));
    if (!WaitPidfdExit(pidfd->get(), id.pid, absl::Now() + absl::Seconds(5))) {
      result.Update(absl::InternalError(
          absl::StrCat(id.exe, " (pid ", id.pid, ") of ", run_dir, " survived SIGKILL")));
      continue;
    }
    ended.push_back(id);
  }
  RETURN_IF_ERROR(result);
  RemoveTree(run_dir);
  return ended;
}

void RemoveSocketBaseIfEmpty(const std::string& socket_base) {
  (void)::rmdir(socket_base.c_str());  // ENOTEMPTY while another sandbox has its run directory
}

std::string RunDirFor(const std::string& socket_base, const std::string& sandbox_id) {
  // 128 bits of SHA-256: no two ids share a run directory, whoever chooses them (a 64-bit FNV
  // can be made to collide, and the holder of the other id would then lose its VM).
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, sandbox_id.size(), reinterpret_cast<const uint8_t*>(sandbox_id.data()));
  uint8_t digest[SHA256_DIGEST_SIZE];
  sha256_digest(&ctx, sizeof digest, digest);
  return absl::StrCat(socket_base, "/",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(digest), kRunDirDigestBytes)));
}

absl::Status CheckHypervisorUser(const std::string& user) {
  if (user.empty()) return absl::OkStatus();
  errno = 0;
  const passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("hypervisor.qemu.hypervisor_user \"", user,
                     "\": no such user (scripts/setup.sh makes it; \"\" keeps QEMU root)"));
  }
  if (pw->pw_uid == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("hypervisor.qemu.hypervisor_user \"", user,
                     "\" is root (uid 0): QEMU would keep every "
                     "privilege; name an unprivileged user, or \"\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> HostMemoryMib() {
  ASSIGN_OR_RETURN(std::string info, ReadFile("/proc/meminfo", 1 << 16));
  for (absl::string_view line : absl::StrSplit(info, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemTotal:")) continue;
    line = absl::StripAsciiWhitespace(line);
    int64_t kib;
    if (absl::ConsumeSuffix(&line, " kB") && absl::SimpleAtoi(line, &kib)) return kib / 1024;
  }
  return absl::InternalError("no MemTotal in /proc/meminfo");
}

absl::StatusOr<RunningVm> StartVm(const VmSpec& spec) {
  const config::QemuConfig& c = spec.config;
  RunningVm vm;
  vm.sandbox_id = spec.sandbox_id;
  vm.run_dir = RunDirFor(spec.socket_base, spec.sandbox_id);
  size_t longest = vm.run_dir.size() + strlen(kLongestSocket);
  if (longest > kMaxUnixPathBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("sandbox ", spec.sandbox_id, ": socket directory ", spec.socket_base,
                     " is too long: ", vm.run_dir, kLongestSocket, " would be ", longest,
                     " bytes, over the ", kMaxUnixPathBytes, " a unix socket path can hold"));
  }
  RETURN_IF_ERROR(CheckReadable("kernel", c.kernel));
  RETURN_IF_ERROR(CheckReadable("initrd", c.initrd));
  RETURN_IF_ERROR(CheckReadable("image", c.image));
  if (!c.image.empty()) RETURN_IF_ERROR(CheckReadable("image_loader", c.image_loader));
  if (::access(c.path.c_str(), X_OK) != 0) {
    return ErrnoError(absl::StrCat("hypervisor.qemu.path ", c.path));
  }
  if (c.shared_fs == "virtio-fs" && ::access(c.virtio_fs_daemon.c_str(), X_OK) != 0) {
    return ErrnoError(absl::StrCat("hypervisor.qemu.virtio_fs_daemon ", c.virtio_fs_daemon));
  }
  RETURN_IF_ERROR(CheckHypervisorUser(c.hypervisor_user));
  CommandLineInputs in{.sandbox_id = spec.sandbox_id,
                       .accelerator = spec.accelerator,
                       .host_memory_mib = spec.host_memory_mib,
                       .run_dir = vm.run_dir};
  if (!c.image.empty() && !c.disable_image_nvdimm) {
    struct stat st;
    if (::stat(c.image.c_str(), &st) != 0) return ErrnoError("stat image " + c.image);
    in.image_size_bytes = st.st_size;
  }
  ASSIGN_OR_RETURN(vm.uuid, NewUuid());
  vm.config = spec.config;
  vm.accelerator = spec.accelerator;
  vm.max_memory_mib = MaxMemoryMib(spec.config, spec.host_memory_mib);
  in.uuid = vm.uuid;

  // The socket base goes when its last sandbox does (RemoveSocketBaseIfEmpty): another
  // sandbox's delete may remove it between the two mkdirs, so they are tried again.
  int made = -1;
  for (int attempt = 0; attempt < 5 && made != 0; ++attempt) {
    (void)MakeDirectories(spec.socket_base, 0700);
    made = ::mkdir(vm.run_dir.c_str(), 0700);
    if (made != 0 && errno != ENOENT) break;
  }
  if (made != 0) {
    if (errno == EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat("sandbox ", spec.sandbox_id, ": its run directory ", vm.run_dir,
                       " already exists (the VM is running, or was not stopped)"));
    }
    return ErrnoError("mkdir " + vm.run_dir);
  }
  // From here on, any failure removes what was made; the Child objects kill their processes.
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      if (!dir.empty()) RemoveTree(dir);
    }
  } cleanup{vm.run_dir};
  RUNVM_FAILPOINT("vm.start.after-run-dir");

  vm.shared_dir = vm.run_dir + "/" + kSharedDir;
  RETURN_IF_ERROR(MakeSharedDirectory(vm.shared_dir, vm.run_dir + "/" + kGuestView));
  in.shared_dir = vm.run_dir + "/" + kGuestView;
  ASSIGN_OR_RETURN(std::vector<std::string> argv, BuildCommandLine(c, in));

  ASSIGN_OR_RETURN(Fd qmp, ListenUnix(vm.qmp_socket()));
  ASSIGN_OR_RETURN(Fd events, ListenUnix(vm.qmp_events_socket()));
  ASSIGN_OR_RETURN(Fd agent, ListenUnix(vm.agent_socket()));
  ASSIGN_OR_RETURN(Fd console, ListenUnix(vm.console_socket()));

  std::optional<Child> virtiofsd;
  if (c.shared_fs == "virtio-fs") {
    ASSIGN_OR_RETURN(Fd listen, ListenUnix(absl::StrCat(vm.run_dir, "/", kVirtiofsSocket)));
    ASSIGN_OR_RETURN(Fd log, OpenFile(absl::StrCat(vm.run_dir, "/", kVirtiofsdLog),
                                      O_WRONLY | O_CREAT | O_APPEND, 0600));
    SpawnOptions o{
        .argv = {c.virtio_fs_daemon, "--fd=3", "-f", "-o", absl::StrCat("source=", in.shared_dir),
                 "-o", absl::StrCat("cache=", VirtiofsCacheMode(c.virtio_fs_cache))},
        .env = HelperEnvironment(vm.run_dir),
        .new_session = true};
    for (const std::string& extra : c.virtio_fs_extra_args) o.argv.push_back(extra);
    o.fds = {{1, log.get()}, {2, log.get()}, {3, listen.get()}};
    ASSIGN_OR_RETURN(Child child, Spawn(o));
    virtiofsd = std::move(child);
    RUNVM_FAILPOINT("vm.start.after-virtiofsd-spawn");
    // Our copy closes here: if virtiofsd dies, QEMU's connect is refused instead of hanging.
  }

  ASSIGN_OR_RETURN(Fd qemu_log, OpenFile(absl::StrCat(vm.run_dir, "/", kQemuStderr),
                                         O_WRONLY | O_CREAT | O_APPEND, 0600));
  // QEMU makes the hot-plugged ports' sockets in the run directory: its own, whatever the
  // caller's umask (docs/security.md).
  SpawnOptions qo{
      .argv = argv, .env = HelperEnvironment(vm.run_dir), .new_session = true, .umask = 077};
  qo.fds = {{1, qemu_log.get()},        {2, qemu_log.get()},
            {in.qmp_fd, qmp.get()},     {in.qmp_events_fd, events.get()},
            {in.agent_fd, agent.get()}, {in.console_fd, console.get()}};
  ASSIGN_OR_RETURN(Child qemu, Spawn(qo));
  RUNVM_FAILPOINT("vm.start.after-qemu-spawn");
  qmp.reset();
  events.reset();
  agent.reset();
  console.reset();

  // Why a start failed, in the helpers' own words; virtiofsd first, since QEMU's failure to
  // reach a dead virtiofsd is only a consequence.
  auto start_failure = [&](absl::Status qmp_error) -> absl::Status {
    std::string virtiofsd_text =
        virtiofsd && virtiofsd->Wait(absl::Now() + absl::Milliseconds(200)).ok()
            ? LogTail(absl::StrCat(vm.run_dir, "/", kVirtiofsdLog))
            : "";
    absl::StatusOr<ExitStatus> exit = qemu.Wait(absl::Now() + absl::Seconds(1));
    if (exit.ok()) {
      std::string qemu_text = LogTail(absl::StrCat(vm.run_dir, "/", kQemuStderr));
      // virtiofsd also exits when QEMU goes away; it is the cause only when QEMU could not
      // reach its socket.
      if (!virtiofsd_text.empty() && absl::StrContains(qemu_text, kVirtiofsSocket)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "sandbox ", spec.sandbox_id, ": virtiofsd exited at start: ", virtiofsd_text,
            " (QEMU: ", qemu_text, ")"));
      }
      return absl::FailedPreconditionError(absl::StrCat("sandbox ", spec.sandbox_id,
                                                        ": QEMU exited at start with status ",
                                                        exit->ShellCode(), ": ", qemu_text));
    }
    if (!virtiofsd_text.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sandbox ", spec.sandbox_id, ": virtiofsd exited at start: ", virtiofsd_text));
    }
    return Annotate(qmp_error, absl::StrCat("sandbox ", spec.sandbox_id, ": QEMU did not start"));
  };

  absl::Time deadline = absl::Now() + spec.start_timeout;
  absl::StatusOr<std::unique_ptr<qmp::Client>> client =
      qmp::Client::Connect(vm.qmp_socket(), deadline);
  if (!client.ok()) return start_failure(client.status());
  RUNVM_FAILPOINT("vm.start.after-qmp-ready");

  ASSIGN_OR_RETURN(std::string pidtext, ReadFile(absl::StrCat(vm.run_dir, "/", kPidFile), 64));
  int pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(pidtext), &pid) || pid != qemu.pid()) {
    return absl::InternalError(absl::StrCat("sandbox ", spec.sandbox_id, ": QEMU's pidfile says \"",
                                            pidtext, "\", but QEMU is pid ", qemu.pid()));
  }
  ASSIGN_OR_RETURN(vm.qemu, ReadProcessIdentity(qemu.pid()));
  if (virtiofsd) {
    if (virtiofsd->Wait(absl::Now()).ok()) return start_failure(absl::OkStatus());
    ASSIGN_OR_RETURN(vm.virtiofsd, ReadProcessIdentity(virtiofsd->pid()));
  }

  // Cold setup (nothing yet: devices arrive with hotplug), then run.
  absl::Status st = (*client)->Execute("cont", nullptr, deadline).status();
  if (!st.ok()) return start_failure(st);
  RUNVM_FAILPOINT("vm.start.after-cont");

  if (virtiofsd) {
    ASSIGN_OR_RETURN(vm.watcher, StartWatcher(vm.qemu, *vm.virtiofsd));
  }
  qemu.Release();
  if (virtiofsd) virtiofsd->Release();
  cleanup.dir.clear();
  return vm;
}

absl::Status StopVm(const RunningVm& vm, absl::Duration timeout) {
  absl::Status result;
  if (IsAlive(vm.qemu)) {
    // Politely first; the pid is only ever signalled through a verified pidfd.
    auto client = qmp::Client::Connect(vm.qmp_socket(), absl::Now() + absl::Seconds(1));
    if (client.ok()) {
      (void)(*client)->Execute("quit", nullptr, absl::Now() + absl::Seconds(1));
      RUNVM_FAILPOINT("vm.stop.after-quit");
    }
    result.Update(EndProcess(vm.qemu, timeout, "QEMU"));
  }
  if (vm.virtiofsd && IsAlive(*vm.virtiofsd)) {
    // virtiofsd exits when QEMU disconnects; give it a moment, then make sure.
    absl::StatusOr<Fd> pidfd = OpenVerifiedPidfd(*vm.virtiofsd);
    if (pidfd.ok() &&
        !WaitPidfdExit(pidfd->get(), vm.virtiofsd->pid, absl::Now() + absl::Seconds(1))) {
      (void)SignalPidfd(pidfd->get(), SIGTERM);
    }
    result.Update(EndProcess(*vm.virtiofsd, absl::Seconds(2), "virtiofsd"));
  }
  // The watcher exits once QEMU and virtiofsd are gone; make sure.
  if (vm.watcher) result.Update(EndProcess(*vm.watcher, absl::Seconds(2), "the virtiofsd watcher"));
  // Reap them when they were our children (a caller that started and stops in one process).
  ::waitpid(vm.qemu.pid, nullptr, WNOHANG);
  if (vm.virtiofsd) ::waitpid(vm.virtiofsd->pid, nullptr, WNOHANG);
  if (vm.watcher) ::waitpid(vm.watcher->pid, nullptr, WNOHANG);
  RUNVM_FAILPOINT("vm.stop.before-remove");
  // Sockets and logs go only with the processes: if one survived, its state stays inspectable.
  if (!result.ok() || vm.run_dir.empty()) return result;
  return CollectStrays(vm.run_dir).status();
}

}  // namespace runvm::qemu
