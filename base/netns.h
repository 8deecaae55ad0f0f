// Network namespaces named by path (/run/netns/<name>, /proc/<pid>/ns/net): checked to be one,
// and entered by a thread of its own, since setns(CLONE_NEWNET) changes only the calling thread.
//
//   RETURN_IF_ERROR(InNetworkNamespace("/run/netns/pod1", [&] { return CreateSomething(); }));
#ifndef RUNVM_BASE_NETNS_H_
#define RUNVM_BASE_NETNS_H_

#include <sys/types.h>

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "base/fd.h"

namespace runvm {

// Opens `path` and checks that it is a network namespace: NotFound when nothing is there,
// InvalidArgument naming what it is otherwise.
absl::StatusOr<Fd> OpenNetworkNamespace(const std::string& path);

// The namespace's inode number (what `ip netns identify` and /proc/<pid>/ns/net compare).
absl::StatusOr<ino_t> NetworkNamespaceInode(int ns_fd);

// Runs `fn` on a new thread inside the network namespace at `path` (empty: the caller's) and
// returns its status. Threads that `fn` starts are in that namespace too.
absl::Status InNetworkNamespace(const std::string& path, const std::function<absl::Status()>& fn);
// The same in the namespace `ns` (an fd from OpenNetworkNamespace; `what` names it in errors):
// the namespace that was checked, whatever the path names by now.
absl::Status InNetworkNamespace(const Fd& ns, const std::string& what,
                                const std::function<absl::Status()>& fn);

}  // namespace runvm

#endif  // RUNVM_BASE_NETNS_H_
