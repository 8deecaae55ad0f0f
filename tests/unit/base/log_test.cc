#include "base/log.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"

namespace runvm {
namespace {

using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

TEST(LogFormat, JsonIsOneObjectPerLineWithRuncsFields) {
  std::string line =
      FormatLogLine(LogFormat::kJson, LogLevel::kError, "container \"x\" does not exist\nsecond",
                    "2026-11-22T04:00:00Z");
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "a message newline must be escaped";
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["msg"], "container \"x\" does not exist\nsecond");
  EXPECT_EQ(j["time"], "2026-11-22T04:00:00Z");
  EXPECT_EQ(line.substr(0, 10), "{\"level\":\"") << "field order is runc's";
}

TEST(LogFormat, TextIsLogrusStyle) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, LogLevel::kWarning, "a \"b\"", "T"),
            "time=\"T\" level=warning msg=\"a \\\"b\\\"\"\n");
}

TEST(LogFormat, InvalidUtf8IsReplacedNotThrown) {
  std::string line = FormatLogLine(LogFormat::kJson, LogLevel::kInfo, "bad \xff byte", "T");
  EXPECT_NO_THROW(nlohmann::json::parse(line));
}

TEST(ParseLogFormat, AcceptsRuncsValuesOnly) {
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_THAT(ParseLogFormat("yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"yaml\"")));
}

}  // namespace
}  // namespace runvm
