#include "tests/testing/guest_shell.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/deadline.h"
#include "base/status.h"
#include "base/unix_socket.h"

namespace runvm::testing {

absl::StatusOr<GuestShell> GuestShell::Connect(const std::string& agent_socket, absl::Time deadline,
                                               std::string* ready_line) {
  ASSIGN_OR_RETURN(Fd fd, ConnectUnix(agent_socket));
  GuestShell shell(std::move(fd));
  for (;;) {
    ASSIGN_OR_RETURN(std::string line, shell.ReadLine(deadline));
    if (absl::StartsWith(line, "RUNVM-READY")) {
      if (ready_line) *ready_line = line;
      return shell;
    }
  }
}

absl::StatusOr<std::string> GuestShell::ReadLine(absl::Time deadline) {
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, PollTimeoutMs(deadline));
    if (r == 0) return absl::DeadlineExceededError("the guest did not answer in time");
    if (r < 0) return ErrnoError("poll agent socket");
    char tmp[4096];
    ssize_t n = ::read(fd_.get(), tmp, sizeof tmp);
    if (n <= 0) return absl::UnavailableError("the agent socket closed");
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

absl::StatusOr<GuestResult> GuestShell::Run(const std::string& command, absl::Time deadline) {
  std::string line = command + "\n";
  if (::send(fd_.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(line.size())) {
    return ErrnoError("send to the guest");
  }
  GuestResult r;
  for (;;) {
    ASSIGN_OR_RETURN(std::string l, ReadLine(deadline));
    absl::string_view v = l;
    if (absl::ConsumePrefix(&v, "RUNVM-END ") && absl::SimpleAtoi(v, &r.status)) break;
    absl::StrAppend(&r.output, l, "\n");
  }
  // The guest prints the captured output followed by a newline: drop the last one.
  if (!r.output.empty()) r.output.pop_back();
  return r;
}

}  // namespace runvm::testing
