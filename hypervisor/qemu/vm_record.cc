#include "hypervisor/qemu/vm_record.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "proto/config_codec.h"

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

absl::StatusOr<int64_t> Int(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_number_integer()) return Missing(field, "an integer");
  return it->get<int64_t>();
}

absl::StatusOr<bool> Bool(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_boolean()) return Missing(field, "a boolean");
  return it->get<bool>();
}

absl::StatusOr<std::vector<std::string>> Strings(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_array()) return Missing(field, "a list of strings");
  std::vector<std::string> out;
  for (const Json& e : *it) {
    if (!e.is_string()) return Missing(field, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

absl::StatusOr<PluggedDevice> DeviceFromJson(const Json& j) {
  if (!j.is_object()) return Missing("hotplug.devices[]", "an object");
  PluggedDevice d;
  for (auto [field, out] : {std::pair<const char*, std::string*>{"id", &d.id},
                            {"kind", &d.kind},
                            {"bus", &d.bus},
                            {"guest_address", &d.guest_address},
                            {"source", &d.source},
                            {"node_name", &d.node_name},
                            {"netdev", &d.netdev},
                            {"object", &d.object},
                            {"chardev", &d.chardev}}) {
    ASSIGN_OR_RETURN(*out, String(j, field));
  }
  ASSIGN_OR_RETURN(int64_t slot, Int(j, "slot"));
  d.slot = static_cast<int>(slot);
  ASSIGN_OR_RETURN(d.size_bytes, Int(j, "size_bytes"));
  ASSIGN_OR_RETURN(d.fd_names, Strings(j, "fd_names"));
  ASSIGN_OR_RETURN(d.unplug_pending, Bool(j, "unplug_pending"));
  if (d.id.empty()) return Missing("hotplug.devices[].id", "a non-empty string");
  return d;
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

Json DeviceToJson(const PluggedDevice& d) {
  // Field by field: nlohmann's initializer lists copy every value once more.
  Json j = Json::object();
  j["id"] = d.id;
  j["kind"] = d.kind;
  j["bus"] = d.bus;
  j["slot"] = d.slot;
  j["guest_address"] = d.guest_address;
  j["source"] = d.source;
  j["size_bytes"] = d.size_bytes;
  j["node_name"] = d.node_name;
  j["netdev"] = d.netdev;
  j["object"] = d.object;
  j["chardev"] = d.chardev;
  j["fd_names"] = d.fd_names;
  j["unplug_pending"] = d.unplug_pending;
  return j;
}

Json VmToJson(const RunningVm& vm) {
  Json j = {{"sandbox_id", vm.sandbox_id},
            {"uuid", vm.uuid},
            {"run_dir", vm.run_dir},
            {"shared_dir", vm.shared_dir},
            {"qemu", IdentityToJson(vm.qemu)}};
  if (vm.virtiofsd) j["virtiofsd"] = IdentityToJson(*vm.virtiofsd);
  if (vm.watcher) j["watcher"] = IdentityToJson(*vm.watcher);
  j["config"] = config::QemuToJson(vm.config);
  j["accelerator"] = vm.accelerator;
  j["max_memory_mib"] = vm.max_memory_mib;
  Json devices = Json::array();
  for (const PluggedDevice& d : vm.hotplug.devices) devices.push_back(DeviceToJson(d));
  Json intent = nullptr;
  if (const std::optional<HotplugIntent>& in = vm.hotplug.intent) {
    intent = {{"op", in->op}, {"step", in->step}, {"device", DeviceToJson(in->device)}};
  }
  j["hotplug"] = {{"next_index", vm.hotplug.next_index},
                  {"devices", std::move(devices)},
                  {"intent", std::move(intent)}};
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
  auto config = j.find("config");
  if (config == j.end() || !config->is_object()) return Missing("config", "an object");
  absl::StatusOr<config::QemuConfig> qemu = config::QemuFromJson(*config);
  if (!qemu.ok()) return Annotate(qemu.status(), "vm record: config");
  vm.config = *std::move(qemu);
  ASSIGN_OR_RETURN(vm.accelerator, String(j, "accelerator"));
  ASSIGN_OR_RETURN(vm.max_memory_mib, Int(j, "max_memory_mib"));
  auto hotplug = j.find("hotplug");
  if (hotplug == j.end() || !hotplug->is_object()) return Missing("hotplug", "an object");
  ASSIGN_OR_RETURN(vm.hotplug.next_index, Int(*hotplug, "next_index"));
  auto devices = hotplug->find("devices");
  if (devices == hotplug->end() || !devices->is_array()) {
    return Missing("hotplug.devices", "a list");
  }
  for (const Json& d : *devices) {
    ASSIGN_OR_RETURN(PluggedDevice device, DeviceFromJson(d));
    if (vm.hotplug.Find(device.id) != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("vm record: device id \"", device.id, "\" appears twice"));
    }
    vm.hotplug.devices.push_back(std::move(device));
  }
  auto intent = hotplug->find("intent");
  if (intent == hotplug->end() || !(intent->is_null() || intent->is_object())) {
    return Missing("hotplug.intent", "null or an object");
  }
  if (intent->is_object()) {
    HotplugIntent in;
    ASSIGN_OR_RETURN(in.op, String(*intent, "op"));
    ASSIGN_OR_RETURN(in.step, String(*intent, "step"));
    if (in.op != kIntentPlug && in.op != kIntentUnplug && in.op != kIntentResize) {
      return absl::InvalidArgumentError(absl::StrCat("vm record: hotplug.intent.op \"", in.op,
                                                     "\" is not plug, unplug or resize"));
    }
    auto device = intent->find("device");
    if (device == intent->end()) return Missing("hotplug.intent.device", "an object");
    ASSIGN_OR_RETURN(in.device, DeviceFromJson(*device));
    vm.hotplug.intent = std::move(in);
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
