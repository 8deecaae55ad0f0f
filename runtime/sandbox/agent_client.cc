#include "runtime/sandbox/agent_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/deadline.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unix_socket.h"

namespace runvm {

using agent_proto::Message;

absl::StatusOr<AgentClient> AgentClient::Connect(const std::string& socket, absl::Time deadline) {
  ASSIGN_OR_RETURN(Fd fd, ConnectUnix(socket, deadline));
  return Adopt(std::move(fd), deadline);
}

absl::StatusOr<AgentClient> AgentClient::Adopt(Fd fd, absl::Time deadline) {
  // Non-blocking: a write or read never waits past the deadline, whatever the guest does.
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoError("agent: O_NONBLOCK");
  }
  AgentClient client(std::move(fd));
  RETURN_IF_ERROR(client.SayHello(deadline));
  return client;
}

absl::Status AgentClient::SayHello(absl::Time deadline) {
  ASSIGN_OR_RETURN(std::string uuid, ReadFile("/proc/sys/kernel/random/uuid", 64));
  const std::string epoch(absl::StripAsciiWhitespace(uuid));
  const uint64_t id = next_id_++;
  RETURN_IF_ERROR(Send({.type = agent_proto::kHello,
                        .id = id,
                        .fields = agent_proto::ToFields(agent_proto::Hello{epoch})},
                       deadline));
  for (;;) {
    absl::StatusOr<Message> m = Receive(deadline);
    if (absl::IsDeadlineExceeded(m.status())) {
      return absl::DeadlineExceededError(
          "agent: no hello from the guest agent in time (is the guest up?)");
    }
    if (!m.ok()) return m.status();
    if (m->type != agent_proto::kHello || m->id != id) continue;  // an earlier client's
    absl::StatusOr<agent_proto::HelloReply> reply = agent_proto::HelloReplyFrom(*m);
    if (!reply.ok() || reply->epoch != epoch) continue;
    hello_ = *std::move(reply);
    return absl::OkStatus();
  }
}

absl::Status AgentClient::Send(const Message& m, absl::Time deadline) {
  std::string frame = agent_proto::EncodeFrame(m);
  absl::string_view rest(frame);
  while (!rest.empty()) {
    // Checked on every pass: a guest that reads a byte at a time cannot stretch the send.
    if (absl::Now() >= deadline) return absl::DeadlineExceededError("agent: sending timed out");
    pollfd p{fd_.get(), POLLOUT, 0};
    int r = ::poll(&p, 1, PollTimeoutMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return absl::DeadlineExceededError("agent: sending timed out");
    ssize_t n = ::send(fd_.get(), rest.data(), rest.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return ErrnoError("agent: send");
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<Message> AgentClient::Receive(absl::Time deadline) {
  for (;;) {
    // Checked on every pass, before anything buffered is handed out: a guest that keeps sending
    // (garbage, answers to other ids, a frame that never completes) cannot keep the caller, and
    // the sandbox lock it holds, past the deadline.
    if (absl::Now() >= deadline) return absl::DeadlineExceededError("agent: no answer in time");
    if (std::optional<Message> m = reader_.Next()) return *std::move(m);
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, PollTimeoutMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError("agent: poll");
    if (r == 0) return absl::DeadlineExceededError("agent: no answer in time");
    char buf[16384];
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return ErrnoError("agent: receive");
    if (n == 0) return absl::UnavailableError("agent: the connection closed");
    reader_.Feed({buf, static_cast<size_t>(n)});
  }
}

absl::StatusOr<Message> AgentClient::Call(Message request, absl::Time deadline) {
  request.id = next_id_++;
  const std::string type = request.type;
  RETURN_IF_ERROR(Send(request, deadline));
  for (;;) {
    ASSIGN_OR_RETURN(Message m, Receive(deadline));
    if (m.id != request.id) continue;
    if (m.type == agent_proto::kError) {
      absl::StatusOr<agent_proto::Error> e = agent_proto::ErrorFrom(m);
      return absl::FailedPreconditionError(
          absl::StrCat("agent: ", e.ok() ? e->message : type + ": malformed error"));
    }
    if (m.type != type) {
      return absl::InternalError(
          absl::StrCat("agent: asked ", type, ", answered ", m.type, " (id ", m.id, ")"));
    }
    return m;
  }
}

absl::Status AgentClient::Health(absl::Time deadline) {
  return Call({.type = agent_proto::kHealth}, deadline).status();
}

absl::StatusOr<agent_proto::GuestDetails> AgentClient::GuestDetails(absl::Time deadline) {
  ASSIGN_OR_RETURN(Message m, Call({.type = agent_proto::kGuestDetails}, deadline));
  return agent_proto::GuestDetailsFrom(m);
}

absl::StatusOr<agent_proto::RunResult> AgentClient::Run(const agent_proto::RunRequest& request,
                                                        absl::Time deadline) {
  ASSIGN_OR_RETURN(
      Message m,
      Call({.type = agent_proto::kRun, .fields = agent_proto::ToFields(request)}, deadline));
  return agent_proto::RunResultFrom(m);
}

}  // namespace runvm
