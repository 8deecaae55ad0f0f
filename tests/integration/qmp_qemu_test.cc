// The QMP client against a real QEMU (no guest: -machine none, paused).
#include <fcntl.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "hypervisor/qmp/client.h"
#include "tests/testing/bare_qemu.h"
#include "tests/testing/status_matchers.h"

namespace runvm::qmp {
namespace {

using ::runvm::testing::BareQemu;
using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

class QmpQemuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(qemu_, BareQemu::Start());
    auto c = Client::Connect(qemu_->monitor_path(0), Soon());
    ASSERT_THAT(c, IsOk()) << qemu_->stderr_text();
    qmp_ = std::move(*c);
  }
  std::unique_ptr<BareQemu> qemu_;
  std::unique_ptr<Client> qmp_;
};

TEST_F(QmpQemuTest, QueryVersionMatchesTheGreeting) {
  ASSERT_OK_AND_ASSIGN(Json v, qmp_->Execute("query-version", nullptr, Soon()));
  EXPECT_EQ(v["qemu"]["major"], qmp_->greeting().major);
  EXPECT_EQ(v["qemu"]["minor"], qmp_->greeting().minor);
  EXPECT_GE(qmp_->greeting().major, 7);
}

TEST_F(QmpQemuTest, StopAndContChangeTheStatusWithEvents) {
  ASSERT_OK_AND_ASSIGN(Json s, qmp_->Execute("query-status", nullptr, Soon()));
  EXPECT_EQ(s["status"], "prelaunch");
  EXPECT_EQ(s["running"], false);
  auto resumed = qmp_->ExpectEvent("RESUME");
  ASSERT_THAT(qmp_->Execute("cont", nullptr, Soon()), IsOk());
  ASSERT_THAT(qmp_->WaitEvent(resumed, Soon()), IsOk());
  ASSERT_OK_AND_ASSIGN(s, qmp_->Execute("query-status", nullptr, Soon()));
  EXPECT_EQ(s["status"], "running");
  auto stopped = qmp_->ExpectEvent("STOP");
  ASSERT_THAT(qmp_->Execute("stop", nullptr, Soon()), IsOk());
  ASSERT_THAT(qmp_->WaitEvent(stopped, Soon()), IsOk());
  ASSERT_OK_AND_ASSIGN(s, qmp_->Execute("query-status", nullptr, Soon()));
  EXPECT_EQ(s["status"], "paused");
}

TEST_F(QmpQemuTest, GetFdWithARealDescriptor) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[0]);
  ASSERT_THAT(qmp_->GetFd("runvm-test", Fd(p[1]), Soon()), IsOk());
  // The name now exists in QEMU: closing it succeeds once, then it is gone.
  EXPECT_THAT(qmp_->CloseFd("runvm-test", Soon()), IsOk());
  EXPECT_THAT(qmp_->CloseFd("runvm-test", Soon()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("GenericError: File descriptor named 'runvm-test' not found")));
}

TEST_F(QmpQemuTest, AddFdThenQueryFdsets) {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_OK_AND_ASSIGN(Client::AddedFd added, qmp_->AddFd(Fd(fd), std::nullopt, "disk0", Soon()));
  ASSERT_OK_AND_ASSIGN(Json sets, qmp_->Execute("query-fdsets", nullptr, Soon()));
  ASSERT_TRUE(sets.is_array());
  bool found = false;
  for (const Json& set : sets) {
    if (set["fdset-id"] != added.fdset_id) continue;
    for (const Json& f : set["fds"]) {
      found |= f["fd"] == added.fd && f.value("opaque", "") == "disk0";
    }
  }
  EXPECT_TRUE(found) << sets.dump();
  ASSERT_THAT(qmp_->RemoveFd(added.fdset_id, added.fd, Soon()), IsOk());
  // QEMU 7.2 closes removed fds only while the VM runs (monitor_fdset_cleanup checks
  // runstate_is_running()): a paused sandbox keeps them until `cont`.
  ASSERT_THAT(qmp_->Execute("cont", nullptr, Soon()), IsOk());
  ASSERT_THAT(qmp_->RemoveFd(added.fdset_id, std::nullopt, Soon()), IsOk());
  ASSERT_OK_AND_ASSIGN(sets, qmp_->Execute("query-fdsets", nullptr, Soon()));
  EXPECT_EQ(sets.dump().find("disk0"), std::string::npos) << sets.dump();
}

TEST_F(QmpQemuTest, DeviceDelOfAnUnknownIdIsDeviceNotFound) {
  absl::Status st = qmp_->Execute("device_del", {{"id", "no-such-device"}}, Soon()).status();
  EXPECT_TRUE(HasErrorClass(st, "DeviceNotFound")) << st;
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kNotFound,
                           "QMP device_del: DeviceNotFound: Device 'no-such-device' not found"));
  EXPECT_THAT(qmp_->health(), IsOk());
}

TEST_F(QmpQemuTest, QuitClosesTheMonitor) {
  auto shutdown = qmp_->ExpectEvent("SHUTDOWN", {{"reason", "host-qmp-quit"}});
  ASSERT_THAT(qmp_->Execute("quit", nullptr, Soon()), IsOk());
  EXPECT_THAT(qmp_->WaitEvent(shutdown, Soon()), IsOk());
  EXPECT_THAT(qmp_->Execute("query-status", nullptr, Soon()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("QEMU monitor closed")));
}

}  // namespace
}  // namespace runvm::qmp
