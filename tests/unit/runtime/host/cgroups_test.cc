// Host cgroups on fake hierarchies (plain directories named by a fake mountinfo): runc's
// cgroupsPath syntax, the three layouts, v1 cpuset's initialisation, and removal.
#include "runtime/host/cgroups.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::runvm::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CgroupsPath, CgroupfsAndSystemdSyntax) {
  EXPECT_EQ(*ResolveCgroupsPath("", false), "");
  EXPECT_EQ(*ResolveCgroupsPath("/kubepods/pod1/c1/", false), "/kubepods/pod1/c1");
  EXPECT_EQ(*ResolveCgroupsPath("kubepods-burstable-pod1.slice:cri-containerd:abc", true),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
            "cri-containerd-abc.scope");
  EXPECT_EQ(*ResolveCgroupsPath(":runvm:abc", true), "/system.slice/runvm-abc.scope");
  EXPECT_EQ(*ResolveCgroupsPath("-.slice:runvm:abc", true), "/runvm-abc.scope");
  EXPECT_THAT(ResolveCgroupsPath("kubepods/pod1", false),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("linux.cgroupsPath \"kubepods/pod1\": an absolute path")));
  EXPECT_THAT(ResolveCgroupsPath("/a/../b", false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("without \"..\"")));
  EXPECT_THAT(ResolveCgroupsPath("/kubepods/pod1", true),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("slice:prefix:name")));
  EXPECT_THAT(ResolveCgroupsPath("pods:runvm:abc", true),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"pods\" is not a slice")));
}

class FakeHierarchies : public ::testing::Test {
 protected:
  // One line of mountinfo for a hierarchy at path()/<name>.
  std::string Line(int n, const std::string& name, const std::string& fstype,
                   const std::string& options) {
    const std::string dir = dir_.path() + "/" + name;
    ::mkdir(dir.c_str(), 0755);
    return absl::StrCat(30 + n, " 23 0:", 40 + n, " / ", dir, " rw,relatime - ", fstype, " ",
                        fstype, " ", options, "\n");
  }
  TempDir dir_;
};

TEST_F(FakeHierarchies, UnifiedHybridAndLegacyLayouts) {
  const std::string unified = dir_.Write("unified.mountinfo", Line(0, "v2", "cgroup2", "rw"));
  ASSERT_OK_AND_ASSIGN(HostCgroups u, HostCgroups::Detect(unified));
  EXPECT_TRUE(u.unified());
  EXPECT_THAT(u.hierarchies(), ElementsAre(dir_.path() + "/v2"));

  const std::string hybrid = dir_.Write(
      "hybrid.mountinfo", Line(1, "memory", "cgroup", "rw,memory") +
                              Line(2, "cpuset", "cgroup", "rw,cpuset") +
                              Line(3, "unified", "cgroup2", "rw") +
                              // a second mount of the same hierarchy, and a partial view
                              absl::StrCat("60 23 0:41 / /elsewhere rw - cgroup cgroup rw,memory\n",
                                           "61 23 0:49 /sub /x rw - cgroup cgroup rw,pids\n"));
  ASSERT_OK_AND_ASSIGN(HostCgroups h, HostCgroups::Detect(hybrid));
  EXPECT_FALSE(h.unified());
  EXPECT_THAT(h.hierarchies(), ElementsAre(dir_.path() + "/memory", dir_.path() + "/cpuset",
                                           dir_.path() + "/unified"));

  EXPECT_THAT(HostCgroups::Detect(dir_.Write("none.mountinfo", "")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no cgroup hierarchy")));
}

TEST_F(FakeHierarchies, CreateInitialisesCpusetsAndRemoveTakesOnlyWhatWasMade) {
  const std::string info = dir_.Write("mountinfo", Line(1, "memory", "cgroup", "rw,memory") +
                                                       Line(2, "cpuset", "cgroup", "rw,cpuset"));
  dir_.Write("cpuset/cpuset.cpus", "0-1\n");
  dir_.Write("cpuset/cpuset.mems", "0\n");
  ::mkdir((dir_.path() + "/memory/kubepods").c_str(), 0755);  // exists already
  ::mkdir((dir_.path() + "/cpuset/kubepods").c_str(), 0755);
  dir_.Write("cpuset/kubepods/cpuset.cpus", "1\n");
  dir_.Write("cpuset/kubepods/cpuset.mems", "0\n");
  ASSERT_OK_AND_ASSIGN(HostCgroups cg, HostCgroups::Detect(info));
  const std::vector<std::string> made = cg.ToMake("/kubepods/pod1/runvm_p1");
  EXPECT_THAT(made, ElementsAre("/kubepods/pod1", "/kubepods/pod1/runvm_p1"));
  ASSERT_THAT(cg.Create("/kubepods/pod1/runvm_p1"), IsOk());
  EXPECT_EQ(*ReadFile(dir_.path() + "/cpuset/kubepods/pod1/runvm_p1/cpuset.cpus"), "1")
      << "copied from its parent";
  EXPECT_EQ(::access((dir_.path() + "/memory/kubepods/pod1/runvm_p1").c_str(), F_OK), 0);
  ASSERT_THAT(cg.Join("/kubepods/pod1/runvm_p1", 42), IsOk());
  EXPECT_EQ(*ReadFile(dir_.path() + "/memory/kubepods/pod1/runvm_p1/cgroup.procs"), "42");
  EXPECT_EQ(*ReadFile(dir_.path() + "/cpuset/kubepods/pod1/runvm_p1/cgroup.procs"), "42");
  ASSERT_THAT(cg.JoinThread("/kubepods/pod1/runvm_p1", 43), IsOk());
  EXPECT_EQ(*ReadFile(dir_.path() + "/memory/kubepods/pod1/runvm_p1/tasks"), "43");
  EXPECT_THAT(cg.Join("/nowhere", 42),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/memory/nowhere/cgroup.procs")));
  // Plain directories with files in them cannot be removed: what a cgroup still in use is.
  EXPECT_THAT(cg.Remove(made), StatusIs(absl::StatusCode::kFailedPrecondition));
  for (const char* h : {"/memory", "/cpuset"}) {
    for (const char* c : {"/kubepods/pod1", "/kubepods/pod1/runvm_p1"}) {
      for (const char* f : {"/cgroup.procs", "/tasks", "/cpuset.cpus", "/cpuset.mems"}) {
        ::unlink((dir_.path() + h + c + f).c_str());
      }
    }
  }
  ASSERT_THAT(cg.Remove(made), IsOk());
  EXPECT_NE(::access((dir_.path() + "/memory/kubepods/pod1").c_str(), F_OK), 0);
  EXPECT_EQ(::access((dir_.path() + "/memory/kubepods").c_str(), F_OK), 0) << "not made here";
}

// The host's own hierarchies (this machine: cgroup v1 with the hybrid cgroup2): a process still
// inside is named after the wait, and a parent another container's cgroup was made in stays.
TEST(HostHierarchies, AProcessStillInsideIsNamedAndASharedParentStays) {
  absl::StatusOr<HostCgroups> cg = HostCgroups::Detect();
  if (!cg.ok() || ::geteuid() != 0) GTEST_SKIP() << "needs root and a cgroup hierarchy";
  const std::string top = absl::StrCat("/runvm-unit-", ::getpid());
  const std::vector<std::string> made = cg->ToMake(top + "/a");
  ASSERT_THAT(made, ElementsAre(top, top + "/a"));
  ASSERT_THAT(cg->Create(top + "/a"), IsOk());
  ASSERT_OK_AND_ASSIGN(Child sleeper, Spawn({.argv = {"/bin/sleep", "1000"}}));
  ASSERT_THAT(cg->Join(top + "/a", sleeper.pid()), IsOk());
  EXPECT_THAT(cg->Remove(made, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(top + "/a: still in use by pids ["),
                             HasSubstr(absl::StrCat(sleeper.pid())))));
  ASSERT_THAT(sleeper.Signal(SIGKILL), IsOk());
  ASSERT_THAT(sleeper.Wait(absl::InfiniteFuture()).status(), IsOk());
  ASSERT_THAT(cg->Create(top + "/b"), IsOk());  // another container's, made after
  EXPECT_THAT(cg->Remove(made), IsOk());
  for (const std::string& h : cg->hierarchies()) {
    EXPECT_NE(::access((h + top + "/a").c_str(), F_OK), 0) << h;
    EXPECT_EQ(::access((h + top + "/b").c_str(), F_OK), 0) << h << ": not made by this one";
  }
  EXPECT_THAT(cg->Remove({top, top + "/b"}), IsOk());
  for (const std::string& h : cg->hierarchies()) {
    EXPECT_NE(::access((h + top).c_str(), F_OK), 0) << h;
  }
}

}  // namespace
}  // namespace runvm
