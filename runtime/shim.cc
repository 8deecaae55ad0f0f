#include "runtime/shim.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/fd.h"
#include "base/log.h"
#include "base/unix_socket.h"
#include "proto/io_frame.h"

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

}  // namespace

int RunShim(const ShimOptions& o) {
  ::signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<Fd> port = ConnectUnix(o.port_socket);
  if (!port.ok()) {
    Ready(o.ready_fd, absl::StrCat("shim of ", o.id, ": ", port.status().message()));
    return kLostStatus;
  }
  Ready(o.ready_fd, "ok");

  // fd 0 is relayed until it ends; fds 1 and 2 receive what the process writes. An fd the engine
  // did not hand over reads as ended (POLLNVAL) and its output is dropped.
  pollfd p[2] = {{0, POLLIN, 0}, {port->get(), POLLIN, 0}};
  io_frame::Reader reader;
  bool stdout_ok = true, stderr_ok = true;
  char buf[16384];
  for (;;) {
    int r = ::poll(p, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      LogError(absl::StrCat("shim of ", o.id, ": poll: ", strerror(errno)));
      return kLostStatus;
    }
    if (p[0].fd >= 0 && p[0].revents != 0) {
      ssize_t n = (p[0].revents & POLLNVAL) ? 0 : ::read(0, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      std::string frame = n > 0 ? io_frame::Encode(io_frame::kStdin, {buf, size_t(n)})
                                : io_frame::Encode(io_frame::kStdinClosed);
      if (n <= 0) p[0].fd = -1;
      if (!WriteAll(port->get(), frame)) p[0].fd = -1;  // the port's end is noticed below
    }
    if (p[1].revents == 0) continue;
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
        stdout_ok = WriteAll(1, frame.data);
      } else if (frame.kind == io_frame::kStderr && stderr_ok) {
        stderr_ok = WriteAll(2, frame.data);
      } else if (frame.kind == io_frame::kExit) {
        absl::StatusOr<int> status = io_frame::ExitStatusOf(frame);
        return status.ok() ? (*status & 0xff) : kLostStatus;
      }
    }
  }
}

}  // namespace runvm
