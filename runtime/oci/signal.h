// Signals as runc's command line names them.
#ifndef RUNVM_RUNTIME_OCI_SIGNAL_H_
#define RUNVM_RUNTIME_OCI_SIGNAL_H_

#include <string>

#include "absl/status/statusor.h"

namespace runvm {

// runc's signal syntax: "9", "KILL", "SIGKILL", "sigkill"; InvalidArgument otherwise.
absl::StatusOr<int> ParseSignal(const std::string& text);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_OCI_SIGNAL_H_
