// The bundle on the host: its config.json read and checked, and its rootfs and bind sources
// bound into the sandbox's shared directory (which virtiofsd gives the guest).
#ifndef RUNVM_RUNTIME_OCI_BUNDLE_H_
#define RUNVM_RUNTIME_OCI_BUNDLE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/oci_spec.h"

namespace runvm {

// <bundle>/config.json, parsed and validated; errors name the file.
absl::StatusOr<oci::Spec> ReadBundle(const std::string& bundle);

// `path` made absolute and normal ("/b/." is "/b"); `path` itself if that fails.
std::string Absolute(const std::string& path);

// A bind mount (type "bind", or a "bind"/"rbind" option), and whether `m` has `option`.
bool IsBindMount(const oci::Mount& m);
bool HasOption(const oci::Mount& m, absl::string_view option);

// Binds `source` (a directory or a file) at `target` in the shared directory. `target` is made
// here, exclusively and relative to its directory's fd (an existing name, a symlink included,
// is an error), and the bind is attached to that fd: nothing at `target` is ever followed.
// Read-only binds are made read-only before they are attached (open_tree, mount_setattr,
// move_mount), so that the copy the shared directory's propagation gives the guest's view and
// virtiofsd is read-only as well: a remount after the fact would not propagate.
absl::Status BindInto(const std::string& source, const std::string& target, bool readonly);

// Undoes BindInto: detaches the mount at `target` without following a symlink there, then
// removes the mount point. Nothing there is fine (idempotent).
absl::Status Unbind(const std::string& target);

// Makes the bind at `target` (and every mount below it) read-only, without following a symlink
// at `target` itself.
absl::Status MakeReadOnly(const std::string& target);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_OCI_BUNDLE_H_
