#include "tests/testing/guest_shell.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"

namespace runvm::testing {

absl::StatusOr<GuestShell> GuestShell::Connect(const std::string& agent_socket, absl::Time deadline,
                                               std::string* ready_line) {
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Connect(agent_socket, deadline));
  if (ready_line) {
    *ready_line = absl::StrCat("agent ", agent.hello().agent_version, " on ", agent.hello().kernel);
  }
  return GuestShell(std::move(agent));
}

absl::StatusOr<GuestResult> GuestShell::Run(const std::string& command, absl::Time deadline) {
  const int64_t budget_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now()));
  ASSIGN_OR_RETURN(agent_proto::RunResult r,
                   agent_.Run({.argv = {"/bin/sh", "-c", "exec 2>&1; " + command},
                               .env = {"PATH=/bin:/sbin"},
                               .timeout_ms = budget_ms},
                              deadline + absl::Seconds(1)));
  if (r.timed_out) {
    return absl::DeadlineExceededError(absl::StrCat("guest: `", command, "` did not end in time"));
  }
  GuestResult out{.output = r.out, .status = r.exit_status};
  if (!out.output.empty() && out.output.back() == '\n') out.output.pop_back();
  return out;
}

}  // namespace runvm::testing
