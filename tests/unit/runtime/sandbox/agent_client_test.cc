// The agent client against a hostile guest (a scripted peer on the agent socket): whatever the
// peer does, every call returns by its deadline with an error, so that no verb holds the sandbox
// lock past it. (No wall-clock budget is asserted: a wait that ignored its deadline would hang
// the test, and ctest's timeout would fail it.)
#include "runtime/sandbox/agent_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "absl/time/clock.h"
#include "base/unix_socket.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/agent_protocol.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm {
namespace {

using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

absl::Time Soon() { return absl::Now() + absl::Milliseconds(300); }

// A peer on the other end of a socket pair that runs `behave` until the client is gone.
class HostilePeer {
 public:
  explicit HostilePeer(std::function<void(int fd, const std::atomic<bool>& stop)> behave) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    client_ = Fd(sv[0]);
    peer_ = Fd(sv[1]);
    thread_ = std::thread([this, behave] { behave(peer_.get(), stop_); });
  }
  ~HostilePeer() {
    stop_ = true;
    ::shutdown(peer_.get(), SHUT_RDWR);
    thread_.join();
  }
  Fd TakeClient() { return std::move(client_); }

 private:
  Fd client_, peer_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void SendAll(int fd, const std::string& bytes, const std::atomic<bool>& stop) {
  size_t done = 0;
  while (done < bytes.size() && !stop) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Answers every hello at once with a hello of another epoch, for ever: frames keep coming.
TEST(AgentClientHostile, AStreamOfFramesNeverMeantForUsEndsAtTheDeadline) {
  HostilePeer peer([](int fd, const std::atomic<bool>& stop) {
    const std::string frame = agent_proto::EncodeFrame(
        {.type = agent_proto::kHello,
         .id = 0,
         .fields = agent_proto::ToFields(agent_proto::HelloReply{"not-yours", "6.1", "0.1"})});
    while (!stop) SendAll(fd, frame, stop);
  });
  EXPECT_THAT(AgentClient::Adopt(peer.TakeClient(), Soon()).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("no hello")));
}

// Garbage without end, a 2 GiB length, a frame that stops half way: no hello, by the deadline.
TEST(AgentClientHostile, GarbageAHugeLengthOrAStalledFrameEndAtTheDeadline) {
  const std::vector<std::string> scripts = {
      std::string(1 << 16, 'x'),                           // garbage (repeated below)
      std::string("RVA1\x80\x00\x00\x00", 8),              // 2 GiB announced, nothing follows
      std::string("RVA1\x00\x00\x00\x40{\"type\":", 17)};  // 64 bytes announced, 9 sent
  for (size_t i = 0; i < scripts.size(); ++i) {
    SCOPED_TRACE(i);
    const std::string bytes = scripts[i];
    HostilePeer peer([bytes, i](int fd, const std::atomic<bool>& stop) {
      do {
        SendAll(fd, bytes, stop);
      } while (i == 0 && !stop);
      while (!stop) absl::SleepFor(absl::Milliseconds(5));
    });
    EXPECT_THAT(AgentClient::Adopt(peer.TakeClient(), Soon()).status(),
                StatusIs(absl::StatusCode::kDeadlineExceeded));
  }
}

// A guest that answers hello and then reads nothing: a request larger than the socket's buffer
// cannot be sent, and the send gives up at the deadline.
TEST(AgentClientHostile, AGuestThatStopsReadingEndsTheSendAtTheDeadline) {
  HostilePeer peer([](int fd, const std::atomic<bool>& stop) {
    agent_proto::FrameReader reader;
    char buf[4096];
    while (!stop) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      reader.Feed({buf, static_cast<size_t>(n)});
      if (std::optional<agent_proto::Message> m = reader.Next()) {
        absl::StatusOr<agent_proto::Hello> hello = agent_proto::HelloFrom(*m);
        SendAll(fd,
                agent_proto::EncodeFrame({.type = agent_proto::kHello,
                                          .id = m->id,
                                          .fields = agent_proto::ToFields(agent_proto::HelloReply{
                                              hello.ok() ? hello->epoch : "", "6.1", "0.1"})}),
                stop);
        break;  // and never read again
      }
    }
    while (!stop) absl::SleepFor(absl::Milliseconds(5));
  });
  absl::StatusOr<AgentClient> client = AgentClient::Adopt(peer.TakeClient(), Soon());
  ASSERT_TRUE(client.ok()) << client.status();
  agent_proto::RunRequest big{.argv = {"echo", std::string(3 << 20, 'a')}};
  EXPECT_THAT(client->Run(big, Soon()).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("sending timed out")));
}

// A listener that never accepts: once its backlog is full, a connect gives up at the deadline.
TEST(AgentClientHostile, AListenerThatNeverAcceptsEndsTheConnectAtTheDeadline) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/agent.sock";
  absl::StatusOr<Fd> listener = ListenUnix(path, /*backlog=*/0);
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::vector<Fd> queued;  // fill the backlog
  for (int i = 0; i < 64; ++i) {
    absl::StatusOr<Fd> c = ConnectUnix(path, absl::Now());
    if (!c.ok()) break;
    queued.push_back(*std::move(c));
  }
  EXPECT_THAT(AgentClient::Connect(path, Soon()).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("connect " + path + ": the listener accepted no connection")));
}

}  // namespace
}  // namespace runvm
