#include "tests/testing/fake_sandboxes.h"

#include <sys/mount.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "hypervisor/qemu/hotplug_state.h"
#include "hypervisor/qemu/vm.h"

namespace runvm::testing {

class FakeAgent : public GuestAgent {
 public:
  FakeAgent(FakeSandboxes& owner, FakeSandboxes::Vm& vm) : owner_(owner), vm_(vm) {}

  absl::StatusOr<agent_proto::Message> Call(agent_proto::Message request, absl::Time) override {
    const std::string id = request.fields.value("container", "");
    owner_.calls_.push_back(absl::StrCat("agent ", request.type, " ", id));
    if (request.type == agent_proto::kCreateContainer ||
        request.type == agent_proto::kExecProcess) {
      RETURN_IF_ERROR(owner_.faults_.create_in_guest);
      vm_.guest.insert(id);
      return agent_proto::Message{.type = request.type,
                                  .fields = agent_proto::ToFields(agent_proto::Created{
                                      .pid = static_cast<int64_t>(vm_.guest.size()) + 1})};
    }
    if (request.type == agent_proto::kDestroy) {
      RETURN_IF_ERROR(owner_.faults_.destroy_in_guest);
      if (vm_.guest.erase(id) == 0) {
        return absl::FailedPreconditionError(absl::StrCat("container ", id, " does not exist"));
      }
    }
    return agent_proto::Message{.type = request.type};
  }

 private:
  FakeSandboxes& owner_;
  FakeSandboxes::Vm& vm_;
};

class FakeSandboxVm : public SandboxVm {
 public:
  FakeSandboxVm(FakeSandboxes& owner, FakeSandboxes::Vm& vm) : owner_(owner), vm_(vm) {}

  const SandboxRecord& record() const override { return vm_.record; }
  absl::Status CheckCanPlug() const override { return CheckRunning(); }

  absl::StatusOr<qemu::PluggedDevice> AddSerialPort(const std::string& name) override {
    owner_.calls_.push_back(absl::StrCat("add-port ", vm_.record.id, " ", name));
    RETURN_IF_ERROR(owner_.faults_.add_port);
    return Plug(qemu::kKindSerialPort, vm_.record.run_dir + "/" + name + ".sock", 0);
  }
  absl::StatusOr<qemu::VcpuResult> AddVcpus(int count) override {
    owner_.calls_.push_back(absl::StrCat("add-vcpus ", vm_.record.id, " ", count));
    RETURN_IF_ERROR(owner_.faults_.add_vcpus);
    qemu::VcpuResult result;
    for (int i = 0; i < count; ++i) result.ids.push_back(Plug(qemu::kKindCpu, "", 0).id);
    return result;
  }
  absl::StatusOr<qemu::MemoryResult> AddMemory(int64_t mib) override {
    owner_.calls_.push_back(absl::StrCat("add-memory ", vm_.record.id, " ", mib));
    return qemu::MemoryResult{.added_mib = mib,
                              .device_id = Plug(qemu::kKindDimm, "", mib << 20).id};
  }
  absl::Status Unplug(const std::string& device) override {
    owner_.calls_.push_back(absl::StrCat("unplug ", vm_.record.id, " ", device));
    std::vector<qemu::PluggedDevice>& devices = vm_.record.vm->hotplug.devices;
    auto it = std::find_if(devices.begin(), devices.end(),
                           [&](const qemu::PluggedDevice& d) { return d.id == device; });
    if (it == devices.end()) return absl::NotFoundError(absl::StrCat("no device ", device));
    devices.erase(it);
    return absl::OkStatus();
  }
  absl::Status PauseVm() override {
    vm_.paused = true;
    return absl::OkStatus();
  }
  absl::Status ResumeVm() override {
    vm_.paused = false;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<int>> VcpuThreads() override { return std::vector<int>{}; }
  absl::StatusOr<std::unique_ptr<GuestAgent>> Agent(absl::Time) override {
    RETURN_IF_ERROR(CheckRunning());
    RETURN_IF_ERROR(owner_.faults_.agent_connect);
    return std::make_unique<FakeAgent>(owner_, vm_);
  }

 private:
  qemu::PluggedDevice Plug(const char* kind, const std::string& source, int64_t size) {
    qemu::PluggedDevice d{.id = absl::StrCat(kind, vm_.next_device++),
                          .kind = kind,
                          .source = source,
                          .size_bytes = size};
    vm_.record.vm->hotplug.devices.push_back(d);
    return d;
  }

  FakeSandboxes& owner_;
  FakeSandboxes::Vm& vm_;
};

FakeSandboxes::FakeSandboxes(std::string root) : root_(std::move(root)), store_(root_) {}

FakeSandboxes::~FakeSandboxes() = default;

absl::Status FakeSandboxes::Boot(const std::string& id, const LoadedConfig& loaded,
                                 const std::string& netns) {
  calls_.push_back(absl::StrCat("boot ", id, netns.empty() ? "" : " netns " + netns));
  RETURN_IF_ERROR(faults_.boot);
  if (vms_.count(id) > 0) return absl::AlreadyExistsError(absl::StrCat("sandbox ", id, " exists"));
  const std::string run_dir = root_ + "/.fake-vm/" + id;
  std::error_code ec;
  std::filesystem::create_directories(run_dir + "/shared", ec);
  if (ec) return ErrnoError(ec.value(), "create " + run_dir);
  std::filesystem::create_directories(Dir(id), ec);
  Vm vm;
  vm.record = {.id = id, .status = kRunning, .run_dir = run_dir};
  vm.record.vm = qemu::RunningVm{.sandbox_id = id,
                                 .run_dir = run_dir,
                                 .shared_dir = run_dir + "/shared",
                                 .config = loaded.config.hypervisor,
                                 .max_memory_mib = loaded.config.hypervisor.default_memory * 4};
  vms_.emplace(id, std::move(vm));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SandboxVm>> FakeSandboxes::Open(const std::string& id,
                                                               absl::string_view, bool) {
  auto it = vms_.find(id);
  if (it == vms_.end()) return absl::NotFoundError(absl::StrCat("sandbox ", id, " does not exist"));
  return std::make_unique<FakeSandboxVm>(*this, it->second);
}

absl::Status FakeSandboxes::Delete(const std::string& id, bool force) {
  calls_.push_back("delete " + id);
  auto it = vms_.find(id);
  if (it == vms_.end()) {
    return force ? absl::OkStatus()
                 : absl::NotFoundError(absl::StrCat("sandbox ", id, " does not exist"));
  }
  // As StopVm does: the shared directory's mounts go with the VM.
  const std::string run_dir = it->second.record.run_dir;
  for (const std::string& m : Leftovers()) {
    if (absl::StartsWith(m, "mount " + run_dir)) {
      (void)::umount2(m.substr(6).c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    }
  }
  // As SandboxStore::Delete does: every process carrying the sandbox's marker (the shims) ends.
  (void)qemu::CollectStrays(run_dir);
  vms_.erase(it);
  std::error_code ec;
  std::filesystem::remove_all(run_dir, ec);
  std::filesystem::remove_all(Dir(id), ec);
  return absl::OkStatus();
}

absl::StatusOr<persist::Lock> FakeSandboxes::LockShared(const std::string& id,
                                                        absl::string_view purpose) const {
  return persist::Lock::Acquire(Dir(id) + "/lock", persist::Lock::kShared, absl::Seconds(1),
                                "sandbox " + id, purpose);
}

std::vector<std::string> FakeSandboxes::Leftovers() const {
  std::vector<std::string> out;
  for (const auto& [id, vm] : vms_) {
    out.push_back("sandbox " + id);
    for (const qemu::PluggedDevice& d : vm.record.vm->hotplug.devices) {
      out.push_back(absl::StrCat("device ", id, " ", d.id));
    }
    for (const std::string& c : vm.guest) out.push_back(absl::StrCat("in guest ", id, " ", c));
  }
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() > 4 && absl::StartsWith(fields[4], root_ + "/")) {
      out.push_back("mount " + fields[4]);
    }
  }
  return out;
}

}  // namespace runvm::testing
