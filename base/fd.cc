#include "base/fd.h"

#include <fcntl.h>
#include <unistd.h>

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

}  // namespace runvm
