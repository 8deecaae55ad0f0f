// The QMP client against a strict scripted peer: every fault a monitor can show.
#include "hypervisor/qmp/client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_qmp_peer.h"
#include "tests/testing/status_matchers.h"

namespace runvm::qmp {
namespace {

using ::runvm::testing::FakeQmpPeer;
using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

absl::Time Soon() { return absl::Now() + absl::Seconds(5); }

class ClientTest : public ::testing::Test {
 protected:
  // Starts the peer and connects a client to it.
  std::unique_ptr<Client> Connect() {
    peer_.Start();
    auto c = Client::Adopt(peer_.TakeClientEnd(), Soon());
    EXPECT_THAT(c, IsOk());
    return c.ok() ? std::move(*c) : nullptr;
  }
  absl::StatusOr<std::unique_ptr<Client>> TryConnect(absl::Time deadline,
                                                     const ConnectOptions& o = {}) {
    peer_.Start();
    return Client::Adopt(peer_.TakeClientEnd(), deadline, o);
  }
  void TearDown() override { EXPECT_THAT(peer_.Finish(), IsEmpty()); }

  FakeQmpPeer peer_;
};

TEST_F(ClientTest, NegotiatesAndReadsTheGreeting) {
  peer_.Negotiate();
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->greeting().major, 7);
  EXPECT_EQ(c->greeting().capabilities, std::vector<std::string>{"oob"});
  // qmp_capabilities enabled nothing: no "arguments" were sent.
  EXPECT_FALSE(peer_.commands().at(0).contains("arguments"));
}

TEST_F(ClientTest, EnablesOnlyOfferedCapabilities) {
  peer_.Greet().ExpectCommand("qmp_capabilities", {{"enable", {"oob"}}}).Reply();
  ASSERT_THAT(TryConnect(Soon(), {.capabilities = {"oob"}}), IsOk());
}

TEST_F(ClientTest, RefusesACapabilityTheGreetingDidNotOffer) {
  peer_.Greet();
  EXPECT_THAT(TryConnect(Soon(), {.capabilities = {"exec-oob"}}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("QMP capability \"exec-oob\" is not offered")));
}

TEST_F(ClientTest, NegotiationRefusedByQemu) {
  // What QEMU answers to any command before negotiation; the client must send none.
  peer_.Greet()
      .ExpectCommand("qmp_capabilities")
      .ReplyError("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
  EXPECT_THAT(TryConnect(Soon()),
              StatusIs(absl::StatusCode::kUnimplemented,
                       "QMP qmp_capabilities: CommandNotFound: Expecting capabilities negotiation "
                       "with 'qmp_capabilities'"));
}

TEST_F(ClientTest, NoGreeting) {
  peer_.Hang();
  EXPECT_THAT(TryConnect(absl::Now() + absl::Milliseconds(100)),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("no QMP greeting on QMP socket within")));
}

TEST_F(ClientTest, GreetingThenClose) {
  peer_.Greet().Close();
  // Depending on timing the close is seen when sending or when reading the reply.
  EXPECT_THAT(TryConnect(Soon()),
              StatusIs(absl::StatusCode::kUnavailable,
                       ::testing::AllOf(HasSubstr("QEMU monitor closed (QMP socket) while "),
                                        HasSubstr("qmp_capabilities"))));
}

TEST_F(ClientTest, HangAfterTheGreeting) {
  peer_.Greet().ExpectCommand("qmp_capabilities").Hang();
  EXPECT_THAT(TryConnect(absl::Now() + absl::Milliseconds(100)),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("QMP qmp_capabilities: no reply within")));
}

TEST_F(ClientTest, ExecuteReturnsTheValueAndSendsArguments) {
  peer_.Negotiate()
      .ExpectCommand("query-status")
      .Reply({{"status", "prelaunch"}, {"running", false}})
      .ExpectCommand("device_del", {{"id", "blk0"}})
      .Reply();
  auto c = Connect();
  ASSERT_OK_AND_ASSIGN(Json s, c->Execute("query-status", nullptr, Soon()));
  EXPECT_EQ(s["status"], "prelaunch");
  EXPECT_THAT(c->Execute("device_del", {{"id", "blk0"}}, Soon()), IsOk());
  // Ids are unique.
  auto cmds = peer_.commands();
  ASSERT_EQ(cmds.size(), 3u);
  EXPECT_NE(cmds[1]["id"], cmds[2]["id"]);
  EXPECT_NE(cmds[0]["id"], cmds[1]["id"]);
}

TEST_F(ClientTest, ErrorClassIsDataNotText) {
  peer_.Negotiate()
      .ExpectCommand("device_del")
      .ReplyError("DeviceNotFound", "Device 'x' not found")
      .ExpectCommand("device_del")
      .ReplyError("GenericError", "Device 'x' not found");
  auto c = Connect();
  absl::Status a = c->Execute("device_del", {{"id", "x"}}, Soon()).status();
  absl::Status b = c->Execute("device_del", {{"id", "x"}}, Soon()).status();
  EXPECT_THAT(a, StatusIs(absl::StatusCode::kNotFound,
                          "QMP device_del: DeviceNotFound: Device 'x' not found"));
  EXPECT_THAT(b, StatusIs(absl::StatusCode::kFailedPrecondition,
                          "QMP device_del: GenericError: Device 'x' not found"));
  EXPECT_TRUE(HasErrorClass(a, "DeviceNotFound"));
  EXPECT_FALSE(HasErrorClass(b, "DeviceNotFound"));
  EXPECT_EQ(ErrorClass(b), "GenericError");
  EXPECT_EQ(ErrorClass(absl::NotFoundError("Device 'x' not found")), std::nullopt);
  EXPECT_THAT(c->health(), IsOk()) << "an error reply does not break the session";
}

TEST_F(ClientTest, EventBeforeTheReplyIsNotLost) {
  peer_.Negotiate()
      .ExpectCommand("device_del", {{"id", "blk0"}})
      .Event("DEVICE_DELETED", {{"device", "other"}})
      .Event("DEVICE_DELETED", {{"device", "blk0"}, {"path", "/machine/peripheral/blk0"}})
      .Reply();
  auto c = Connect();
  auto w = c->ExpectEvent("DEVICE_DELETED", {{"device", "blk0"}});
  ASSERT_THAT(c->Execute("device_del", {{"id", "blk0"}}, Soon()), IsOk());
  // Already there: no further read happens (the peer has nothing more to say).
  ASSERT_OK_AND_ASSIGN(Event ev, c->WaitEvent(w, absl::Now()));
  EXPECT_EQ(ev.data["path"], "/machine/peripheral/blk0");
  EXPECT_EQ(ev.seconds, 1795321590);
  std::vector<Event> rest = c->TakeEvents();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].data["device"], "other");
}

TEST_F(ClientTest, EventAfterTheReplyIsWaitedFor) {
  peer_.Negotiate()
      .ExpectCommand("device_del")
      .Reply()
      .Delay(absl::Milliseconds(50))
      .Event("DEVICE_DELETED", {{"device", "blk0"}});
  auto c = Connect();
  auto w = c->ExpectEvent("DEVICE_DELETED", {{"device", "blk0"}});
  ASSERT_THAT(c->Execute("device_del", {{"id", "blk0"}}, Soon()), IsOk());
  EXPECT_THAT(c->WaitEvent(w, Soon()), IsOk());
}

TEST_F(ClientTest, EventWaitTimeoutDoesNotPoison) {
  peer_.Negotiate().ExpectCommand("query-status").Reply({{"status", "running"}});
  auto c = Connect();
  auto w = c->ExpectEvent("DEVICE_DELETED", {{"device", "blk0"}});
  EXPECT_THAT(c->WaitEvent(w, absl::Now() + absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("no event DEVICE_DELETED matching {\"device\":\"blk0\"} within")));
  c->CancelEvent(w);
  EXPECT_THAT(c->Execute("query-status", nullptr, Soon()), IsOk());
  EXPECT_THAT(c->WaitEvent(w, Soon()), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ClientTest, EventsInWireOrder) {
  peer_.Negotiate().Event("STOP").Event("RESUME").Event("STOP");
  auto c = Connect();
  std::vector<std::string> names;
  while (names.size() < 3) {
    ASSERT_THAT(c->PollEvents(Soon()), IsOk());
    for (const Event& e : c->TakeEvents()) names.push_back(e.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"STOP", "RESUME", "STOP"}));
}

TEST_F(ClientTest, QueuedEventsAreBounded) {
  std::string burst;
  for (size_t i = 0; i < Client::kMaxQueuedEvents + 5; ++i) {
    burst += Json({{"event", "X"}, {"data", {{"n", i}}}}).dump() + "\n";
  }
  peer_.Negotiate().Raw(burst).ExpectCommand("query-status").Reply();
  auto c = Connect();
  ASSERT_THAT(c->Execute("query-status", nullptr, Soon()), IsOk());
  std::vector<Event> ev = c->TakeEvents();
  EXPECT_EQ(ev.size(), Client::kMaxQueuedEvents);
  EXPECT_EQ(ev.front().data["n"], 5);
  EXPECT_EQ(c->dropped_events(), 5u);
}

TEST_F(ClientTest, QemuDiesMidCommand) {
  peer_.Negotiate().ExpectCommand("query-status").Close();
  auto c = Connect();
  EXPECT_THAT(c->Execute("query-status", nullptr, Soon()),
              StatusIs(absl::StatusCode::kUnavailable,
                       "QEMU monitor closed (QMP socket) while waiting for the reply to "
                       "query-status"));
  EXPECT_THAT(c->Execute("query-status", nullptr, Soon()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not sent: the session is unusable: QEMU monitor closed")));
}

TEST_F(ClientTest, TruncatedJsonThenClose) {
  peer_.Negotiate().ExpectCommand("query-status").Raw("{\"return\": {\"sta").Close();
  auto c = Connect();
  EXPECT_THAT(c->Execute("query-status", nullptr, Soon()),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("while waiting for the reply to query-status (16 bytes of a "
                                 "message cut off)")));
}

struct Garbage {
  const char* name;
  std::string bytes;
  const char* error;
  bool then_reply = true;  // a real reply follows the garbage (and must not be taken)
  friend void PrintTo(const Garbage& g, std::ostream* os) { *os << g.name; }
};

class GarbageTest : public ClientTest, public ::testing::WithParamInterface<Garbage> {};

TEST_P(GarbageTest, BreaksTheSessionAndNoReplyIsMisattributed) {
  peer_.Negotiate().ExpectCommand("query-status").Raw(GetParam().bytes);
  if (GetParam().then_reply) peer_.Reply();
  auto c = Connect();
  EXPECT_THAT(
      c->Execute("query-status", nullptr, Soon()),
      StatusIs(absl::StatusCode::kInternal,
               HasSubstr(std::string("QMP session broken (QMP socket): ") + GetParam().error)));
  EXPECT_THAT(c->health(), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(c->Execute("query-status", nullptr, Soon()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("session is unusable")));
}

INSTANTIATE_TEST_SUITE_P(
    Faults, GarbageTest,
    ::testing::Values(
        Garbage{"Array", "[1,2]\r\n", "message is not a JSON object"},
        Garbage{"UnknownKind", "{\"foo\":1}\r\n", "unknown kind of message"},
        Garbage{"NullEvent", "{\"event\":null}\r\n", "event without a name"},
        Garbage{"InvalidJson", "{\"return\": }\r\n", "invalid JSON"},
        Garbage{"InvalidUtf8", "{\"event\": \"X\", \"data\": {\"a\": \"\xc3\x28\"}}\r\n",
                "invalid JSON"},
        Garbage{"ForeignId", "{\"return\": {}, \"id\": \"someone-else\"}\r\n",
                "reply id \"someone-else\" does not match the outstanding command's id"},
        Garbage{"NoId", "{\"return\": {}}\r\n", "reply id null does not match"},
        Garbage{"SecondGreeting", FakeQmpPeer::DefaultGreeting().dump() + "\r\n",
                "a second greeting"},
        Garbage{"Oversized", "{\"event\":\"X\",\"data\":{\"s\":\"" + std::string(11 << 20, 'a'),
                "message over 10 MiB without an end", false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(ClientTest, UnsolicitedReplyWithNoCommandOutstanding) {
  peer_.Negotiate().Raw("{\"return\": {}}\r\n");
  auto c = Connect();
  EXPECT_THAT(c->PollEvents(Soon()),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("a reply with no command outstanding (id null)")));
}

TEST_F(ClientTest, DeadlineExpiryPoisonsTheSession) {
  peer_.Negotiate()
      .ExpectCommand("query-status")
      .Delay(absl::Milliseconds(300))
      .Reply({{"status", "late"}});
  auto c = Connect();
  EXPECT_THAT(c->Execute("query-status", nullptr, absl::Now() + absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("QMP query-status: no reply within")));
  absl::SleepFor(absl::Milliseconds(400));  // the late reply arrives now
  EXPECT_THAT(c->Execute("query-status", nullptr, Soon()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("a late reply could be misattributed")));
}

TEST_F(ClientTest, LargeCommandIsSentWhole) {
  std::string big(4 << 20, 'z');
  peer_.Negotiate().ExpectCommand("human-monitor-command", {{"command-line", big}}).Reply("");
  auto c = Connect();
  EXPECT_THAT(c->Execute("human-monitor-command", {{"command-line", big}}, Soon()), IsOk());
}

TEST_F(ClientTest, GetFdPassesTheDescriptorAndClosesTheLocalCopy) {
  peer_.Negotiate()
      .ExpectCommand("getfd", {{"fdname", "tap0"}})
      .ExpectFd()
      .Reply()
      .ExpectCommand("closefd", {{"fdname", "tap0"}})
      .Reply();
  auto c = Connect();
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  struct stat mine;
  ASSERT_EQ(::fstat(raw, &mine), 0);
  ASSERT_THAT(c->GetFd("tap0", Fd(raw), Soon()), IsOk());
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1) << "the local copy must be closed after sending";
  ASSERT_THAT(c->CloseFd("tap0", Soon()), IsOk());
  ASSERT_EQ(peer_.received_fds().size(), 1u);
  EXPECT_EQ(peer_.received_fds()[0].st_ino, mine.st_ino);
  EXPECT_EQ(peer_.received_fds()[0].st_rdev, mine.st_rdev);
}

TEST_F(ClientTest, AddFdAndRemoveFd) {
  peer_.Negotiate()
      .ExpectCommand("add-fd", {{"fdset-id", 3}, {"opaque", "disk0"}})
      .ExpectFd()
      .Reply({{"fdset-id", 3}, {"fd", 25}})
      .ExpectCommand("remove-fd", {{"fdset-id", 3}, {"fd", 25}})
      .Reply()
      .ExpectCommand("add-fd")
      .ExpectFd()
      .Reply({{"weird", true}});
  auto c = Connect();
  ASSERT_OK_AND_ASSIGN(Client::AddedFd added,
                       c->AddFd(Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), 3, "disk0", Soon()));
  EXPECT_EQ(added.fdset_id, 3);
  EXPECT_EQ(added.fd, 25);
  EXPECT_THAT(c->RemoveFd(3, 25, Soon()), IsOk());
  EXPECT_THAT(c->AddFd(Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), std::nullopt, "", Soon()),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("unexpected reply")));
}

TEST(ClientConnect, PathTooLongIsRefusedNotTruncated) {
  std::string path = "/tmp/" + std::string(120, 'p');
  EXPECT_THAT(Client::Connect(path, Soon()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a unix socket path must be 1 to 107 bytes")));
}

TEST(ClientConnect, NoSocketIsNamed) {
  EXPECT_THAT(Client::Connect("/nonexistent/qmp.sock", Soon()),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("QMP: connect /nonexistent/qmp.sock: No such file")));
}

}  // namespace
}  // namespace runvm::qmp
