#include "runtime/cli/sandbox.h"

#include <cstdlib>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "base/status.h"
#include "hypervisor/qemu/vm_record.h"
#include "nlohmann/json.hpp"
#include "runtime/cli/verb.h"
#include "runtime/sandbox/boot.h"
#include "runtime/sandbox/store.h"

namespace runvm {
namespace {

using Json = nlohmann::ordered_json;

absl::StatusOr<absl::Duration> LockWait() {
  const char* text = std::getenv("RUNVM_LOCK_WAIT");
  if (text == nullptr || *text == '\0') return absl::Seconds(30);
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("RUNVM_LOCK_WAIT=\"", text, "\" is not a duration such as 500ms or 30s"));
  }
  return d;
}

absl::Status Create(SandboxStore& store, const SandboxCommand& c,
                    const std::function<absl::StatusOr<LoadedConfig>()>& load) {
  RETURN_IF_ERROR(ValidateSandboxId(c.id));
  ASSIGN_OR_RETURN(LoadedConfig loaded, load());
  return BootSandbox(store, c.id, loaded, c.wait_guest, c.netns);
}

// Plugs what the command asks for; prints the device(s).
absl::Status Plug(SandboxStore& store, const SandboxCommand& c) {
  ASSIGN_OR_RETURN(std::unique_ptr<Sandbox> sandbox, store.Open(c.id, "hotplug"));
  ASSIGN_OR_RETURN(qemu::Hotplug * hp, sandbox->hotplug());
  Json out = Json::array();
  auto print = [&](const qemu::PluggedDevice& d) {
    out.push_back(Json::parse(qemu::DeviceToJson(d).dump()));
  };
  absl::Status result;
  if (c.kind == "disk") {
    absl::StatusOr<qemu::PluggedDevice> d =
        hp->AddDisk({.path = c.path, .read_only = c.read_only, .driver = c.driver});
    if (d.ok()) print(*d);
    result = d.status();
  } else if (c.kind == "nic") {
    absl::StatusOr<qemu::PluggedDevice> d =
        hp->AddNic({.tap_name = c.tap, .netns = c.netns, .mac = c.mac, .queues = c.queues});
    if (d.ok()) print(*d);
    result = d.status();
  } else if (c.kind == "vfio") {
    absl::StatusOr<std::vector<qemu::PluggedDevice>> ds = hp->AddVfio(c.path);
    if (ds.ok()) {
      for (const qemu::PluggedDevice& d : *ds) print(d);
    }
    result = ds.status();
  } else if (c.kind == "cpus") {
    absl::StatusOr<qemu::VcpuResult> r = hp->AddVcpus(static_cast<int>(c.amount));
    if (r.ok()) {
      if (!r->warning.empty()) LogWarning(r->warning);
      for (const std::string& id : r->ids) print(*sandbox->record().vm->hotplug.Find(id));
    }
    result = r.status();
  } else if (c.kind == "memory") {
    absl::StatusOr<qemu::MemoryResult> r = hp->AddMemory(c.amount);
    if (r.ok()) print(*sandbox->record().vm->hotplug.Find(r->device_id));
    result = r.status();
  } else {
    return absl::InvalidArgumentError(absl::StrCat("plug: unknown kind \"", c.kind, "\""));
  }
  // The record is saved also after a failure: a partial vCPU plug or a pending intent is real.
  result.Update(sandbox->Save());
  RETURN_IF_ERROR(result);
  std::cout << out.dump(2) << "\n";
  return absl::OkStatus();
}

Json ViewToJson(const SandboxView& v) {
  Json j = {{"id", v.id}, {"status", v.status}};
  if (!v.detail.empty()) j["detail"] = v.detail;
  if (!v.record) return j;
  const SandboxRecord& r = *v.record;
  j["created"] = r.created;
  if (r.vm) {
    j["pid"] = r.vm->qemu.pid;
    Json devices = Json::array();
    for (const qemu::PluggedDevice& d : r.vm->hotplug.devices) {
      devices.push_back(Json::parse(qemu::DeviceToJson(d).dump()));
    }
    j["devices"] = std::move(devices);
  }
  j["record"] = Json::parse(SandboxToJson(r).dump());
  return j;
}

void PrintTable(const std::vector<SandboxView>& views) {
  std::string out = absl::StrCat(absl::StrFormat("%-24s %-10s %-8s %-8s %-32s %s\n", "ID", "STATUS",
                                                 "PID", "DEVICES", "CREATED", "DETAIL"));
  for (const SandboxView& v : views) {
    std::string pid = "0", devices = "0", created;
    if (v.record) {
      created = v.record->created;
      if (v.record->vm) {
        pid = absl::StrCat(v.record->vm->qemu.pid);
        devices = absl::StrCat(v.record->vm->hotplug.devices.size());
      }
    }
    absl::StrAppend(&out, absl::StrFormat("%-24s %-10s %-8s %-8s %-32s %s\n", v.id, v.status, pid,
                                          devices, created, v.detail));
  }
  std::cout << out;
}

}  // namespace

absl::Status RunSandboxCommand(const SandboxCommand& c, const std::string& root,
                               const std::function<absl::StatusOr<LoadedConfig>()>& load) {
  ASSIGN_OR_RETURN(absl::Duration lock_wait, LockWait());
  SandboxStore store({.root = root, .lock_wait = lock_wait});
  if (c.verb == "create") return Create(store, c, load);
  if (c.verb == "plug") return Plug(store, c);
  if (c.verb == "unplug") {
    ASSIGN_OR_RETURN(std::unique_ptr<Sandbox> sandbox, store.Open(c.id, "unplug"));
    ASSIGN_OR_RETURN(qemu::Hotplug * hp, sandbox->hotplug());
    absl::Status result = hp->Remove(c.device);
    result.Update(sandbox->Save());
    return result;
  }
  if (c.verb == "stop") return store.Stop(c.id);
  if (c.verb == "delete") return store.Delete(c.id, c.force);
  if (c.verb == "state") {
    ASSIGN_OR_RETURN(SandboxView view, store.State(c.id));
    std::cout << ViewToJson(view).dump(2) << "\n";
    return absl::OkStatus();
  }
  if (c.verb == "list") {
    ASSIGN_OR_RETURN(std::vector<SandboxView> views, store.List());
    if (c.format == "json") {
      Json all = Json::array();
      for (const SandboxView& v : views) all.push_back(ViewToJson(v));
      std::cout << all.dump(2) << "\n";
    } else {
      PrintTable(views);
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("sandbox: unknown verb \"", c.verb, "\""));
}

Verb SandboxVerb(const GlobalFlags& g) {
  struct Flags {
    SandboxCommand c;
    bool no_wait = false;
  };
  auto f = std::make_shared<Flags>();
  SandboxCommand& c = f->c;
  // Each sub-verb runs the command it names (the plug kinds name theirs too).
  auto run = [&g, f](const char* verb, const char* kind = "") {
    return [&g, f, verb, kind] {
      f->c.verb = verb;
      f->c.kind = kind;
      f->c.wait_guest = !f->no_wait;
      return Done(RunSandboxCommand(f->c, g.root, [&g] { return LoadConfig(g); }));
    };
  };
  const Flag id = {.names = "id", .help = "sandbox id", .into = &c.id, .required = true};
  return {
      .name = "sandbox",
      .help = "operate sandbox VMs directly",
      .verbs = {
          {.name = "create",
           .help = "boot a sandbox VM",
           .flags = {id,
                     {.names = "--no-wait",
                      .help = "return once QEMU runs, without waiting for the guest",
                      .into = &f->no_wait},
                     {.names = "--netns",
                      .help = "the pod's network namespace (a path) to carry into the VM",
                      .into = &c.netns}},
           .run = run("create")},
          {.name = "plug",
           .help = "hot-plug a device into a running sandbox",
           .verbs = {{.name = "disk",
                      .help = "a disk image or block device",
                      .flags = {id,
                                {.names = "path",
                                 .help = "file or block device",
                                 .into = &c.path,
                                 .required = true},
                                {.names = "--read-only",
                                 .help = "read-only to the guest",
                                 .into = &c.read_only},
                                {.names = "--driver",
                                 .help =
                                     "virtio-blk, virtio-scsi, nvdimm or vhost-user-blk (default: "
                                     "block_device_driver)",
                                 .into = &c.driver}},
                      .run = run("plug", "disk")},
                     {.name = "nic",
                      .help = "a virtio-net NIC on a new tap device",
                      .flags = {id,
                                {.names = "--tap",
                                 .help = "name of the tap to create",
                                 .into = &c.tap,
                                 .required = true},
                                {.names = "--mac",
                                 .help = "the guest NIC's MAC",
                                 .into = &c.mac,
                                 .required = true},
                                {.names = "--netns",
                                 .help = "network namespace path (default: runvm's own)",
                                 .into = &c.netns},
                                {.names = "--queues",
                                 .help = "queues (default: one per boot vCPU)",
                                 .into = &c.queues}},
                      .run = run("plug", "nic")},
                     {.name = "vfio",
                      .help = "a host PCI device or mdev, whole group",
                      .flags = {id,
                                {.names = "device",
                                 .help = "BDF, short BDF, mdev UUID or /dev/vfio/N",
                                 .into = &c.path,
                                 .required = true}},
                      .run = run("plug", "vfio")},
                     {.name = "cpus",
                      .help = "more vCPUs",
                      .flags = {id,
                                {.names = "count",
                                 .help = "how many",
                                 .into = &c.amount,
                                 .required = true}},
                      .run = run("plug", "cpus")},
                     {.name = "memory",
                      .help = "more guest memory",
                      .flags = {id,
                                {.names = "mib",
                                 .help = "MiB (rounded up to the memory block size)",
                                 .into = &c.amount,
                                 .required = true}},
                      .run = run("plug", "memory")}}},
          {.name = "unplug",
           .help = "unplug a hot-plugged device",
           .flags = {id,
                     {.names = "device",
                      .help = "device id, as plug printed it",
                      .into = &c.device,
                      .required = true}},
           .run = run("unplug")},
          {.name = "stop",
           .help = "stop the VM; the record stays",
           .flags = {id},
           .run = run("stop")},
          {.name = "delete",
           .help = "stop the VM and remove the sandbox",
           .flags = {id,
                     {.names = "-f,--force",
                      .help = "also a running one; an unknown id is no error",
                      .into = &c.force}},
           .run = run("delete")},
          {.name = "state",
           .help = "the sandbox's state as JSON",
           .flags = {id},
           .run = run("state")},
          {.name = "list",
           .help = "every sandbox",
           .flags = {{.names = "--format",
                      .help = "table or json",
                      .into = &c.format,
                      .choices = {"table", "json"},
                      .show_default = true}},
           .run = run("list")}}};
}

}  // namespace runvm
