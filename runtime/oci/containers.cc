#include "runtime/oci/containers.h"

#include "runtime/sandbox/vm.h"

namespace runvm {

// The verbs live one file per concern: create.cc, exec.cc, delete.cc, control.cc (start, kill,
// pause, resume, update) and query.cc (state, list, ps, stats).
Containers::Containers(ContainersOptions options) : options_(std::move(options)) {
  sandboxes_ = options_.sandboxes ? options_.sandboxes
                                  : std::shared_ptr<Sandboxes>(QemuSandboxes(
                                        {.root = options_.root, .lock_wait = options_.lock_wait}));
}

}  // namespace runvm
