#include "runtime/config/loader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/config_codec.h"
#include "proto/config_keys.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm {
namespace {

using config::ConfigValue;
using config::KeyInfo;
using config::ValueKind;
using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::runvm::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr config::HostFacts kHost{.cpus = 64};

TEST(PackagedConfig, ParsesToTheModelDefaults) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig lc,
                       ParseConfig(PackagedConfigText(), kPackagedConfigName, kHost));
  config::Config want;
  want.ApplyClamps(kHost);
  EXPECT_EQ(lc.config, want);
  EXPECT_TRUE(lc.warnings.empty()) << "the packaged default needs no clamp notice";
}

TEST(PackagedConfig, WritesEveryKey) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig lc,
                       ParseConfig(PackagedConfigText(), kPackagedConfigName, kHost));
  for (const KeyInfo& k : config::AllKeys()) {
    EXPECT_TRUE(lc.positions.count(k.Path())) << k.Path() << " is missing from configs/";
  }
}

// A valid value for `k` that differs from its default.
ConfigValue OtherValue(const KeyInfo& k) {
  ConfigValue def = k.get(config::Config{});
  switch (k.kind) {
    case ValueKind::kBool:
      return !std::get<bool>(def);
    case ValueKind::kInt:
      return std::get<int64_t>(def) + 1;
    case ValueKind::kString:
      for (const char* a : k.allowed) {
        if (std::get<std::string>(def) != a) return std::string(a);
      }
      return absl::StrCat("/opt/test/", k.name);
    case ValueKind::kStringList:
      return std::vector<std::string>{"/opt/a", std::string(k.name)};
  }
  return def;
}

TEST(ParseConfig, EveryKeyParses) {
  for (const KeyInfo& k : config::AllKeys()) {
    SCOPED_TRACE(k.Path());
    ConfigValue v = OtherValue(k);
    // Keys whose other value needs a companion to stay valid.
    std::string extra;
    if (k.Path() == "hypervisor.qemu.image") extra = "initrd = \"\"\n";
    if (k.Path() == "hypervisor.qemu.enable_vhost_user_store") extra = "enable_hugepages = true\n";
    if (k.Path() == "runtime.disable_new_netns") extra = "internetworking_model = \"none\"\n";
    // What a QEMU running as hypervisor_user cannot do needs it to stay root.
    for (const char* root_only :
         {"hypervisor.qemu.shared_fs", "hypervisor.qemu.enable_hugepages",
          "hypervisor.qemu.file_mem_backend", "hypervisor.qemu.enable_vhost_user_store"}) {
      if (k.Path() == root_only) absl::StrAppend(&extra, "hypervisor_user = \"\"\n");
    }
    if (k.Path() == "hypervisor.qemu.hypervisor_user") v = std::string("qemu-other");
    std::string text =
        absl::StrCat("[", k.table, "]\n", extra, k.name, " = ", config::RenderTomlValue(v), "\n");
    ASSERT_OK_AND_ASSIGN(LoadedConfig lc, ParseConfig(text, "t.toml", kHost));
    EXPECT_EQ(k.get(lc.config), v);
    EXPECT_EQ(lc.positions[k.Path()].ToString(),
              absl::StrCat("t.toml:", 2 + std::count(extra.begin(), extra.end(), '\n'), ":",
                           k.name.size() + 4));
  }
}

TEST(ParseConfig, RenderedConfigLoadsBackUnchanged) {
  config::Config c;
  c.hypervisor.kernel_params = "a=\"b\" \\ c";
  c.hypervisor.virtio_fs_extra_args = {"-o", "x,y"};
  c.hypervisor.default_maxvcpus = 8;
  ASSERT_OK_AND_ASSIGN(LoadedConfig lc, ParseConfig(config::ToToml(c), "env.toml", kHost));
  EXPECT_EQ(lc.config, c);
}

TEST(ParseConfig, EmptyFileGivesDefaults) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig lc, ParseConfig("", "empty.toml", kHost));
  config::Config want;
  want.ApplyClamps(kHost);
  EXPECT_EQ(lc.config, want);
}

TEST(ParseConfig, KataKeysForOtherComponentsWarnWithPositions) {
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig lc,
      ParseConfig("[hypervisor.qemu]\ndefault_maxvcpus = 4\nrootfs_type = \"ext4\"\n"
                  "[hypervisor.firecracker]\npath = \"/fc\"\n[factory]\nenable_template = false\n"
                  "[runtime]\nenable_pprof = true\n",
                  "kata.toml", kHost));
  EXPECT_THAT(lc.warnings,
              ElementsAre("kata.toml:3:1: hypervisor.qemu.rootfs_type: a Kata key runvm does not "
                          "implement; ignored",
                          "kata.toml:4:13: [hypervisor.firecracker] is a Kata table for a "
                          "component runvm does not have (runvm drives QEMU); ignored",
                          "kata.toml:6:2: [factory] is a Kata table for a component runvm does "
                          "not have (runvm drives QEMU); ignored",
                          "kata.toml:9:1: runtime.enable_pprof: a Kata key runvm does not "
                          "implement; ignored"));
}

TEST(ParseConfig, ClampsAreReportedWithPositions) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig lc,
                       ParseConfig("[hypervisor.qemu]\ndefault_vcpus = 0\ndefault_maxvcpus = 4\n"
                                   "default_bridges = 7\n",
                                   "c.toml", kHost));
  EXPECT_EQ(lc.config.hypervisor.default_vcpus, 1);
  EXPECT_EQ(lc.config.hypervisor.default_bridges, 5);
  EXPECT_THAT(lc.warnings, ElementsAre("c.toml:4:19: hypervisor.qemu.default_bridges: 7 changed "
                                       "to 5 (at most 5 bridges)"));
}

TEST(ParseConfig, AllErrorsAreReportedTogether) {
  EXPECT_THAT(ParseConfig("[hypervisor.qemu]\ndefault_vcpus = \"x\"\nbogus = 1\n", "m.toml", kHost),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "m.toml:2:17: hypervisor.qemu.default_vcpus: expected an integer, got a "
                       "string (\"x\")\nm.toml:3:1: hypervisor.qemu.bogus: unknown key in "
                       "[hypervisor.qemu] (neither a Kata nor a runvm key)"));
}

struct BadCase {
  const char* name;
  const char* toml;
  const char* error;
  friend void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, PreciseMessageWithPosition) {
  EXPECT_THAT(ParseConfig(GetParam().toml, "bad.toml", kHost),
              StatusIs(absl::StatusCode::kInvalidArgument, GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, BadConfigTest,
    ::testing::Values(
        BadCase{"StringForInteger", "[hypervisor.qemu]\ndefault_vcpus = \"two\"\n",
                "bad.toml:2:17: hypervisor.qemu.default_vcpus: expected an integer, got a string "
                "(\"two\")"},
        BadCase{"IntegerForBoolean", "[runtime]\nenable_debug = 1\n",
                "bad.toml:2:16: runtime.enable_debug: expected a boolean, got an integer (1)"},
        BadCase{"BooleanForString", "[hypervisor.qemu]\nkernel = true\n",
                "bad.toml:2:10: hypervisor.qemu.kernel: expected a string, got a boolean (true)"},
        BadCase{"FloatForInteger", "[hypervisor.qemu]\ndefault_memory = 2048.5\n",
                "bad.toml:2:18: hypervisor.qemu.default_memory: expected an integer, got a float "
                "(2048.5)"},
        BadCase{"DateForString", "[hypervisor.qemu]\nimage = 2024-01-01\n",
                "bad.toml:2:9: hypervisor.qemu.image: expected a string, got a date"},
        BadCase{"StringForList", "[agent.kata]\nkernel_modules = \"virtio\"\n",
                "bad.toml:2:18: agent.kata.kernel_modules: expected an array of strings, got a "
                "string (\"virtio\")"},
        BadCase{"IntegerInList", "[hypervisor.qemu]\nenable_annotations = [\"a\", 3]\n",
                "bad.toml:2:22: hypervisor.qemu.enable_annotations: expected an array of "
                "strings, got an integer (3) at index 1"},
        BadCase{"ScalarForTable", "hypervisor = 5\n",
                "bad.toml:1:1: hypervisor: expected a table, got an integer"},
        BadCase{"UnknownQemuKey", "[hypervisor.qemu]\ndefault_cpus = 2\n",
                "bad.toml:2:1: hypervisor.qemu.default_cpus: unknown key in [hypervisor.qemu] "
                "(neither a Kata nor a runvm key)"},
        BadCase{"UnknownAgentKey", "[agent.kata]\nverbose = true\n",
                "bad.toml:2:1: agent.kata.verbose: unknown key in [agent.kata] (neither a Kata "
                "nor a runvm key)"},
        BadCase{"UnknownRuntimeKey", "[runtime]\nfast = true\n",
                "bad.toml:2:1: runtime.fast: unknown key in [runtime] (neither a Kata nor a runvm "
                "key)"},
        BadCase{"UnknownTopLevelTable", "[hypervisors]\nx = 1\n",
                "bad.toml:1:2: hypervisors: unknown table or key; allowed at the top: "
                "[hypervisor.qemu], [agent.kata], [runtime]"},
        BadCase{"UnknownHypervisor", "[hypervisor.kvmtool]\nx = 1\n",
                "bad.toml:1:13: hypervisor.kvmtool: unknown table; allowed: [hypervisor.qemu]"},
        BadCase{"BadSharedFs", "[hypervisor.qemu]\nshared_fs = \"virtio-foo\"\n",
                "bad.toml:2:13: hypervisor.qemu.shared_fs: \"virtio-foo\" is not allowed; "
                "allowed: virtio-fs, virtio-9p, none"},
        BadCase{"BadMachineType", "[hypervisor.qemu]\nmachine_type = \"microvm\"\n",
                "bad.toml:2:16: hypervisor.qemu.machine_type: \"microvm\" is not allowed; "
                "allowed: q35, pc"},
        BadCase{"BadAccelerator", "[hypervisor.qemu]\naccelerator = \"hvf\"\n",
                "bad.toml:2:15: hypervisor.qemu.accelerator: \"hvf\" is not allowed; allowed: "
                "auto, kvm, tcg"},
        BadCase{"BadBlockDriver", "[hypervisor.qemu]\nblock_device_driver = \"ide\"\n",
                "bad.toml:2:23: hypervisor.qemu.block_device_driver: \"ide\" is not allowed; "
                "allowed: virtio-scsi, virtio-blk, nvdimm"},
        BadCase{"BadCacheMode", "[hypervisor.qemu]\nvirtio_fs_cache = \"sometimes\"\n",
                "bad.toml:2:19: hypervisor.qemu.virtio_fs_cache: \"sometimes\" is not allowed; "
                "allowed: never, auto, always"},
        BadCase{"BadNetworkModel", "[runtime]\ninternetworking_model = \"bridged\"\n",
                "bad.toml:2:25: runtime.internetworking_model: \"bridged\" is not allowed; "
                "allowed: tcfilter, macvtap, none"},
        BadCase{"NegativeMemory", "[hypervisor.qemu]\ndefault_memory = -1\n",
                "bad.toml:2:18: hypervisor.qemu.default_memory: -1 is out of range; allowed: 1 "
                "to 4294967295"},
        BadCase{"ZeroMemory", "[hypervisor.qemu]\ndefault_memory = 0\n",
                "bad.toml:2:18: hypervisor.qemu.default_memory: 0 is out of range; allowed: 1 "
                "to 4294967295"},
        BadCase{"NegativeMaxVcpus", "[hypervisor.qemu]\ndefault_maxvcpus = -4\n",
                "bad.toml:2:20: hypervisor.qemu.default_maxvcpus: -4 is out of range; allowed: "
                "0 to 4294967295"},
        BadCase{"VcpusOverflow", "[hypervisor.qemu]\ndefault_vcpus = 99999999999\n",
                "bad.toml:2:17: hypervisor.qemu.default_vcpus: 99999999999 is out of range; "
                "allowed: -2147483648 to 2147483647"},
        BadCase{"TooManySlots", "[hypervisor.qemu]\nmemory_slots = 300\n",
                "bad.toml:2:16: hypervisor.qemu.memory_slots: 300 is out of range; allowed: 0 to "
                "256"},
        BadCase{"TinyMsize", "[hypervisor.qemu]\nmsize_9p = 100\n",
                "bad.toml:2:12: hypervisor.qemu.msize_9p: 100 is out of range; allowed: 4096 to "
                "1048576"},
        BadCase{"TableHeaderThatIsNoKey", "[/hypervisor.qemu]\nkernel = \"/k\"\n",
                "bad.toml:1:2: invalid TOML: Error while parsing key: expected bare key starting "
                "character or string delimiter, saw '/'"},
        BadCase{"ZeroDialTimeout", "[agent.kata]\ndial_timeout = 0\n",
                "bad.toml:2:16: agent.kata.dial_timeout: 0 is out of range; allowed: 1 to 3600"},
        BadCase{"InitrdAndImage",
                "[hypervisor.qemu]\ninitrd = \"/boot/initrd\"\nimage = \"/img/rootfs.img\"\n",
                "bad.toml:3:9: hypervisor.qemu.image: initrd and image are both set; set only "
                "one"},
        BadCase{"NeitherInitrdNorImage", "[hypervisor.qemu]\ninitrd = \"\"\n",
                "bad.toml:2:10: hypervisor.qemu.initrd: one of initrd or image must be set"},
        BadCase{"HugepagesRule", "[hypervisor.qemu]\nenable_vhost_user_store = true\n",
                "bad.toml:2:27: hypervisor.qemu.enable_vhost_user_store: needs enable_hugepages "
                "= true (vhost-user shares guest memory)"},
        BadCase{"VirtioFsWithoutDaemon", "[hypervisor.qemu]\nvirtio_fs_daemon = \"\"\n",
                "bad.toml:2:20: hypervisor.qemu.virtio_fs_daemon: shared_fs = \"virtio-fs\" "
                "needs virtio_fs_daemon"},
        BadCase{"RelativeKernel", "[hypervisor.qemu]\nkernel = \"vmlinuz\"\n",
                "bad.toml:2:10: hypervisor.qemu.kernel: \"vmlinuz\" is not an absolute path"},
        BadCase{"RootPortsOnPc", "[hypervisor.qemu]\nmachine_type = \"pc\"\npcie_root_port = 2\n",
                "bad.toml:3:18: hypervisor.qemu.pcie_root_port: needs machine_type = \"q35\" "
                "(machine_type is \"pc\")"},
        BadCase{"InvalidAnnotationRegex", "[hypervisor.qemu]\nenable_annotations = [\"(\"]\n",
                "bad.toml:2:22: hypervisor.qemu.enable_annotations: rule 0 \"(\" is not a valid "
                "regular expression: Mismatched '(' and ')' in regular expression"},
        BadCase{"KernelParamsNewline", "[hypervisor.qemu]\nkernel_params = \"a\\nb\"\n",
                "bad.toml:2:17: hypervisor.qemu.kernel_params: must not contain a newline or NUL "
                "byte"},
        BadCase{
            "MalformedToml", "[hypervisor.qemu]\ndefault_vcpus = \n",
            "bad.toml:2:17: invalid TOML: Error while parsing key-value pair: expected value, saw "
            "'\\n'"},
        BadCase{
            "UnterminatedString", "[hypervisor.qemu]\nkernel = \"/boot/vmlinuz\n",
            "bad.toml:2:24: invalid TOML: Error while parsing string: unescaped control characters "
            "other than TAB (U+0009) are explicitly prohibited"},
        BadCase{"DuplicateKey", "[hypervisor.qemu]\ndefault_vcpus = 1\ndefault_vcpus = 2\n",
                "bad.toml:3:17: invalid TOML: Error while parsing key-value pair: cannot redefine "
                "existing integer 'default_vcpus'"},
        BadCase{"DuplicateTable", "[runtime]\nenable_debug = true\n[runtime]\n",
                "bad.toml:3:1: invalid TOML: Error while parsing table header: cannot redefine "
                "existing "
                "table 'runtime'"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(LoadConfigFile, MissingFileNamesIt) {
  EXPECT_THAT(LoadConfigFile("/nonexistent/runvm.toml", kHost),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("configuration: open /nonexistent/runvm.toml: No such file")));
}

TEST(CheckConfigFiles, MissingKernelNamesTheKeyAndPosition) {
  TempDir dir;
  std::string initrd = dir.Write("initrd.img", "x");
  std::string text = absl::StrCat("[hypervisor.qemu]\nkernel = \"", dir.path(),
                                  "/vmlinuz\"\ninitrd = \"", initrd, "\"\n");
  std::string path = dir.Write("c.toml", text);
  ASSERT_OK_AND_ASSIGN(LoadedConfig lc, LoadConfigFile(path, kHost));
  std::vector<std::string> problems = CheckConfigFiles(lc);
  EXPECT_THAT(problems, ::testing::Contains(
                            absl::StrCat(path, ":2:10: hypervisor.qemu.kernel: \"", dir.path(),
                                         "/vmlinuz\" is not readable: No such file or directory")));
  for (const std::string& p : problems) EXPECT_EQ(p.find("initrd"), std::string::npos) << p;
}

TEST(CheckConfigFiles, VirtiofsdOnlyCheckedForVirtioFs) {
  TempDir dir;
  std::string k = dir.Write("k", "x");
  std::string text = absl::StrCat("[hypervisor.qemu]\nkernel = \"", k, "\"\ninitrd = \"", k,
                                  "\"\nshared_fs = \"virtio-9p\"\nvirtio_fs_daemon = \"/nope\"\n"
                                  "hypervisor_user = \"\"\n");
  ASSERT_OK_AND_ASSIGN(LoadedConfig lc, ParseConfig(text, "c.toml", kHost));
  EXPECT_TRUE(CheckConfigFiles(lc).empty());
  lc.config.hypervisor.shared_fs = "virtio-fs";
  EXPECT_THAT(CheckConfigFiles(lc),
              ElementsAre("c.toml:5:20: hypervisor.qemu.virtio_fs_daemon: \"/nope\" is not "
                          "executable: No such file or directory"));
}

class LookupTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string flag_ = dir_.Write("flag.toml", "[hypervisor.qemu]\ndefault_memory = 1001\n");
  std::string env_ = dir_.Write("env.toml", "[hypervisor.qemu]\ndefault_memory = 1002\n");
  std::string sys_ = dir_.Write("etc.toml", "[hypervisor.qemu]\ndefault_memory = 1003\n");
};

TEST_F(LookupTest, FlagWins) {
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig lc,
      LoadEffectiveConfig({.flag = flag_, .env = env_, .system_path = sys_}, kHost));
  EXPECT_EQ(lc.config.hypervisor.default_memory, 1001);
  EXPECT_EQ(lc.via, "--config");
  EXPECT_EQ(lc.file, flag_);
}

TEST_F(LookupTest, ThenTheEnvironment) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig lc,
                       LoadEffectiveConfig({.env = env_, .system_path = sys_}, kHost));
  EXPECT_EQ(lc.config.hypervisor.default_memory, 1002);
  EXPECT_EQ(lc.via, "RUNVM_CONFIG");
}

TEST_F(LookupTest, ThenTheSystemFile) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig lc, LoadEffectiveConfig({.system_path = sys_}, kHost));
  EXPECT_EQ(lc.config.hypervisor.default_memory, 1003);
  EXPECT_EQ(lc.via, sys_);
}

TEST_F(LookupTest, ThenThePackagedDefault) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig lc,
                       LoadEffectiveConfig({.system_path = dir_.path() + "/absent"}, kHost));
  EXPECT_EQ(lc.config.hypervisor.default_memory, 2048);
  EXPECT_EQ(lc.via, "packaged default");
  EXPECT_EQ(lc.file, kPackagedConfigName);
}

TEST_F(LookupTest, ANamedFileMustExist) {
  EXPECT_THAT(LoadEffectiveConfig({.flag = dir_.path() + "/nope.toml"}, kHost),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.toml")));
  EXPECT_THAT(LoadEffectiveConfig({.env = dir_.path() + "/nope2.toml", .system_path = sys_}, kHost),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope2.toml")));
}

}  // namespace
}  // namespace runvm
