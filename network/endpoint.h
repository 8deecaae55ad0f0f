// A pod's network endpoints: the interfaces that the CNI plugins (or whoever made the pod's
// network namespace) put there, read over netlink, and what runvm made for each of them.
//
//   ASSIGN_OR_RETURN(std::vector<network::Endpoint> found,
//                    network::DiscoverEndpoints("/var/run/netns/cni-1234"));
//   // found[0].interface == "eth0", found[0].guest.mac, .mtu, .addresses, .routes
#ifndef RUNVM_NETWORK_ENDPOINT_H_
#define RUNVM_NETWORK_ENDPOINT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "proto/agent_protocol.h"

namespace runvm::network {

// One interface of the pod's namespace and its way into the VM.
struct Endpoint {
  std::string interface;  // its name in the namespace ("eth0")
  std::string kind;  // "veth", "macvlan", "ipvlan", "dummy", ... ("" when the kernel says none)
  // What the guest NIC gets: the interface's MAC, MTU, addresses and routes, and its guest name.
  agent_proto::GuestInterface guest;
  // Made by runvm (empty until made): the multi-queue tap beside it, its queue count, and the
  // NIC's device id in the VM.
  std::string tap;
  int64_t queues = 0;
  std::string nic;
  bool operator==(const Endpoint&) const = default;
};

// The pod network of a sandbox, as recorded: where the endpoints live and which they are.
struct PodNetwork {
  std::string netns;         // the path the spec named
  uint64_t netns_inode = 0;  // that namespace's inode: a path reused later is not it
  std::string model;         // internetworking_model: "tcfilter"
  std::vector<Endpoint> endpoints;
  bool operator==(const PodNetwork&) const = default;
};

nlohmann::json PodNetworkToJson(const PodNetwork& network);
// Strict: every field present with its type; errors name the field.
absl::StatusOr<PodNetwork> PodNetworkFromJson(const nlohmann::json& j);

// The interfaces of the network namespace at `netns` in ifindex order (the order their plugins
// made them), loopback skipped, guest names eth0, eth1, ... Link-local IPv6 addresses and the
// routes the kernel derives from addresses are left out (the guest's kernel makes its own).
// Errors: NotFound for a vanished namespace, InvalidArgument for a path that is no network
// namespace and for an interface tcfilter cannot carry (no Ethernet MAC), naming it and the
// namespace.
absl::StatusOr<std::vector<Endpoint>> DiscoverEndpoints(const std::string& netns);

}  // namespace runvm::network

#endif  // RUNVM_NETWORK_ENDPOINT_H_
