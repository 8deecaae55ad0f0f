#include "persist/store.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/time/clock.h"

#include "base/file.h"
#include "gtest/gtest.h"
#include "persist/lock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm::persist {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::runvm::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kFormat[] = "runvm.sandbox";

class StoreTest : public ::testing::Test {
 protected:
  TempDir dir_;
  Store store_{dir_.path()};
  std::string Raw(const std::string& key, const std::string& text) { return dir_.Write(key, text); }
  std::vector<std::string> Names(const std::string& sub) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/" + sub)) {
      out.push_back(e.path().filename());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(StoreTest, SavesReadablePrettyJsonAndLoadsItBack) {
  Json data = {{"uuid", "6b7b"}, {"bridges", {{"0", {"blk0"}}}}};
  ASSERT_THAT(store_.Save("s/abc/sandbox.json", kFormat, 2, data), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(dir_.path() + "/s/abc/sandbox.json"));
  EXPECT_EQ(text.rfind("{\n  \"format\": \"runvm.sandbox\",\n  \"version\": 2,\n  \"data\": {", 0),
            0u)
      << text;
  ASSERT_OK_AND_ASSIGN(Json back, store_.Load("s/abc/sandbox.json", kFormat, 2));
  EXPECT_EQ(back, data);
  struct stat st;
  ASSERT_EQ(::stat((dir_.path() + "/s/abc/sandbox.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(StoreTest, MissingIsNotFound) {
  EXPECT_THAT(store_.Load("s/none.json", kFormat, 1), StatusIs(absl::StatusCode::kNotFound));
}

struct Unreadable {
  const char* name;
  std::string text;
  const char* why;
  friend void PrintTo(const Unreadable& u, std::ostream* os) { *os << u.name; }
};

class UnreadableTest : public StoreTest, public ::testing::WithParamInterface<Unreadable> {};

TEST_P(UnreadableTest, IsQuarantinedAndReported) {
  std::string path = Raw("s/r.json", GetParam().text);
  absl::StatusOr<Json> r = store_.Load("s/r.json", kFormat, 2);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss,
                          AllOf(HasSubstr("runvm.sandbox record " + path + " is unreadable ("),
                                HasSubstr(GetParam().why),
                                HasSubstr("moved aside to " + path + ".corrupt-"))));
  std::vector<std::string> names = Names("s");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].rfind("r.json.corrupt-", 0), 0u) << "never silently dropped";
  ASSERT_OK_AND_ASSIGN(std::string kept, ReadFile(dir_.path() + "/s/" + names[0]));
  EXPECT_EQ(kept, GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, UnreadableTest,
    ::testing::Values(Unreadable{"ZeroBytes", "", "empty file"},
                      Unreadable{"Truncated",
                                 "{\"format\": \"runvm.sandbox\", \"version\": 2, \"da",
                                 "not valid JSON; truncated?"},
                      Unreadable{"NotARecord", "[1,2]", "format, version and data are needed"},
                      Unreadable{"OtherFormat",
                                 R"({"format":"runvm.container","version":2,"data":{}})",
                                 "format \"runvm.container\", expected \"runvm.sandbox\""}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(StoreTest, FutureVersionIsRefusedAndLeftInPlace) {
  Raw("s/f.json", R"({"format":"runvm.sandbox","version":3,"data":{}})");
  EXPECT_THAT(store_.Load("s/f.json", kFormat, 2),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("has version 3, but this runvm reads versions up to 2")));
  EXPECT_THAT(Names("s"), ElementsAre("f.json"));
}

TEST_F(StoreTest, OlderVersionIsMigrated) {
  Raw("s/o.json", R"({"format":"runvm.sandbox","version":1,"data":{"vcpus":2}})");
  Migration migrate = [](int from, Json d) -> absl::StatusOr<Json> {
    EXPECT_EQ(from, 1);
    d["vcpu_ids"] = Json::array({0, 1});
    return d;
  };
  ASSERT_OK_AND_ASSIGN(Json d, store_.Load("s/o.json", kFormat, 2, migrate));
  EXPECT_EQ(d["vcpu_ids"], Json::array({0, 1}));
  EXPECT_THAT(store_.Load("s/o.json", kFormat, 2),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("has version 1 and no migration to 2")));
}

TEST_F(StoreTest, LeftoverTemporaryFileIsIgnored) {
  ASSERT_THAT(store_.Save("s/good.json", kFormat, 1, {{"a", 1}}), IsOk());
  Raw("s/good.json.tmp.4242", "{\"half");
  ASSERT_OK_AND_ASSIGN(Json d, store_.Load("s/good.json", kFormat, 1));
  EXPECT_EQ(d["a"], 1);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> list, store_.List("s"));
  EXPECT_THAT(list, ElementsAre("good.json"));
}

TEST_F(StoreTest, FullDiskKeepsThePreviousRecord) {
  std::string mnt = dir_.path() + "/tiny";
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  Store tiny(mnt);
  ASSERT_THAT(tiny.Save("s.json", kFormat, 1, {{"small", true}}), IsOk());
  Json big = {{"blob", std::string(200 * 1024, 'x')}};
  absl::Status st = tiny.Save("s.json", kFormat, 1, big);
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("No space left")));
  absl::StatusOr<Json> back = tiny.Load("s.json", kFormat, 1);
  EXPECT_THAT(back, IsOk());
  if (back.ok()) {
    EXPECT_EQ((*back)["small"], true);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> left, tiny.List(""));
  EXPECT_THAT(left, ElementsAre("s.json")) << "the failed temporary file was removed";
}

TEST(Lock, ExclusiveWaitsBoundedAndNamesTheHolder) {
  TempDir dir;
  std::string path = dir.path() + "/lock";
  ASSERT_OK_AND_ASSIGN(
      Lock held, Lock::Acquire(path, Lock::kExclusive, absl::Seconds(1), "sandbox abc", "hotplug"));
  EXPECT_THAT(Lock::Acquire(path, Lock::kExclusive, absl::Milliseconds(50), "sandbox abc", "stop"),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("sandbox abc is busy: hotplug by pid " +
                                       std::to_string(::getpid()) + " since 20"),
                             HasSubstr("(waited 50ms)"))));
  EXPECT_THAT(Lock::Acquire(path, Lock::kShared, absl::Milliseconds(50), "sandbox abc", "state"),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(Lock, SharedLocksCoexistAndBlockWriters) {
  TempDir dir;
  std::string path = dir.path() + "/lock";
  ASSERT_OK_AND_ASSIGN(Lock a, Lock::Acquire(path, Lock::kShared, absl::Seconds(1), "s", "state"));
  ASSERT_OK_AND_ASSIGN(Lock b, Lock::Acquire(path, Lock::kShared, absl::Seconds(1), "s", "list"));
  EXPECT_THAT(Lock::Acquire(path, Lock::kExclusive, absl::Milliseconds(30), "s", "delete"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("held by another runvm")));
}

TEST(Lock, ReleaseLetsTheNextInAndForgetsTheHolder) {
  TempDir dir;
  std::string path = dir.path() + "/lock";
  {
    ASSERT_OK_AND_ASSIGN(Lock l,
                         Lock::Acquire(path, Lock::kExclusive, absl::Seconds(1), "s", "boot"));
  }
  ASSERT_OK_AND_ASSIGN(Lock s, Lock::Acquire(path, Lock::kShared, absl::Seconds(1), "s", "state"));
  EXPECT_THAT(Lock::Acquire(path, Lock::kExclusive, absl::Milliseconds(30), "s", "stop"),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::Not(HasSubstr("boot by pid"))));
}

TEST(Lock, DifferentSandboxesDoNotWaitForEachOther) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(Lock a, Lock::Acquire(dir.path() + "/a.lock", Lock::kExclusive,
                                             absl::Seconds(1), "sandbox a", "hotplug"));
  EXPECT_THAT(Lock::Acquire(dir.path() + "/b.lock", Lock::kExclusive, absl::ZeroDuration(),
                            "sandbox b", "hotplug"),
              IsOk());
}

TEST(Lock, AWaiterDoesNotKeepTheLockOfADeletedSandbox) {
  // A holder deletes the sandbox (and its lock file) while another waits; a third comes along and
  // creates the sandbox again. The waiter must end up serialised with the third, not holding a
  // lock on the unlinked file.
  TempDir dir;
  std::string path = dir.path() + "/lock";
  auto holder = std::make_unique<Lock>(
      *Lock::Acquire(path, Lock::kExclusive, absl::Seconds(1), "s", "delete"));
  std::thread waiter_thread([&] {
    absl::StatusOr<Lock> waiter =
        Lock::Acquire(path, Lock::kExclusive, absl::Seconds(5), "s", "hotplug");
    ASSERT_THAT(waiter, IsOk());
    // Holding it now: a newcomer on the current file must be kept out.
    EXPECT_THAT(Lock::Acquire(path, Lock::kExclusive, absl::Milliseconds(30), "s", "create"),
                StatusIs(absl::StatusCode::kUnavailable));
  });
  absl::SleepFor(absl::Milliseconds(50));  // let the waiter open the old file
  ASSERT_EQ(::unlink(path.c_str()), 0);
  holder.reset();
  waiter_thread.join();
}

}  // namespace
}  // namespace runvm::persist
