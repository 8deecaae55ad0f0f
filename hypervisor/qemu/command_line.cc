#include "hypervisor/qemu/command_line.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status.h"
#include "hypervisor/qemu/options.h"

namespace runvm::qemu {
namespace {
bool BootsImage(const config::QemuConfig& c) { return !c.image.empty(); }
}  // namespace

bool ImageOnNvdimm(const config::QemuConfig& c) { return BootsImage(c) && !c.disable_image_nvdimm; }
bool SharesMemory(const config::QemuConfig& c) {
  return c.shared_fs == "virtio-fs" || !c.file_mem_backend.empty() || c.enable_hugepages;
}
std::string MemoryPath(const config::QemuConfig& c) {
  return c.enable_hugepages            ? "/dev/hugepages"
         : !c.file_mem_backend.empty() ? c.file_mem_backend
                                       : "/dev/shm";
}
int64_t MaxMemoryMib(const config::QemuConfig& c, int64_t host_memory_mib) {
  return host_memory_mib + kNvdimmReserveMib + c.memory_offset;
}

namespace {

class Argv {
 public:
  void Flag(absl::string_view f) { argv_.emplace_back(f); }
  void Arg(absl::string_view f, absl::string_view v) {
    argv_.emplace_back(f);
    argv_.emplace_back(v);
  }
  // Renders `o`; the first error is kept and reported by Take().
  void Opt(absl::string_view flag, const Options& o) {
    absl::StatusOr<std::string> r = o.Render();
    if (!r.ok()) {
      if (status_.ok()) status_ = Annotate(r.status(), absl::StrCat("QEMU option ", flag));
      return;
    }
    Arg(flag, *r);
  }
  absl::StatusOr<std::vector<std::string>> Take() {
    if (!status_.ok()) return status_;
    return std::move(argv_);
  }

 private:
  std::vector<std::string> argv_;
  absl::Status status_;
};

}  // namespace

std::string KernelCommandLine(const config::QemuConfig& c) {
  std::vector<std::string> p = {"tsc=reliable", "no_timer_check", "rcupdate.rcu_expedited=1",
                                "i8042.direct=1", "i8042.dumbkbd=1", "i8042.nopnp=1",
                                "i8042.noaux=1", "noreplace-smp", "reboot=k", "panic=1",
                                "console=ttyS0", absl::StrCat("nr_cpus=", c.default_maxvcpus),
                                // maxmem puts possible RAM above 4 GiB, so the kernel sets up its
                                // default 64 MiB swiotlb bounce buffer: 0.3 s of boot under TCG.
                                // virtio devices do not bounce; keep 2 MiB for a device that does.
                                "swiotlb=1024"};
  p.push_back(c.enable_debug ? "debug" : "quiet");
  if (BootsImage(c)) {
    p.push_back(ImageOnNvdimm(c) ? "root=/dev/pmem0" : "root=/dev/vda");
    p.push_back("rootfstype=ext4");
    p.push_back("rootflags=data=ordered,errors=remount-ro");
    p.push_back("ro");
  }
  if (c.shared_fs == "virtio-fs") p.push_back(absl::StrCat("runvm.share=virtiofs:", kShareTag));
  if (c.shared_fs == "virtio-9p") p.push_back(absl::StrCat("runvm.share=9p:", kShareTag));
  p.push_back(absl::StrCat("runvm.agent_port=", kAgentPortName));
  if (!c.kernel_params.empty()) p.push_back(c.kernel_params);
  return absl::StrJoin(p, " ");
}

absl::StatusOr<std::vector<std::string>> BuildCommandLine(const config::QemuConfig& c,
                                                          const CommandLineInputs& in) {
  if (c.machine_type != "q35" && c.machine_type != "pc") {
    return absl::InvalidArgumentError(
        absl::StrCat("machine_type \"", c.machine_type, "\" is not supported; use q35 or pc"));
  }
  if (in.accelerator != "kvm" && in.accelerator != "tcg") {
    return absl::InvalidArgumentError(
        absl::StrCat("accelerator \"", in.accelerator, "\" must be resolved to kvm or tcg"));
  }
  if (in.sandbox_id.empty() || in.uuid.empty() || in.run_dir.empty()) {
    return absl::InvalidArgumentError(
        "command line: sandbox id, uuid and run directory are needed");
  }
  if (ImageOnNvdimm(c) && in.image_size_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("command line: the size of image ", c.image, " is needed for its NVDIMM"));
  }
  const bool q35 = c.machine_type == "q35";
  const std::string root_bus = RootBus(c);
  Argv a;
  a.Flag(c.path);
  a.Arg("-name", absl::StrCat("sandbox-", in.sandbox_id));
  a.Arg("-uuid", in.uuid);

  Options machine(c.machine_type);
  machine.Add("accel", in.accelerator);
  if (ImageOnNvdimm(c) || c.block_device_driver == "nvdimm") machine.Add("nvdimm", true);
  if (c.enable_iommu && q35) machine.Add("kernel_irqchip", "split");
  machine.AddRaw(c.machine_accelerators);
  a.Opt("-machine", machine);

  if (in.accelerator == "kvm") {
    Options cpu("host");
    cpu.AddRaw(c.cpu_features);
    a.Opt("-cpu", cpu);
  } else {
    a.Arg("-cpu", "max");  // every feature TCG emulates; a host model means nothing here
  }
  a.Arg("-smp", absl::StrCat(c.default_vcpus, ",cores=1,threads=1,sockets=", c.default_maxvcpus,
                             ",maxcpus=", c.default_maxvcpus));
  a.Arg("-m", absl::StrCat(c.default_memory, "M,slots=", c.memory_slots,
                           ",maxmem=", MaxMemoryMib(c, in.host_memory_mib), "M"));

  Options ram;
  if (SharesMemory(c)) {
    std::string mem_path = MemoryPath(c);
    ram = Options("memory-backend-file");
    ram.Add("id", "dimm1").Add("size", absl::StrCat(c.default_memory, "M"));
    ram.Add("mem-path", mem_path).Add("share", true);
  } else {
    ram = Options("memory-backend-ram");
    ram.Add("id", "dimm1").Add("size", absl::StrCat(c.default_memory, "M"));
  }
  if (c.enable_mem_prealloc) ram.Add("prealloc", true);
  a.Opt("-object", ram);
  a.Arg("-numa", "node,memdev=dimm1");

  a.Opt("-kernel", Options(c.kernel));
  if (!c.initrd.empty()) a.Opt("-initrd", Options(c.initrd));
  if (BootsImage(c) && !c.image_loader.empty()) a.Opt("-initrd", Options(c.image_loader));
  a.Arg("-append", KernelCommandLine(c));
  if (!c.firmware.empty()) a.Opt("-bios", Options(c.firmware));
  for (const std::string& flash : c.pflashes) {
    a.Opt("-drive", Options().Add("if", "pflash").Add("format", "raw").Add("file", flash));
  }

  // Devices with fixed addresses come before any device QEMU places itself.
  if (c.enable_iommu && q35) {
    a.Opt("-device", Options("intel-iommu").Add("intremap", true).Add("device-iotlb", true));
  }
  for (int64_t i = 0; i < c.default_bridges; ++i) {
    a.Opt("-device", Options("pci-bridge")
                         .Add("bus", root_bus)
                         .Add("id", BridgeId(i))
                         .Add("chassis_nr", i + 1)
                         .Add("shpc", false)
                         .Add("addr", absl::StrCat(absl::Hex(BridgeSlot(i))))
                         .Add("io-reserve", "4k")
                         .Add("mem-reserve", "1m")
                         .Add("pref64-reserve", "1m"));
  }
  if (q35) {
    for (int64_t i = 0; i < c.pcie_root_port; ++i) {
      a.Opt("-device", Options("pcie-root-port")
                           .Add("id", RootPortId(i))
                           .Add("bus", root_bus)
                           .Add("chassis", c.default_bridges + 1 + i)
                           .Add("slot", i)
                           .Add("addr", absl::StrCat(absl::Hex(RootPortSlot(c, i))))
                           .Add("multifunction", false)
                           .Add("pref64-reserve", "2m")
                           .Add("mem-reserve", "4m"));
    }
  }

  // Monitors, agent and console on sockets the launcher bound and passes by fd.
  auto socket = [&](const char* id, int fd) {
    a.Opt("-chardev",
          Options("socket").Add("id", id).Add("fd", fd).Add("server", true).Add("wait", false));
  };
  socket("qmp", in.qmp_fd);
  a.Arg("-mon", "chardev=qmp,mode=control");
  socket("qmp-events", in.qmp_events_fd);
  a.Arg("-mon", "chardev=qmp-events,mode=control");
  a.Opt("-device", Options("virtio-serial-pci")
                       .Add("id", "serial0")
                       .Add("max_ports", kSerialMaxPorts)
                       .Add("iommu_platform", c.enable_iommu_platform));
  socket("agent", in.agent_fd);
  a.Opt("-device", Options("virtserialport")
                       .Add("bus", "serial0.0")
                       .Add("chardev", "agent")
                       .Add("name", kAgentPortName)
                       .Add("id", "agent-port"));
  socket("console", in.console_fd);
  a.Arg("-serial", "chardev:console");

  a.Opt("-object", Options("rng-random").Add("id", "rng0").Add("filename", c.entropy_source));
  a.Opt("-device", Options("virtio-rng-pci").Add("rng", "rng0"));

  if (c.block_device_driver == "virtio-scsi") {
    Options scsi("virtio-scsi-pci");
    scsi.Add("id", "scsi0");
    if (c.enable_iothreads) {
      a.Opt("-object", Options("iothread").Add("id", "iothread0"));
      scsi.Add("iothread", "iothread0");
    }
    scsi.Add("iommu_platform", c.enable_iommu_platform);
    a.Opt("-device", scsi);
  }

  if (c.shared_fs == "virtio-fs") {
    a.Opt("-chardev", Options("socket")
                          .Add("id", "virtiofs")
                          .Add("path", absl::StrCat(in.run_dir, "/", kVirtiofsSocket)));
    Options fs("vhost-user-fs-pci");
    fs.Add("chardev", "virtiofs").Add("tag", kShareTag).Add("queue-size", 1024);
    if (c.virtio_fs_cache_size > 0) fs.Add("cache-size", absl::StrCat(c.virtio_fs_cache_size, "M"));
    a.Opt("-device", fs);
  } else if (c.shared_fs == "virtio-9p") {
    a.Opt("-fsdev", Options("local")
                        .Add("id", "extra-9p-kataShared")
                        .Add("path", in.shared_dir)
                        .Add("security_model", "none")
                        .Add("multidevs", "remap"));
    a.Opt("-device",
          Options("virtio-9p-pci").Add("fsdev", "extra-9p-kataShared").Add("mount_tag", kShareTag));
  }

  if (ImageOnNvdimm(c)) {
    // Shared read-only by every sandbox: readonly needs unarmed; the guest probes only
    // multiples of 2 MiB (guest/build.sh pads the image).
    a.Opt("-object", Options("memory-backend-file")
                         .Add("id", "mem0")
                         .Add("mem-path", c.image)
                         .Add("size", in.image_size_bytes)
                         .Add("readonly", true));
    a.Opt("-device", Options("nvdimm").Add("id", "nv0").Add("memdev", "mem0").Add("unarmed", true));
  } else if (BootsImage(c)) {
    a.Opt("-drive", Options()
                        .Add("id", "image")
                        .Add("file", c.image)
                        .Add("format", "raw")
                        .Add("if", "none")
                        .Add("readonly", true)
                        .Add("aio", "threads"));
    a.Opt("-device", Options("virtio-blk-pci").Add("drive", "image").Add("id", "image-disk"));
  }

  a.Arg("-pidfile", absl::StrCat(in.run_dir, "/", kPidFile));
  a.Flag("-S");
  a.Flag("-no-user-config");
  a.Flag("-nodefaults");
  a.Arg("-display", "none");
  a.Flag("-no-reboot");
  a.Arg("-vga", "none");
  if (!c.seccompsandbox.empty()) a.Opt("-sandbox", Options().AddRaw(c.seccompsandbox));
  // Started as root (everything above is opened then), then the user with no capability.
  if (!c.hypervisor_user.empty()) a.Arg("-runas", c.hypervisor_user);
  if (c.enable_debug) {
    a.Arg("-D", absl::StrCat(in.run_dir, "/", kQemuLog));
    a.Arg("-d", "guest_errors");
  }
  return a.Take();
}

}  // namespace runvm::qemu
