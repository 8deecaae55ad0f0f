#include "runtime/oci/exec_spec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/oci_spec.h"
#include "tests/testing/status_matchers.h"

namespace runvm {
namespace {

using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;
using Json = nlohmann::json;

const std::string kPath = "/bundle/config.json";

std::string Config() { return oci::SpecToJson(oci::DefaultSpec()); }

Json Process(const ExecRequest& req) {
  absl::StatusOr<std::string> out = ExecSpecFrom(Config(), kPath, req);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? Json::parse(*out)["process"] : Json();
}

TEST(ExecSpec, RuncsFlagsReplaceTheProcessAndKeepTheRest) {
  Json p = Process({.args = {"id", "-G"},
                    .cwd = "/tmp",
                    .env = {"X=1"},
                    .user = "1000:100",
                    .additional_gids = {"10", "20"},
                    .caps = {"CAP_NET_ADMIN"},
                    .no_new_privs = true});
  EXPECT_EQ(p["args"], Json({"id", "-G"}));
  EXPECT_EQ(p["cwd"], "/tmp");
  EXPECT_EQ(p["env"].back(), "X=1");
  EXPECT_EQ(p["user"]["uid"], 1000);
  EXPECT_EQ(p["user"]["gid"], 100);
  EXPECT_EQ(p["user"]["additionalGids"], Json({10, 20}));
  EXPECT_EQ(p["capabilities"]["bounding"].back(), "CAP_NET_ADMIN");
  EXPECT_EQ(p["noNewPrivileges"], true);
  absl::StatusOr<std::string> out = ExecSpecFrom(Config(), kPath, {.args = {"true"}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(Json::parse(*out)["linux"], Json::parse(Config())["linux"]);
}

TEST(ExecSpec, TheEnginesProcessJsonIsTakenWhole) {
  Json p = Process({.process_json = R"({"args": ["sh"], "cwd": "/", "user": {"uid": 5, "gid": 5},
                                        "env": ["PATH=/bin"]})"});
  EXPECT_EQ(p["args"], Json({"sh"}));
  EXPECT_EQ(p["user"]["uid"], 5);
}

TEST(ExecSpec, BadInputIsNamed) {
  EXPECT_THAT(ExecSpecFrom(Config(), kPath, {.args = {"true"}, .user = "root"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--user \"root\"")));
  EXPECT_THAT(ExecSpecFrom(Config(), kPath, {.args = {"true"}, .additional_gids = {"wheel"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--additional-gids \"wheel\": not a numeric gid")));
  EXPECT_THAT(ExecSpecFrom(Config(), kPath, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no command")));
  EXPECT_THAT(ExecSpecFrom(Config(), kPath, {.process_json = "[1]"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--process")));
  EXPECT_THAT(ExecSpecFrom("{", kPath, {.args = {"true"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kPath)));
  EXPECT_THAT(ExecSpecFrom(Config(), kPath, {.args = {"sh"}, .tty = true}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot allocate tty")));
  EXPECT_THAT(ExecSpecFrom(Config(), kPath, {.args = {"sh"}, .console_socket = "/s"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot use console socket")));
}

}  // namespace
}  // namespace runvm
