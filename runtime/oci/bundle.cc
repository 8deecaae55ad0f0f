#include "runtime/oci/bundle.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/status.h"

namespace runvm {

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

absl::Status BindInto(const std::string& source, const std::string& target, bool readonly) {
  // The source's tree first (the engine's path: followed as runc follows it), then the mount
  // point, made here and now by fd: an existing name, whatever it is, is refused, and nothing
  // is followed on the way (see docs/security.md, the shared directory).
  Fd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, source.c_str(),
                                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
  if (!tree.valid()) return ErrnoError(absl::StrCat("open_tree ", source));
  struct stat st;
  if (::fstat(tree.get(), &st) != 0) return ErrnoError(absl::StrCat("stat ", source));
  const size_t slash = target.rfind('/');
  const std::string parent = slash == 0 ? "/" : target.substr(0, slash);
  const std::string name = target.substr(slash + 1);
  Fd dir(::open(parent.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) return ErrnoError(absl::StrCat("open ", parent));
  Fd point;
  if (S_ISDIR(st.st_mode)) {
    if (::mkdirat(dir.get(), name.c_str(), 0700) != 0) {
      return ErrnoError(absl::StrCat("create the mount point ", target));
    }
    point = Fd(::openat(dir.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  } else {
    point = Fd(::openat(dir.get(), name.c_str(),
                        O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600));
  }
  if (!point.valid()) return ErrnoError(absl::StrCat("create the mount point ", target));
  if (readonly) {
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                  sizeof attr) != 0) {
      return ErrnoError(absl::StrCat("make the bind of ", source, " read-only"));
    }
  }
  if (::syscall(SYS_move_mount, tree.get(), "", point.get(), "",
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    return ErrnoError(absl::StrCat("bind ", source, " at ", target));
  }
  return absl::OkStatus();
}

absl::Status Unbind(const std::string& target) {
  if (::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL &&
      errno != ENOENT) {
    return ErrnoError(absl::StrCat("unmount ", target));
  }
  // The mount point: an empty directory or file (never followed, never a tree).
  if (::unlink(target.c_str()) != 0 && errno == EISDIR) (void)::rmdir(target.c_str());
  return absl::OkStatus();
}

absl::Status MakeReadOnly(const std::string& target) {
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::syscall(SYS_mount_setattr, AT_FDCWD, target.c_str(), AT_RECURSIVE | AT_SYMLINK_NOFOLLOW,
                &attr, sizeof attr) != 0) {
    return ErrnoError(absl::StrCat("make ", target, " read-only"));
  }
  return absl::OkStatus();
}

}  // namespace runvm
