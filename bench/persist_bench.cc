// bench/run persist: what keeping state costs every invocation.
// - save + load of a sandbox record holding 64 devices (the whole codec: JSON, strict parsing,
//   atomic write with fsyncs), against the same bytes written atomically and read back bare;
// - re-attach to a running sandbox (lock, load, process identity, QMP connect, reconcile)
//   against the bare QMP connect + greeting + qmp_capabilities on the same socket.
// Save + load is measured on a tmpfs (where /run is on systemd hosts) and on this host's /run.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "bench/report.h"
#include "hypervisor/qmp/client.h"
#include "nlohmann/json.hpp"
#include "persist/store.h"
#include "runtime/sandbox/store.h"

namespace {

using namespace runvm;

double Ms(absl::Time t0) { return absl::ToDoubleMilliseconds(absl::Now() - t0); }

[[noreturn]] void Die(const absl::Status& st, const char* what) {
  std::fprintf(stderr, "persist_bench: %s: %s\n", what, std::string(st.message()).c_str());
  std::exit(1);
}
template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(v.status(), what);
  return *std::move(v);
}
void Must(const absl::Status& st, const char* what) {
  if (!st.ok()) Die(st, what);
}

SandboxRecord SixtyFourDevices() {
  SandboxRecord r{.id = "bench",
                  .created = "2026-11-22T00:00:00Z",
                  .status = kRunning,
                  .run_dir = "/run/runvm/.vm/0123456789abcdef"};
  qemu::RunningVm vm;
  vm.sandbox_id = "bench";
  vm.uuid = "8a4b4c2e-0000-4000-8000-000000000000";
  vm.run_dir = r.run_dir;
  vm.shared_dir = r.run_dir + "/shared";
  vm.qemu = {.pid = 4242, .start_time = 123456, .exe = "/usr/bin/qemu-system-x86_64"};
  vm.virtiofsd =
      ProcessIdentity{.pid = 4241, .start_time = 123455, .exe = "/usr/lib/qemu/virtiofsd"};
  vm.accelerator = "tcg";
  vm.max_memory_mib = 24576;
  vm.config.default_bridges = 3;
  for (int i = 0; i < 64; ++i) {
    vm.hotplug.devices.push_back({.id = absl::StrCat("blk", i),
                                  .kind = qemu::kKindVirtioBlk,
                                  .bus = absl::StrCat("pci-bridge-", i / 30),
                                  .slot = 1 + i % 30,
                                  .guest_address = absl::StrCat("0", 2 + i / 30, "/", i % 30 + 1),
                                  .source = absl::StrCat("/var/lib/volumes/v", i, ".img"),
                                  .size_bytes = int64_t{1} << 30,
                                  .node_name = absl::StrCat("drive-blk", i)});
  }
  vm.hotplug.next_index = 64;
  r.vm = std::move(vm);
  return r;
}

void SaveLoad(int runs, const std::string& base, const char* figure) {
  std::string dir = base + "/runvm-bench-" + std::to_string(::getpid());
  persist::Store store(dir);
  SandboxRecord record = SixtyFourDevices();
  std::vector<double> ours, floor;
  std::string bytes;
  for (int i = 0; i < runs; ++i) {
    absl::Time t0 = absl::Now();
    Must(store.Save("bench/sandbox.json", kSandboxFormat, kSandboxVersion, SandboxToJson(record)),
         "save");
    auto data = Must(store.Load("bench/sandbox.json", kSandboxFormat, kSandboxVersion), "load");
    auto back = Must(SandboxFromJson(data), "parse");
    ours.push_back(Ms(t0));
    if (back.vm->hotplug.devices.size() != 64) Die(absl::InternalError("lost devices"), "check");
    if (bytes.empty()) bytes = Must(ReadFile(dir + "/bench/sandbox.json"), "read");
    t0 = absl::Now();
    Must(WriteFileAtomic(dir + "/bench/raw.json", bytes, 0600), "raw write");
    Must(ReadFile(dir + "/bench/raw.json").status(), "raw read");
    floor.push_back(Ms(t0));
  }
  std::filesystem::remove_all(dir);
  std::printf("# record with 64 devices: %zu bytes\n", bytes.size());
  bench::Emit("persist", figure, bench::Median(ours), bench::Median(floor), runs);
}

void Reattach(int runs, const std::string& config_dir) {
  std::string root = "/run/runvm-bench-" + std::to_string(::getpid());
  SandboxStore store({.root = root});
  qemu::VmSpec spec;
  spec.config.kernel = config_dir + "/vmlinuz";
  spec.config.initrd = config_dir + "/initrd.img";
  spec.config.default_memory = 512;
  spec.config.block_device_driver = "virtio-blk";
  spec.sandbox_id = "bench";
  spec.accelerator = "tcg";
  spec.host_memory_mib = 4096;
  Must(store.Create(spec, /*wait_guest=*/false), "create");
  std::string socket;
  {
    auto sb = Must(store.Open("bench", "bench"), "open");
    socket = sb->record().vm->qmp_socket();
  }
  std::vector<double> ours, floor;
  for (int i = 0; i < runs; ++i) {
    absl::Time t0 = absl::Now();
    {
      auto sb = Must(store.Open("bench", "bench"), "re-attach");
      Must(sb->hotplug().status(), "hotplug");
      ours.push_back(Ms(t0));
    }
    t0 = absl::Now();
    {
      auto qmp = Must(qmp::Client::Connect(socket, absl::Now() + absl::Seconds(5)), "connect");
      floor.push_back(Ms(t0));
    }
  }
  Must(store.Delete("bench", /*force=*/true), "delete");
  std::filesystem::remove_all(root);
  bench::Emit("persist",
              "re-attach: lock + load + identity + QMP + reconcile (vs QMP connect + greeting + "
              "capabilities)",
              bench::Median(ours), bench::Median(floor), runs);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 200;
  // Production state lives on /run, a tmpfs on systemd hosts; /dev/shm is one everywhere. On
  // this machine /run is on the disk, so both are shown.
  SaveLoad(runs, "/dev/shm",
           "save + load, 64 devices, tmpfs (vs the same bytes written and read bare)");
  SaveLoad(runs, "/run",
           "save + load, 64 devices, this host's /run (vs the same bytes written and read bare)");
  Reattach(runs, RUNVM_GUEST_DIR);
  return 0;
}
