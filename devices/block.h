// What a disk handed to the sandbox is on the host: a regular file or a block device, its size,
// and for a block device its major:minor.
//
//   ASSIGN_OR_RETURN(devices::HostDisk disk, devices::InspectDisk("/var/lib/images/data.img"));
//   // disk.driver() is "file" or "host_device", QEMU's block driver for it.
#ifndef RUNVM_DEVICES_BLOCK_H_
#define RUNVM_DEVICES_BLOCK_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace runvm::devices {

struct HostDisk {
  std::string path;
  bool is_block_device = false;
  int64_t size_bytes = 0;  // st_size, or BLKGETSIZE64 for a block device
  uint32_t major = 0;      // block devices only
  uint32_t minor = 0;

  const char* driver() const { return is_block_device ? "host_device" : "file"; }
};

// Errors name the disk and the cause: "disk /x: does not exist", "disk /x: is a directory, not a
// regular file or a block device".
absl::StatusOr<HostDisk> InspectDisk(const std::string& path);

}  // namespace runvm::devices

#endif  // RUNVM_DEVICES_BLOCK_H_
