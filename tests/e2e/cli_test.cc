// The real `runvm` binary, driven the way an operator or an engine drives it.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "base/fd.h"
#include "base/process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/command.h"
#include "tests/testing/temp_dir.h"

namespace runvm {
namespace {

using ::runvm::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

using Result = ::runvm::testing::CommandResult;

// Runs the binary with `args`; `env` entries are added to a minimal environment.
Result Runvm(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), RUNVM_BINARY);
  return ::runvm::testing::RunCommand(args, std::move(env));
}

std::string GuestFile(const std::string& name) { return std::string(RUNVM_GUEST_DIR) + "/" + name; }

class CliTest : public ::testing::Test {
 protected:
  // A configuration using the guest built by guest/build.sh (scripts/setup.sh runs it).
  std::string GoodConfig(const std::string& extra = "") {
    EXPECT_EQ(::access(GuestFile("vmlinuz").c_str(), R_OK), 0)
        << "the guest kernel is missing: run scripts/setup.sh (it builds the guest)";
    return dir_.Write("good.toml",
                      absl::StrCat("[hypervisor.qemu]\nkernel = \"", GuestFile("vmlinuz"),
                                   "\"\ninitrd = \"", GuestFile("initrd.img"), "\"\n", extra));
  }
  TempDir dir_;
};

TEST_F(CliTest, Version) {
  Result r = Runvm({"--version"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("runvm version "));
  EXPECT_THAT(r.out, HasSubstr("spec: 1.1.0"));
}

TEST_F(CliTest, EnvJsonHoldsEveryKey) {
  Result r = Runvm({"--config", GoodConfig(), "env", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);  // throws (fails the test) when invalid
  EXPECT_EQ(j["source"]["via"], "--config");
  const auto& q = j["config"]["hypervisor"]["qemu"];
  // Cross-check against the packaged configuration, which lists every key.
  std::ifstream in(std::string(RUNVM_SOURCE_DIR) + "/configs/configuration.toml");
  std::string line, table;
  int keys = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      table = line.substr(1, line.find(']') - 1);
      continue;
    }
    std::string key = line.substr(0, line.find(' '));
    nlohmann::json::json_pointer ptr("/config/" + absl::StrReplaceAll(table, {{".", "/"}}) + "/" +
                                     key);
    EXPECT_TRUE(j.contains(ptr)) << table << "." << key;
    ++keys;
  }
  EXPECT_GE(keys, 60);
  EXPECT_EQ(q["kernel"], GuestFile("vmlinuz"));
  EXPECT_EQ(q["default_memory"], 2048);
}

TEST_F(CliTest, EnvTomlNamesItsSource) {
  std::string cfg = GoodConfig();
  Result r = Runvm({"env"}, {"RUNVM_CONFIG=" + cfg});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("# loaded from " + cfg + " (RUNVM_CONFIG)"));
  EXPECT_THAT(r.out, HasSubstr("[hypervisor.qemu]\npath = \"/usr/bin/qemu-system-x86_64\"\n"));
}

TEST_F(CliTest, CheckPassesAndNamesTheAccelerator) {
  Result r = Runvm({"--config", GoodConfig(), "check"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok    qemu: /usr/bin/qemu-system-x86_64 (QEMU "));
  EXPECT_THAT(r.out, HasSubstr("ok    virtiofsd: /usr/lib/qemu/virtiofsd"));
  EXPECT_THAT(r.out, HasSubstr("cgroups: v"));
  // Either KVM ran the guest kernel, or it did not and TCG was chosen; never both.
  bool kvm = r.out.find("ok    accelerator: KVM: ") != std::string::npos;
  bool tcg = r.out.find("ok    accelerator: TCG selected: KVM is unusable: ") != std::string::npos;
  EXPECT_NE(kvm, tcg) << r.out;
  EXPECT_THAT(r.out, HasSubstr("ok    pod network: tcfilter: multi-queue taps and tc u32 filters"
                               " with mirred redirect work"));
  EXPECT_THAT(r.out, HasSubstr("This host can run runvm sandboxes."));
}

TEST_F(CliTest, CheckNamesThePodNetworkModel) {
  Result none =
      Runvm({"--config", GoodConfig("[runtime]\ninternetworking_model = \"none\"\n"), "check"});
  EXPECT_EQ(none.code, 0) << none.out << none.err;
  EXPECT_THAT(none.out, HasSubstr("info  pod network: internetworking_model = \"none\": pods have"
                                  " loopback only"));
  Result macvtap =
      Runvm({"--config", GoodConfig("[runtime]\ninternetworking_model = \"macvtap\"\n"), "check"});
  EXPECT_EQ(macvtap.code, 1);
  EXPECT_THAT(macvtap.out, HasSubstr("FAIL  pod network: internetworking_model = \"macvtap\" is not"
                                     " built into this runvm"));
}

TEST_F(CliTest, CheckBootBootsAndRemovesAThrowawayVm) {
  std::string root = dir_.path() + "/root";
  Result r =
      Runvm({"--root", root, "--config", GoodConfig("accelerator = \"tcg\"\n"), "check", "--boot"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok    boot: a sandbox VM (TCG) answered on QMP in "));
  EXPECT_THAT(r.out, HasSubstr(") answered in "));
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(root + "/.vm", ec))
      << "the throwaway VM left its directory";
}

TEST_F(CliTest, CheckWithForcedTcgSkipsTheProbe) {
  Result r = Runvm({"--config", GoodConfig("accelerator = \"tcg\"\n"), "check"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok    accelerator: TCG (configured"));
}

TEST_F(CliTest, CheckFailsWithEveryReason) {
  std::string cfg = dir_.Write("bad.toml",
                               "[hypervisor.qemu]\nkernel = \"/nonexistent/vmlinuz\"\n"
                               "virtio_fs_daemon = \"/nonexistent/virtiofsd\"\nuse_vsock = true\n");
  Result r = Runvm({"--config", cfg, "check"}, {});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("FAIL  files: " + cfg +
                               ":2:10: hypervisor.qemu.kernel: \"/nonexistent/vmlinuz\" is not "
                               "readable: No such file or directory"));
  EXPECT_THAT(r.out, HasSubstr("hypervisor.qemu.virtio_fs_daemon: \"/nonexistent/virtiofsd\" is "
                               "not executable"));
  if (::access("/dev/vhost-vsock", F_OK) != 0) {
    EXPECT_THAT(r.out, HasSubstr("FAIL  vhost-vsock: /dev/vhost-vsock is absent but use_vsock"));
  }
  EXPECT_THAT(r.err, HasSubstr("host check failed: files: "));
}

TEST_F(CliTest, ConfigErrorIsTheLastJsonLogLineAndOnStderr) {
  std::string cfg = dir_.Write("bad.toml", "[hypervisor.qemu]\ndefault_memory = -1\n");
  std::string log = dir_.path() + "/runvm.log";
  { std::ofstream(log) << "{\"level\":\"info\",\"msg\":\"earlier\",\"time\":\"x\"}\n"; }
  Result r = Runvm({"--root", dir_.path() + "/root", "--log", log, "--log-format", "json",
                    "--config", cfg, "env"});
  EXPECT_EQ(r.code, 1);
  std::string expected = cfg +
                         ":2:18: hypervisor.qemu.default_memory: -1 is out of range; allowed: 1 "
                         "to 4294967295";
  EXPECT_EQ(r.err, expected + "\n");
  std::ifstream in(log);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 2u) << "the log is appended to, not truncated";
  auto j = nlohmann::json::parse(lines.back());
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["msg"], expected);
  EXPECT_TRUE(j["time"].is_string());
}

TEST_F(CliTest, WarningsGoToTheLogInText) {
  std::string cfg = GoodConfig("rootfs_type = \"ext4\"\n");
  std::string log = dir_.path() + "/runvm.log";
  Result r = Runvm({"--log", log, "--config", cfg, "env"});
  EXPECT_EQ(r.code, 0) << r.err;
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("level=warning msg=\"" + cfg +
                                    ":4:1: hypervisor.qemu.rootfs_type: a Kata key runvm does not "
                                    "implement; ignored\""));
  EXPECT_THAT(r.err, Not(HasSubstr("rootfs_type"))) << "warnings go to --log, not stderr";
}

TEST_F(CliTest, UsageErrorsExitOne) {
  EXPECT_EQ(Runvm({"frobnicate"}).code, 1);
  EXPECT_EQ(Runvm({"--log-format", "yaml", "env"}).code, 1);
  EXPECT_EQ(Runvm({}).code, 1);
}

TEST_F(CliTest, MissingConfigFileIsNamed) {
  Result r = Runvm({"--config", "/nonexistent/c.toml", "env"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("configuration: open /nonexistent/c.toml: No such file"));
}

TEST_F(CliTest, SpecWritesRuncsDefaultOnceAndRefusesToOverwrite) {
  Result r = Runvm({"spec", "--bundle", dir_.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream in(dir_.path() + "/config.json");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str());
  EXPECT_EQ(j["process"]["args"], nlohmann::json::array({"sh"}));
  EXPECT_EQ(j["root"]["path"], "rootfs");
  EXPECT_EQ(j["process"]["capabilities"]["bounding"].size(), 3u);
  r = Runvm({"spec", "-b", dir_.path()});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("config.json exists. Remove it first"));
}

// runc's flags that runvm cannot honour as asked are warned about, not dropped silently.
TEST_F(CliTest, FlagsRunvmCannotHonourAreWarnedAbout) {
  Result r = Runvm({"spec", "--rootless", "-b", dir_.path()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("spec --rootless: runvm runs as root"));
  r = Runvm({"--root", dir_.path() + "/state", "create", "--no-pivot", "--no-new-keyring", "-b",
             dir_.path() + "/missing", "c1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("container c1: --no-pivot is not passed on"));
  EXPECT_THAT(r.err, Not(HasSubstr("keyring")));  // what runvm does anyway
}

}  // namespace
}  // namespace runvm
