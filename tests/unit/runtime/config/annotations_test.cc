#include "runtime/config/annotations.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace runvm {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

constexpr config::HostFacts kHost{.cpus = 8};
constexpr char kP[] = "io.katacontainers.config.hypervisor.";

std::string A(const std::string& key) { return kP + key; }

config::Config WithRules(std::vector<std::string> rules) {
  config::Config c;
  c.hypervisor.enable_annotations = std::move(rules);
  c.hypervisor.valid_hypervisor_paths = {"/usr/bin/qemu-*", "/opt/kernels/*"};
  c.hypervisor.valid_virtio_fs_daemon_paths = {"/usr/libexec/virtiofsd"};
  c.ApplyClamps(kHost);
  return c;
}

absl::Status Apply(config::Config& c, std::map<std::string, std::string> annotations) {
  return ApplyAnnotations(annotations, kHost, c);
}

TEST(Annotations, AllowedOverrideIsApplied) {
  config::Config c = WithRules({"default_vcpus", "enable_debug", "virtio_fs_extra_args"});
  ASSERT_THAT(Apply(c, {{A("default_vcpus"), "4"},
                        {A("enable_debug"), "true"},
                        {A("virtio_fs_extra_args"), R"(["-o","cache=none"])"}}),
              IsOk());
  EXPECT_EQ(c.hypervisor.default_vcpus, 4);
  EXPECT_TRUE(c.hypervisor.enable_debug);
  EXPECT_EQ(c.hypervisor.virtio_fs_extra_args, (std::vector<std::string>{"-o", "cache=none"}));
}

TEST(Annotations, KeyWithoutARuleIsRefusedNamingTheRules) {
  config::Config c = WithRules({"default_vcpus"});
  config::Config before = c;
  EXPECT_THAT(Apply(c, {{A("default_memory"), "4096"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "annotation io.katacontainers.config.hypervisor.default_memory: refused: "
                       "\"default_memory\" matches no rule of "
                       "hypervisor.qemu.enable_annotations [\"default_vcpus\"]"));
  EXPECT_EQ(c, before);
}

TEST(Annotations, NoRulesRefuseEverything) {
  config::Config c = WithRules({});
  EXPECT_THAT(Apply(c, {{A("default_vcpus"), "2"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("matches no rule")));
}

TEST(Annotations, RulesAreAnchored) {
  // A rule meant for kernel_params must not allow kernel (a host path), and vice versa.
  config::Config c = WithRules({"kernel_params"});
  EXPECT_THAT(Apply(c, {{A("kernel"), "/opt/kernels/vmlinuz"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("matches no rule")));
  c = WithRules({"kernel"});
  EXPECT_THAT(Apply(c, {{A("kernel_params"), "quiet"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("matches no rule")));
  c = WithRules({"kernel"});
  EXPECT_THAT(Apply(c, {{A("kernel"), "/opt/kernels/vmlinuz"}}), IsOk());
  // A prefix rule must say so explicitly.
  c = WithRules({"default_.*"});
  EXPECT_THAT(Apply(c, {{A("default_vcpus"), "2"}, {A("default_memory"), "1024"}}), IsOk());
  EXPECT_EQ(c.hypervisor.default_memory, 1024);
  c = WithRules({"vcpus"});
  EXPECT_THAT(Apply(c, {{A("default_vcpus"), "2"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("matches no rule")));
  c = WithRules({"default_vcpus|kernel_params"});
  EXPECT_THAT(Apply(c, {{A("kernel_params"), "quiet"}}), IsOk());
  EXPECT_THAT(Apply(c, {{A("kernel"), "/opt/kernels/vmlinuz"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("matches no rule")));
}

TEST(Annotations, PathMustMatchAGlob) {
  config::Config c = WithRules({"path", "kernel", "virtio_fs_daemon"});
  ASSERT_THAT(Apply(c, {{A("path"), "/usr/bin/qemu-system-x86_64"}}), IsOk());
  EXPECT_EQ(c.hypervisor.path, "/usr/bin/qemu-system-x86_64");
  EXPECT_THAT(Apply(c, {{A("path"), "/tmp/qemu-system-x86_64"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "annotation io.katacontainers.config.hypervisor.path: refused: path "
                       "\"/tmp/qemu-system-x86_64\" matches no glob of "
                       "hypervisor.qemu.valid_hypervisor_paths [\"/usr/bin/qemu-*\","
                       "\"/opt/kernels/*\"]"));
  EXPECT_THAT(Apply(c, {{A("virtio_fs_daemon"), "/usr/bin/qemu-evil"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("matches no glob of hypervisor.qemu.valid_virtio_fs_daemon_paths "
                                 "[\"/usr/libexec/virtiofsd\"]")));
}

TEST(Annotations, GlobEdgeCases) {
  config::Config c = WithRules({"kernel"});
  // "*" does not cross "/".
  EXPECT_THAT(Apply(c, {{A("kernel"), "/opt/kernels/sub/vmlinuz"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("matches no glob")));
  // ".." could climb out of a glob's directory.
  EXPECT_THAT(
      Apply(c, {{A("kernel"), "/opt/kernels/../../etc/shadow"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not absolute and normalised")));
  EXPECT_THAT(
      Apply(c, {{A("kernel"), "/opt/kernels/.."}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not absolute and normalised")));
  EXPECT_THAT(
      Apply(c, {{A("kernel"), "/opt//kernels/vmlinuz"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not absolute and normalised")));
  EXPECT_THAT(
      Apply(c, {{A("kernel"), "opt/kernels/vmlinuz"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not absolute and normalised")));
  EXPECT_THAT(Apply(c, {{A("kernel"), "/opt/kernels/vmlinuz-6.1"}}), IsOk());
}

TEST(Annotations, EmptyGlobListAllowsNoPath) {
  config::Config c = WithRules({"file_mem_backend"});
  EXPECT_THAT(Apply(c, {{A("file_mem_backend"), "/dev/shm"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("matches no glob of hypervisor.qemu.valid_file_mem_backends []")));
}

TEST(Annotations, GuardKeysCanNeverBeOverridden) {
  config::Config c = WithRules({".*"});
  for (const char* key :
       {"enable_annotations", "valid_hypervisor_paths", "valid_virtio_fs_daemon_paths",
        "valid_file_mem_backends", "valid_vhost_user_store_paths", "pflashes", "entropy_source"}) {
    EXPECT_THAT(Apply(c, {{A(key), R"([".*"])"}}),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("can only be set in configuration.toml")))
        << key;
  }
}

TEST(Annotations, BadValuesAreRefusedWithTheValue) {
  config::Config c = WithRules({".*"});
  EXPECT_THAT(Apply(c, {{A("default_vcpus"), "four"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "annotation io.katacontainers.config.hypervisor.default_vcpus: expected an "
                       "integer, got \"four\""));
  EXPECT_THAT(Apply(c, {{A("enable_debug"), "yes"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected a boolean")));
  EXPECT_THAT(Apply(c, {{A("default_memory"), "-5"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-5 is out of range")));
  EXPECT_THAT(Apply(c, {{A("shared_fs"), "nfs"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"nfs\" is not allowed")));
  EXPECT_THAT(
      Apply(c, {{A("virtio_fs_extra_args"), "--flag"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected an array of strings")));
  EXPECT_THAT(Apply(c, {{A("no_such_key"), "1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"no_such_key\" is not a hypervisor key")));
}

TEST(Annotations, OneBadAnnotationLeavesTheConfigurationUnchanged) {
  config::Config c = WithRules({"default_vcpus", "default_memory"});
  config::Config before = c;
  // std::map order: default_memory is applied before default_vcpus fails.
  EXPECT_THAT(Apply(c, {{A("default_memory"), "4096"}, {A("default_vcpus"), "x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("default_vcpus")));
  EXPECT_EQ(c, before);
}

TEST(Annotations, ResultIsValidatedAndClamped) {
  config::Config c = WithRules({"image", "default_vcpus"});
  EXPECT_THAT(Apply(c, {{A("image"), "/opt/kernels/rootfs.img"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "annotations make the configuration invalid: hypervisor.qemu.image: initrd "
                       "and image are both set; set only one"));
  ASSERT_THAT(Apply(c, {{A("default_vcpus"), "0"}}), IsOk());
  EXPECT_EQ(c.hypervisor.default_vcpus, 1);
  ASSERT_THAT(Apply(c, {{A("default_vcpus"), "100"}}), IsOk());
  EXPECT_EQ(c.hypervisor.default_vcpus, 8);
}

TEST(Annotations, OtherAnnotationsAreNotLookedAtButOtherKataOnesAreRefused) {
  config::Config c = WithRules({});
  EXPECT_THAT(Apply(c, {{"io.kubernetes.cri.container-type", "sandbox"},
                        {"io.katacontainers.pkg.oci.bundle_path", "/b"}}),
              IsOk());
  EXPECT_THAT(Apply(c, {{"io.katacontainers.config.runtime.experimental", "true"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "annotation io.katacontainers.config.runtime.experimental: only "
                       "io.katacontainers.config.hypervisor.* annotations are supported"));
}

TEST(CheckAnnotationRules, NamesTheBadRule) {
  EXPECT_THAT(CheckAnnotationRules({"ok", "[unclosed"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("rule 1 \"[unclosed\" is not a valid regular expression")));
  EXPECT_THAT(CheckAnnotationRules({"default_.*", "kernel|initrd"}), IsOk());
}

}  // namespace
}  // namespace runvm
