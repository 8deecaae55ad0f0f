// State that survives crashes, with the real binary, real QEMU and a real guest:
// - the crash matrix: the runtime SIGKILLs itself at every failpoint, the next invocation runs,
//   and the record must match QEMU with no orphan object or process, and the next plug must get a
//   fresh id and the right slot;
// - concurrency on one sandbox and independence of two;
// - records that are truncated, empty, from another version, or point at someone else's pid;
// - a full disk while saving.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/file.h"
#include "base/process.h"
#include "base/process_identity.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hypervisor/qemu/vm.h"
#include "hypervisor/qmp/client.h"
#include "nlohmann/json.hpp"
#include "persist/lock.h"
#include "tests/testing/bundle.h"
#include "tests/testing/command.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm {
namespace {

using ::runvm::testing::CommandResult;
using ::runvm::testing::IsOk;
using ::runvm::testing::TempDir;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr int kKilled = 128 + SIGKILL;
const std::regex kHotplugId("(sd|blk|nv|vublk|net|vfio|cpu|dimm|virtiomem)([0-9]+)");
const std::regex kHotplugBackend(
    "(drive|mem|char)-(sd|blk|nv|vublk|net|vfio|dimm|virtiomem)[0-9]+");

std::string GuestFile(const std::string& name) { return std::string(RUNVM_GUEST_DIR) + "/" + name; }

pid_t ParentOf(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return 0;
  size_t close = stat->rfind(')');
  return close == std::string::npos ? 0 : std::atoi(stat->c_str() + close + 4);
}

int64_t IdIndex(const std::string& id) {
  std::smatch m;
  return std::regex_match(id, m, kHotplugId) ? std::stoll(m[2]) : -1;
}

// The crash matrix, as tables: each test below runs its table and asserts that every entry's
// failpoint killed the runtime; the last test checks that the tables name every failpoint.
// (ctest runs each test in its own process, so coverage is declared here, not accumulated.)
const std::vector<std::string> kBootFailpoints = {
    "sandbox.create.after-intent", "vm.start.after-run-dir",   "vm.start.after-virtiofsd-spawn",
    "vm.start.after-qemu-spawn",   "vm.start.after-qmp-ready", "vm.start.after-cont",
    "sandbox.create.after-boot"};
const std::vector<std::string> kStopFailpoints = {"sandbox.stop.after-intent", "vm.stop.after-quit",
                                                  "vm.stop.before-remove"};
const std::vector<std::string> kDeleteFailpoints = {"sandbox.delete.after-intent",
                                                    "sandbox.delete.after-stop"};
const std::vector<std::string> kContainerCreateFailpoints = {
    "container.create.after-record", "container.create.after-boot", "container.create.before-shim"};
const std::vector<std::string> kNetworkFailpoints = {
    "network.connect.before-nic", "network.connect.before-filter", "network.connect.before-guest"};
const std::vector<std::string> kResizeFailpoints = {"hotplug.resize.after-intent",
                                                    "hotplug.resize.after-qom-set"};
enum class Action { kDisk, kNic, kMemory, kCpu, kUnplugDisk, kUnplugNic };
const std::vector<std::pair<std::string, Action>> kHotplugMatrix = {
    {"hotplug.plug.after-intent", Action::kDisk},
    {"hotplug.plug.after-backend", Action::kDisk},
    {"hotplug.plug.after-device-add", Action::kDisk},
    {"hotplug.plug.after-getfd", Action::kNic},
    {"hotplug.plug.after-backend", Action::kNic},
    {"hotplug.plug.after-device-add", Action::kNic},
    {"hotplug.plug.after-backend", Action::kMemory},
    {"hotplug.plug.after-device-add", Action::kMemory},
    {"hotplug.plug.after-device-add", Action::kCpu},
    {"hotplug.unplug.after-intent", Action::kUnplugDisk},
    {"hotplug.unplug.after-device-del", Action::kUnplugDisk},
    {"hotplug.unplug.after-device-gone", Action::kUnplugDisk},
    {"hotplug.unplug.after-backend-del", Action::kUnplugDisk},
    {"hotplug.unplug.after-device-del", Action::kUnplugNic},
    {"hotplug.unplug.after-backend-del", Action::kUnplugNic},
};

class PersistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(GuestFile("vmlinuz").c_str(), R_OK), 0)
        << "the guest is missing: run scripts/setup.sh (guest/build.sh)";
    root_ = dir_.path() + "/root";
  }
  void TearDown() override {
    for (const std::string& id : ids_) Runvm({"sandbox", "delete", "--force", id});
    if (!netns_.empty()) std::system(("ip netns delete " + netns_ + " 2>/dev/null").c_str());
  }

  std::string Config(const std::string& extra = "") {
    return dir_.Write("c" + std::to_string(configs_++) + ".toml",
                      absl::StrCat("[hypervisor.qemu]\nkernel = \"", GuestFile("vmlinuz"),
                                   "\"\ninitrd = \"", GuestFile("initrd.img"),
                                   "\"\naccelerator = \"tcg\"\ndefault_memory = 512\n"
                                   "block_device_driver = \"virtio-blk\"\n",
                                   extra));
  }

  CommandResult Runvm(std::vector<std::string> args, const std::string& failpoint = "",
                      std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {RUNVM_BINARY, "--root", root_, "--config", config_};
    argv.insert(argv.end(), args.begin(), args.end());
    if (!failpoint.empty()) env.push_back("RUNVM_FAILPOINT=" + failpoint);
    return ::runvm::testing::RunCommand(argv, env);
  }

  // A new sandbox; `wait` also waits for its guest (needed for unplugs, which the guest acks).
  std::string Create(bool wait, const std::string& extra_config = "") {
    config_ = Config(extra_config);
    std::string id = absl::StrCat("pt", ::getpid(), "-", ids_.size());
    std::vector<std::string> args = {"sandbox", "create", id};
    if (!wait) args.push_back("--no-wait");
    CommandResult r = Runvm(args);
    EXPECT_EQ(r.code, 0) << r.err;
    ids_.push_back(id);
    return id;
  }

  Json State(const std::string& id) {
    CommandResult r = Runvm({"sandbox", "state", id});
    EXPECT_EQ(r.code, 0) << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    return j.is_discarded() ? Json::object() : j;
  }

  std::string RecordPath(const std::string& id) { return root_ + "/" + id + "/sandbox.json"; }
  Json RawRecord(const std::string& id) {
    absl::StatusOr<std::string> text = ReadFile(RecordPath(id));
    return text.ok() ? Json::parse(*text, nullptr, false) : Json();
  }

  std::string NewDisk() {
    std::string path = dir_.Write(absl::StrCat("disk", disks_++, ".img"), "");
    EXPECT_EQ(::truncate(path.c_str(), 16 << 20), 0);
    return path;
  }

  Json Qmp(const std::string& run_dir, const std::string& command, Json args = nullptr) {
    auto qmp = qmp::Client::Connect(run_dir + "/qmp.sock", absl::Now() + absl::Seconds(10));
    EXPECT_THAT(qmp, IsOk());
    if (!qmp.ok()) return Json::array();
    auto r = (*qmp)->Execute(command, args, absl::Now() + absl::Seconds(10));
    EXPECT_THAT(r, IsOk()) << command;
    return r.ok() ? *r : Json::array();
  }

  // The record matches QEMU, nothing is orphaned, and only the sandbox's own helpers run.
  void ExpectConverged(const std::string& id, const std::string& context) {
    SCOPED_TRACE(context);
    Json state = State(id);
    ASSERT_EQ(state.value("status", ""), "running") << state.dump(2);
    const Json& vm = state["record"]["vm"];
    EXPECT_TRUE(vm["hotplug"]["intent"].is_null()) << "the intent is settled";
    EXPECT_EQ(state["record"]["intent"], "");
    std::set<std::string> recorded, owned;
    for (const Json& d : vm["hotplug"]["devices"]) {
      recorded.insert(d["id"].get<std::string>());
      for (const char* f : {"node_name", "object", "chardev"}) {
        if (!d[f].get<std::string>().empty()) owned.insert(d[f].get<std::string>());
      }
      EXPECT_TRUE(d["fd_names"].empty()) << d.dump();
      ids_seen_.insert(d["id"].get<std::string>());
    }
    const std::string run_dir = vm["run_dir"];
    std::set<std::string> in_qemu;
    for (const Json& c : Qmp(run_dir, "qom-list", {{"path", "/machine/peripheral"}})) {
      std::string name = c["name"];
      if (std::regex_match(name, kHotplugId)) in_qemu.insert(name);
    }
    EXPECT_EQ(recorded, in_qemu) << "record vs QEMU";
    std::vector<std::string> orphans;
    auto check = [&](const Json& list, const char* field) {
      for (const Json& e : list) {
        std::string name = e.value(field, "");
        if (std::regex_match(name, kHotplugBackend) && owned.count(name) == 0) {
          orphans.push_back(name);
        }
      }
    };
    check(Qmp(run_dir, "query-named-block-nodes", {{"flat", true}}), "node-name");
    check(Qmp(run_dir, "qom-list", {{"path", "/objects"}}), "name");
    check(Qmp(run_dir, "query-chardev"), "label");
    EXPECT_THAT(orphans, ::testing::IsEmpty());
    std::set<pid_t> expected = {vm["qemu"]["pid"].get<pid_t>()};
    if (vm.contains("virtiofsd")) expected.insert(vm["virtiofsd"]["pid"].get<pid_t>());
    std::set<pid_t> helpers;
    for (const ProcessIdentity& p : FindProcessesWithEnv(qemu::HelperMarker(run_dir))) {
      // virtiofsd runs its sandboxed worker as a child of the recorded process.
      if (expected.count(ParentOf(p.pid)) == 0) helpers.insert(p.pid);
    }
    for (pid_t p : expected) helpers.insert(p);
    EXPECT_EQ(helpers, expected) << "only the recorded helpers (and their children) run";
  }

  // The next plug gets an id never used before and the lowest free bridge slot; it is then
  // unplugged again.
  void ExpectFreshPlug(const std::string& id) {
    Json vm = State(id)["record"]["vm"];
    std::set<int> used;
    for (const Json& d : vm["hotplug"]["devices"]) {
      if (d["bus"] == "pci-bridge-0") used.insert(d["slot"].get<int>());
    }
    int free_slot = 1;
    while (used.count(free_slot) != 0) ++free_slot;
    CommandResult r = Runvm({"sandbox", "plug", "disk", id, NewDisk()});
    ASSERT_EQ(r.code, 0) << r.err;
    Json d = Json::parse(r.out)[0];
    const std::string new_id = d["id"];
    for (const std::string& seen : ids_seen_) {
      EXPECT_GT(IdIndex(new_id), IdIndex(seen)) << new_id << " after " << seen;
    }
    EXPECT_EQ(d["slot"], free_slot);
    ids_seen_.insert(new_id);
    r = Runvm({"sandbox", "unplug", id, new_id});
    EXPECT_EQ(r.code, 0) << r.err;
  }

  // Notes the id the crashed invocation had intended, straight from the record on disk.
  void NoteIntent(const std::string& id) {
    Json rec = RawRecord(id);
    const Json& intent = rec["data"]["vm"]["hotplug"]["intent"];
    if (intent.is_object()) ids_seen_.insert(intent["device"]["id"].get<std::string>());
  }

  std::string Netns() {
    if (netns_.empty()) {
      netns_ = absl::StrCat("rvpt", ::getpid());
      EXPECT_EQ(std::system(("ip netns add " + netns_).c_str()), 0);
    }
    return "/run/netns/" + netns_;
  }

  std::vector<std::string> NicArgs(const std::string& id) {
    const int n = nics_++;
    return {"sandbox", "plug",
            "nic",     id,
            "--tap",   absl::StrCat("rvpt", ::getpid() % 10000, "n", n),
            "--netns", Netns(),
            "--mac",   absl::StrCat("02:00:00:00:00:", 10 + n)};
  }

  TempDir dir_;
  std::string root_;
  std::string config_;
  std::string netns_;
  std::vector<std::string> ids_;
  std::set<std::string> ids_seen_;
  int configs_ = 0, disks_ = 0, nics_ = 0;
};

// ---- the crash matrix ----

TEST_F(PersistTest, CrashDuringBootIsRolledBackAndDeleteCleansUp) {
  config_ = Config();
  int n = 0;
  for (const std::string& fp : kBootFailpoints) {
    SCOPED_TRACE(fp);
    const std::string id = absl::StrCat("boot", ::getpid(), "-", n++);
    ids_.push_back(id);
    CommandResult r = Runvm({"sandbox", "create", "--no-wait", id}, fp);
    ASSERT_EQ(r.code, kKilled) << r.err;
    const std::string run_dir = RawRecord(id)["data"]["run_dir"];
    Json state = State(id);
    EXPECT_EQ(state["status"], "stopped");
    EXPECT_THAT(state.value("detail", ""), HasSubstr("the boot was interrupted and rolled back"));
    EXPECT_TRUE(FindProcessesWithEnv(qemu::HelperMarker(run_dir)).empty());
    EXPECT_FALSE(std::filesystem::exists(run_dir));
    r = Runvm({"sandbox", "delete", id});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
  }
  // The id is free again: a new sandbox of that name boots.
  const std::string again = Create(/*wait=*/false);
  EXPECT_EQ(State(again)["status"], "running");
}

TEST_F(PersistTest, CrashDuringContainerCreateIsReportedStoppedAndDeleteCleansUp) {
  config_ = Config();
  testing::Bundle bundle = testing::MakeBusyboxBundle(dir_.path() + "/bundle");
  bundle.spec.process.args = {"true"};
  bundle.Save();
  int n = 0;
  for (const std::string& fp : kContainerCreateFailpoints) {
    SCOPED_TRACE(fp);
    const std::string id = absl::StrCat("cc", ::getpid(), "-", n++);
    ids_.push_back(id);
    CommandResult r = Runvm({"create", "--bundle", bundle.path, id}, fp);
    ASSERT_EQ(r.code, kKilled) << r.err;
    r = Runvm({"state", id});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(Json::parse(r.out, nullptr, false).value("status", ""), "stopped") << r.out;
    r = Runvm({"delete", id});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
    const std::string run_dir = qemu::RunDirFor(root_ + "/.vm", id);
    EXPECT_TRUE(FindProcessesWithEnv(qemu::HelperMarker(run_dir)).empty());
    EXPECT_FALSE(std::filesystem::exists(run_dir));
    ASSERT_OK_AND_ASSIGN(std::string mounts, ReadFile("/proc/self/mounts"));
    EXPECT_THAT(mounts, ::testing::Not(HasSubstr(root_)));
  }
}

TEST_F(PersistTest, ACreateThatFindsAStaleRunDirectoryLeavesItAndItsProcessesAlone) {
  // A run directory the create did not make (here: a sandbox of this id whose end was never
  // seen, with a process still carrying its marker) is refused and never cleaned up by it.
  config_ = Config();
  const std::string id = absl::StrCat("pt", ::getpid(), "-stale");
  const std::string run_dir = qemu::RunDirFor(root_ + "/.vm", id);
  ASSERT_TRUE(std::filesystem::create_directories(run_dir));
  ASSERT_THAT(WriteFileAtomic(run_dir + "/keep", "not yours\n"), IsOk());
  ASSERT_OK_AND_ASSIGN(Child holder,
                       Spawn({.argv = {"/bin/sleep", "600"},
                              .env = std::vector<std::string>{qemu::HelperMarker(run_dir)}}));
  CommandResult r = Runvm({"sandbox", "create", id});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("its run directory " + run_dir + " already exists")) << r.err;
  EXPECT_EQ(ReadFile(run_dir + "/keep").value_or(""), "not yours\n");
  EXPECT_EQ(::kill(holder.pid(), 0), 0) << "the other sandbox's process was ended";
  EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
  std::filesystem::remove_all(run_dir);
}

TEST_F(PersistTest, CrashDuringStopOrDeleteIsCarriedThrough) {
  for (const std::string& fp : kStopFailpoints) {
    SCOPED_TRACE(fp);
    const std::string id = Create(/*wait=*/false);
    const std::string run_dir = State(id)["record"]["run_dir"];
    ASSERT_EQ(Runvm({"sandbox", "stop", id}, fp).code, kKilled);
    Json state = State(id);
    EXPECT_EQ(state["status"], "stopped");
    EXPECT_TRUE(FindProcessesWithEnv(qemu::HelperMarker(run_dir)).empty());
    EXPECT_FALSE(std::filesystem::exists(run_dir));
  }
  for (const std::string& fp : kDeleteFailpoints) {
    SCOPED_TRACE(fp);
    const std::string id = Create(/*wait=*/false);
    const std::string run_dir = State(id)["record"]["run_dir"];
    ASSERT_EQ(Runvm({"sandbox", "delete", "--force", id}, fp).code, kKilled);
    CommandResult r = Runvm({"sandbox", "state", id});
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr("does not exist (its interrupted delete was finished)"));
    EXPECT_TRUE(FindProcessesWithEnv(qemu::HelperMarker(run_dir)).empty());
    EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
  }
}

TEST_F(PersistTest, CrashAtEveryHotplugStepConverges) {
  const std::string id = Create(/*wait=*/true);
  auto disk = [&] { return std::vector<std::string>{"sandbox", "plug", "disk", id, NewDisk()}; };
  auto memory = [&] { return std::vector<std::string>{"sandbox", "plug", "memory", id, "128"}; };
  // An unplug needs a device: plug one first, without a failpoint.
  auto plugged_disk = [&] {
    CommandResult r = Runvm(disk());
    EXPECT_EQ(r.code, 0) << r.err;
    std::string dev = Json::parse(r.out)[0]["id"];
    return std::vector<std::string>{"sandbox", "unplug", id, dev};
  };
  auto plugged_nic = [&] {
    CommandResult r = Runvm(NicArgs(id));
    EXPECT_EQ(r.code, 0) << r.err;
    std::string dev = Json::parse(r.out)[0]["id"];
    return std::vector<std::string>{"sandbox", "unplug", id, dev};
  };
  auto args_for = [&](Action a) -> std::vector<std::string> {
    switch (a) {
      case Action::kDisk:
        return disk();
      case Action::kNic:
        return NicArgs(id);
      case Action::kMemory:
        return memory();
      case Action::kCpu:
        return {"sandbox", "plug", "cpus", id, "1"};
      case Action::kUnplugDisk:
        return plugged_disk();
      case Action::kUnplugNic:
        return plugged_nic();
    }
    return {};
  };
  int step = 0;
  for (const auto& [fp, action] : kHotplugMatrix) {
    const std::string context = absl::StrCat("#", step++, " ", fp);
    SCOPED_TRACE(context);
    std::vector<std::string> args = args_for(action);
    CommandResult r = Runvm(args, fp);
    ASSERT_EQ(r.code, kKilled) << absl::StrJoin(args, " ") << ": " << r.err;
    NoteIntent(id);
    ExpectConverged(id, context);
    ExpectFreshPlug(id);
  }
  // Every tap the rolled-back or unplugged NICs had is gone with QEMU's fds.
  Json vm = State(id)["record"]["vm"];
  int nics_recorded = 0;
  for (const Json& d : vm["hotplug"]["devices"]) nics_recorded += d["kind"] == "virtio-net";
  CommandResult taps = ::runvm::testing::RunCommand(
      {"/usr/sbin/ip", "netns", "exec", netns_, "ip", "-o", "link", "show", "type", "tun"});
  EXPECT_EQ(std::count(taps.out.begin(), taps.out.end(), '\n'), nics_recorded) << taps.out;
}

// Killed at each step of carrying a pod's network namespace into the VM: the record already
// names the endpoint and its tap, and delete --force leaves no tap, no filter and no QEMU.
TEST_F(PersistTest, CrashWhileConnectingThePodNetworkConverges) {
  netns_ = absl::StrCat("runvm-crash", ::getpid());
  const std::string ns = "/run/netns/" + netns_;
  ASSERT_EQ(std::system(absl::StrCat("ip netns add ", netns_, " && ip -n ", netns_,
                                     " link add eth0 type veth peer name peer0 && ip -n ", netns_,
                                     " link set eth0 up && ip -n ", netns_,
                                     " link set peer0 up && ip -n ", netns_,
                                     " addr add 10.215.0.2/24 dev eth0")
                            .c_str()),
            0);
  auto left_in_namespace = [&] {
    return ::runvm::testing::RunCommand(
               {"/bin/sh", "-c",
                absl::StrCat("ip -n ", netns_,
                             " -o link show | grep -o 'tap[0-9]*_runvm'; ip netns"
                             " exec ",
                             netns_, " tc qdisc show dev eth0 ingress")})
        .out;
  };
  config_ = Config();
  int n = 0;
  for (const std::string& fp : kNetworkFailpoints) {
    SCOPED_TRACE(fp);
    const std::string id = absl::StrCat("net", ::getpid(), "-", n++);
    ids_.push_back(id);
    CommandResult r = Runvm({"sandbox", "create", "--netns", ns, id}, fp);
    ASSERT_EQ(r.code, kKilled) << r.err;
    Json record = RawRecord(id)["data"];
    EXPECT_EQ(record["network"]["endpoints"][0]["tap"], "tap0_runvm");
    const std::string run_dir = record["run_dir"];
    r = Runvm({"sandbox", "delete", "--force", id});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(left_in_namespace(), "");
    EXPECT_TRUE(FindProcessesWithEnv(qemu::HelperMarker(run_dir)).empty());
    EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
  }
  // Uninterrupted, the same namespace is carried in, and a delete again leaves nothing.
  const std::string id = absl::StrCat("net", ::getpid(), "-", n++);
  ids_.push_back(id);
  CommandResult r = Runvm({"sandbox", "create", "--netns", ns, id});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(left_in_namespace(), HasSubstr("tap0_runvm"));
  EXPECT_THAT(left_in_namespace(), HasSubstr("ingress"));
  EXPECT_EQ(Runvm({"sandbox", "delete", "--force", id}).code, 0);
  EXPECT_EQ(left_in_namespace(), "");
}

TEST_F(PersistTest, CrashDuringAResizeConverges) {
  const std::string id = Create(/*wait=*/false, "enable_virtio_mem = true\n");
  ASSERT_EQ(Runvm({"sandbox", "plug", "memory", id, "128"}).code, 0);  // plugs virtio-mem
  for (const std::string& fp : kResizeFailpoints) {
    SCOPED_TRACE(fp);
    ASSERT_EQ(Runvm({"sandbox", "plug", "memory", id, "128"}, fp).code, kKilled);
    Json vm = State(id)["record"]["vm"];
    EXPECT_TRUE(vm["hotplug"]["intent"].is_null());
    int64_t recorded = vm["hotplug"]["devices"][0]["size_bytes"];
    Json devices = Qmp(vm["run_dir"], "query-memory-devices");
    ASSERT_EQ(devices.size(), 1u);
    EXPECT_EQ(devices[0]["data"]["requested-size"], recorded) << "record vs QEMU";
  }
}

// ---- concurrency ----

TEST_F(PersistTest, ParallelPlugsIntoOneSandboxSerialize) {
  const std::string id = Create(/*wait=*/false);
  std::vector<std::string> disks;
  for (int i = 0; i < 8; ++i) disks.push_back(NewDisk());
  std::vector<CommandResult> results(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { results[i] = Runvm({"sandbox", "plug", "disk", id, disks[i]}); });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> ids;
  std::set<int> slots;
  for (const CommandResult& r : results) {
    ASSERT_EQ(r.code, 0) << r.err;
    Json d = Json::parse(r.out)[0];
    ids.insert(d["id"].get<std::string>());
    slots.insert(d["slot"].get<int>());
  }
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_EQ(slots.size(), 8u) << "distinct slots";
  Json vm = State(id)["record"]["vm"];
  std::set<std::string> recorded;
  for (const Json& d : vm["hotplug"]["devices"]) recorded.insert(d["id"].get<std::string>());
  EXPECT_EQ(recorded, ids);
  ExpectConverged(id, "after 8 parallel plugs");
}

TEST_F(PersistTest, ABusySandboxNamesItsHolderAndDoesNotHoldUpAnother) {
  const std::string a = Create(/*wait=*/false);
  const std::string b = Create(/*wait=*/false);
  // Another runvm working on a, as far as the lock can tell.
  ASSERT_OK_AND_ASSIGN(persist::Lock held,
                       persist::Lock::Acquire(root_ + "/" + a + "/lock", persist::Lock::kExclusive,
                                              absl::Seconds(1), "sandbox " + a, "hotplug"));
  CommandResult on_a =
      Runvm({"sandbox", "plug", "disk", a, NewDisk()}, "", {"RUNVM_LOCK_WAIT=300ms"});
  EXPECT_EQ(on_a.code, 1);
  EXPECT_THAT(on_a.err, HasSubstr(absl::StrCat("sandbox ", a, " is busy: hotplug by pid ",
                                               ::getpid(), " since ")));
  // b goes ahead at once, whatever the wait would be.
  CommandResult on_b =
      Runvm({"sandbox", "plug", "disk", b, NewDisk()}, "", {"RUNVM_LOCK_WAIT=300ms"});
  EXPECT_EQ(on_b.code, 0) << on_b.err;
  CommandResult list = Runvm({"sandbox", "list"});
  EXPECT_THAT(list.out, HasSubstr(a + " ")) << "list never waits";
  EXPECT_THAT(list.out, HasSubstr("busy"));
}

// ---- records that cannot be trusted ----

TEST_F(PersistTest, UnreadableRecordsAreMovedAsideAndReported) {
  config_ = Config();
  const std::string good = Create(/*wait=*/false);
  const std::string good_text = *ReadFile(RecordPath(good));
  struct Case {
    std::string name;
    std::string text;
  };
  for (const Case& c :
       {Case{"truncated", good_text.substr(0, good_text.size() / 2)}, Case{"empty", ""}}) {
    SCOPED_TRACE(c.name);
    const std::string id = absl::StrCat(c.name, ::getpid());
    ids_.push_back(id);
    dir_.Write("root/" + id + "/sandbox.json", c.text);
    CommandResult r = Runvm({"sandbox", "state", id});
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr("is unreadable ("));
    EXPECT_THAT(r.err, HasSubstr("moved aside to " + RecordPath(id) + ".corrupt-"));
    // Reported again, by state and by list, until deleted: never silently dropped.
    r = Runvm({"sandbox", "state", id});
    EXPECT_THAT(r.err,
                HasSubstr("its record was unreadable and is " + RecordPath(id) + ".corrupt-"));
    r = Runvm({"sandbox", "list"});
    EXPECT_THAT(r.out, ::testing::ContainsRegex(id + " +unreadable"));
    r = Runvm({"sandbox", "delete", "--force", id});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
  }
  EXPECT_EQ(State(good)["status"], "running") << "the good sandbox is untouched";
}

TEST_F(PersistTest, RecordsOfOtherVersionsAreRefusedAndKept) {
  config_ = Config();
  const std::string good = Create(/*wait=*/false);
  Json record = Json::parse(*ReadFile(RecordPath(good)));
  for (auto [version, expect] :
       {std::pair<int, const char*>{9,
                                    "has version 9, but this runvm reads versions up to 1: it "
                                    "was written by a newer runvm; left as it is"},
        {0, "has version 0 and no migration to 1 exists"}}) {
    SCOPED_TRACE(version);
    const std::string id = absl::StrCat("v", version, "-", ::getpid());
    ids_.push_back(id);
    Json other = record;
    other["version"] = version;
    other["data"]["id"] = id;
    other["data"]["vm"] = nullptr;
    other["data"]["status"] = "stopped";
    dir_.Write("root/" + id + "/sandbox.json", other.dump(2));
    CommandResult r = Runvm({"sandbox", "state", id});
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr(expect));
    EXPECT_TRUE(std::filesystem::exists(RecordPath(id))) << "left in place";
    r = Runvm({"sandbox", "list"});
    EXPECT_THAT(r.out, ::testing::ContainsRegex(id + " +unreadable"));
  }
}

TEST_F(PersistTest, ALeftoverTemporaryFileIsIgnoredAndRemovedWithTheSandbox) {
  const std::string id = Create(/*wait=*/false);
  dir_.Write("root/" + id + "/sandbox.json.tmp.12345", "{\"format\": \"runvm.sand");
  EXPECT_EQ(State(id)["status"], "running");
  CommandResult list = Runvm({"sandbox", "list", "--format", "json"});
  EXPECT_EQ(Json::parse(list.out).size(), 1u) << list.out;
  EXPECT_EQ(Runvm({"sandbox", "delete", "--force", id}).code, 0);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
}

TEST_F(PersistTest, ARecordWhosePidIsNowSomeoneElsesIsLostAndNeverSignalled) {
  config_ = Config();
  const std::string good = Create(/*wait=*/false);
  Json record = Json::parse(*ReadFile(RecordPath(good)));
  ASSERT_OK_AND_ASSIGN(Child sleeper, Spawn({.argv = {"/bin/sleep", "60"}}));
  const std::string id = absl::StrCat("lost", ::getpid());
  ids_.push_back(id);
  Json& vm = record["data"]["vm"];
  record["data"]["id"] = id;
  vm["sandbox_id"] = id;
  vm["run_dir"] = dir_.path() + "/gone";
  vm.erase("virtiofsd");
  vm.erase("watcher");
  vm["qemu"]["pid"] = sleeper.pid();  // QEMU's exe and start time, sleep's pid
  dir_.Write("root/" + id + "/sandbox.json", record.dump(2));

  Json state = State(id);
  EXPECT_EQ(state["status"], "lost");
  EXPECT_THAT(state.value("detail", ""), HasSubstr("now belongs to /usr/bin/sleep"));
  CommandResult r = Runvm({"sandbox", "plug", "disk", id, NewDisk()});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("is not running: it is lost"));
  r = Runvm({"sandbox", "delete", id});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
  EXPECT_THAT(sleeper.Wait(absl::Now()), ::testing::Not(IsOk())) << "sleep was never signalled";
}

TEST_F(PersistTest, QemuThatDiedWhileNoRuntimeRanIsStoppedAndDeleteCleansUp) {
  const std::string id = Create(/*wait=*/false);
  Json vm = State(id)["record"]["vm"];
  const std::string run_dir = vm["run_dir"];
  ASSERT_EQ(::kill(vm["qemu"]["pid"].get<pid_t>(), SIGKILL), 0);
  // The watcher takes virtiofsd down with QEMU; wait for QEMU to have exited (not our child:
  // init reaps it, whenever it gets to it).
  for (int i = 0; i < 500 && ReadProcessIdentity(vm["qemu"]["pid"].get<pid_t>()).ok(); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  Json state = State(id);
  EXPECT_EQ(state["status"], "stopped");
  EXPECT_THAT(state.value("detail", ""), HasSubstr("exited while no runvm was running"));
  CommandResult r = Runvm({"sandbox", "delete", id});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(FindProcessesWithEnv(qemu::HelperMarker(run_dir)).empty());
  EXPECT_FALSE(std::filesystem::exists(run_dir));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
}

// ---- a full disk ----

TEST_F(PersistTest, AFullDiskFailsTheOperationAndKeepsTheRecord) {
  std::filesystem::create_directories(root_);
  if (::mount("tmpfs", root_.c_str(), "tmpfs", 0, "size=2m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{root_};
  const std::string id = Create(/*wait=*/false);
  ids_.clear();  // deleted below, before the tmpfs goes
  const std::string before = *ReadFile(RecordPath(id));
  // Fill what is left.
  std::string filler = root_ + "/filler";
  {
    std::ofstream out(filler, std::ios::binary);
    std::string block(4096, 'x');
    while (out.write(block.data(), block.size())) {
    }
  }
  CommandResult r = Runvm({"sandbox", "plug", "disk", id, NewDisk()});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("No space left on device"));
  EXPECT_EQ(*ReadFile(RecordPath(id)), before) << "the previous record is intact";
  EXPECT_FALSE(Json::parse(before, nullptr, false).is_discarded());
  ASSERT_EQ(std::filesystem::remove(filler), true);
  // QEMU was never touched: the record still matches it, and a plug now works.
  ExpectConverged(id, "after ENOSPC");
  r = Runvm({"sandbox", "plug", "disk", id, NewDisk()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Runvm({"sandbox", "delete", "--force", id}).code, 0);
}

TEST(CrashMatrix, CoversEveryFailpoint) {
  std::set<std::string> covered;
  for (const auto* table : {&kBootFailpoints, &kStopFailpoints, &kDeleteFailpoints,
                            &kResizeFailpoints, &kContainerCreateFailpoints, &kNetworkFailpoints}) {
    covered.insert(table->begin(), table->end());
  }
  for (const auto& [fp, action] : kHotplugMatrix) covered.insert(fp);
  std::vector<std::string> missing, unknown;
  std::set<std::string> all(AllFailpoints().begin(), AllFailpoints().end());
  for (const std::string& fp : all) {
    if (covered.count(fp) == 0) missing.push_back(fp);
  }
  for (const std::string& fp : covered) {
    if (all.count(fp) == 0) unknown.push_back(fp);
  }
  std::cout << "crash matrix: covers " << covered.size() - unknown.size() << " of " << all.size()
            << " failpoints\n";
  EXPECT_THAT(missing, ::testing::IsEmpty()) << "failpoints the crash matrix does not reach";
  EXPECT_THAT(unknown, ::testing::IsEmpty()) << "matrix entries that are no failpoint";
}

}  // namespace
}  // namespace runvm
