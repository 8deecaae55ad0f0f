#include "base/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace runvm {

absl::StatusOr<Fd> OpenNetworkNamespace(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("network namespace ", path, ": does not exist (any more)"));
    }
    return ErrnoError("open network namespace " + path);
  }
  struct statfs fs {};
  if (::fstatfs(fd.get(), &fs) != 0) return ErrnoError("statfs " + path);
  if (fs.f_type != NSFS_MAGIC) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a network namespace (not a namespace file at all)"));
  }
  const int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0) return ErrnoError("NS_GET_NSTYPE " + path);
  if (type != CLONE_NEWNET) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a namespace, but not a network namespace"));
  }
  return fd;
}

absl::StatusOr<ino_t> NetworkNamespaceInode(int ns_fd) {
  struct stat st {};
  if (::fstat(ns_fd, &st) != 0) return ErrnoError("fstat network namespace");
  return st.st_ino;
}

absl::Status InNetworkNamespace(const std::string& path, const std::function<absl::Status()>& fn) {
  Fd ns;
  if (!path.empty()) {
    ASSIGN_OR_RETURN(ns, OpenNetworkNamespace(path));
  }
  return InNetworkNamespace(ns, path, fn);
}

absl::Status InNetworkNamespace(const Fd& ns, const std::string& what,
                                const std::function<absl::Status()>& fn) {
  absl::Status result = absl::InternalError("network namespace thread did not run");
  std::thread worker([&] {
    if (ns && ::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = ErrnoError("enter network namespace " + what);
      return;
    }
    result = fn();
  });
  worker.join();
  return result;
}

}  // namespace runvm
