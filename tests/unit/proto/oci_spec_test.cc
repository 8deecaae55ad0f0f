// The OCI spec subset: runc's default round-trips, engines' extra fields are tolerated, wrong
// kinds are errors naming the field, and Validate's cross-field rules.
#include "proto/oci_spec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"

namespace runvm::oci {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(OciSpec, TheDefaultSpecRoundTripsAndIsValid) {
  Spec d = DefaultSpec();
  EXPECT_THAT(d.Validate(), IsOk());
  ASSERT_OK_AND_ASSIGN(Spec back, ParseSpec(SpecToJson(d)));
  EXPECT_EQ(back.process.args, std::vector<std::string>{"sh"});
  EXPECT_TRUE(back.process.terminal);
  EXPECT_TRUE(back.root.readonly);
  EXPECT_EQ(back.mounts.size(), d.mounts.size());
  EXPECT_EQ(back.mounts[2].options, d.mounts[2].options);
  ASSERT_TRUE(back.process.capabilities.has_value());
  EXPECT_THAT(back.process.capabilities->bounding,
              ElementsAre("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"));
  EXPECT_EQ(back.linux.namespaces.size(), 6u);
  EXPECT_EQ(SpecToJson(back), SpecToJson(d));
}

TEST(OciSpec, FieldsAnEngineAddsAreTolerated) {
  // Shaped like what containerd writes: hooks, devices, resources, and a few newer fields.
  const char* text = R"({
    "ociVersion": "1.1.0",
    "process": {"user": {"uid": 1000, "gid": 1000, "additionalGids": [10, 20]},
                "args": ["/bin/echo", "hi"], "env": ["A=1"], "cwd": "/work",
                "apparmorProfile": "x", "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096,
                "soft": 2048}], "oomScoreAdj": -500, "noNewPrivileges": true},
    "root": {"path": "/var/lib/bundle/rootfs"},
    "hooks": {"prestart": [{"path": "/bin/true"}]},
    "linux": {"resources": {"memory": {"limit": 1048576}}, "devices": [],
              "cgroupsPath": "/kubepods/pod1/c1",
              "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                          "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                        "errnoRet": 1}]},
              "namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}]},
    "annotations": {"io.kubernetes.cri.container-type": "sandbox"}
  })";
  ASSERT_OK_AND_ASSIGN(Spec s, ParseSpec(text));
  EXPECT_THAT(s.Validate(), IsOk());
  EXPECT_EQ(s.process.user.uid, 1000u);
  EXPECT_THAT(s.process.user.additional_gids, ElementsAre(10u, 20u));
  EXPECT_EQ(s.process.rlimits[0].soft, 2048u);
  EXPECT_EQ(s.process.oom_score_adj, -500);
  EXPECT_EQ(s.linux.cgroups_path, "/kubepods/pod1/c1");
  ASSERT_TRUE(s.linux.seccomp.has_value());
  EXPECT_EQ(s.linux.seccomp->syscalls[0].errno_ret, 1u);
  EXPECT_EQ(s.linux.namespaces[1].path, "/proc/1/ns/net");
  EXPECT_EQ(s.annotations.at("io.kubernetes.cri.container-type"), "sandbox");
}

TEST(OciSpec, SelinuxLabelsAreReadAndKept) {
  // Not applied (docs/security.md), but never silently dropped: create warns about them.
  ASSERT_OK_AND_ASSIGN(Spec s,
                       ParseSpec(R"({"ociVersion": "1.1.0", "process": {"args": ["sh"], "cwd": "/",
                           "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2"},
                           "root": {"path": "rootfs"},
                           "linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}})"));
  EXPECT_EQ(s.process.selinux_label, "system_u:system_r:container_t:s0:c1,c2");
  EXPECT_EQ(s.linux.mount_label, "system_u:object_r:container_file_t:s0");
  ASSERT_OK_AND_ASSIGN(Spec again, ParseSpec(SpecToJson(s)));
  EXPECT_EQ(again.process.selinux_label, s.process.selinux_label);
  EXPECT_EQ(again.linux.mount_label, s.linux.mount_label);
}

TEST(OciResources, DeviceRulesAreReadKeptAndChecked) {
  ASSERT_OK_AND_ASSIGN(Resources r,
                       ParseResources(R"({"devices": [{"allow": false, "access": "rwm"},
                                     {"allow": true, "type": "c", "major": 1, "minor": 3,
                                      "access": "rw"},
                                     {"allow": true, "type": "b", "major": -1, "access": "m"}]})"));
  ASSERT_EQ(r.devices.size(), 3u);
  EXPECT_EQ(r.devices[0].type, "a");
  EXPECT_FALSE(r.devices[0].allow);
  EXPECT_EQ(r.devices[1].minor, 3);
  EXPECT_EQ(r.devices[2].major, -1);
  ASSERT_OK_AND_ASSIGN(Resources again, ParseResources(ResourcesToJson(r)));
  EXPECT_EQ(again.devices.size(), 3u);
  EXPECT_EQ(again.devices[1].access, "rw");
  EXPECT_THAT(ParseResources(R"({"devices": [{"type": "x"}]})").status().message(),
              HasSubstr("devices[0].type: \"x\" is not one of a, c, b"));
  EXPECT_THAT(ParseResources(R"({"devices": [{"access": "rwx"}]})").status().message(),
              HasSubstr("is not made of r, w, m"));
}

TEST(OciSpec, WrongKindsNameTheField) {
  EXPECT_THAT(ParseSpec(R"({"process": {"user": {"uid": "root"}}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("process.user.uid: expected an unsigned integer, got string")));
  EXPECT_THAT(ParseSpec(R"({"process": {"args": ["a", 2]}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("process.args[1]: expected a string, got number")));
  EXPECT_THAT(ParseSpec(R"({"mounts": {"destination": "/x"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("mounts: expected a list, got object")));
  EXPECT_THAT(ParseSpec(R"({"process": {"user": {"uid": 4294967296}}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not fit 32 bits")));
  EXPECT_THAT(ParseSpec("{\"process\": "),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
}

TEST(OciSpec, ValidateRules) {
  auto invalid = [](auto mutate, const char* why) {
    Spec s = DefaultSpec();
    mutate(s);
    EXPECT_THAT(s.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(why)));
  };
  invalid([](Spec& s) { s.process.args.clear(); }, "process.args: at least the program");
  invalid([](Spec& s) { s.process.cwd = "work"; }, "process.cwd: \"work\" is not an absolute");
  invalid([](Spec& s) { s.root.path.clear(); }, "root.path: missing");
  invalid([](Spec& s) { s.linux.namespaces.push_back({"pid", ""}); }, "\"pid\" given twice");
  invalid([](Spec& s) { s.linux.namespaces.push_back({"net", ""}); }, "unknown namespace \"net\"");
  invalid([](Spec& s) { s.mounts[0].destination = "proc"; }, "mounts[0].destination");
  invalid([](Spec& s) { s.process.rlimits[0].type = "NOFILE"; }, "unknown rlimit \"NOFILE\"");
  invalid([](Spec& s) { s.process.capabilities->effective.push_back("SYS_ADMIN"); },
          "\"SYS_ADMIN\" is not a capability name");
}

TEST(OciResources, ParsedFromTheSpecAndAlone) {
  absl::StatusOr<Spec> spec = ParseSpec(R"({"linux": {"resources": {
      "cpu": {"shares": 512, "quota": 150000, "period": 100000, "cpus": "0-1"},
      "memory": {"limit": 268435456, "swap": 536870912},
      "pids": {"limit": 64}, "devices": [{"allow": false, "access": "rwm"}]}}})");
  ASSERT_THAT(spec, IsOk());
  ASSERT_TRUE(spec->linux.resources.has_value());
  const Resources& r = *spec->linux.resources;
  EXPECT_EQ(r.cpu->shares, 512u);
  EXPECT_EQ(r.cpu->cpus, "0-1");
  EXPECT_EQ(r.Vcpus(), 2) << "ceil(150000 / 100000)";
  EXPECT_EQ(r.MemoryMib(), 256);
  EXPECT_EQ(r.pids->limit, 64);
  // Through the spec's JSON and back, and alone (update --resources).
  absl::StatusOr<Spec> again = ParseSpec(SpecToJson(*spec));
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(ResourcesToJson(*again->linux.resources), ResourcesToJson(r));
  absl::StatusOr<Resources> alone = ParseResources(ResourcesToJson(r));
  ASSERT_THAT(alone, IsOk());
  EXPECT_EQ(ResourcesToJson(*alone), ResourcesToJson(r));
  EXPECT_EQ(Resources{}.Vcpus(), 0);
  EXPECT_EQ(Resources{}.MemoryMib(), 0);
}

TEST(OciResources, AnUpdateReplacesOnlyTheFieldsItNames) {
  absl::StatusOr<Resources> base = ParseResources(
      R"({"cpu": {"quota": 100000, "period": 100000}, "memory": {"limit": 104857600}})");
  absl::StatusOr<Resources> update =
      ParseResources(R"({"cpu": {"quota": 300000}, "pids": {"limit": 10}})");
  ASSERT_THAT(base, IsOk());
  ASSERT_THAT(update, IsOk());
  base->Merge(*update);
  EXPECT_EQ(base->cpu->quota, 300000);
  EXPECT_EQ(base->cpu->period, 100000u);
  EXPECT_EQ(base->memory->limit, 104857600);
  EXPECT_EQ(base->pids->limit, 10);
  EXPECT_EQ(base->Vcpus(), 3);
}

TEST(OciResources, BadFiguresAreRefusedNamingTheField) {
  EXPECT_THAT(ParseResources(R"({"cpu": {"quota": -5}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cpu.quota: -5")));
  EXPECT_THAT(ParseResources(R"({"cpu": {"period": 10}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cpu.period: 10 is outside")));
  EXPECT_THAT(ParseResources(R"({"memory": {"limit": "1g"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("resources.memory.limit: expected an integer, got string")));
  EXPECT_THAT(ParseResources(R"({"memory": {"limit": 2000000, "swap": 1000000}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("below the memory limit")));
  EXPECT_THAT(ParseResources("[1]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected an object")));
  EXPECT_THAT(ParseResources("{"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("resources: not valid JSON")));
}

}  // namespace
}  // namespace runvm::oci
