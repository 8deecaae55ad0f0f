// GuestShell: shell commands in the guest over the real agent (its `run` request), for
// integration tests and benchmarks: `sh -c` with stderr folded into stdout.
#ifndef RUNVM_TESTS_TESTING_GUEST_SHELL_H_
#define RUNVM_TESTS_TESTING_GUEST_SHELL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/sandbox/agent_client.h"

namespace runvm::testing {

struct GuestResult {
  std::string output;  // stdout and stderr, without the final newline
  int status = -1;
};

class GuestShell {
 public:
  // Connects to the agent socket and completes the agent's hello (waiting for the guest to come
  // up); `ready_line` gets "agent <version> on <kernel release>".
  static absl::StatusOr<GuestShell> Connect(const std::string& agent_socket, absl::Time deadline,
                                            std::string* ready_line = nullptr);
  absl::StatusOr<GuestResult> Run(const std::string& command, absl::Time deadline);
  // The agent connection itself, for requests beyond `run`.
  AgentClient& agent() { return agent_; }

 private:
  explicit GuestShell(AgentClient agent) : agent_(std::move(agent)) {}
  AgentClient agent_;
};

}  // namespace runvm::testing

#endif  // RUNVM_TESTS_TESTING_GUEST_SHELL_H_
