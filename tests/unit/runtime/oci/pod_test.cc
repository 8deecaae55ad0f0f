// Pods: the roles the CRI annotations give, Kata's sizing rule, and the namespaces a container
// gets in the guest.
#include "runtime/oci/pod.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hypervisor/qemu/hotplug_state.h"
#include "tests/testing/status_matchers.h"

namespace runvm {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

TEST(PodRole, ContainerdAndCrioAnnotationsAndNone) {
  ASSERT_OK_AND_ASSIGN(PodRole none, PodRoleOf("c1", {}));
  EXPECT_EQ(none.kind, PodRole::kStandalone);
  EXPECT_EQ(none.sandbox_id, "c1");
  ASSERT_OK_AND_ASSIGN(PodRole sb,
                       PodRoleOf("p1", {{kCriContainerType, "sandbox"}, {kCriSandboxId, "p1"}}));
  EXPECT_EQ(sb.kind, PodRole::kSandbox);
  ASSERT_OK_AND_ASSIGN(
      PodRole member, PodRoleOf("c2", {{kCrioContainerType, "container"}, {kCrioSandboxId, "p1"}}));
  EXPECT_EQ(member.kind, PodRole::kMember);
  EXPECT_EQ(member.sandbox_id, "p1");
  // Both engines' annotations, agreeing.
  EXPECT_THAT(PodRoleOf("c2", {{kCriContainerType, "container"},
                               {kCriSandboxId, "p1"},
                               {kCrioContainerType, "container"},
                               {kCrioSandboxId, "p1"}}),
              IsOk());
}

TEST(PodRole, ContradictionsAreRefusedNamingTheAnnotation) {
  EXPECT_THAT(PodRoleOf("c2", {{kCriContainerType, "container"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("annotation io.kubernetes.cri.sandbox-id is missing")));
  EXPECT_THAT(PodRoleOf("c2", {{kCriContainerType, "pod"}, {kCriSandboxId, "p1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"pod\" is neither sandbox nor container")));
  EXPECT_THAT(
      PodRoleOf("p2", {{kCriContainerType, "sandbox"}, {kCriSandboxId, "p1"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"p1\" on sandbox container p2")));
  EXPECT_THAT(PodRoleOf("c2", {{kCriContainerType, "container"}, {kCriSandboxId, "c2"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("names itself")));
  // A sandbox id is a directory name under the root, never a path.
  EXPECT_THAT(PodRoleOf("c2", {{kCriContainerType, "container"}, {kCriSandboxId, "../../etc"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("annotation io.kubernetes.cri.sandbox-id: invalid sandbox id "
                                 "\"../../etc\"")));
  EXPECT_THAT(PodRoleOf("c2", {{kCriContainerType, "container"},
                               {kCriSandboxId, "p1"},
                               {kCrioContainerType, "container"},
                               {kCrioSandboxId, "p9"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("disagree")));
}

qemu::RunningVm Vm() {
  qemu::RunningVm vm;
  vm.config.default_vcpus = 1;
  vm.config.default_maxvcpus = 4;
  vm.config.default_memory = 512;
  vm.max_memory_mib = 2048;
  return vm;
}

oci::Resources Limits(int64_t quota, int64_t memory_mib) {
  oci::Resources r;
  r.cpu = oci::CpuResources{.quota = quota, .period = 100000};
  r.memory = oci::MemoryResources{.limit = memory_mib << 20};
  return r;
}

TEST(PodSize, DefaultsPlusEachContainersLimits) {
  qemu::RunningVm vm = Vm();
  EXPECT_EQ(PodSize(vm, {}), (VmSize{1, 512}));
  // ceil(150000/100000) = 2, plus 1; unlimited containers add nothing.
  EXPECT_EQ(PodSize(vm, {Limits(150000, 100), Limits(-1, -1), oci::Resources{}}), (VmSize{3, 612}));
  EXPECT_EQ(CurrentSize(vm), (VmSize{1, 512}));
  vm.hotplug.devices = {{.id = "cpu-1", .kind = qemu::kKindCpu},
                        {.id = "dimm0", .kind = qemu::kKindDimm, .size_bytes = 256 << 20},
                        {.id = "blk0", .kind = qemu::kKindVirtioBlk, .size_bytes = 1 << 30}};
  EXPECT_EQ(CurrentSize(vm), (VmSize{2, 768})) << "a disk is no memory";
  EXPECT_THAT(CheckFits({4, 2048}, vm, "container c1"), IsOk());
  EXPECT_THAT(CheckFits({5, 512}, vm, "container c1"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("container c1: the pod would need 5 vCPUs")));
  EXPECT_THAT(CheckFits({1, 2049}, vm, "container c1"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("2049 MiB of memory (default_memory 512 plus its containers' "
                                 "memory limits); the VM's maxmem is 2048 MiB")));
}

TEST(PodNamespaces, HostPathsBecomeTheSandboxContainersInTheGuest) {
  std::vector<oci::Namespace> ns = {{"pid", ""},
                                    {"network", "/var/run/netns/cni-1"},
                                    {"ipc", "/proc/4242/ns/ipc"},
                                    {"uts", "/proc/4242/ns/uts"},
                                    {"mount", ""}};
  ASSERT_THAT(MapNamespaces({PodRole::kMember, "p1"}, 7, ns), IsOk());
  ASSERT_EQ(ns.size(), 4u) << "the network namespace is the VM's own";
  EXPECT_EQ(ns[1].path, "/proc/7/ns/ipc");
  EXPECT_EQ(ns[2].path, "/proc/7/ns/uts");
  EXPECT_EQ(ns[0].path, "") << "its own pid namespace stays its own";

  // A sandbox (or standalone) container may only name a network namespace: nothing else of the
  // host means anything in the guest.
  std::vector<oci::Namespace> sandbox = {{"network", "/var/run/netns/cni-1"}, {"ipc", ""}};
  EXPECT_THAT(MapNamespaces({PodRole::kSandbox, "p1"}, 0, sandbox), IsOk());
  EXPECT_EQ(sandbox.size(), 1u);
  std::vector<oci::Namespace> bad = {{"ipc", "/proc/1/ns/ipc"}};
  EXPECT_THAT(MapNamespaces({PodRole::kStandalone, "c1"}, 0, bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the ipc namespace /proc/1/ns/ipc is the host's")));
  std::vector<oci::Namespace> mnt = {{"mount", "/proc/1/ns/mnt"}};
  EXPECT_THAT(MapNamespaces({PodRole::kMember, "p1"}, 7, mnt),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mount namespace")));
}

}  // namespace
}  // namespace runvm
