// Kata's "tcfilter" internetworking model: an interface of the pod's namespace and runvm's tap
// beside it are joined by two tc rules, each an ingress qdisc with a u32 match-all filter whose
// action is mirred egress redirect to the other. What the pod's peers send to the interface
// reaches the guest's NIC, and what the guest sends leaves by the interface, with the interface's
// own MAC (the NIC has it), so the CNI bridge's ARP and the IPAM's address stay right.
//
//   RETURN_IF_ERROR(network::Redirect(netns, "eth0", "tap0_runvm", 1500));
//   ...
//   RETURN_IF_ERROR(network::RemoveRedirect({.netns = netns, .netns_inode = ino}, "eth0"));
#ifndef RUNVM_NETWORK_TCFILTER_H_
#define RUNVM_NETWORK_TCFILTER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace runvm::network {

// Joins `interface` and `tap` (both in the namespace at `netns`) both ways and gives the tap the
// interface's MTU. An ingress qdisc that `interface` already has is refused (it is someone
// else's); a failure half way removes what this call added.
absl::Status Redirect(const std::string& netns, const std::string& interface,
                      const std::string& tap, int64_t mtu);

// Removes `interface`'s ingress qdisc (its filter goes with it; the tap's went with the tap).
// Nothing to do, and no error, when the namespace is gone or is no longer the recorded one
// (inode), or when the interface or the qdisc is gone.
absl::Status RemoveRedirect(const std::string& netns, uint64_t netns_inode,
                            const std::string& interface);

// Whether this host can do tcfilter: in a scratch namespace, two multi-queue taps joined by
// Redirect. OK, or the first thing that failed.
absl::Status ProbeTcFilter();

}  // namespace runvm::network

#endif  // RUNVM_NETWORK_TCFILTER_H_
