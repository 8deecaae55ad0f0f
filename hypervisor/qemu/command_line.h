// The QEMU command line of a sandbox, as a pure function of the resolved configuration and a few
// explicit inputs. No I/O: the launcher (launcher.h) stats files, binds sockets and spawns.
//
//   CommandLineInputs in{.sandbox_id = "abc", .uuid = uuid, .accelerator = "tcg",
//                        .host_memory_mib = 24000, .run_dir = "/run/runvm/s/abc", ...};
//   ASSIGN_OR_RETURN(std::vector<std::string> argv, BuildCommandLine(config.hypervisor, in));
//
// QEMU is not given -daemonize: in QEMU 7.2 its daemonizing fork and setsid run after the
// seccomp filter, so -sandbox spawn=deny kills it (SIGSYS) and elevateprivileges=deny makes it
// exit. The launcher detaches QEMU itself (new session, stdio to a log file); see
// docs/decisions.md.
#ifndef RUNVM_HYPERVISOR_QEMU_COMMAND_LINE_H_
#define RUNVM_HYPERVISOR_QEMU_COMMAND_LINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hypervisor/qemu/pci_topology.h"
#include "proto/config.h"

namespace runvm::qemu {

// Names inside the per-sandbox run directory.
inline constexpr char kPidFile[] = "qemu.pid";
inline constexpr char kQemuLog[] = "qemu.log";  // -D, with enable_debug
inline constexpr char kVirtiofsSocket[] = "vhost-fs.sock";
// The guest's names for the channels.
inline constexpr char kAgentPortName[] = "agent.0";
inline constexpr char kShareTag[] = "kataShared";
// NVDIMM headroom added to maxmem, as Kata does.
inline constexpr int64_t kNvdimmReserveMib = 1024;
// Ports of the virtio-serial controller (port 0 is reserved by the driver).
inline constexpr int kSerialMaxPorts = 31;

// The boot image is NVDIMM nv0 (backend mem0), which takes one memory slot.
bool ImageOnNvdimm(const config::QemuConfig& c);
// Guest RAM must be a shared file (virtio-fs, file_mem_backend or hugepages), at MemoryPath().
bool SharesMemory(const config::QemuConfig& c);
std::string MemoryPath(const config::QemuConfig& c);
// maxmem of -m.
int64_t MaxMemoryMib(const config::QemuConfig& c, int64_t host_memory_mib);

struct CommandLineInputs {
  std::string sandbox_id;
  std::string uuid;
  std::string accelerator;  // resolved: "kvm" or "tcg"
  int64_t host_memory_mib = 0;
  std::string run_dir;           // pidfile, virtiofsd socket, debug log
  std::string shared_dir;        // what the guest is served: a read-only view (docs/security.md)
  int64_t image_size_bytes = 0;  // size of config.image (NVDIMM backend size)
  // Child descriptor numbers of the listening sockets the launcher hands to QEMU.
  int qmp_fd = 3;
  int qmp_events_fd = 4;
  int agent_fd = 5;
  int console_fd = 6;
};

// Kernel parameters: runvm's defaults, then those derived from the configuration, then
// kernel_params (last, so the kernel's last-duplicate-wins rule lets an operator override).
std::string KernelCommandLine(const config::QemuConfig& c);

// The whole argv, argv[0] being c.path. Errors name the option and value that cannot be
// expressed (an unsupported machine type, a NUL or newline in a value, a missing input).
absl::StatusOr<std::vector<std::string>> BuildCommandLine(const config::QemuConfig& c,
                                                          const CommandLineInputs& in);

}  // namespace runvm::qemu

#endif  // RUNVM_HYPERVISOR_QEMU_COMMAND_LINE_H_
