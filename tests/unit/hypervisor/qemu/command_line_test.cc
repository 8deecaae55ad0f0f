// Golden tests of the QEMU command line: one file per profile under golden/, one argv element
// per line. RUNVM_UPDATE_GOLDEN=1 rewrites the files from the current output (review the diff).
#include "hypervisor/qemu/command_line.h"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "hypervisor/qemu/options.h"
#include "tests/testing/status_matchers.h"

namespace runvm::qemu {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

const std::string kGoldenDir = std::string(RUNVM_SOURCE_DIR) + "/tests/unit/hypervisor/qemu/golden";

CommandLineInputs Inputs() {
  return {.sandbox_id = "0123456789ab",
          .uuid = "6b7b3c1e-8f5a-4c3e-9d2b-1a2b3c4d5e6f",
          .accelerator = "tcg",
          .host_memory_mib = 24000,
          .run_dir = "/run/runvm/s/0123456789ab",
          .shared_dir = "/run/runvm/shared/0123456789ab",
          .image_size_bytes = 134217728};
}

config::QemuConfig Base() {
  config::Config c;
  c.ApplyClamps({.cpus = 2});
  return c.hypervisor;
}

struct Profile {
  const char* name;
  std::function<void(config::QemuConfig&, CommandLineInputs&)> mutate;
};

const std::vector<Profile>& Profiles() {
  static const std::vector<Profile> p = {
      {"q35_initrd", [](auto& c, auto&) { c.shared_fs = "none"; }},
      {"q35_nvdimm_image",
       [](auto& c, auto&) {
         c.initrd = "";
         c.image = "/usr/local/share/runvm/rootfs.img";
         c.shared_fs = "none";
       }},
      {"pc_image",
       [](auto& c, auto&) {
         c.machine_type = "pc";
         c.initrd = "";
         c.image = "/usr/local/share/runvm/rootfs.img";
         c.disable_image_nvdimm = true;
         c.block_device_driver = "virtio-blk";
         c.shared_fs = "none";
       }},
      {"virtio_fs",
       [](auto& c, auto&) {
         c.virtio_fs_cache_size = 512;
         c.kernel_params = "quiet=0 agent.log=debug";
       }},
      {"virtio_9p",
       [](auto& c, auto&) {
         c.shared_fs = "virtio-9p";
         c.hypervisor_user = "";  // 9p has QEMU open the files: root (Validate)
       }},
      {"hugepages",
       [](auto& c, auto&) {
         c.enable_hugepages = true;
         c.hypervisor_user = "";  // memory hotplug makes files in /dev/hugepages: root
         c.enable_mem_prealloc = true;
         c.enable_vhost_user_store = true;
         c.shared_fs = "none";
       }},
      {"virtio_scsi_iothreads",
       [](auto& c, auto&) {
         c.block_device_driver = "virtio-scsi";
         c.enable_iothreads = true;
         c.enable_iommu = true;
         c.enable_iommu_platform = true;
       }},
      {"bridges_root_ports",
       [](auto& c, auto& in) {
         c.default_bridges = 3;
         c.pcie_root_port = 2;
         c.machine_accelerators = "kernel_irqchip=on";
         in.accelerator = "kvm";
       }},
      {"debug",
       [](auto& c, auto&) {
         c.enable_debug = true;
         c.seccompsandbox = "";
         c.file_mem_backend = "/dev/shm/runvm,odd";
         c.shared_fs = "none";
         c.firmware = "/usr/share/qemu/bios.bin";
         c.pflashes = {"/var/lib/runvm/vars.fd"};
         c.default_memory = 4096;
         c.memory_offset = 512;
       }},
  };
  return p;
}

std::string Render(const Profile& p) {
  config::QemuConfig c = Base();
  CommandLineInputs in = Inputs();
  p.mutate(c, in);
  absl::StatusOr<std::vector<std::string>> argv = BuildCommandLine(c, in);
  EXPECT_THAT(argv, IsOk());
  return argv.ok() ? absl::StrJoin(*argv, "\n") + "\n" : "";
}

class GoldenTest : public ::testing::TestWithParam<Profile> {};

TEST_P(GoldenTest, MatchesTheGoldenFile) {
  const Profile& p = GetParam();
  std::string path = kGoldenDir + "/" + p.name + ".argv";
  std::string got = Render(p);
  if (std::getenv("RUNVM_UPDATE_GOLDEN")) {
    std::ofstream(path) << got;
    GTEST_SKIP() << "updated " << path;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path << " is missing: run with RUNVM_UPDATE_GOLDEN=1";
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(got, want.str()) << "profile " << p.name;
}

INSTANTIATE_TEST_SUITE_P(Profiles, GoldenTest, ::testing::ValuesIn(Profiles()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Golden, EveryProfileHasAFileAndEveryFileAProfile) {
  std::set<std::string> files;
  if (DIR* d = opendir(kGoldenDir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 5 && n.substr(n.size() - 5) == ".argv")
        files.insert(n.substr(0, n.size() - 5));
    }
    closedir(d);
  }
  std::set<std::string> profiles;
  for (const Profile& p : Profiles()) profiles.insert(p.name);
  EXPECT_EQ(files, profiles);
  EXPECT_GE(profiles.size(), 9u);
}

TEST(CommandLine, KernelParamsComeLast) {
  config::QemuConfig c = Base();
  c.kernel_params = "console=hvc0 panic=0";
  std::string k = KernelCommandLine(c);
  EXPECT_EQ(k.substr(k.size() - c.kernel_params.size()), c.kernel_params);
  EXPECT_LT(k.find("panic=1"), k.find("panic=0"));
}

TEST(CommandLine, RefusesWhatItCannotExpress) {
  config::QemuConfig c = Base();
  c.machine_type = "microvm";
  EXPECT_THAT(BuildCommandLine(c, Inputs()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "machine_type \"microvm\" is not supported; use q35 or pc"));
  c = Base();
  CommandLineInputs in = Inputs();
  in.accelerator = "auto";
  EXPECT_THAT(BuildCommandLine(c, in), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("must be resolved to kvm or tcg")));
  c.kernel = "/boot/vmlinuz\nmalicious";
  EXPECT_THAT(BuildCommandLine(c, Inputs()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("QEMU option -kernel: ")));
  c = Base();
  c.initrd = "";
  c.image = "/img";
  in = Inputs();
  in.image_size_bytes = 0;
  EXPECT_THAT(BuildCommandLine(c, in),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the size of image /img")));
}

TEST(CommandLine, CommasInPathsAreEscaped) {
  config::QemuConfig c = Base();
  c.kernel = "/boot/a,b";
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> argv, BuildCommandLine(c, Inputs()));
  auto it = std::find(argv.begin(), argv.end(), "-kernel");
  ASSERT_NE(it, argv.end());
  EXPECT_EQ(*(it + 1), "/boot/a,,b");
}

TEST(Options, RendersInOrderAndEscapes) {
  ASSERT_OK_AND_ASSIGN(std::string s, Options("memory-backend-file")
                                          .Add("id", "m,0")
                                          .Add("size", int64_t{4096})
                                          .Add("share", true)
                                          .Add("prealloc", false)
                                          .AddRaw("x=1,y=2")
                                          .Render());
  EXPECT_EQ(s, "memory-backend-file,id=m,,0,size=4096,share=on,prealloc=off,x=1,y=2");
  ASSERT_OK_AND_ASSIGN(std::string bare, Options().Add("if", "pflash").Render());
  EXPECT_EQ(bare, "if=pflash");
  EXPECT_EQ(*EscapeOptionValue(",,", "v"), ",,,,");
}

TEST(Options, RefusesNulAndNewline) {
  EXPECT_THAT(Options("socket").Add("path", std::string("/a\0b", 4)).Render(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("path: a NUL or newline")));
  EXPECT_THAT(Options("socket").Add("path", "/a\nb").Render(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("path: a NUL or newline")));
  EXPECT_THAT(Options("x").AddRaw("a=1\n").Render(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has a NUL or newline")));
  EXPECT_THAT(Options("dri\nver").Render(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace runvm::qemu
