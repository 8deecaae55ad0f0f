#include "agent/devices.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/fd.h"
#include "base/status.h"

namespace runvm::agent {
namespace {

oci::DeviceRule Allow(const char* type, int64_t major, int64_t minor, const char* access) {
  return {.allow = true, .type = type, .major = major, .minor = minor, .access = access};
}

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

// Registers: r1 the context (struct bpf_cgroup_dev_ctx), r2 its type, r3 the access asked for,
// r4 major, r5 minor, r6 scratch, r0 the verdict.
constexpr uint8_t kCtx = 1, kType = 2, kAccess = 3, kMajor = 4, kMinor = 5, kScratch = 6;

int32_t AccessBits(const std::string& access) {
  int32_t bits = 0;
  for (char c : access) {
    bits |= c == 'm' ? BPF_DEVCG_ACC_MKNOD : c == 'r' ? BPF_DEVCG_ACC_READ : BPF_DEVCG_ACC_WRITE;
  }
  return bits;
}

}  // namespace

std::vector<oci::DeviceRule> EffectiveDeviceRules(const std::vector<oci::DeviceRule>& spec) {
  std::vector<oci::DeviceRule> rules = spec;
  for (const oci::DeviceRule& d : {
           Allow("c", -1, -1, "m"),     // mknod of any character device
           Allow("b", -1, -1, "m"),     // and of any block device (opening them is another matter)
           Allow("c", 1, 3, "rwm"),     // /dev/null
           Allow("c", 1, 5, "rwm"),     // /dev/zero
           Allow("c", 1, 7, "rwm"),     // /dev/full
           Allow("c", 1, 8, "rwm"),     // /dev/random
           Allow("c", 1, 9, "rwm"),     // /dev/urandom
           Allow("c", 5, 0, "rwm"),     // /dev/tty
           Allow("c", 5, 1, "rwm"),     // /dev/console
           Allow("c", 5, 2, "rwm"),     // /dev/ptmx
           Allow("c", 136, -1, "rwm"),  // /dev/pts/*
           Allow("c", 10, 200, "rwm"),  // /dev/net/tun
       }) {
    rules.push_back(d);
  }
  return rules;
}

std::vector<bpf_insn> DeviceProgram(const std::vector<oci::DeviceRule>& rules) {
  std::vector<bpf_insn> prog = {
      // r2 = ctx->access_type & 0xffff (the type); r3 = ctx->access_type >> 16 (the access)
      Insn(BPF_LDX | BPF_W | BPF_MEM, kType, kCtx, 0, 0),
      Insn(BPF_ALU64 | BPF_MOV | BPF_X, kAccess, kType, 0, 0),
      Insn(BPF_ALU64 | BPF_AND | BPF_K, kType, 0, 0, 0xffff),
      Insn(BPF_ALU64 | BPF_RSH | BPF_K, kAccess, 0, 0, 16),
      Insn(BPF_LDX | BPF_W | BPF_MEM, kMajor, kCtx, 4, 0),
      Insn(BPF_LDX | BPF_W | BPF_MEM, kMinor, kCtx, 8, 0),
  };
  // Last rule first: the first block that matches returns its verdict.
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    const oci::DeviceRule& r = *it;
    std::vector<bpf_insn> block;
    std::vector<size_t> skips;  // jumps to the next block, patched below
    auto unless = [&](uint8_t op, uint8_t reg, int32_t imm) {
      skips.push_back(block.size());
      block.push_back(Insn(BPF_JMP | op | BPF_K, reg, 0, 0, imm));
    };
    if (r.type == "c") unless(BPF_JNE, kType, BPF_DEVCG_DEV_CHAR);
    if (r.type == "b") unless(BPF_JNE, kType, BPF_DEVCG_DEV_BLOCK);
    const int32_t allowed = AccessBits(r.access);
    if (allowed != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
      // Everything asked for must be in the rule's access.
      block.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_X, kScratch, kAccess, 0, 0));
      block.push_back(Insn(BPF_ALU64 | BPF_AND | BPF_K, kScratch, 0, 0, ~allowed));
      unless(BPF_JNE, kScratch, 0);
    }
    if (r.major && *r.major >= 0) unless(BPF_JNE, kMajor, static_cast<int32_t>(*r.major));
    if (r.minor && *r.minor >= 0) unless(BPF_JNE, kMinor, static_cast<int32_t>(*r.minor));
    block.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r.allow ? 1 : 0));
    block.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    for (size_t at : skips) block[at].off = static_cast<int16_t>(block.size() - at - 1);
    prog.insert(prog.end(), block.begin(), block.end());
    // A rule that matches everything decides for everything left: the verifier refuses code
    // that cannot be reached.
    if (skips.empty()) return prog;
  }
  prog.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));
  prog.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return prog;
}

absl::Status AttachDeviceFilter(int cgroup_fd, const std::vector<oci::DeviceRule>& spec) {
  const std::vector<bpf_insn> prog = DeviceProgram(EffectiveDeviceRules(spec));
  static constexpr char kLicense[] = "Apache-2.0";
  std::string log(16 << 10, '\0');
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(prog.data());
  load.insn_cnt = static_cast<uint32_t>(prog.size());
  load.license = reinterpret_cast<uint64_t>(kLicense);
  load.log_level = 1;
  load.log_buf = reinterpret_cast<uint64_t>(log.data());
  load.log_size = static_cast<uint32_t>(log.size());
  Fd program(static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load)));
  if (!program.valid()) {
    const int err = errno;
    log.resize(std::strlen(log.c_str()));
    return ErrnoError(err, absl::StrCat("load the device filter (", prog.size(), " instructions)",
                                        log.empty() ? "" : ": ", log));
  }
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cgroup_fd);
  attach.attach_bpf_fd = static_cast<uint32_t>(program.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  if (::syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) != 0) {
    return ErrnoError("attach the device filter to the container's cgroup");
  }
  return absl::OkStatus();  // the cgroup holds the program now
}

}  // namespace runvm::agent
