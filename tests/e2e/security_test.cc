// The security boundary end to end (docs/security.md): a container that is root with every
// capability in its VM plants symlinks at every name the host will create in the shared
// directory; a spec without capabilities gets none; the classic chroot escape stays in the
// container; a device node made with CAP_MKNOD cannot be opened; mount destinations through
// the image's symlinks and ".." stay in the rootfs;
// relative bind sources are the bundle's and may not leave it; the state is 0700/0600 under any
// umask; every verb returns from a hostile agent (four kinds), and delete --force converges.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "proto/agent_protocol.h"
#include "tests/e2e/pod_fixture.h"

namespace runvm::e2e {
namespace {

// Every capability the guest's libcap knows (0 to 40).
const std::vector<std::string>& AllCapabilities() {
  static const std::vector<std::string> all = {"CAP_CHOWN",
                                               "CAP_DAC_OVERRIDE",
                                               "CAP_DAC_READ_SEARCH",
                                               "CAP_FOWNER",
                                               "CAP_FSETID",
                                               "CAP_KILL",
                                               "CAP_SETGID",
                                               "CAP_SETUID",
                                               "CAP_SETPCAP",
                                               "CAP_LINUX_IMMUTABLE",
                                               "CAP_NET_BIND_SERVICE",
                                               "CAP_NET_BROADCAST",
                                               "CAP_NET_ADMIN",
                                               "CAP_NET_RAW",
                                               "CAP_IPC_LOCK",
                                               "CAP_IPC_OWNER",
                                               "CAP_SYS_MODULE",
                                               "CAP_SYS_RAWIO",
                                               "CAP_SYS_CHROOT",
                                               "CAP_SYS_PTRACE",
                                               "CAP_SYS_PACCT",
                                               "CAP_SYS_ADMIN",
                                               "CAP_SYS_BOOT",
                                               "CAP_SYS_NICE",
                                               "CAP_SYS_RESOURCE",
                                               "CAP_SYS_TIME",
                                               "CAP_SYS_TTY_CONFIG",
                                               "CAP_MKNOD",
                                               "CAP_LEASE",
                                               "CAP_AUDIT_WRITE",
                                               "CAP_AUDIT_CONTROL",
                                               "CAP_SETFCAP",
                                               "CAP_MAC_OVERRIDE",
                                               "CAP_MAC_ADMIN",
                                               "CAP_SYSLOG",
                                               "CAP_WAKE_ALARM",
                                               "CAP_BLOCK_SUSPEND",
                                               "CAP_AUDIT_READ",
                                               "CAP_PERFMON",
                                               "CAP_BPF",
                                               "CAP_CHECKPOINT_RESTORE"};
  return all;
}

void GrantAll(Bundle& b) {
  b.spec.process.capabilities = oci::Capabilities{.bounding = AllCapabilities(),
                                                  .effective = AllCapabilities(),
                                                  .permitted = AllCapabilities()};
}

// Every regular file below `dir` with its content, and every other entry by kind.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    const std::string path = e.path().string();
    if (e.is_symlink()) {
      out[path] = "symlink";
    } else if (e.is_regular_file()) {
      out[path] = ReadFile(path).value_or("?");
    } else {
      out[path] = e.is_directory() ? "dir" : "other";
    }
  }
  return out;
}

class SecurityTest : public PodTest {
 protected:
  // The host's mount points but the tests' own (this test's root, its VMs' run directories and
  // bundles, and any other test's directory), those below `watched` included: what a hostile
  // guest must not change.
  std::multiset<std::string> HostMounts(const std::string& watched) {
    std::multiset<std::string> points;
    absl::StatusOr<std::string> info = ReadFile("/proc/self/mountinfo", 8 << 20);
    EXPECT_THAT(info, IsOk());
    const std::string tests = dir_.path().substr(0, dir_.path().rfind('.') + 1);
    for (absl::string_view line : absl::StrSplit(info.value_or(""), '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      if (f.size() <= 4) continue;
      if (absl::StartsWith(f[4], tests) && !absl::StartsWith(f[4], watched)) continue;
      points.insert(f[4]);
    }
    return points;
  }
};

TEST_F(SecurityTest, SymlinksAGuestPlantsInTheSharedDirectoryAreNeverFollowedByTheHost) {
  TempDir victims, volumes;
  victims.Write("dir/keep", "host data\n");
  victims.Write("file", "host file\n");
  volumes.Write("dir/v", "volume\n");
  volumes.Write("file", "a file volume\n");
  const std::string sb = PodId("sandbox"), c1 = PodId("c1"), c2 = PodId("c2");
  Bundle sandbox = PodBundle(sb, "sandbox", sb, {"sleep", "100000"});
  GrantAll(sandbox);
  sandbox.Save();
  ASSERT_NO_FATAL_FAILURE(Start(sandbox, sb));
  const std::map<std::string, std::string> files_before = Snapshot(victims.path());
  const std::multiset<std::string> mounts_before = HostMounts(victims.path());

  // Each member has a directory volume and a file volume after the default mounts.
  auto member = [&](const std::string& id) {
    Bundle b = PodBundle(id, "container", sb, {"sleep", "100000"});
    b.spec.mounts.push_back({.destination = "/data",
                             .type = "bind",
                             .source = volumes.path() + "/dir",
                             .options = {"rbind", "rw"}});
    b.spec.mounts.push_back({.destination = "/etc/vol.txt",
                             .type = "bind",
                             .source = volumes.path() + "/file",
                             .options = {"bind", "ro"}});
    b.Save();
    return b;
  };
  Bundle one = member(c1), two = member(c2);
  const size_t dir_volume = one.spec.mounts.size() - 2;

  // From inside the container (root, every capability): the share mounted again, and a symlink
  // at every name the host will create for the two members, aimed at the host's files.
  std::string plant = "busybox mkdir -p /tmp/s && busybox mount -t virtiofs kataShared /tmp/s";
  for (const std::string& id : {c1, c2}) {
    absl::StrAppend(&plant, "; busybox ln -s ", victims.path(), "/dir /tmp/s/", id);
    for (size_t i = 0; i < one.spec.mounts.size(); ++i) {
      absl::StrAppend(&plant, "; busybox ln -s ", victims.path(),
                      i == dir_volume + 1 ? "/file" : "/dir", " /tmp/s/", id, ".mount", i);
    }
  }
  absl::StrAppend(&plant, "; ls -a /tmp/s; busybox umount /tmp/s");
  CommandResult planted = Exec(sb, plant);
  EXPECT_THAT(planted.err, HasSubstr("Read-only file system")) << planted.out;
  EXPECT_THAT(planted.out, ::testing::Not(HasSubstr(".mount"))) << "a name was planted";

  // The members: created, started, used, deleted (c1 forced while running, c2 never started).
  ASSERT_NO_FATAL_FAILURE(Start(one, c1));
  CommandResult used = Exec(c1, "echo from-c1 > /data/x && cat /etc/vol.txt /data/v");
  EXPECT_EQ(used.code, 0) << used.err;
  EXPECT_EQ(used.out, "a file volume\nvolume\n");
  EXPECT_EQ(ReadFile(volumes.path() + "/dir/x").value_or(""), "from-c1\n");
  EngineIo created = Create({"create", "--bundle", two.path, c2});
  ASSERT_EQ(created.create.code, 0) << ReadFile(log_).value_or("");
  for (const std::string& point : HostMounts(victims.path())) {
    EXPECT_FALSE(absl::StartsWith(point, victims.path())) << "mounted over a host path: " << point;
  }
  CommandResult removed = Runvm({"delete", "--force", c1});
  EXPECT_EQ(removed.code, 0) << removed.err;
  removed = Runvm({"delete", c2});
  EXPECT_EQ(removed.code, 0) << removed.err;

  EXPECT_EQ(Snapshot(victims.path()), files_before) << "a host file changed";
  EXPECT_EQ(HostMounts(victims.path()), mounts_before) << "the host's mount table changed";
}

TEST_F(SecurityTest, ASpecWithoutCapabilitiesGivesNone) {
  bundle_.spec.process.capabilities.reset();
  bundle_.spec.process.args = {"grep", "^Cap", "/proc/self/status"};
  // An SELinux label is not applied, and says so.
  bundle_.spec.process.selinux_label = "system_u:system_r:container_t:s0:c1,c2";
  bundle_.Save();
  const std::string id = NewId();
  CommandResult r = Runvm({"run", "--bundle", bundle_.path, id});
  EXPECT_EQ(r.code, 0) << r.err;
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat(set, ":\t0000000000000000"))) << r.out;
  }
  EXPECT_THAT(ReadFile(log_).value_or(""),
              HasSubstr("process.selinuxLabel \\\"system_u:system_r:container_t:s0:c1,c2\\\" is "
                        "not applied"));
}

TEST_F(SecurityTest, TheChrootEscapeStaysInTheContainer) {
  // The container's root is pivoted to (guest/init leaves the initramfs for a tmpfs), not
  // chrooted into: walking ".." from outside a nested chroot ends at the container's own root.
  std::filesystem::copy_file(RUNVM_CHROOT_ESCAPE, bundle_.rootfs + "/bin/escape");
  GrantAll(bundle_);
  bundle_.spec.root.readonly = false;
  bundle_.spec.process.args = {"/bin/escape",
                               "[ -e /bin/runvm-agent ] && echo escaped || echo confined"};
  bundle_.Save();
  const std::string id = NewId();
  CommandResult r = Runvm({"run", "--bundle", bundle_.path, id});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "confined\n") << r.err;
}

TEST_F(SecurityTest, ADeviceNodeMadeWithCapMknodCannotBeOpened) {
  // agent/devices.h: a container with every capability makes the guest's serial console
  // (ttyS0, c 4:64, which no container should reach): made, but opening it is refused by its
  // cgroup's device program; the default devices stay usable.
  GrantAll(bundle_);
  bundle_.spec.root.readonly = false;
  bundle_.spec.process.args = {
      "sh", "-c",
      "busybox mknod /tmp/serial c 4 64 && echo made; echo hi > /tmp/serial && echo opened;"
      " echo x > /dev/null && echo null-works"};
  bundle_.Save();
  const std::string id = NewId();
  CommandResult r = Runvm({"run", "--bundle", bundle_.path, id});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "made\nnull-works\n") << r.err;
  EXPECT_THAT(r.err, HasSubstr("Operation not permitted"));
}

TEST_F(SecurityTest, MountDestinationsAndRelativeSourcesStayInsideTheirRoots) {
  // The image's /evil points at the guest's root; a destination through it, or climbing with
  // "..", lands inside the rootfs, where the container sees it.
  std::filesystem::create_symlink("/", bundle_.rootfs + "/evil");
  bundle_.spec.mounts.push_back(
      {.destination = "/evil/etc/hostile", .type = "tmpfs", .source = "tmpfs"});
  bundle_.spec.mounts.push_back(
      {.destination = "/../../etc/dotdot", .type = "tmpfs", .source = "tmpfs"});
  // A relative bind source is the bundle's.
  ASSERT_TRUE(std::filesystem::create_directories(bundle_.path + "/vol"));
  ASSERT_THAT(WriteFileAtomic(bundle_.path + "/vol/f", "bundle volume\n"), IsOk());
  bundle_.spec.mounts.push_back(
      {.destination = "/rel", .type = "bind", .source = "vol", .options = {"rbind"}});
  bundle_.spec.root.readonly = false;
  bundle_.spec.process.args = {
      "sh", "-c", "grep -c -E ' /etc/(hostile|dotdot) ' /proc/self/mountinfo; cat /rel/f"};
  bundle_.Save();
  const std::string id = NewId();
  CommandResult r = Runvm({"run", "--bundle", bundle_.path, id});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "2\nbundle volume\n");
  EXPECT_TRUE(std::filesystem::is_directory(bundle_.rootfs + "/etc/hostile"));
  EXPECT_TRUE(std::filesystem::is_directory(bundle_.rootfs + "/etc/dotdot"));

  // One that climbs out of the bundle is refused before anything is made.
  bundle_.spec.mounts.back().source = "../outside";
  bundle_.Save();
  const std::string refused = NewId();
  r = Runvm({"run", "--bundle", bundle_.path, refused});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("the relative source ../outside leaves the bundle")) << r.err;
  ExpectNothingLeft(refused);
}

TEST_F(SecurityTest, UnderUmaskZeroTheStateIsTheCallersAlone) {
  // runvm under umask 0 (an engine's choice, not ours): every directory, record, lock, log and
  // socket under the root is 0700 or 0600 while a container runs. What the shared directory
  // carries (the bundle's rootfs) keeps its own modes.
  bundle_.spec.process.args = {"sleep", "600"};
  bundle_.Save();
  const std::string id = NewId();
  const mode_t old = ::umask(0);
  EngineIo io = Create({"run", "-d", "--bundle", bundle_.path, id});
  ::umask(old);
  ASSERT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
  int checked = 0;
  auto it = std::filesystem::recursive_directory_iterator(root_);
  for (; it != std::filesystem::recursive_directory_iterator(); ++it) {
    struct stat st;
    ASSERT_EQ(::lstat(it->path().c_str(), &st), 0) << it->path();
    const mode_t mode = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      EXPECT_EQ(mode, 0700u) << it->path();
    } else if (S_ISSOCK(st.st_mode)) {
      EXPECT_THAT(mode, ::testing::AnyOf(0600u, 0700u)) << it->path();  // QEMU's: 0777 & ~077
    } else {
      EXPECT_EQ(mode, 0600u) << it->path();
    }
    ++checked;
    const std::string name = it->path().filename().string();
    if (S_ISDIR(st.st_mode) && (name == "shared" || name == "view")) {
      it.disable_recursion_pending();
    }
  }
  EXPECT_GT(checked, 10);
}

// What a hostile guest's agent does to every connection (the four of AgentClientHostile).
enum class Hostility { kEndlessFrames, kHugeLength, kStallMidFrame, kNeverAccepts };

std::string HostilityName(Hostility h) {
  switch (h) {
    case Hostility::kEndlessFrames:
      return "frames for someone else, without end";
    case Hostility::kHugeLength:
      return "a 2 GiB length";
    case Hostility::kStallMidFrame:
      return "half a frame, then nothing";
    case Hostility::kNeverAccepts:
      return "a listener that never accepts";
  }
  return "?";
}

// Takes a sandbox's agent socket over and behaves as `how` says until destroyed.
class HostileAgent {
 public:
  HostileAgent(const std::string& socket, Hostility how) : how_(how) {
    ::unlink(socket.c_str());
    absl::StatusOr<Fd> listener = ListenUnix(socket, how == Hostility::kNeverAccepts ? 0 : 16);
    EXPECT_THAT(listener, IsOk());
    if (!listener.ok()) return;
    listener_ = *std::move(listener);
    if (how == Hostility::kNeverAccepts) {
      for (int i = 0; i < 64; ++i) {  // the backlog, full
        absl::StatusOr<Fd> c = ConnectUnix(socket, absl::Now());
        if (!c.ok()) break;
        queued_.push_back(*std::move(c));
      }
      return;
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~HostileAgent() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Serve() {
    const std::string frame = agent_proto::EncodeFrame(
        {.type = agent_proto::kHello, .id = 987654321, .fields = Json::object()});
    const std::string once = how_ == Hostility::kHugeLength
                                 ? std::string("RVA1\x80\x00\x00\x00", 8)
                                 : std::string("RVA1\x00\x00\x00\x40{\"type\":", 17);
    std::vector<Fd> clients;
    while (!stop_) {
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) == 1) {
        Fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (c.valid() && how_ != Hostility::kEndlessFrames) {
          (void)::send(c.get(), once.data(), once.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        clients.push_back(std::move(c));
      }
      if (how_ != Hostility::kEndlessFrames) continue;
      for (const Fd& c : clients) {
        if (c.valid()) {
          (void)::send(c.get(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
      }
    }
  }

  const Hostility how_;
  Fd listener_;
  std::vector<Fd> queued_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(SecurityTest, EveryVerbReturnsAtItsDeadlineFromAHostileAgentAndForceConverges) {
  // One pod per kind of hostility, run side by side (each verb waits out its 30 s deadline).
  const std::vector<Hostility> kinds = {Hostility::kEndlessFrames, Hostility::kHugeLength,
                                        Hostility::kStallMidFrame, Hostility::kNeverAccepts};
  struct Pod {
    std::string sandbox, member, agent_socket;
    std::vector<std::pair<std::string, CommandResult>> results;
  };
  std::vector<Pod> pods;
  for (size_t i = 0; i < kinds.size(); ++i) {
    Pod pod{.sandbox = PodId(absl::StrCat("sandbox", i)), .member = PodId(absl::StrCat("c", i))};
    ASSERT_NO_FATAL_FAILURE(
        Start(PodBundle(pod.sandbox, "sandbox", pod.sandbox, {"sleep", "100000"}), pod.sandbox));
    ASSERT_NO_FATAL_FAILURE(
        Start(PodBundle(pod.member, "container", pod.sandbox, {"sleep", "100000"}), pod.member));
    ASSERT_OK_AND_ASSIGN(std::string record, ReadFile(root_ + "/" + pod.sandbox + "/sandbox.json"));
    pod.agent_socket =
        Json::parse(record).value("data", Json::object()).value("run_dir", "") + "/agent.sock";
    pods.push_back(std::move(pod));
  }
  {
    std::vector<std::unique_ptr<HostileAgent>> agents;
    for (size_t i = 0; i < kinds.size(); ++i) {
      agents.push_back(std::make_unique<HostileAgent>(pods[i].agent_socket, kinds[i]));
    }
    std::vector<std::thread> drivers;
    for (Pod& pod : pods) {
      drivers.emplace_back([this, &pod] {
        const std::string& c = pod.member;
        for (const std::vector<std::string>& verb :
             std::vector<std::vector<std::string>>{{"kill", c, "KILL"},
                                                   {"exec", c, "true"},
                                                   {"ps", c},
                                                   {"pause", c},
                                                   {"update", "--memory", "268435456", c},
                                                   {"events", "--stats", c},
                                                   {"delete", c},
                                                   {"delete", "--force", c}}) {
          pod.results.emplace_back(absl::StrJoin(verb, " "), Runvm(verb));
        }
      });
    }
    for (std::thread& t : drivers) t.join();
  }
  for (size_t i = 0; i < kinds.size(); ++i) {
    SCOPED_TRACE(HostilityName(kinds[i]));
    for (const auto& [verb, r] : pods[i].results) {
      SCOPED_TRACE(verb);
      // Each returned by itself (RunCommand kills it after 120 s: code -1).
      EXPECT_NE(r.code, -1) << "still waiting";
      if (absl::StartsWith(verb, "delete --force")) {
        // Goes on past the guest's silence, saying so.
        EXPECT_EQ(r.code, 0) << r.err;
      } else if (absl::StartsWith(verb, "delete")) {
        // A running container: refused without asking the guest.
        EXPECT_THAT(r.err, HasSubstr("not stopped")) << r.err;
      } else {
        EXPECT_NE(r.code, 0);
        EXPECT_THAT(r.err, HasSubstr("sandbox " + pods[i].sandbox)) << r.err;
      }
    }
    EXPECT_FALSE(std::filesystem::exists(root_ + "/" + pods[i].member));
  }
  EXPECT_THAT(ReadFile(log_).value_or(""), HasSubstr("going on"));
  for (const Pod& pod : pods) {
    CommandResult r = Runvm({"delete", "--force", pod.sandbox});
    EXPECT_EQ(r.code, 0) << r.err;
  }
  ExpectPodGone();
}

}  // namespace
}  // namespace runvm::e2e
