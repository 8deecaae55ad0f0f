// The host side of the agent protocol (proto/agent_protocol.h): one connection per invocation.
//
//   ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Connect(vm.agent_socket(), deadline));
//   LogDebug("guest kernel " + agent.hello().kernel);
//   ASSIGN_OR_RETURN(agent_proto::RunResult r, agent.Run({.argv = {"/bin/uname", "-r"}},
//   deadline));
//
// Connect sends hello with a fresh epoch and skips everything until the agent's hello with that
// epoch: replies meant for an earlier (killed) invocation never reach this one. The agent socket
// serves one client at a time (QEMU queues a second silently), so the connection is held only as
// long as the caller holds the client.
//
// The guest is hostile: every wait ends at its deadline whatever the guest does. The connect
// gives up when the listener's backlog stays full, the socket is non-blocking (a guest that stops
// reading cannot block a send), and the deadline is checked on every pass of sending and
// receiving (a guest that keeps sending frames, garbage or half a frame cannot stretch a call).
#ifndef RUNVM_RUNTIME_SANDBOX_AGENT_CLIENT_H_
#define RUNVM_RUNTIME_SANDBOX_AGENT_CLIENT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/fd.h"
#include "proto/agent_protocol.h"

namespace runvm {

class AgentClient {
 public:
  // Connects to the agent socket and completes the hello; waits for the guest to come up.
  static absl::StatusOr<AgentClient> Connect(const std::string& socket, absl::Time deadline);
  // The same over a connected stream (tests); the fd is made non-blocking.
  static absl::StatusOr<AgentClient> Adopt(Fd fd, absl::Time deadline);

  AgentClient(AgentClient&&) noexcept = default;
  AgentClient& operator=(AgentClient&&) noexcept = default;

  const agent_proto::HelloReply& hello() const { return hello_; }

  // Sends `request` (its id is assigned here) and returns the response with its id; an "error"
  // response becomes a FailedPrecondition carrying the agent's message.
  absl::StatusOr<agent_proto::Message> Call(agent_proto::Message request, absl::Time deadline);

  absl::Status Health(absl::Time deadline);
  absl::StatusOr<agent_proto::GuestDetails> GuestDetails(absl::Time deadline);
  absl::StatusOr<agent_proto::RunResult> Run(const agent_proto::RunRequest& request,
                                             absl::Time deadline);

 private:
  explicit AgentClient(Fd fd) : fd_(std::move(fd)) {}
  absl::Status Send(const agent_proto::Message& m, absl::Time deadline);
  // The next message from the agent.
  absl::StatusOr<agent_proto::Message> Receive(absl::Time deadline);
  absl::Status SayHello(absl::Time deadline);

  Fd fd_;
  agent_proto::FrameReader reader_;
  agent_proto::HelloReply hello_;
  uint64_t next_id_ = 1;
};

}  // namespace runvm

#endif  // RUNVM_RUNTIME_SANDBOX_AGENT_CLIENT_H_
