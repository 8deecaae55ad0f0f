// A container's device allowlist in the guest: a cgroup v2 eBPF program
// (BPF_PROG_TYPE_CGROUP_DEVICE) attached to its cgroup, built from linux.resources.devices as
// runc builds it: the spec's rules, then runc's default devices (null, zero, full, random,
// urandom, tty, console, ptmx, pts, tun, and mknod of any device); the last rule that matches
// decides, and what no rule matches is denied. Without it a container with CAP_MKNOD could make
// and open another pod member's disk, or the agent's own port (docs/security.md).
//
//   RETURN_IF_ERROR(AttachDeviceFilter(cgroup_fd, spec.linux.resources->devices));
#ifndef RUNVM_AGENT_DEVICES_H_
#define RUNVM_AGENT_DEVICES_H_

#include <linux/bpf.h>

#include <vector>

#include "absl/status/status.h"
#include "proto/oci_spec.h"

namespace runvm::agent {

// The spec's rules followed by runc's defaults.
std::vector<oci::DeviceRule> EffectiveDeviceRules(const std::vector<oci::DeviceRule>& spec);

// The program for `rules` (the last matching rule decides; none matching: denied).
std::vector<bpf_insn> DeviceProgram(const std::vector<oci::DeviceRule>& rules);

// Loads the program for EffectiveDeviceRules(spec) and attaches it to the cgroup `cgroup_fd`.
absl::Status AttachDeviceFilter(int cgroup_fd, const std::vector<oci::DeviceRule>& spec);

}  // namespace runvm::agent

#endif  // RUNVM_AGENT_DEVICES_H_
