// Create's, exec's and delete's rollback paths through the fake VM (tests/testing/
// fake_sandboxes.h): each step made to fail in turn, and what is left checked — no sandbox, no
// device, nothing in the guest, no mount, no record, no shim.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/oci/containers.h"
#include "tests/testing/bundle.h"
#include "tests/testing/fake_sandboxes.h"
#include "tests/testing/temp_dir.h"

namespace runvm {
namespace {

using testing::Bundle;
using testing::FakeSandboxes;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MakeBusyboxBundle;
using testing::TempDir;

// Ids as engines give them: 64 hex digits.
const std::string kPod(64, 'a');
const std::string kMember(64, 'b');
const std::string kC1 = "c1" + std::string(62, 'c');

class CreateRollbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "binds into the shared directory need root";
    sandboxes_ = std::make_shared<FakeSandboxes>(root_.path() + "/state");
    std::filesystem::create_directories(root_.path() + "/state");
    // The shim: a script that says ready and stays, as `runvm shim` does while its workload runs
    // (the same process throughout, blocked reading a FIFO nobody writes: its identity, which
    // names its executable, stays the one create recorded).
    const std::string fifo = root_.path() + "/never";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    shim_ = root_.Write("shim.sh",
                        absl::StrCat("#!/bin/sh\nprintf ok >&3\nexec 3>&-\nread x <>", fifo, "\n"));
    ::chmod(shim_.c_str(), 0755);
    bundle_ = MakeBusyboxBundle(root_.path() + "/bundle");
    // One bind mount, read-only, so that the shares are more than the rootfs.
    root_.Write("volume/file", "data");
    bundle_.spec.mounts.push_back({.destination = "/data",
                                   .type = "bind",
                                   .source = root_.path() + "/volume",
                                   .options = {"rbind", "ro"}});
    bundle_.Save();
  }

  void TearDown() override {
    if (sandboxes_ == nullptr) return;
    // Whatever a failed test left: its shims and mounts.
    for (const std::string& id : {kMember, kPod, kC1}) {
      (void)containers().Delete(id, /*force=*/true);
    }
  }

  Containers containers() {
    return Containers({.root = root_.path() + "/state",
                       .load_config = [] { return absl::StatusOr<LoadedConfig>(LoadedConfig{}); },
                       .self_exe = shim_,
                       .sandboxes = sandboxes_});
  }

  // A bundle for a pod's sandbox container or one of its members (containerd's annotations).
  std::string PodBundle(const std::string& name, bool sandbox) {
    Bundle b = MakeBusyboxBundle(root_.path() + "/" + name);
    b.spec.annotations = {{"io.kubernetes.cri.container-type", sandbox ? "sandbox" : "container"},
                          {"io.kubernetes.cri.sandbox-id", kPod}};
    b.Save();
    return b.path;
  }

  // Nothing a create made is left: no sandbox, device, guest process, mount, directory or shim.
  void ExpectNothingLeft(const std::string& id) {
    EXPECT_THAT(sandboxes_->Leftovers(), IsEmpty());
    EXPECT_FALSE(std::filesystem::exists(root_.path() + "/state/" + id));
    EXPECT_THAT(ShimsRunning(), IsEmpty());
  }

  // The pod's sandbox container and one member, created.
  void CreatePodWithMember() {
    for (const auto& [id, sandbox] : {std::pair{kPod, true}, std::pair{kMember, false}}) {
      absl::StatusOr<Child> shim =
          containers().Create({.id = id, .bundle = PodBundle(sandbox ? "p" : "m", sandbox)});
      ASSERT_TRUE(shim.ok()) << shim.status();
      shim->Release();
    }
  }

  // Create of kC1 fails with `message`, leaving nothing.
  void ExpectCreateFailsLeavingNothing(const std::string& message) {
    absl::StatusOr<Child> shim = containers().Create({.id = kC1, .bundle = bundle_.path});
    ASSERT_FALSE(shim.ok());
    EXPECT_THAT(shim.status().message(), HasSubstr(message));
    ExpectNothingLeft(kC1);
  }

  // The shim is `script` from now on.
  void UseShim(const std::string& name, const std::string& script) {
    shim_ = root_.Write(name, script);
    ::chmod(shim_.c_str(), 0755);
  }

  // Processes running our shim script.
  std::vector<pid_t> ShimsRunning() {
    std::vector<pid_t> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      absl::StatusOr<std::string> text = ReadFile(e.path().string() + "/cmdline");
      if (text.ok() && text->find(shim_) != std::string::npos) out.push_back(std::stoi(name));
    }
    return out;
  }

  TempDir root_;
  std::shared_ptr<FakeSandboxes> sandboxes_;
  std::string shim_;
  Bundle bundle_;
};

TEST_F(CreateRollbackTest, ACreateThatSucceedsIsRemovedByDelete) {
  absl::StatusOr<Child> shim = containers().Create({.id = kC1, .bundle = bundle_.path});
  ASSERT_TRUE(shim.ok()) << shim.status();
  shim->Release();
  absl::StatusOr<OciState> state = containers().State(kC1);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, ContainerStatus::kCreated);
  EXPECT_THAT(sandboxes_->Leftovers(), ::testing::Contains(HasSubstr("mount ")));
  EXPECT_THAT(sandboxes_->Leftovers(),
              ::testing::Contains(absl::StrCat("in guest ", kC1, " ", kC1)));
  ASSERT_TRUE(containers().Delete(kC1, /*force=*/true).ok());
  ExpectNothingLeft(kC1);
}

TEST_F(CreateRollbackTest, TheVmFailingToBootLeavesNothing) {
  sandboxes_->faults().boot = absl::InternalError("qemu exited: could not load kernel");
  ExpectCreateFailsLeavingNothing("could not load kernel");
  // The id is free again.
  sandboxes_->faults().boot = absl::OkStatus();
  EXPECT_TRUE(containers().Create({.id = kC1, .bundle = bundle_.path}).ok());
}

TEST_F(CreateRollbackTest, ThePortRefusedLeavesNothing) {
  sandboxes_->faults().add_port = absl::InternalError("chardev-add: no free port");
  ExpectCreateFailsLeavingNothing("no free port");
  // The bundle's rootfs and volume were shared before the port: both unbound by the rollback.
  EXPECT_THAT(sandboxes_->calls(), ::testing::Contains("delete " + kC1));
}

TEST_F(CreateRollbackTest, TheAgentRefusingLeavesNothing) {
  sandboxes_->faults().create_in_guest =
      absl::FailedPreconditionError("exec: /bin/nope: not found");
  ExpectCreateFailsLeavingNothing("/bin/nope");
}

TEST_F(CreateRollbackTest, TheAgentUnreachableLeavesNothing) {
  sandboxes_->faults().agent_connect = absl::DeadlineExceededError("agent: no hello");
  ExpectCreateFailsLeavingNothing("no hello");
}

TEST_F(CreateRollbackTest, TheShimFailingLeavesNothing) {
  UseShim("failing-shim.sh", "#!/bin/sh\nprintf 'shim: cannot open the port' >&3\n");
  ExpectCreateFailsLeavingNothing("cannot open the port");
}

TEST_F(CreateRollbackTest, TheShimExitingBeforeReadyLeavesNothing) {
  UseShim("dying-shim.sh", "#!/bin/sh\nexit 1\n");
  ExpectCreateFailsLeavingNothing("exited before it was ready");
}

TEST_F(CreateRollbackTest, AMemberThatFailsRemovesOnlyWhatItAddedToItsPod) {
  absl::StatusOr<Child> pod = containers().Create({.id = kPod, .bundle = PodBundle("p", true)});
  ASSERT_TRUE(pod.ok()) << pod.status();
  pod->Release();
  const std::vector<std::string> pod_only = sandboxes_->Leftovers();
  const std::string member_bundle = PodBundle("m", false);

  struct Step {
    const char* name;
    std::function<void(testing::Faults&)> fail;
    const char* message;
  };
  const Step steps[] = {
      {"port", [](testing::Faults& f) { f.add_port = absl::InternalError("no free port"); },
       "no free port"},
      {"agent", [](testing::Faults& f) { f.create_in_guest = absl::InternalError("refused"); },
       "refused"},
  };
  for (const Step& step : steps) {
    SCOPED_TRACE(step.name);
    sandboxes_->faults() = {};
    step.fail(sandboxes_->faults());
    absl::StatusOr<Child> member = containers().Create({.id = kMember, .bundle = member_bundle});
    ASSERT_FALSE(member.ok());
    EXPECT_THAT(member.status().message(), HasSubstr(step.message));
    EXPECT_EQ(sandboxes_->Leftovers(), pod_only);
    EXPECT_FALSE(std::filesystem::exists(root_.path() + "/state/" + kMember));
  }
  // The shim failing, last: the member's port and guest process go too.
  sandboxes_->faults() = {};
  const std::string good_shim = shim_;
  UseShim("failing-shim.sh", "#!/bin/sh\nprintf 'no port' >&3\n");
  ASSERT_FALSE(containers().Create({.id = kMember, .bundle = member_bundle}).ok());
  EXPECT_EQ(sandboxes_->Leftovers(), pod_only);
  EXPECT_FALSE(std::filesystem::exists(root_.path() + "/state/" + kMember));
  shim_ = good_shim;
  // The pod is as it was: a member can still join, and delete of the pod removes everything.
  absl::StatusOr<Child> member = containers().Create({.id = kMember, .bundle = member_bundle});
  ASSERT_TRUE(member.ok()) << member.status();
  member->Release();
  ASSERT_TRUE(containers().Delete(kMember, /*force=*/true).ok());
  EXPECT_EQ(sandboxes_->Leftovers(), pod_only);
  ASSERT_TRUE(containers().Delete(kPod, /*force=*/true).ok());
  ExpectNothingLeft(kPod);
}

TEST_F(CreateRollbackTest, AMemberOfAPodThatDoesNotExistLeavesNothing) {
  absl::StatusOr<Child> member =
      containers().Create({.id = kMember, .bundle = PodBundle("m", false)});
  ASSERT_FALSE(member.ok());
  EXPECT_THAT(member.status().message(),
              HasSubstr(absl::StrCat("its sandbox ", kPod, " does not exist")));
  ExpectNothingLeft(kMember);
  EXPECT_THAT(sandboxes_->calls(), IsEmpty());  // no VM was touched
}

TEST_F(CreateRollbackTest, AnExecRefusedByTheAgentGivesItsPortBackOnTheNextExec) {
  absl::StatusOr<Child> shim = containers().Create({.id = kC1, .bundle = bundle_.path});
  ASSERT_TRUE(shim.ok()) << shim.status();
  shim->Release();
  ASSERT_TRUE(containers().Start(kC1).ok());
  sandboxes_->faults().create_in_guest = absl::FailedPreconditionError("exec: not found");
  absl::StatusOr<Child> exec = containers().Exec({.id = kC1, .args = {"nope"}});
  ASSERT_FALSE(exec.ok());
  EXPECT_THAT(exec.status().message(), HasSubstr("not found"));
  sandboxes_->faults() = {};
  const size_t devices_before = sandboxes_->Leftovers().size();
  exec = containers().Exec({.id = kC1, .args = {"true"}});
  ASSERT_TRUE(exec.ok()) << exec.status();
  exec->Release();
  // The failed exec's port was unplugged, the new one plugged: as many devices as before.
  EXPECT_EQ(sandboxes_->Leftovers().size(), devices_before + 1);  // + the exec in the guest
  ASSERT_TRUE(containers().Delete(kC1, /*force=*/true).ok());
  ExpectNothingLeft(kC1);
}

TEST_F(CreateRollbackTest, ADeleteThatCannotReachTheAgentStillRemovesTheMember) {
  ASSERT_NO_FATAL_FAILURE(CreatePodWithMember());
  sandboxes_->faults().agent_connect = absl::DeadlineExceededError("agent: no hello");
  // The agent cannot be reached: the member's guest side cannot be checked, the rest goes.
  ASSERT_TRUE(containers().Delete(kMember, /*force=*/true).ok());
  EXPECT_FALSE(std::filesystem::exists(root_.path() + "/state/" + kMember));
  sandboxes_->faults() = {};
  ASSERT_TRUE(containers().Delete(kPod, /*force=*/true).ok());
  ExpectNothingLeft(kPod);
}

TEST_F(CreateRollbackTest, AForcedDeleteGoesOnWhenTheAgentRefusesAndTheVmTakesTheRest) {
  // delete --force converges whatever the guest says (docs/security.md): the member's own parts
  // go now, what the guest keeps goes with the VM.
  ASSERT_NO_FATAL_FAILURE(CreatePodWithMember());
  sandboxes_->faults().destroy_in_guest = absl::FailedPreconditionError("cgroup busy");
  ASSERT_TRUE(containers().Delete(kMember, /*force=*/true).ok());
  EXPECT_FALSE(std::filesystem::exists(root_.path() + "/state/" + kMember));
  for (const std::string& left : sandboxes_->Leftovers()) {
    EXPECT_FALSE(absl::StrContains(left, "mount") && absl::StrContains(left, kMember)) << left;
  }
  EXPECT_THAT(sandboxes_->Leftovers(),
              ::testing::Contains(absl::StrCat("in guest ", kPod, " ", kMember)));
  sandboxes_->faults() = {};
  ASSERT_TRUE(containers().Delete(kPod, /*force=*/true).ok());
  ExpectNothingLeft(kPod);
}

}  // namespace
}  // namespace runvm
