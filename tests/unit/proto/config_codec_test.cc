#include "proto/config_codec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/config_keys.h"
#include "tests/testing/status_matchers.h"

namespace runvm::config {
namespace {

using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

Config NonDefault() {
  Config c;
  c.hypervisor.default_memory = 4096;
  c.hypervisor.enable_annotations = {"default_vcpus", "kernel_params"};
  c.hypervisor.kernel_params = "quiet \"x\"\\ \t";
  c.agent.kernel_modules = {"virtio_net", "e1000e InterruptThrottleRate=3000"};
  c.runtime.sandbox_cgroup_only = true;
  return c;
}

TEST(ConfigJson, HoldsEveryKeyAndRoundTrips) {
  Config c = NonDefault();
  std::string text = ToJson(c);
  auto j = nlohmann::json::parse(text);
  for (const KeyInfo& k : AllKeys()) {
    std::string ptr = "/" + std::string(k.table) + "/" + std::string(k.name);
    for (char& ch : ptr) ch = ch == '.' ? '/' : ch;
    EXPECT_TRUE(j.contains(nlohmann::json::json_pointer(ptr))) << ptr;
  }
  ASSERT_OK_AND_ASSIGN(Config back, FromJson(text));
  EXPECT_EQ(back, c);
}

TEST(ConfigJson, StrictDecoding) {
  EXPECT_THAT(FromJson("{"),
              StatusIs(absl::StatusCode::kInvalidArgument, "configuration: invalid JSON"));
  EXPECT_THAT(FromJson(R"({"hypervisor":{"qemu":{"bogus":1}}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "hypervisor.qemu.bogus: unknown key"));
  EXPECT_THAT(FromJson(R"({"hypervisor":{"qemu":{"default_memory":"1"}}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "hypervisor.qemu.default_memory: expected an integer, got \"1\""));
  EXPECT_THAT(FromJson(R"({"hypervisor":{"qemu":{"default_memory":0}}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "hypervisor.qemu.default_memory: 0 is out of range; allowed: 1 to "
                       "4294967295"));
  EXPECT_THAT(FromJson(R"({"agent":{"kata":{"kernel_modules":[1]}}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "agent.kata.kernel_modules: expected an array of strings, got [1]"));
  EXPECT_THAT(FromJson(R"({"other":{}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "other: unknown key"));
  EXPECT_THAT(FromJson(R"([1,2])"),
              StatusIs(absl::StatusCode::kInvalidArgument, "configuration: expected an object"));
}

TEST(ConfigToml, HasEveryKeyOnce) {
  std::string toml = ToToml(Config{});
  for (const KeyInfo& k : AllKeys()) {
    EXPECT_NE(toml.find("\n" + std::string(k.name) + " = "), std::string::npos) << k.Path();
  }
  EXPECT_EQ(toml.rfind("[hypervisor.qemu]\n", 0), 0u);
  EXPECT_NE(toml.find("\n[agent.kata]\n"), std::string::npos);
  EXPECT_NE(toml.find("\n[runtime]\n"), std::string::npos);
}

}  // namespace
TEST(QemuJson, RoundTripsTheTableAloneAndIsStrict) {
  Config c;
  c.hypervisor.default_vcpus = 3;
  c.hypervisor.kernel_params = "quiet";
  c.hypervisor.virtio_fs_extra_args = {"--thread-pool-size=1"};
  nlohmann::json j = QemuToJson(c.hypervisor);
  EXPECT_EQ(j["default_vcpus"], 3);
  EXPECT_FALSE(j.contains("hypervisor"));
  absl::StatusOr<QemuConfig> back = QemuFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->default_vcpus, 3);
  EXPECT_EQ(back->kernel_params, "quiet");
  EXPECT_EQ(back->virtio_fs_extra_args, c.hypervisor.virtio_fs_extra_args);

  nlohmann::json unknown = j;
  unknown["turbo"] = true;
  EXPECT_THAT(QemuFromJson(unknown).status().message(),
              HasSubstr("hypervisor.qemu.turbo: unknown key"));
  nlohmann::json wrong = j;
  wrong["default_vcpus"] = "three";
  EXPECT_THAT(QemuFromJson(wrong).status().message(), HasSubstr("hypervisor.qemu.default_vcpus"));
}

}  // namespace runvm::config
