// What the files of Hotplug share (hotplug.cc holds the core; hotplug_<kind>.cc one device kind
// each): constants, id and error helpers, and the undo log. Not for use outside them.
#ifndef RUNVM_HYPERVISOR_QEMU_HOTPLUG_INTERNAL_H_
#define RUNVM_HYPERVISOR_QEMU_HOTPLUG_INTERNAL_H_

#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "hypervisor/qemu/command_line.h"
#include "hypervisor/qemu/hotplug.h"
#include "hypervisor/qmp/client.h"
#include "nlohmann/json.hpp"

namespace runvm::qemu {
namespace hotplug_internal {

using Json = nlohmann::json;

constexpr int kScsiIndexLimit = 256 * 256;  // scsi-id 0..255, lun 0..255
// ACPI _OST status codes that are not a refusal: success, and "ejection in progress".
constexpr int kOstSuccess = 0;
constexpr int kOstEjectInProgress = 0x84;
constexpr int kOstSourceEject = 3;
// How often a long unplug wait asks QEMU whether the device is gone.
constexpr absl::Duration kUnplugRecheck = absl::Seconds(1);
constexpr int64_t kMiB = 1 << 20;
// A device that is gone can hold its block node a little longer (a SCSI disk until the guest
// has processed the unplug); deleting the node is retried for this long.
constexpr absl::Duration kBackendRelease = absl::Seconds(3);
constexpr int64_t kNvdimmAlignBytes = 2 * kMiB;

// The prefixes of the device ids NextId hands out ("blk3", "cpu7"), and of the backends named
// after them ("drive-blk3", "mem-dimm2", "char-vublk5").
constexpr absl::string_view kIdPrefixes[] = {"sd",   "blk", "nv",   "vublk",     "net",
                                             "vfio", "cpu", "dimm", "virtiomem", "port"};
constexpr absl::string_view kBackendPrefixes[] = {"drive-", "mem-", "char-"};

// The index of a hot-plug device id, or -1 for any other id (cold-plugged devices, bridges).
inline int64_t HotplugIndex(absl::string_view id) {
  for (absl::string_view prefix : kIdPrefixes) {
    absl::string_view rest = id;
    int64_t n;
    if (absl::ConsumePrefix(&rest, prefix) && !rest.empty() &&
        std::all_of(rest.begin(), rest.end(), absl::ascii_isdigit) && absl::SimpleAtoi(rest, &n)) {
      return n;
    }
  }
  return -1;
}

inline bool IsHotplugBackend(absl::string_view name) {
  for (absl::string_view prefix : kBackendPrefixes) {
    if (absl::ConsumePrefix(&name, prefix)) return HotplugIndex(name) >= 0;
  }
  return false;
}

// A delete whose target QEMU no longer has: what a rollback after a crash often finds.
inline bool AlreadyGone(const absl::Status& st) {
  return qmp::HasErrorClass(st, "DeviceNotFound") || absl::StrContains(st.message(), "not found") ||
         absl::StrContains(st.message(), "Failed to find node");
}

// QEMU refuses a second device_del while the guest is still ejecting the device.
inline bool UnplugAlreadyRequested(const absl::Status& st) {
  return absl::StrContains(st.message(), "already in the process of unplug");
}

inline std::string Hex2(int v) { return absl::StrCat(absl::Hex(v, absl::kZeroPad2)); }

inline int64_t JsonInt(const Json& j, const char* key, int64_t fallback = -1) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

// The object-add arguments of guest RAM: a shared file where the guest's memory must be shared
// (virtio-fs, file_mem_backend, hugepages), anonymous RAM otherwise.
inline Json MemoryBackend(const config::QemuConfig& c, const std::string& id, int64_t size_bytes) {
  Json backend = {{"id", id}, {"size", size_bytes}};
  if (SharesMemory(c)) {
    backend["qom-type"] = "memory-backend-file";
    backend["mem-path"] = MemoryPath(c);
    backend["share"] = true;
  } else {
    backend["qom-type"] = "memory-backend-ram";
  }
  return backend;
}

}  // namespace hotplug_internal

// The undo log of one operation: what each successful step created, undone in reverse order
// when a later step fails. Undo is skipped when the QMP session is unusable (a timed-out command
// may still be running in QEMU); the error then says what QEMU may still hold.
class Hotplug::UndoLog {
 public:
  explicit UndoLog(Hotplug& hp) : hp_(hp) {}
  void Add(std::string what, std::function<absl::Status()> undo) {
    undo_.emplace_back(std::move(what), std::move(undo));
  }
  // Returns `cause`, with what could not be undone appended.
  absl::Status Undo(absl::Status cause) {
    std::vector<std::string> left;
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      if (!hp_.qmp_.health().ok()) {
        left.push_back(it->first);
        continue;
      }
      absl::Status st = it->second();
      if (!st.ok()) left.push_back(absl::StrCat(it->first, " (", st.message(), ")"));
    }
    undo_.clear();
    // With everything undone the intent is settled; otherwise it stays for Reconcile.
    if (left.empty() && hp_.qmp_.health().ok()) return hp_.Settle(cause);
    return absl::Status(
        cause.code(),
        absl::StrCat(cause.message(), left.empty() ? "" : "; not rolled back, ",
                     left.empty() ? "" : "QEMU may still hold: ", absl::StrJoin(left, ", "),
                     "; the intent stays recorded and the next invocation "
                     "reconciles it with QEMU"));
  }

 private:
  Hotplug& hp_;
  std::vector<std::pair<std::string, std::function<absl::Status()>>> undo_;
};

}  // namespace runvm::qemu

#endif  // RUNVM_HYPERVISOR_QEMU_HOTPLUG_INTERNAL_H_
