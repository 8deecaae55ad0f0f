// FakeSandboxes: sandboxes without QEMU, behind the seam of runtime/sandbox/vm.h, for unit tests
// of the OCI library. A booted fake has a run directory and a shared directory on disk (so that
// the bundle's binds are real mounts), a record of what is plugged, and a scripted agent that
// keeps the set of containers and processes created in its "guest". Each step can be made to
// fail (Faults), so that every rollback path is reachable; Leftovers() says what a test left.
//
//   auto sandboxes = std::make_shared<FakeSandboxes>(root.path());
//   sandboxes->faults().add_port = absl::InternalError("chardev-add failed");
//   Containers containers({.root = root.path(), .sandboxes = sandboxes, ...});
//   EXPECT_FALSE(containers.Create({.id = "c1", .bundle = b}).ok());
//   EXPECT_THAT(sandboxes->Leftovers(), IsEmpty());
#ifndef RUNVM_TESTS_TESTING_FAKE_SANDBOXES_H_
#define RUNVM_TESTS_TESTING_FAKE_SANDBOXES_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "runtime/sandbox/vm.h"

namespace runvm::testing {

struct Faults {
  absl::Status boot;              // Sandboxes::Boot
  absl::Status add_port;          // SandboxVm::AddSerialPort
  absl::Status add_vcpus;         // SandboxVm::AddVcpus
  absl::Status agent_connect;     // SandboxVm::Agent
  absl::Status create_in_guest;   // the agent's answer to create_container and exec_process
  absl::Status destroy_in_guest;  // the agent's answer to destroy
};

class FakeSandboxes : public Sandboxes {
 public:
  explicit FakeSandboxes(std::string root);
  ~FakeSandboxes() override;

  Faults& faults() { return faults_; }
  // The calls made so far, in order ("boot c1", "add-port c1 io-...", "agent create_container
  // c1", "unplug c1 port0", "delete c1"), for tests that check the order of the steps.
  const std::vector<std::string>& calls() const { return calls_; }
  // What is still there: booted sandboxes, plugged devices, containers and processes in a guest,
  // and mounts under the root. Empty after a rollback or a delete that removed everything.
  std::vector<std::string> Leftovers() const;

  absl::Status Boot(const std::string& id, const LoadedConfig& loaded,
                    const std::string& netns) override;
  absl::StatusOr<std::unique_ptr<SandboxVm>> Open(const std::string& id, absl::string_view purpose,
                                                  bool connect) override;
  absl::Status Delete(const std::string& id, bool force) override;
  bool Exists(const std::string& id) const override { return vms_.count(id) > 0; }
  const persist::Store& records() const override { return store_; }
  std::string Dir(const std::string& id) const override { return root_ + "/" + id; }
  absl::StatusOr<persist::Lock> LockShared(const std::string& id,
                                           absl::string_view purpose) const override;

  // One fake VM: the record the OCI library reads and the guest the agent answers for.
  struct Vm {
    SandboxRecord record;
    std::set<std::string> guest;  // container and exec ids the agent created
    bool paused = false;
    int next_device = 0;
  };

 private:
  std::string root_;
  persist::Store store_;
  Faults faults_;
  std::map<std::string, Vm> vms_;
  std::vector<std::string> calls_;
  friend class FakeSandboxVm;
  friend class FakeAgent;
};

}  // namespace runvm::testing

#endif  // RUNVM_TESTS_TESTING_FAKE_SANDBOXES_H_
