// runvm-agent PORT: the guest agent, serving the agent protocol on the virtio-serial port device
// PORT (guest/init finds it by name and restarts the agent should it ever exit).
#include <fcntl.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "agent/agent.h"
#include "base/fd.h"
#include "base/file.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: runvm-agent PORT\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<runvm::Fd> port = runvm::OpenFile(argv[1], O_RDWR | O_CLOEXEC);
  if (!port.ok()) {
    std::fprintf(stderr, "runvm-agent: %s\n", std::string(port.status().message()).c_str());
    return 1;
  }
  runvm::agent::Agent agent({.cgroup_root = "/sys/fs/cgroup"});  // guest/init mounts cgroup2
  absl::Status st = agent.ServePort(port->get());
  std::fprintf(stderr, "runvm-agent: %s\n", std::string(st.message()).c_str());
  return 1;
}
