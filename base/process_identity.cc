#include "base/process_identity.h"

#include <dirent.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/deadline.h"
#include "base/file.h"
#include "base/status.h"

namespace runvm {

absl::StatusOr<ProcessIdentity> ReadProcessIdentity(pid_t pid) {
  std::string dir = absl::StrCat("/proc/", pid);
  absl::StatusOr<std::string> stat = ReadFile(dir + "/stat", 4096);
  if (!stat.ok()) return absl::NotFoundError(absl::StrCat("process ", pid, " does not exist"));
  // The command name (field 2) may hold spaces and parentheses: fields follow the last ')'.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) {
    return absl::InternalError(absl::StrCat("unreadable ", dir, "/stat"));
  }
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(*stat).substr(close + 2), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state); field 22 (starttime) is f[19].
  if (f.size() < 20) return absl::InternalError(absl::StrCat("short ", dir, "/stat"));
  if (f[0] == "Z" || f[0] == "X") {
    return absl::NotFoundError(absl::StrCat("process ", pid, " has exited"));
  }
  ProcessIdentity id;
  id.pid = pid;
  if (!absl::SimpleAtoi(f[19], &id.start_time)) {
    return absl::InternalError(absl::StrCat("bad start time in ", dir, "/stat"));
  }
  char exe[PATH_MAX];
  ssize_t n = ::readlink((dir + "/exe").c_str(), exe, sizeof exe - 1);
  if (n > 0) id.exe.assign(exe, static_cast<size_t>(n));
  // A binary replaced while it runs (a package upgrade of runvm or QEMU) reads "<path> (deleted)";
  // the process is still the same one (pid and start time say so), so the identity must be too.
  constexpr absl::string_view kDeleted = " (deleted)";
  if (absl::EndsWith(id.exe, kDeleted)) id.exe.resize(id.exe.size() - kDeleted.size());
  return id;
}

bool IsAlive(const ProcessIdentity& id) {
  if (id.pid <= 0) return false;
  absl::StatusOr<ProcessIdentity> now = ReadProcessIdentity(id.pid);
  return now.ok() && *now == id;
}

absl::StatusOr<Fd> OpenVerifiedPidfd(const ProcessIdentity& id) {
  if (id.pid <= 0) return absl::NotFoundError("no process recorded");
  Fd fd(static_cast<int>(::syscall(SYS_pidfd_open, id.pid, 0)));
  if (!fd.valid()) {
    if (errno == ESRCH) return absl::NotFoundError(absl::StrCat("process ", id.pid, " has exited"));
    return ErrnoError(absl::StrCat("pidfd_open ", id.pid));
  }
  if (!IsAlive(id)) {
    return absl::NotFoundError(absl::StrCat("process ", id.pid, " (", id.exe,
                                            ") has exited; its pid now belongs to another process "
                                            "or none"));
  }
  return fd;
}

std::vector<ProcessIdentity> FindProcessesWithEnv(absl::string_view entry) {
  std::vector<ProcessIdentity> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(proc)) {
    pid_t pid;
    if (!absl::SimpleAtoi(e->d_name, &pid) || pid == self) continue;
    absl::StatusOr<std::string> env = ReadFile(absl::StrCat("/proc/", pid, "/environ"), 1 << 20);
    if (!env.ok()) continue;
    for (absl::string_view var : absl::StrSplit(*env, '\0')) {
      if (var != entry) continue;
      absl::StatusOr<ProcessIdentity> id = ReadProcessIdentity(pid);
      if (id.ok()) found.push_back(*std::move(id));
      break;
    }
  }
  ::closedir(proc);
  return found;
}

bool WaitPidfdExit(int pidfd, pid_t pid, absl::Time deadline) {
  for (;;) {
    pollfd p{pidfd, POLLIN, 0};
    int r = ::poll(&p, 1, PollTimeoutMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) {
      ::waitpid(pid, nullptr, WNOHANG);  // reap it when it is our child; ECHILD otherwise
      return true;
    }
    return false;
  }
}

absl::Status SignalPidfd(int pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0 && errno != ESRCH) {
    return ErrnoError(absl::StrCat("send signal ", sig));
  }
  return absl::OkStatus();
}

}  // namespace runvm
