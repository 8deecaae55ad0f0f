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
  struct stat st;
  if (::stat(source.c_str(), &st) != 0) return ErrnoError(absl::StrCat("stat ", source));
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError(absl::StrCat("mkdir ", target));
    }
  } else {
    Fd f(::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    if (!f.valid()) return ErrnoError(absl::StrCat("create ", target));
  }
  if (!readonly) {
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      return ErrnoError(absl::StrCat("bind ", source, " at ", target));
    }
    return absl::OkStatus();
  }
  Fd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, source.c_str(),
                                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
  if (!tree.valid()) return ErrnoError(absl::StrCat("open_tree ", source));
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                sizeof attr) != 0) {
    return ErrnoError(absl::StrCat("make the bind of ", source, " read-only"));
  }
  if (::syscall(SYS_move_mount, tree.get(), "", AT_FDCWD, target.c_str(),
                MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return ErrnoError(absl::StrCat("attach the bind of ", source, " at ", target));
  }
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
