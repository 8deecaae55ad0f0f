#include "devices/block.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/fd.h"
#include "base/status.h"

namespace runvm::devices {
namespace {

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

}  // namespace

absl::StatusOr<HostDisk> InspectDisk(const std::string& path) {
  const std::string what = absl::StrCat("disk ", path);
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an absolute path"));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(what, ": does not exist"));
    return ErrnoError(what);
  }
  HostDisk disk{.path = path};
  if (S_ISREG(st.st_mode)) {
    disk.size_bytes = st.st_size;
    return disk;
  }
  if (!S_ISBLK(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": is ", KindOf(st.st_mode), ", not a regular file or a block device"));
  }
  disk.is_block_device = true;
  disk.major = major(st.st_rdev);
  disk.minor = minor(st.st_rdev);
  ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDONLY | O_NONBLOCK));
  uint64_t bytes = 0;
  if (::ioctl(fd.get(), BLKGETSIZE64, &bytes) != 0) return ErrnoError(what + ": BLKGETSIZE64");
  disk.size_bytes = static_cast<int64_t>(bytes);
  return disk;
}

}  // namespace runvm::devices
