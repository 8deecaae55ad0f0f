// The agent protocol: frames, typed bodies, and resynchronisation after a client died mid-frame.
#include "proto/agent_protocol.h"
#include "proto/io_frame.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace runvm::agent_proto {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

Message Hi(uint64_t id, const std::string& epoch) {
  return {.type = kHello, .id = id, .fields = ToFields(Hello{epoch})};
}

std::vector<Message> Drain(FrameReader& r) {
  std::vector<Message> out;
  while (std::optional<Message> m = r.Next()) out.push_back(*std::move(m));
  return out;
}

TEST(AgentFrame, EncodesMagicLengthAndPayload) {
  std::string f = EncodeFrame({.type = kHealth, .id = 7});
  ASSERT_GE(f.size(), kHeaderBytes);
  EXPECT_EQ(f.substr(0, 4), "RVA1");
  const std::string payload = f.substr(kHeaderBytes);
  EXPECT_EQ(static_cast<size_t>(static_cast<unsigned char>(f[7])), payload.size());
  EXPECT_EQ(payload, R"({"id":7,"type":"health"})");
}

TEST(AgentFrame, EveryBodyRoundTrips) {
  RunRequest run{
      .argv = {"sh", "-c", "echo \"hi\"\n"}, .env = {"A=1"}, .cwd = "/tmp", .timeout_ms = 250};
  RunResult result{.exit_status = 3, .out = std::string("a\0b", 3), .err = "e", .timed_out = true};
  GuestDetails details{.memory_block_size_bytes = 128 << 20,
                       .kernel = "6.1.0",
                       .online_cpus = 2,
                       .mem_total_kib = 480000};
  FrameReader r;
  for (const Message& m : {Message{kRun, 1, ToFields(run)}, Message{kRun, 2, ToFields(result)},
                           Message{kGuestDetails, 3, ToFields(details)},
                           Message{kHello, 4, ToFields(HelloReply{"e", "6.1", "0.1"})},
                           Message{kError, 5, ToFields(Error{"no"})}}) {
    r.Feed(EncodeFrame(m));
  }
  std::vector<Message> got = Drain(r);
  ASSERT_EQ(got.size(), 5u);
  ASSERT_OK_AND_ASSIGN(RunRequest run_back, RunRequestFrom(got[0]));
  EXPECT_EQ(run_back.argv, run.argv);
  EXPECT_EQ(run_back.env, run.env);
  EXPECT_EQ(run_back.timeout_ms, 250);
  ASSERT_OK_AND_ASSIGN(RunResult result_back, RunResultFrom(got[1]));
  EXPECT_EQ(result_back.out, result.out);
  EXPECT_EQ(result_back.exit_status, 3);
  EXPECT_TRUE(result_back.timed_out);
  ASSERT_OK_AND_ASSIGN(GuestDetails details_back, GuestDetailsFrom(got[2]));
  EXPECT_EQ(details_back.memory_block_size_bytes, 128 << 20);
  EXPECT_EQ(details_back.online_cpus, 2);
  ASSERT_OK_AND_ASSIGN(HelloReply hello_back, HelloReplyFrom(got[3]));
  EXPECT_EQ(hello_back.agent_version, "0.1");
  ASSERT_OK_AND_ASSIGN(Error error_back, ErrorFrom(got[4]));
  EXPECT_EQ(error_back.message, "no");
  EXPECT_EQ(r.discarded(), 0u);
}

TEST(AgentFrame, ContainerBodiesRoundTrip) {
  FrameReader r;
  r.Feed(EncodeFrame(
      {kCreateContainer, 1,
       ToFields(CreateContainer{
           .id = "c", .rootfs = "/run/shared/c", .spec_json = "{}", .stdio_port = "io-c"})}));
  r.Feed(EncodeFrame({kSignal, 2, ToFields(SignalRequest{.id = "c", .signal = 10, .all = true})}));
  r.Feed(EncodeFrame({kWait, 3, ToFields(WaitRequest{.id = "c", .timeout_ms = 50})}));
  r.Feed(EncodeFrame({kWait, 4, ToFields(WaitResult{.exited = true, .exit_status = 137})}));
  r.Feed(EncodeFrame({kCreateContainer, 5, ToFields(Created{.pid = 42})}));
  r.Feed(EncodeFrame({kDestroy, 6, ToFields(ContainerRef{.id = "c"})}));
  const ProcessList listed{.processes = {{1, "sh -c x"}, {7, "sleep 1"}}};
  r.Feed(EncodeFrame({kProcesses, 7, ToFields(listed)}));
  std::vector<Message> got = Drain(r);
  ASSERT_EQ(got.size(), 7u);
  ASSERT_OK_AND_ASSIGN(ProcessList list, ProcessListFrom(got[6]));
  EXPECT_EQ(list.processes, listed.processes);
  got[6].fields["processes"][1]["pid"] = "7";
  EXPECT_THAT(ProcessListFrom(got[6]),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("processes")));
  ASSERT_OK_AND_ASSIGN(CreateContainer create, CreateContainerFrom(got[0]));
  EXPECT_EQ(create.rootfs, "/run/shared/c");
  EXPECT_EQ(create.stdio_port, "io-c");
  ASSERT_OK_AND_ASSIGN(SignalRequest sig, SignalRequestFrom(got[1]));
  EXPECT_EQ(sig.signal, 10);
  EXPECT_TRUE(sig.all);
  ASSERT_OK_AND_ASSIGN(WaitRequest wait, WaitRequestFrom(got[2]));
  EXPECT_EQ(wait.timeout_ms, 50);
  ASSERT_OK_AND_ASSIGN(WaitResult waited, WaitResultFrom(got[3]));
  EXPECT_TRUE(waited.exited);
  EXPECT_EQ(waited.exit_status, 137);
  ASSERT_OK_AND_ASSIGN(Created created, CreatedFrom(got[4]));
  EXPECT_EQ(created.pid, 42);
  ASSERT_OK_AND_ASSIGN(ContainerRef ref, ContainerRefFrom(got[5]));
  EXPECT_EQ(ref.id, "c");
  got[1].fields["signal"] = 0;
  EXPECT_THAT(SignalRequestFrom(got[1]),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("signal")));
}

TEST(AgentFrame, BodiesAreStrict) {
  Message m{.type = kRun,
            .id = 9,
            .fields = {{"argv", {"ls"}}, {"env", nlohmann::json::array()}, {"cwd", 1}}};
  EXPECT_THAT(RunRequestFrom(m), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("\"run\" (id 9): field \"cwd\"")));
  m.fields["cwd"] = "";
  m.fields["timeout_ms"] = 5;
  m.fields["argv"] = nlohmann::json::array();
  EXPECT_THAT(RunRequestFrom(m),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a non-empty list")));
  EXPECT_THAT(HelloFrom(m), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("expected \"hello\", got \"run\"")));
}

TEST(AgentMessages, StatsAndUpdateRoundTrip) {
  CgroupStats stats{.cpu_usage_usec = 5,
                    .memory_current = 1 << 20,
                    .memory_max = -1,
                    .oom_kill = 2,
                    .pids_current = 3,
                    .frozen = true,
                    .memory_stat = {{"anon", 4096}}};
  absl::StatusOr<CgroupStats> back =
      CgroupStatsFrom({.type = kStats, .id = 1, .fields = ToFields(stats)});
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->cpu_usage_usec, 5);
  EXPECT_EQ(back->memory_max, -1);
  EXPECT_EQ(back->oom_kill, 2);
  EXPECT_TRUE(back->frozen);
  EXPECT_EQ(back->memory_stat.at("anon"), 4096);
  Json fields = ToFields(stats);
  fields["memory_stat"]["anon"] = "x";
  EXPECT_THAT(CgroupStatsFrom({.type = kStats, .fields = fields}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory_stat")));
  absl::StatusOr<UpdateRequest> u = UpdateRequestFrom(
      {.type = kUpdate, .fields = ToFields(UpdateRequest{"c1", R"({"pids":{"limit":5}})"})});
  ASSERT_THAT(u, IsOk());
  EXPECT_EQ(u->id, "c1");
  EXPECT_THAT(ContainerRefFrom({.type = kPause, .fields = ToFields(ContainerRef{"c1"})}), IsOk());
}

TEST(AgentFrame, ByteByByteDeliveryYieldsTheSameMessages) {
  std::string stream = EncodeFrame(Hi(1, "a")) + EncodeFrame({.type = kHealth, .id = 2});
  FrameReader r;
  std::vector<Message> got;
  for (char c : stream) {
    r.Feed({&c, 1});
    for (Message& m : Drain(r)) got.push_back(std::move(m));
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].type, kHello);
  EXPECT_EQ(got[1].id, 2u);
}

TEST(AgentFrame, GarbageAndFalseFramesAreSkipped) {
  FrameReader r;
  r.Feed("noise RVA");                           // no frame, and a split magic
  r.Feed(std::string("1\xff\xff\xff\xff", 5));   // a magic with an absurd length
  r.Feed(std::string("RVA1\0\0\0\x03xyz", 11));  // a payload that is no message
  r.Feed(EncodeFrame({.type = kHealth, .id = 3}));
  std::vector<Message> got = Drain(r);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 3u);
  EXPECT_GT(r.discarded(), 20u);
}

TEST(AgentFrame, AClientKilledMidFrameDoesNotStallTheNextOne) {
  // The first client promised a long run request and died after a few bytes; the guest saw no
  // EOF, so the next client's hello arrives as if it were the rest of that payload.
  std::string killed = EncodeFrame(
      {.type = kRun, .id = 1, .fields = ToFields(RunRequest{.argv = {std::string(500, 'x')}})});
  FrameReader r;
  r.Feed(killed.substr(0, 30));
  EXPECT_FALSE(r.Next().has_value());
  r.Feed(EncodeFrame(Hi(1, "second")));
  r.Feed(EncodeFrame({.type = kHealth, .id = 2}));
  std::vector<Message> got = Drain(r);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_OK_AND_ASSIGN(Hello hello, HelloFrom(got[0]));
  EXPECT_EQ(hello.epoch, "second");
  EXPECT_EQ(got[1].type, kHealth);
}

TEST(AgentFrame, AKilledFrameWhoseJsonEndsInANulDoesNotSwallowTheNextHello) {
  // Found by the fuzzer: the JSON parser stops at a NUL, so a payload made of a complete object,
  // a NUL and then the next client's bytes must still be refused.
  std::string body = R"({"type":"run","id":1})";
  body.push_back('\0');
  body += "tail";
  std::string killed = "RVA1";
  killed += std::string("\0\0\0", 3) + static_cast<char>(body.size() + 20);
  killed += body;
  FrameReader r;
  r.Feed(killed);
  EXPECT_FALSE(r.Next().has_value());
  r.Feed(EncodeFrame(Hi(7, "next")));
  std::vector<Message> got = Drain(r);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_OK_AND_ASSIGN(Hello hello, HelloFrom(got[0]));
  EXPECT_EQ(hello.epoch, "next");
}

TEST(AgentFrame, AnIncompleteFrameWithoutAHelloWaits) {
  std::string f = EncodeFrame({.type = kHealth, .id = 4});
  FrameReader r;
  r.Feed(f.substr(0, f.size() - 1));
  EXPECT_FALSE(r.Next().has_value());
  r.Feed(f.substr(f.size() - 1));
  ASSERT_TRUE(r.Next().has_value());
}

TEST(AgentFrame, ALargeFrameInSmallPiecesIsDecodedAndNotRescanned) {
  RunRequest big{.argv = {std::string(3 << 20, 'y')}};
  std::string f = EncodeFrame({.type = kRun, .id = 5, .fields = ToFields(big)});
  FrameReader r;
  std::vector<Message> got;
  for (size_t at = 0; at < f.size(); at += 4096) {  // virtio-serial's chunk size
    r.Feed(absl::string_view(f).substr(at, 4096));
    for (Message& m : Drain(r)) got.push_back(std::move(m));
  }
  ASSERT_EQ(got.size(), 1u);
  ASSERT_OK_AND_ASSIGN(RunRequest back, RunRequestFrom(got[0]));
  EXPECT_EQ(back.argv[0].size(), 3u << 20);
}

TEST(AgentBodies, ConfigureNetworkRoundTripsAndNamesABadInterface) {
  NetworkConfig config{.timeout_ms = 5000};
  config.interfaces.push_back({.mac = "02:00:00:00:00:01",
                               .name = "eth0",
                               .mtu = 1400,
                               .addresses = {"10.0.0.2/24", "fd00::2/64"},
                               .routes = {{.dest = "0.0.0.0/0", .gateway = "10.0.0.1"}}});
  Message m{.type = kConfigureNetwork, .id = 7, .fields = ToFields(config)};
  absl::StatusOr<NetworkConfig> back = NetworkConfigFrom(m);
  ASSERT_THAT(back.status(), IsOk());
  EXPECT_EQ(back->interfaces, config.interfaces);
  EXPECT_EQ(back->timeout_ms, 5000);
  m.fields["interfaces"][0]["mtu"] = "1400";
  EXPECT_THAT(NetworkConfigFrom(m).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("interfaces[0]: field \"mtu\" is missing or not an integer")));
}

}  // namespace
}  // namespace runvm::agent_proto

namespace runvm::io_frame {
namespace {

using ::runvm::testing::StatusIs;

TEST(IoFrame, EveryKindRoundTripsThroughAByteByByteReader) {
  std::string stream = Encode(kStdout, "out") + Encode(kStderr, std::string("e\0r", 3)) +
                       Encode(kStdinClosed) + EncodeResize(24, 80) + EncodeExit(137) +
                       EncodeSignal(15);
  Reader r;
  std::vector<Frame> got;
  for (char c : stream) {
    r.Feed({&c, 1});
    for (;;) {
      absl::StatusOr<std::optional<Frame>> f = r.Next();
      ASSERT_TRUE(f.ok()) << f.status();
      if (!f->has_value()) break;
      got.push_back(**f);
    }
  }
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0].data, "out");
  EXPECT_EQ(got[1].data, std::string("e\0r", 3));
  EXPECT_EQ(got[2].kind, kStdinClosed);
  ASSERT_OK_AND_ASSIGN(WindowSize size, WindowSizeOf(got[3]));
  EXPECT_EQ(size.rows, 24);
  EXPECT_EQ(size.columns, 80);
  EXPECT_THAT(WindowSizeOf(got[4]), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(int status, ExitStatusOf(got[4]));
  EXPECT_EQ(status, 137);
  EXPECT_THAT(ExitStatusOf(got[0]), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(int signal, SignalOf(got[5]));
  EXPECT_EQ(signal, 15);
  EXPECT_THAT(SignalOf(got[4]), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SignalOf(Frame{.kind = kSignal, .data = std::string("\0\0\0\x41", 4)}),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("signal 65")));
  EXPECT_THAT(SignalOf(Frame{.kind = kSignal, .data = std::string(4, '\0')}),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("signal 0")));
}

TEST(IoFrame, AnUnknownKindOrAHugeLengthEndsTheStream) {
  Reader bad_kind;
  bad_kind.Feed(std::string("\x09\0\0\0\0", 5));
  EXPECT_THAT(bad_kind.Next(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("unknown kind 9")));
  Reader huge;
  huge.Feed(std::string("\x02\x7f\xff\xff\xff", 5));
  EXPECT_THAT(huge.Next(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("over the limit")));
}

}  // namespace
}  // namespace runvm::io_frame
