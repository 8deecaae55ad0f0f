// A multi-queue tap device in a network namespace, for a sandbox's NIC: one queue fd per queue
// (and a /dev/vhost-net fd per queue where that device exists), all handed to QEMU. The tap is
// not persistent: it disappears when the last queue fd is closed, i.e. when QEMU deletes the
// netdev or exits, so nothing is left behind.
//
//   ASSIGN_OR_RETURN(devices::Tap tap,
//                    devices::CreateTap("/var/run/netns/pod1", "tap0_runvm", /*queues=*/2));
#ifndef RUNVM_DEVICES_TAP_H_
#define RUNVM_DEVICES_TAP_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/fd.h"

namespace runvm::devices {

struct Tap {
  std::string name;
  std::vector<Fd> queues;
  std::vector<Fd> vhost;  // empty without /dev/vhost-net
};

// Creates the tap `name` (up to 15 bytes) with `queues` queues in the network namespace at
// `netns_path` (empty: the caller's) and sets it up. A device of that name that already exists
// there is refused (attaching to it would share another NIC's queues).
absl::StatusOr<Tap> CreateTap(const std::string& netns_path, const std::string& name, int queues);

// "02:00:ca:fe:00:01" -> 6 bytes; errors name the text.
absl::StatusOr<std::array<uint8_t, 6>> ParseMac(const std::string& text);

}  // namespace runvm::devices

#endif  // RUNVM_DEVICES_TAP_H_
