// Unix stream sockets by path. sun_path holds 107 bytes plus its NUL: a longer path is refused
// with an error naming it, never truncated.
#ifndef RUNVM_BASE_UNIX_SOCKET_H_
#define RUNVM_BASE_UNIX_SOCKET_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/fd.h"

namespace runvm {

// The longest path a unix socket address can hold.
inline constexpr size_t kMaxUnixPathBytes = 107;

// Binds and listens on `path` (an existing socket file there is replaced). Close-on-exec.
absl::StatusOr<Fd> ListenUnix(const std::string& path, int backlog = 16);

// Connects to `path`. Close-on-exec, blocking.
absl::StatusOr<Fd> ConnectUnix(const std::string& path);

// Connects to `path` by `deadline`: a listener whose backlog is full (a peer that never
// accepts) makes a blocking connect wait for ever, so this one retries a non-blocking connect
// and gives up with DeadlineExceeded naming the path. The socket stays non-blocking.
absl::StatusOr<Fd> ConnectUnix(const std::string& path, absl::Time deadline);

// Passes `fd` over a connected unix socket in one SCM_RIGHTS message whose bytes are `payload`
// (not empty; runc's console socket carries the terminal's name). Allocates nothing, so a child
// between clone and exec may call it; false with errno set on failure.
bool SendFd(int sock, int fd, const char* payload, size_t payload_bytes);

// Receives one fd passed that way (close-on-exec). NotFound when the message carried none.
absl::StatusOr<Fd> ReceiveFd(int sock);

}  // namespace runvm

#endif  // RUNVM_BASE_UNIX_SOCKET_H_
