#include "runtime/sandbox/vm.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runtime/sandbox/agent_client.h"
#include "runtime/sandbox/boot.h"

namespace runvm {

absl::Status SandboxVm::CheckRunning() const {
  const SandboxRecord& s = record();
  if (s.status == kRunning && s.vm) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("sandbox ", s.id, " is not running", s.note.empty() ? "" : ": ", s.note));
}

namespace {

// A failure to reach the guest names the sandbox; the agent's own answers ("error" replies,
// FailedPrecondition) are passed on as they are.
class AgentConnection : public GuestAgent {
 public:
  AgentConnection(std::string sandbox, AgentClient client)
      : sandbox_(std::move(sandbox)), client_(std::move(client)) {}
  absl::StatusOr<agent_proto::Message> Call(agent_proto::Message request,
                                            absl::Time deadline) override {
    absl::StatusOr<agent_proto::Message> reply = client_.Call(std::move(request), deadline);
    if (reply.ok() || absl::IsFailedPrecondition(reply.status())) return reply;
    return Annotate(reply.status(), "sandbox " + sandbox_);
  }

 private:
  std::string sandbox_;
  AgentClient client_;
};

// A change through qemu::Hotplug, saved whatever its outcome: the record says what is plugged.
template <typename T>
absl::StatusOr<T> Saved(Sandbox& sb, absl::StatusOr<T> result) {
  RETURN_IF_ERROR(sb.Save());
  return result;
}

class QemuSandboxVm : public SandboxVm {
 public:
  explicit QemuSandboxVm(std::unique_ptr<Sandbox> sandbox) : sb_(std::move(sandbox)) {}

  const SandboxRecord& record() const override { return sb_->record(); }
  absl::Status CheckCanPlug() const override { return sb_->hotplug().status(); }

  absl::StatusOr<qemu::PluggedDevice> AddSerialPort(const std::string& name) override {
    ASSIGN_OR_RETURN(qemu::Hotplug * hp, sb_->hotplug());
    return Saved(*sb_, hp->AddSerialPort(name));
  }
  absl::StatusOr<qemu::VcpuResult> AddVcpus(int count) override {
    ASSIGN_OR_RETURN(qemu::Hotplug * hp, sb_->hotplug());
    return Saved(*sb_, hp->AddVcpus(count));
  }
  absl::StatusOr<qemu::MemoryResult> AddMemory(int64_t mib) override {
    ASSIGN_OR_RETURN(qemu::Hotplug * hp, sb_->hotplug());
    return Saved(*sb_, hp->AddMemory(mib));
  }
  absl::Status Unplug(const std::string& device) override {
    ASSIGN_OR_RETURN(qemu::Hotplug * hp, sb_->hotplug());
    absl::Status st = hp->Remove(device);
    RETURN_IF_ERROR(sb_->Save());
    return st;
  }
  absl::Status PauseVm() override { return sb_->PauseVm(); }
  absl::Status ResumeVm() override { return sb_->ResumeVm(); }
  absl::StatusOr<std::vector<int>> VcpuThreads() override { return sb_->VcpuThreads(); }
  absl::StatusOr<std::unique_ptr<GuestAgent>> Agent(absl::Time deadline) override {
    RETURN_IF_ERROR(CheckRunning());
    absl::StatusOr<AgentClient> client =
        AgentClient::Connect(record().vm->agent_socket(), deadline);
    if (!client.ok()) return Annotate(client.status(), "sandbox " + record().id);
    return std::make_unique<AgentConnection>(record().id, *std::move(client));
  }

 private:
  std::unique_ptr<Sandbox> sb_;
};

class QemuSandboxStore : public Sandboxes {
 public:
  explicit QemuSandboxStore(SandboxStoreOptions options) : store_(std::move(options)) {}

  absl::Status Boot(const std::string& id, const LoadedConfig& loaded,
                    const std::string& netns) override {
    return BootSandbox(store_, id, loaded, /*wait_guest=*/true, netns);
  }
  absl::StatusOr<std::unique_ptr<SandboxVm>> Open(const std::string& id, absl::string_view purpose,
                                                  bool connect) override {
    ASSIGN_OR_RETURN(std::unique_ptr<Sandbox> sb, store_.Open(id, purpose, connect));
    return std::make_unique<QemuSandboxVm>(std::move(sb));
  }
  absl::Status Delete(const std::string& id, bool force) override {
    return store_.Delete(id, force);
  }
  bool Exists(const std::string& id) const override {
    return ::access((store_.Dir(id) + "/sandbox.json").c_str(), F_OK) == 0;
  }
  const persist::Store& records() const override { return store_.records(); }
  std::string Dir(const std::string& id) const override { return store_.Dir(id); }
  absl::StatusOr<persist::Lock> LockShared(const std::string& id,
                                           absl::string_view purpose) const override {
    return store_.LockShared(id, purpose);
  }

 private:
  SandboxStore store_;
};

}  // namespace

std::unique_ptr<Sandboxes> QemuSandboxes(SandboxStoreOptions options) {
  return std::make_unique<QemuSandboxStore>(std::move(options));
}

}  // namespace runvm
