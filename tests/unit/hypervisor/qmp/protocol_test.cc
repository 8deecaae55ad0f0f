#include "hypervisor/qmp/protocol.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace runvm::qmp {
namespace {

using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseMessage, Greeting) {
  ASSERT_OK_AND_ASSIGN(
      Message m,
      ParseMessage(R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7},)"
                   R"( "package": "Debian 1:7.2"}, "capabilities": ["oob"]}})"));
  const Greeting& g = std::get<Greeting>(m);
  EXPECT_EQ(g.major, 7);
  EXPECT_EQ(g.minor, 2);
  EXPECT_EQ(g.micro, 22);
  EXPECT_EQ(g.package, "Debian 1:7.2");
  EXPECT_EQ(g.capabilities, std::vector<std::string>{"oob"});
}

TEST(ParseMessage, RepliesAndEvents) {
  ASSERT_OK_AND_ASSIGN(Message ok, ParseMessage(R"({"return": {"status": "running"}, "id": "a"})"));
  EXPECT_TRUE(std::get<Reply>(ok).ok);
  EXPECT_EQ(std::get<Reply>(ok).id, "a");
  EXPECT_EQ(std::get<Reply>(ok).value["status"], "running");
  ASSERT_OK_AND_ASSIGN(
      Message err,
      ParseMessage(R"({"error": {"class": "DeviceNotFound", "desc": "no"}, "id": 3})"));
  EXPECT_FALSE(std::get<Reply>(err).ok);
  EXPECT_EQ(std::get<Reply>(err).error_class, "DeviceNotFound");
  ASSERT_OK_AND_ASSIGN(Message ev, ParseMessage(R"({"event": "STOP", "timestamp": {"seconds": 5,)"
                                                R"( "microseconds": 6}})"));
  EXPECT_EQ(std::get<Event>(ev).name, "STOP");
  EXPECT_EQ(std::get<Event>(ev).seconds, 5);
  EXPECT_TRUE(std::get<Event>(ev).data.is_object());
}

struct BadMessage {
  const char* name;
  std::string text;
  const char* error;
  friend void PrintTo(const BadMessage& c, std::ostream* os) { *os << c.name; }
};

class BadMessageTest : public ::testing::TestWithParam<BadMessage> {};

TEST_P(BadMessageTest, IsRejectedWithTheReason) {
  EXPECT_THAT(ParseMessage(GetParam().text),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(GetParam().error)));
}

INSTANTIATE_TEST_SUITE_P(
    Faults, BadMessageTest,
    ::testing::Values(BadMessage{"Truncated", R"({"return": {"sta)", "invalid JSON"},
                      BadMessage{"Array", "[1,2]", "message is not a JSON object"},
                      BadMessage{"Number", "42", "message is not a JSON object"},
                      BadMessage{"UnknownKind", R"({"foo":1})", "unknown kind of message"},
                      BadMessage{"NullEventName", R"({"event":null})", "event without a name"},
                      BadMessage{"EmptyEventName", R"({"event":""})", "event without a name"},
                      BadMessage{"EventDataNotObject", R"({"event":"X","data":[1]})",
                                 "event data is not an object"},
                      BadMessage{"ErrorWithoutClass", R"({"error":{"desc":"x"}})",
                                 "error reply without a string class and desc"},
                      BadMessage{"ReturnAndError", R"({"return":{},"error":{}})",
                                 "reply with both return and error"},
                      BadMessage{"InvalidUtf8", "{\"return\": \"\xff\xfe\"}", "invalid JSON"},
                      BadMessage{"GreetingNotObject", R"({"QMP": 1})",
                                 "greeting without a QMP object"},
                      BadMessage{"NulThenGarbage", std::string("{\"return\":{}}\0junk", 18),
                                 "message holds a NUL byte"},
                      BadMessage{"TooDeep", "{\"return\":" + std::string(100000, '[') + "}",
                                 "message nested deeper than 64 levels"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Framer, SplitsOnNewlinesAcrossAppends) {
  Framer f;
  f.Append("{\"a\":", 5);
  ASSERT_OK_AND_ASSIGN(auto none, f.Next());
  EXPECT_FALSE(none.has_value());
  std::string more = "1}\r\n\r\n{\"b\":2}\n{\"c\"";
  f.Append(more.data(), more.size());
  ASSERT_OK_AND_ASSIGN(auto a, f.Next());
  EXPECT_EQ(*a, "{\"a\":1}");
  ASSERT_OK_AND_ASSIGN(auto b, f.Next());
  EXPECT_EQ(*b, "{\"b\":2}");
  ASSERT_OK_AND_ASSIGN(auto c, f.Next());
  EXPECT_FALSE(c.has_value());
  EXPECT_EQ(f.pending(), 4u);
}

TEST(Framer, RefusesMessagesOverTheLimit) {
  Framer f;
  std::string big(kMaxMessageBytes + 1, 'x');
  f.Append(big.data(), big.size());
  EXPECT_THAT(f.Next(),
              StatusIs(absl::StatusCode::kInvalidArgument, "message over 10 MiB without an end"));
  Framer g;
  big += "\n";
  g.Append(big.data(), big.size());
  EXPECT_THAT(g.Next(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("over 10 MiB")));
}

TEST(EncodeCommand, OmitsEmptyArguments) {
  EXPECT_EQ(EncodeCommand("query-status", Json::object(), "r1"),
            "{\"execute\":\"query-status\",\"id\":\"r1\"}\r\n");
  EXPECT_EQ(EncodeCommand("device_del", {{"id", "a,b"}}, 7),
            "{\"arguments\":{\"id\":\"a,b\"},\"execute\":\"device_del\",\"id\":7}\r\n");
}

}  // namespace
}  // namespace runvm::qmp
