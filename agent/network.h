// The guest's side of the pod network: each hot-plugged NIC, found by its MAC, gets the name,
// MTU, addresses and routes its interface had in the pod's namespace on the host (the host reads
// them there; runtime/sandbox/network.h). Containers that share the pod's network namespace share
// the guest's own, where these interfaces are.
//
//   RETURN_IF_ERROR(ConfigureNetwork(config, "/sys"));
#ifndef RUNVM_AGENT_NETWORK_H_
#define RUNVM_AGENT_NETWORK_H_

#include <string>

#include "absl/status/status.h"
#include "proto/agent_protocol.h"

namespace runvm::agent {

// Waits (up to config.timeout_ms) for every interface's MAC to appear under
// <sysfs>/class/net, then names, sizes, addresses and sets up each one and adds its routes
// (loopback is set up too). Errors name the interface. Addresses or routes that already exist
// are no error (a repeated request converges).
absl::Status ConfigureNetwork(const agent_proto::NetworkConfig& config,
                              const std::string& sysfs = "/sys");

}  // namespace runvm::agent

#endif  // RUNVM_AGENT_NETWORK_H_
