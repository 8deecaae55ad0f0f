#include "hypervisor/qemu/vm_record.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace runvm::qemu {
namespace {

using Json = nlohmann::json;

Json IdentityToJson(const ProcessIdentity& id) {
  return {{"pid", id.pid}, {"start_time", id.start_time}, {"exe", id.exe}};
}

absl::Status Missing(absl::string_view field, absl::string_view kind) {
  return absl::InvalidArgumentError(
      absl::StrCat("vm record: field \"", field, "\" is missing or not ", kind));
}

absl::StatusOr<std::string> String(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_string()) return Missing(field, "a string");
  return it->get<std::string>();
}

absl::StatusOr<ProcessIdentity> Identity(const Json& j, const std::string& field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_object()) return Missing(field, "an object");
  const Json& o = *it;
  auto pid = o.find("pid");
  auto start = o.find("start_time");
  auto exe = o.find("exe");
  if (pid == o.end() || !pid->is_number_integer() || start == o.end() ||
      !start->is_number_unsigned() || exe == o.end() || !exe->is_string()) {
    return Missing(field, "a process identity {pid, start_time, exe}");
  }
  return ProcessIdentity{pid->get<pid_t>(), start->get<uint64_t>(), exe->get<std::string>()};
}

}  // namespace

Json VmToJson(const RunningVm& vm) {
  Json j = {{"sandbox_id", vm.sandbox_id},
            {"uuid", vm.uuid},
            {"run_dir", vm.run_dir},
            {"shared_dir", vm.shared_dir},
            {"qemu", IdentityToJson(vm.qemu)}};
  if (vm.virtiofsd) j["virtiofsd"] = IdentityToJson(*vm.virtiofsd);
  if (vm.watcher) j["watcher"] = IdentityToJson(*vm.watcher);
  return j;
}

absl::StatusOr<RunningVm> VmFromJson(const Json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("vm record: not an object");
  RunningVm vm;
  ASSIGN_OR_RETURN(vm.sandbox_id, String(j, "sandbox_id"));
  ASSIGN_OR_RETURN(vm.uuid, String(j, "uuid"));
  ASSIGN_OR_RETURN(vm.run_dir, String(j, "run_dir"));
  ASSIGN_OR_RETURN(vm.shared_dir, String(j, "shared_dir"));
  ASSIGN_OR_RETURN(vm.qemu, Identity(j, "qemu"));
  for (auto [field, slot] :
       {std::pair<const char*, std::optional<ProcessIdentity>*>{"virtiofsd", &vm.virtiofsd},
        {"watcher", &vm.watcher}}) {
    if (!j.contains(field)) continue;
    ASSIGN_OR_RETURN(ProcessIdentity id, Identity(j, field));
    *slot = id;
  }
  return vm;
}

absl::Status SaveVm(const persist::Store& store, const std::string& key, const RunningVm& vm) {
  return store.Save(key, kVmRecordFormat, kVmRecordVersion, VmToJson(vm));
}

absl::StatusOr<RunningVm> LoadVm(const persist::Store& store, const std::string& key) {
  ASSIGN_OR_RETURN(Json data, store.Load(key, kVmRecordFormat, kVmRecordVersion));
  absl::StatusOr<RunningVm> vm = VmFromJson(data);
  if (!vm.ok()) return Annotate(vm.status(), store.PathOf(key));
  return vm;
}

}  // namespace runvm::qemu
