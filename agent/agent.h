// The guest agent: answers the agent protocol (proto/agent_protocol.h) on the agent port.
//
//   Agent agent({.version = "0.1"});
//   RETURN_IF_ERROR(agent.ServePort(port_fd));   // the virtio-serial port; returns only on error
//
// Requests so far: hello, health, guest_details, run. Each is answered in order; a failed one
// with an "error" message naming the request. The container requests (create, start, signal,
// wait, exec, ...) and per-process stdio ports arrive with the rest of issue 7.
#ifndef RUNVM_AGENT_AGENT_H_
#define RUNVM_AGENT_AGENT_H_

#include <string>

#include "absl/status/status.h"
#include "proto/agent_protocol.h"

namespace runvm::agent {

struct AgentOptions {
  std::string version = "0.1";
  std::string sysfs = "/sys";    // guest_details reads the memory block size and online CPUs here
  std::string procfs = "/proc";  // and MemTotal here
  size_t max_output_bytes = 1 << 20;  // per stream of a run; the rest is dropped
};

class Agent {
 public:
  explicit Agent(AgentOptions options = {}) : options_(std::move(options)) {}

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

  AgentOptions options_;
};

}  // namespace runvm::agent

#endif  // RUNVM_AGENT_AGENT_H_
