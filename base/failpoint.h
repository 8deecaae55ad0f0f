// Failpoints: named crash points for the crash-matrix test. Inert unless the environment variable
// RUNVM_FAILPOINT names the point; then the process kills itself with SIGKILL right there, as a
// runtime killed by an engine or the OOM killer would die.
//
//   RUNVM_FAILPOINT("vm.start.after-qemu-spawn");
//
// Every point is listed in AllFailpoints() (base/failpoint.cc); a test checks that the list and
// the RUNVM_FAILPOINT uses in the sources are the same, so the crash matrix knows every point.
#ifndef RUNVM_BASE_FAILPOINT_H_
#define RUNVM_BASE_FAILPOINT_H_

#include <span>

#include "absl/strings/string_view.h"

namespace runvm {

// SIGKILLs this process when RUNVM_FAILPOINT equals `name`.
void Failpoint(absl::string_view name);

// Every failpoint in the code base.
std::span<const char* const> AllFailpoints();

}  // namespace runvm

#define RUNVM_FAILPOINT(name) ::runvm::Failpoint(name)

#endif  // RUNVM_BASE_FAILPOINT_H_
