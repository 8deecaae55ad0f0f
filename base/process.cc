#include "base/process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "absl/strings/str_cat.h"
#include "base/deadline.h"
#include "base/status.h"

extern char** environ;

namespace runvm {
namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

[[noreturn]] void ChildFail(int report_fd, int err) {
  // Best effort: the parent reads this errno and reports the exec failure.
  [[maybe_unused]] ssize_t n = ::write(report_fd, &err, sizeof err);
  ::_exit(127);
}

// Runs in the forked child: only async-signal-safe calls from here on.
[[noreturn]] void ExecChild(const std::vector<char*>& argv, char** envp,
                            const std::vector<std::pair<int, int>>& fds, int devnull, int report_fd,
                            bool new_session, const char* cwd, int mask) {
  if (new_session && ::setsid() < 0) ChildFail(report_fd, errno);
  if (mask >= 0) ::umask(static_cast<mode_t>(mask));
  if (cwd != nullptr && ::chdir(cwd) != 0) ChildFail(report_fd, errno);
  // Move every source above every target first, so that dup2 never clobbers a pending source.
  int max_target = 2;
  for (const auto& [target, source] : fds) max_target = std::max(max_target, target);
  int floor = std::max(max_target + 1, report_fd + 1);
  std::vector<std::pair<int, int>> moved;
  for (const auto& [target, source] : fds) {
    int high = ::fcntl(source, F_DUPFD_CLOEXEC, floor);
    if (high < 0) ChildFail(report_fd, errno);
    moved.emplace_back(target, high);
  }
  // report_fd must survive the moves: it is close-on-exec and above the targets.
  int report = ::fcntl(report_fd, F_DUPFD_CLOEXEC, floor);
  if (report < 0) ChildFail(report_fd, errno);
  for (int std_fd = 0; std_fd <= 2; ++std_fd) {
    bool mapped = false;
    for (const auto& m : moved) mapped |= m.first == std_fd;
    if (!mapped && ::dup2(devnull, std_fd) < 0) ChildFail(report, errno);
  }
  for (const auto& [target, high] : moved) {
    if (::dup2(high, target) < 0) ChildFail(report, errno);
  }
  // Close every descriptor that is not a target, except the report pipe (close-on-exec).
  for (int fd = 3; fd <= max_target; ++fd) {
    bool keep = false;
    for (const auto& m : moved) keep |= m.first == fd;
    if (!keep) ::close(fd);
  }
  if (report > max_target + 1) ::close_range(max_target + 1, report - 1, 0);
  ::close_range(report + 1, UINT_MAX, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(argv[0], argv.data(), envp);
  ChildFail(report, errno);
}

}  // namespace

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    KillAndReap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    reaped_ = std::exchange(other.reaped_, true);
  }
  return *this;
}

Child::~Child() { KillAndReap(); }

void Child::KillAndReap() {
  if (pid_ <= 0 || reaped_ || !pidfd_.valid()) return;
  ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

void Child::Release() {
  reaped_ = true;
  pidfd_.reset();
}

absl::Status Child::Signal(int sig) {
  if (reaped_) return absl::FailedPreconditionError(absl::StrCat("process ", pid_, " has exited"));
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0) {
    return ErrnoError(absl::StrCat("signal ", sig, " to process ", pid_));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExitStatus> Child::Wait(absl::Time deadline) {
  if (reaped_) return absl::FailedPreconditionError(absl::StrCat("process ", pid_, " was reaped"));
  for (;;) {
    int status;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r < 0 && errno != EINTR) return ErrnoError(absl::StrCat("waitpid ", pid_));
    if (r == pid_) {
      reaped_ = true;
      ExitStatus out;
      out.exited = WIFEXITED(status);
      out.code = out.exited ? WEXITSTATUS(status) : 0;
      out.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      return out;
    }
    int ms = PollTimeoutMs(deadline);
    if (ms == 0) {
      return absl::DeadlineExceededError(absl::StrCat("process ", pid_, " did not exit in time"));
    }
    pollfd p{pidfd_.get(), POLLIN, 0};
    if (::poll(&p, 1, ms) < 0 && errno != EINTR) return ErrnoError("poll pidfd");
  }
}

absl::StatusOr<Child> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("spawn: empty argv");
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envv;
  char** envp = environ;
  if (options.env) {
    for (const auto& e : *options.env) envv.push_back(const_cast<char*>(e.c_str()));
    envv.push_back(nullptr);
    envp = envv.data();
  }
  std::vector<std::pair<int, int>> fds(options.fds.begin(), options.fds.end());
  ASSIGN_OR_RETURN(Fd devnull, OpenFile("/dev/null", O_RDWR));
  ASSIGN_OR_RETURN(Pipe report, MakePipe());

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork");
  if (pid == 0) {
    ExecChild(argv, envp, fds, devnull.get(), report.write.get(), options.new_session,
              options.cwd.empty() ? nullptr : options.cwd.c_str(), options.umask);
  }
  report.write.reset();
  Fd pidfd(PidfdOpen(pid));
  if (!pidfd.valid()) {
    absl::Status st = ErrnoError("pidfd_open");
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return st;
  }
  Child child(pid, std::move(pidfd));
  int err = 0;
  ssize_t n;
  do {
    n = ::read(report.read.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof err) {
    (void)child.Wait(absl::InfiniteFuture());
    return ErrnoError(err, "exec " + options.argv[0]);
  }
  return child;
}

}  // namespace runvm
