#include "runtime/oci/shim.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "hypervisor/qemu/vm.h"
#include "proto/io_frame.h"

extern char** environ;

namespace runvm {
namespace {

// The status a shim exits with when the port closed without an exit frame (the VM went away).
constexpr int kLostStatus = 255;

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void Ready(int fd, absl::string_view message) {
  if (fd < 0) return;
  (void)WriteAll(fd, message);
  ::close(fd);
}

// Opens a terminal, sends its master to the console socket (runc's way: one SCM_RIGHTS message
// whose payload is the master's name) and returns the slave, raw, as this process's controlling
// terminal so that a resize of the master signals SIGWINCH here.
absl::StatusOr<Fd> OpenConsole(const std::string& console_socket) {
  Fd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master.valid()) return ErrnoError("posix_openpt");
  char name[64];
  if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0 ||
      ::ptsname_r(master.get(), name, sizeof name) != 0) {
    return ErrnoError("unlock the terminal");
  }
  ASSIGN_OR_RETURN(Fd slave, OpenFile(name, O_RDWR | O_NOCTTY));
  termios t;
  if (::tcgetattr(slave.get(), &t) == 0) {
    ::cfmakeraw(&t);
    (void)::tcsetattr(slave.get(), TCSANOW, &t);
  }
  (void)::ioctl(slave.get(), TIOCSCTTY, 0);  // fails harmlessly outside a new session (run)
  absl::StatusOr<Fd> sock = ConnectUnix(console_socket);
  if (!sock.ok()) return Annotate(sock.status(), "--console-socket");
  const char payload[] = "/dev/ptmx";  // what runc sends: the master's name
  if (!SendFd(sock->get(), master.get(), payload, sizeof payload - 1)) {
    return ErrnoError(absl::StrCat("send the terminal to ", console_socket));
  }
  return slave;
}

// Blocks `set` and returns a signalfd that reads it (invalid if that failed).
Fd TakeSignals(const sigset_t& set) {
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  return Fd(::signalfd(-1, &set, SFD_CLOEXEC));
}

}  // namespace

sigset_t ForwardedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCONT, SIGVTALRM,
                  SIGPROF, SIGPWR}) {
    sigaddset(&set, sig);
  }
  return set;
}

absl::StatusOr<ExitStatus> WaitPassingSignals(Child& shim) {
  Fd signals = TakeSignals(ForwardedSignals());
  if (!signals.valid()) return ErrnoError("signalfd");
  pollfd p[2] = {{signals.get(), POLLIN, 0}, {shim.pidfd(), POLLIN, 0}};
  for (;;) {
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll");
    }
    if (p[1].revents != 0) break;
    signalfd_siginfo info;
    if (::read(signals.get(), &info, sizeof info) != sizeof info) continue;
    // The kernel's (a terminal's ^C, ^\) reached the shim too: it is in our process group.
    if (info.ssi_code == SI_KERNEL) continue;
    (void)shim.Signal(static_cast<int>(info.ssi_signo));
  }
  return shim.Wait(absl::InfiniteFuture());
}

int RunShim(const ShimOptions& o) {
  ::signal(SIGPIPE, SIG_IGN);
  // Signals arrive on a signalfd: SIGWINCH with a terminal (a resize), and those passed on to
  // the process. They are taken before the shim says it is ready, so none can end it.
  sigset_t set = ForwardedSignals();
  if (!o.console_socket.empty()) sigaddset(&set, SIGWINCH);
  Fd signals = TakeSignals(set);
  absl::StatusOr<Fd> port = ConnectUnix(o.port_socket);
  if (port.ok() && !signals.valid()) port = ErrnoError("signalfd");
  // With a terminal, the slave stands in for fds 0-2.
  Fd console;
  if (port.ok() && !o.console_socket.empty()) {
    absl::StatusOr<Fd> slave = OpenConsole(o.console_socket);
    if (!slave.ok()) port = slave.status();
    if (slave.ok()) console = *std::move(slave);
  }
  if (!port.ok()) {
    Ready(o.ready_fd, absl::StrCat("shim of ", o.id, ": ", port.status().message()));
    return kLostStatus;
  }
  Ready(o.ready_fd, "ok");
  const int in_fd = console.valid() ? console.get() : 0;
  const int out_fd = console.valid() ? console.get() : 1;
  const int err_fd = console.valid() ? console.get() : 2;

  // The input is relayed until it ends; what the process writes goes to the output fds. An fd
  // the engine did not hand over reads as ended (POLLNVAL) and its output is dropped.
  pollfd p[3] = {{signals.get(), POLLIN, 0}, {in_fd, POLLIN, 0}, {port->get(), POLLIN, 0}};
  io_frame::Reader reader;
  bool stdout_ok = true, stderr_ok = true;
  char buf[16384];
  for (;;) {
    int r = ::poll(p, 3, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      LogError(absl::StrCat("shim of ", o.id, ": poll: ", strerror(errno)));
      return kLostStatus;
    }
    // A resize first, so that it reaches the guest before input typed at the new size; any
    // other signal is the process's.
    signalfd_siginfo info;
    if ((p[0].revents & POLLIN) && ::read(signals.get(), &info, sizeof info) == sizeof info) {
      winsize ws{};
      if (info.ssi_signo != SIGWINCH) {
        (void)WriteAll(port->get(), io_frame::EncodeSignal(static_cast<int>(info.ssi_signo)));
      } else if (::ioctl(console.get(), TIOCGWINSZ, &ws) == 0) {
        (void)WriteAll(port->get(), io_frame::EncodeResize(ws.ws_row, ws.ws_col));
      }
    }
    if (p[1].fd >= 0 && p[1].revents != 0) {
      ssize_t n = (p[1].revents & POLLNVAL) ? 0 : ::read(in_fd, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      std::string frame = n > 0 ? io_frame::Encode(io_frame::kStdin, {buf, size_t(n)})
                                : io_frame::Encode(io_frame::kStdinClosed);
      if (n <= 0) p[1].fd = -1;
      if (!WriteAll(port->get(), frame)) p[1].fd = -1;  // the port's end is noticed below
    }
    if (p[2].revents == 0) continue;
    ssize_t n = ::read(port->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      LogError(absl::StrCat("shim of ", o.id,
                            ": the container's port closed before its exit status arrived"));
      return kLostStatus;
    }
    reader.Feed({buf, static_cast<size_t>(n)});
    for (;;) {
      absl::StatusOr<std::optional<io_frame::Frame>> f = reader.Next();
      if (!f.ok()) {
        LogError(absl::StrCat("shim of ", o.id, ": ", f.status().message()));
        return kLostStatus;
      }
      if (!f->has_value()) break;
      const io_frame::Frame& frame = **f;
      if (frame.kind == io_frame::kStdout && stdout_ok) {
        stdout_ok = WriteAll(out_fd, frame.data);
      } else if (frame.kind == io_frame::kStderr && stderr_ok) {
        stderr_ok = WriteAll(err_fd, frame.data);
      } else if (frame.kind == io_frame::kExit) {
        absl::StatusOr<int> status = io_frame::ExitStatusOf(frame);
        return status.ok() ? (*status & 0xff) : kLostStatus;
      }
    }
  }
}

namespace {
constexpr absl::Duration kReadyTimeout = absl::Seconds(10);
}  // namespace

absl::StatusOr<Child> StartShim(const ShimStart& s) {
  ASSIGN_OR_RETURN(Pipe ready, MakePipe());
  SpawnOptions so{.argv = {s.self_exe}};
  for (const std::string& flag : s.flags) so.argv.push_back(flag);
  for (const char* arg : {"shim", "--port", s.port_socket.c_str(), "--ready-fd", "3"}) {
    so.argv.push_back(arg);
  }
  if (!s.console_socket.empty()) {
    so.argv.insert(so.argv.end(), {"--console-socket", s.console_socket});
  }
  so.argv.push_back(s.name);
  // With a terminal the process's stdio is the pty sent over the console socket, and the
  // caller's own stdio is not kept (as runc): an engine that reads create's output to its end
  // (go-runc, a shell's $(...)) sees it close when create exits. The shim's own words go to
  // --log.
  so.fds = {{3, ready.write.get()}};
  if (s.console_socket.empty()) so.fds.insert({{0, 0}, {1, 1}, {2, 2}});
  so.env.emplace();
  for (char** e = environ; *e != nullptr; ++e) so.env->push_back(*e);
  so.env->push_back(qemu::HelperMarker(s.run_dir));
  so.new_session = s.detach;
  ASSIGN_OR_RETURN(Child child, Spawn(so));
  ready.write.reset();
  // (Not ASSIGN_OR_RETURN: GCC 12 at -O2 takes the moved-from string for uninitialised.)
  const absl::StatusOr<std::string> said =
      ReadToEnd(ready.read.get(), 4096, absl::Now() + kReadyTimeout);
  if (!said.ok()) return said.status();
  if (*said != "ok") {
    return absl::InternalError(said->empty() ? "the shim exited before it was ready" : *said);
  }
  return child;
}

}  // namespace runvm
