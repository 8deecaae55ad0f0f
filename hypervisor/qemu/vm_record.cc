#include "hypervisor/qemu/vm_record.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "persist/fields.h"
#include "proto/config_codec.h"

namespace runvm::qemu {
namespace {

using Json = nlohmann::json;

using persist::IdentityToJson;

persist::Fields Reader(const Json& j) { return persist::Fields(j, "vm record"); }

absl::StatusOr<PluggedDevice> DeviceFromJson(const Json& j) {
  const persist::Fields f = Reader(j);
  if (!j.is_object()) return f.Missing("hotplug.devices[]", "an object");
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
    ASSIGN_OR_RETURN(*out, f.String(field));
  }
  ASSIGN_OR_RETURN(int64_t slot, f.Int("slot"));
  d.slot = static_cast<int>(slot);
  ASSIGN_OR_RETURN(d.size_bytes, f.Int("size_bytes"));
  ASSIGN_OR_RETURN(d.fd_names, f.Strings("fd_names"));
  ASSIGN_OR_RETURN(d.unplug_pending, f.Bool("unplug_pending"));
  if (d.id.empty()) return f.Missing("hotplug.devices[].id", "a non-empty string");
  return d;
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
  const persist::Fields f = Reader(j);
  RunningVm vm;
  ASSIGN_OR_RETURN(vm.sandbox_id, f.String("sandbox_id"));
  ASSIGN_OR_RETURN(vm.uuid, f.String("uuid"));
  ASSIGN_OR_RETURN(vm.run_dir, f.String("run_dir"));
  ASSIGN_OR_RETURN(vm.shared_dir, f.String("shared_dir"));
  ASSIGN_OR_RETURN(vm.qemu, f.Identity("qemu"));
  for (auto [field, slot] :
       {std::pair<const char*, std::optional<ProcessIdentity>*>{"virtiofsd", &vm.virtiofsd},
        {"watcher", &vm.watcher}}) {
    if (!j.contains(field)) continue;
    ASSIGN_OR_RETURN(ProcessIdentity id, f.Identity(field));
    *slot = id;
  }
  auto config = j.find("config");
  if (config == j.end() || !config->is_object()) return f.Missing("config", "an object");
  absl::StatusOr<config::QemuConfig> qemu = config::QemuFromJson(*config);
  if (!qemu.ok()) return Annotate(qemu.status(), "vm record: config");
  vm.config = *std::move(qemu);
  ASSIGN_OR_RETURN(vm.accelerator, f.String("accelerator"));
  ASSIGN_OR_RETURN(vm.max_memory_mib, f.Int("max_memory_mib"));
  auto hotplug = j.find("hotplug");
  if (hotplug == j.end() || !hotplug->is_object()) return f.Missing("hotplug", "an object");
  ASSIGN_OR_RETURN(vm.hotplug.next_index, Reader(*hotplug).Int("next_index"));
  auto devices = hotplug->find("devices");
  if (devices == hotplug->end() || !devices->is_array()) {
    return f.Missing("hotplug.devices", "a list");
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
    return f.Missing("hotplug.intent", "null or an object");
  }
  if (intent->is_object()) {
    HotplugIntent in;
    ASSIGN_OR_RETURN(in.op, Reader(*intent).String("op"));
    ASSIGN_OR_RETURN(in.step, Reader(*intent).String("step"));
    if (in.op != kIntentPlug && in.op != kIntentUnplug && in.op != kIntentResize) {
      return absl::InvalidArgumentError(absl::StrCat("vm record: hotplug.intent.op \"", in.op,
                                                     "\" is not plug, unplug or resize"));
    }
    auto device = intent->find("device");
    if (device == intent->end()) return f.Missing("hotplug.intent.device", "an object");
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
