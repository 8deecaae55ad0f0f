#include "base/fd.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/deadline.h"
#include "base/status.h"

namespace runvm {

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);  // close(2) errors are not actionable here: the fd is gone anyway.
  fd_ = fd;
}

absl::StatusOr<Fd> OpenFile(const std::string& path, int flags, int mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("open " + path);
  return Fd(fd);
}

absl::StatusOr<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2");
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

absl::StatusOr<std::string> ReadToEnd(int fd, size_t max_bytes, absl::Time deadline) {
  std::string out;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, PollTimeoutMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError("poll");
    if (r == 0) return absl::DeadlineExceededError("no end of file in time");
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read");
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat("more than ", max_bytes, " bytes"));
    }
  }
}

}  // namespace runvm
