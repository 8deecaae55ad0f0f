// The guest agent: answers the agent protocol (proto/agent_protocol.h) on the agent port.
//
//   Agent agent({.version = "0.1"});
//   RETURN_IF_ERROR(agent.ServePort(port_fd));   // the virtio-serial port; returns only on error
//
// Requests: hello, health, guest_details, run; create_container, exec_process, start_container,
// signal, wait, processes, destroy; pause, resume, update, stats (each container has a cgroup).
// Each is answered in order; a failed one with an "error" message naming the request. A container's
// stdio is relayed between pipes and its own port (proto/io_frame.h) by two threads; output waits
// in the pipes until the host connects, and the exit frame follows the last byte of output.
#ifndef RUNVM_AGENT_AGENT_H_
#define RUNVM_AGENT_AGENT_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/cgroup.h"
#include "base/fd.h"
#include "proto/agent_protocol.h"

namespace runvm::agent {

struct AgentOptions {
  std::string version = "0.1";
  std::string sysfs = "/sys";    // guest_details reads the memory block size and online CPUs here
  std::string procfs = "/proc";  // and MemTotal here
  size_t max_output_bytes = 1 << 20;  // per stream of a run; the rest is dropped
  // Opens a container process's stdio port by name; default: the virtio-serial port of that
  // name (/sys/class/virtio-ports/*/name), waited for a few seconds after its hotplug.
  std::function<absl::StatusOr<Fd>(const std::string& name)> open_port;
  // Where the guest's cgroup2 is mounted (agent/cgroup.h): each container gets a cgroup there.
  // Empty: no cgroups (pause, update and stats are refused); what host unit tests use.
  std::string cgroup_root;
};

class RunningContainer;  // agent.cc

class Agent {
 public:
  explicit Agent(AgentOptions options = {});
  ~Agent();

  // One request, one response; never fails (a failure is an "error" response).
  agent_proto::Message Handle(const agent_proto::Message& request);

  // Serves a virtio-serial port, which stays open across host connections: reading returns 0
  // while no host is connected, and the next host's bytes may follow the last one's without any
  // end of file in between (the frame reader resynchronises on its hello). Waits for host
  // activity with edge-triggered epoll, so an absent host costs nothing. Returns only on an
  // error of the port itself.
  absl::Status ServePort(int fd);

  // Serves one stream connection (a unix socket) until its end: what the unit tests drive.
  absl::Status ServeStream(int fd);

 private:
  // Feeds bytes to the reader and answers every complete request. False when the host is gone
  // (a write could not be delivered).
  bool Answer(int fd, agent_proto::FrameReader& reader, const char* data, size_t n);

  agent_proto::Message HandleContainer(const agent_proto::Message& request);
  agent_proto::Message HandleCgroup(const agent_proto::Message& request);
  // The guest's cgroups, set up once; an error says why there are none.
  absl::StatusOr<GuestCgroups*> Cgroups();

  AgentOptions options_;
  std::map<std::string, std::unique_ptr<RunningContainer>> containers_;
  std::optional<GuestCgroups> cgroups_;
  absl::Status cgroups_status_;
};

}  // namespace runvm::agent

#endif  // RUNVM_AGENT_AGENT_H_
