// `delete`: a container that owns its VM takes the sandbox with it; a pod member removes what it
// added to its pod's VM (RemoveMember, runtime/oci/container_store.h).
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runtime/host/cgroups.h"
#include "runtime/oci/container_store.h"
#include "runtime/oci/containers.h"

namespace runvm {

absl::Status Containers::Delete(const std::string& id, bool force) {
  RETURN_IF_ERROR(ValidateSandboxId(id));
  ContainerStore s(*sandboxes_);
  if (::access(s.sandboxes().Dir(id).c_str(), F_OK) != 0) {
    return force ? absl::OkStatus() : NotExist(id);
  }
  absl::StatusOr<ContainerRecord> first = s.Load(id);
  if (first.ok() && first->sandbox_id != id) return RemoveMember(s, id, force);
  {
    ASSIGN_OR_RETURN(persist::Lock lock, s.sandboxes().LockShared(id, "delete"));
    absl::StatusOr<ContainerRecord> r = s.Load(id);
    if (r.ok() && !force) {
      const ContainerStatus status = LiveStatus(*r);
      if (status == ContainerStatus::kRunning || status == ContainerStatus::kPaused) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot delete container ", id, " that is not stopped: ", StatusName(status)));
      }
    }
  }
  // The sandbox goes, and with it the VM, the shims (marked helpers; a pod's other containers'
  // too, whose records then say stopped), the shares and the records. A sandbox that never
  // booted (a create killed before) leaves only the directory. Then the host cgroups it made.
  absl::Status st = s.sandboxes().Delete(id, /*force=*/true);
  if (!st.ok()) return st;
  if (first.ok())
    RETURN_IF_ERROR(Annotate(RemoveHostCgroups(first->host_cgroups), "delete container " + id));
  std::error_code ec;
  std::filesystem::remove_all(s.sandboxes().Dir(id), ec);
  if (ec) return ErrnoError(ec.value(), "remove " + s.sandboxes().Dir(id));
  return absl::OkStatus();
}

}  // namespace runvm
