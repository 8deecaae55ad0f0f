// The floor of every guest-boot figure: the same kernel, initrd and guest init booted by a bare
// QEMU (no runvm) to the init's console marker.
#ifndef RUNVM_BENCH_BARE_GUEST_H_
#define RUNVM_BENCH_BARE_GUEST_H_

#include <string>

#include "proto/config.h"

namespace runvm::bench {

// Boots the bare guest (with the agent port it looks for at `agent_socket`, no host on it: the
// init prints its marker once it has found the port) and returns the milliseconds to the
// marker. `memory` is the -m value; the kernel command line is runvm's. Exits on failure.
double BareGuestMs(const config::QemuConfig& cfg, const std::string& memory,
                   const std::string& agent_socket);

}  // namespace runvm::bench

#endif  // RUNVM_BENCH_BARE_GUEST_H_
