// A running VM's part of the sandbox state: saved after StartVm, loaded by every later invocation
// (and after any restart), so that StopVm and everything else act on the recorded processes and
// paths, never on guesses.
//
//   RETURN_IF_ERROR(SaveVm(store, "sandboxes/abc/vm.json", vm));
//   ASSIGN_OR_RETURN(RunningVm vm, LoadVm(store, "sandboxes/abc/vm.json"));
#ifndef RUNVM_HYPERVISOR_QEMU_VM_RECORD_H_
#define RUNVM_HYPERVISOR_QEMU_VM_RECORD_H_

#include <string>

#include "absl/status/statusor.h"
#include "hypervisor/qemu/vm.h"
#include "nlohmann/json.hpp"
#include "persist/store.h"

namespace runvm::qemu {

inline constexpr char kVmRecordFormat[] = "runvm.vm";
inline constexpr int kVmRecordVersion = 1;

nlohmann::json VmToJson(const RunningVm& vm);
nlohmann::json DeviceToJson(const PluggedDevice& device);
// Strict: every field must be present with its type; errors name the field.
absl::StatusOr<RunningVm> VmFromJson(const nlohmann::json& j);

absl::Status SaveVm(const persist::Store& store, const std::string& key, const RunningVm& vm);
absl::StatusOr<RunningVm> LoadVm(const persist::Store& store, const std::string& key);

}  // namespace runvm::qemu

#endif  // RUNVM_HYPERVISOR_QEMU_VM_RECORD_H_
