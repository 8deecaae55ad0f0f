// GuestShell: the host side of the placeholder guest init's agent-port protocol (guest/init),
// for integration tests until the real agent exists: wait for "RUNVM-READY", then run shell
// commands in the guest and read their output and status.
#ifndef RUNVM_TESTS_TESTING_GUEST_SHELL_H_
#define RUNVM_TESTS_TESTING_GUEST_SHELL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/fd.h"

namespace runvm::testing {

struct GuestResult {
  std::string output;
  int status = -1;
};

class GuestShell {
 public:
  // Connects to the agent socket and waits for the guest's ready line (returned).
  static absl::StatusOr<GuestShell> Connect(const std::string& agent_socket, absl::Time deadline,
                                            std::string* ready_line = nullptr);
  absl::StatusOr<GuestResult> Run(const std::string& command, absl::Time deadline);

 private:
  explicit GuestShell(Fd fd) : fd_(std::move(fd)) {}
  absl::StatusOr<std::string> ReadLine(absl::Time deadline);
  Fd fd_;
  std::string buf_;
};

}  // namespace runvm::testing

#endif  // RUNVM_TESTS_TESTING_GUEST_SHELL_H_
