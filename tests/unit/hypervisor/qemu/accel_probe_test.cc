// The KVM probe against scripted stand-ins for QEMU: the outcomes a real QEMU cannot be made to
// produce on demand (banner printed, hang, early exit). `runvm check` in the e2e suite runs the
// probe with the real QEMU and kernel.
#include "hypervisor/qemu/accel_probe.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace runvm::qemu {
namespace {

using ::runvm::testing::TempDir;
using ::testing::HasSubstr;

class AccelProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The probe's first step is the KVM API ioctl; the scripted QEMU comes after it.
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) GTEST_SKIP() << "/dev/kvm cannot be opened here; the scripted cases need it";
    ::close(fd);
    kernel_ = dir_.Write("vmlinuz", "not really a kernel");
  }

  std::string Script(const std::string& body) {
    std::string path = dir_.Write("qemu", "#!/bin/sh\n" + body + "\n");
    ::chmod(path.c_str(), 0755);
    return path;
  }

  TempDir dir_;
  std::string kernel_;
};

TEST(ProbeArgv, BootsTheKernelUnderKvmOnTheSerialConsole) {
  std::vector<std::string> argv = ProbeArgv({.qemu = "/q", .kernel = "/k"});
  EXPECT_EQ(argv.front(), "/q");
  auto has = [&](const std::string& a) {
    return std::find(argv.begin(), argv.end(), a) != argv.end();
  };
  EXPECT_TRUE(has("q35,accel=kvm"));
  EXPECT_TRUE(has("/k"));
  EXPECT_TRUE(has("-no-reboot"));
  EXPECT_TRUE(has("-nodefaults"));
}

TEST(Probe, MissingDeviceIsUnusable) {
  AccelProbe p = ProbeKvm({.qemu = "/bin/true", .kernel = "/k", .kvm_device = "/nonexistent/kvm"});
  EXPECT_FALSE(p.kvm_usable);
  EXPECT_THAT(p.reason, HasSubstr("open /nonexistent/kvm: No such file"));
}

TEST(Probe, NonKvmDeviceIsUnusable) {
  AccelProbe p = ProbeKvm({.qemu = "/bin/true", .kernel = "/k", .kvm_device = "/dev/null"});
  EXPECT_FALSE(p.kvm_usable);
  EXPECT_THAT(p.reason, HasSubstr("/dev/null: KVM API version -1"));
}

TEST_F(AccelProbeTest, BannerMeansUsable) {
  AccelProbe p = ProbeKvm({.qemu = Script("echo 'early'; echo '[0.0] Linux version 6.1'; sleep 30"),
                           .kernel = kernel_});
  EXPECT_TRUE(p.kvm_usable) << p.reason;
  EXPECT_THAT(p.reason, HasSubstr("printed its banner under KVM"));
}

TEST_F(AccelProbeTest, SilenceUntilTheDeadlineMeansUnusableAndTheProcessIsGone) {
  std::string pidfile = dir_.path() + "/pid";
  AccelProbe p = ProbeKvm({.qemu = Script("echo $$ > " + pidfile + "; echo SeaBIOS; exec sleep 30"),
                           .kernel = kernel_,
                           .timeout = absl::Milliseconds(300)});
  EXPECT_FALSE(p.kvm_usable);
  EXPECT_THAT(p.reason, HasSubstr("printed nothing under KVM within 300ms"));
  std::ifstream in(pidfile);
  pid_t pid = 0;
  in >> pid;
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::kill(pid, 0), -1) << "the probe left its QEMU running";
}

TEST_F(AccelProbeTest, EarlyExitCarriesQemusText) {
  AccelProbe p = ProbeKvm(
      {.qemu = Script("echo 'qemu-system-x86_64: failed to initialize kvm: Permission denied' >&2;"
                      " exit 1"),
       .kernel = kernel_});
  EXPECT_FALSE(p.kvm_usable);
  EXPECT_THAT(p.reason, HasSubstr("QEMU exited with status 1"));
  EXPECT_THAT(p.reason, HasSubstr("failed to initialize kvm: Permission denied"));
}

TEST_F(AccelProbeTest, UnreadableKernelIsNamed) {
  AccelProbe p = ProbeKvm({.qemu = Script("exit 0"), .kernel = dir_.path() + "/missing"});
  EXPECT_FALSE(p.kvm_usable);
  EXPECT_THAT(p.reason, HasSubstr("missing is not readable"));
}

}  // namespace
}  // namespace runvm::qemu
