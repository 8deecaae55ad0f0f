// `runvm update [-r FILE|-] [runc's resource flags] ID`: the container's resources changed; its
// pod's VM grows to fit.
#include <algorithm>
#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "runtime/cli/verb.h"

namespace runvm {
namespace {

constexpr const char* kSupported[] = {"cpu-period",         "cpu-quota",   "cpu-share",
                                      "cpuset-cpus",        "cpuset-mems", "memory",
                                      "memory-reservation", "memory-swap", "pids-limit"};
constexpr const char* kUnsupported[] = {"blkio-weight",  "cpu-rt-period",     "cpu-rt-runtime",
                                        "kernel-memory", "kernel-memory-tcp", "l3-cache-schema",
                                        "mem-bw-schema"};

struct UpdateFlags {
  std::string id;
  std::string resources_file;
  std::map<std::string, std::string> values;  // flag name -> value as given
};

// runc's sizes: "256m", "1G", "1024", "-1" (no limit); binary multiples.
absl::StatusOr<int64_t> ParseBytes(const std::string& flag, const std::string& text) {
  std::string t = absl::AsciiStrToLower(text);
  if (t == "-1") return -1;
  if (absl::EndsWith(t, "b")) t.pop_back();
  int shift = 0;
  if (!t.empty()) {
    const size_t unit = std::string("kmgtp").find(t.back());
    if (unit != std::string::npos) {
      shift = 10 * static_cast<int>(unit + 1);
      t.pop_back();
    }
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(t, &n) || n < 0 || (shift > 0 && n > (INT64_MAX >> shift))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " \"", text, "\": not a size (1024, 512k, 256m, 2g or -1)"));
  }
  return n << shift;
}

absl::StatusOr<int64_t> ParseInt(const std::string& flag, const std::string& text) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(text, &n)) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " \"", text, "\": not a number"));
  }
  return n;
}

// update's resources: the --resources JSON (a file, or stdin for "-") with runc's flags over it.
absl::StatusOr<oci::Resources> UpdateResources(const UpdateFlags& c) {
  oci::Resources r;
  if (!c.resources_file.empty()) {
    std::string text;
    if (c.resources_file == "-") {
      ASSIGN_OR_RETURN(text, ReadToEnd(0, 1 << 20, absl::Now() + absl::Seconds(30)));
    } else {
      absl::StatusOr<std::string> read = ReadFile(c.resources_file, 1 << 20);
      if (!read.ok()) return Annotate(read.status(), "--resources");
      text = *read;
    }
    absl::StatusOr<oci::Resources> parsed = oci::ParseResources(text);
    if (!parsed.ok()) return Annotate(parsed.status(), "--resources");
    if (!parsed->devices.empty()) {
      // containerd's CRI plugin sends the create-time rules back with every update; runc leaves
      // them too. Said, not silently dropped.
      LogWarning(
          "--resources: devices: a running container's device rules are not changed (the ones "
          "from config.json at create stay)");
    }
    r = *std::move(parsed);
  }
  auto flag = [&](const char* name) -> const std::string& { return c.values.at(name); };
  for (const char* name : kUnsupported) {
    if (!flag(name).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": not supported (the guest has no such controller)"));
    }
  }
  auto cpu = [&]() -> oci::CpuResources& { return r.cpu ? *r.cpu : r.cpu.emplace(); };
  auto memory = [&]() -> oci::MemoryResources& {
    return r.memory ? *r.memory : r.memory.emplace();
  };
  if (!flag("cpu-period").empty()) {
    ASSIGN_OR_RETURN(int64_t v, ParseInt("cpu-period", flag("cpu-period")));
    cpu().period = static_cast<uint64_t>(std::max<int64_t>(v, 0));
  }
  if (!flag("cpu-quota").empty()) {
    ASSIGN_OR_RETURN(cpu().quota, ParseInt("cpu-quota", flag("cpu-quota")));
  }
  if (!flag("cpu-share").empty()) {
    ASSIGN_OR_RETURN(int64_t v, ParseInt("cpu-share", flag("cpu-share")));
    cpu().shares = static_cast<uint64_t>(std::max<int64_t>(v, 0));
  }
  if (!flag("cpuset-cpus").empty()) cpu().cpus = flag("cpuset-cpus");
  if (!flag("cpuset-mems").empty()) cpu().mems = flag("cpuset-mems");
  if (!flag("memory").empty()) {
    ASSIGN_OR_RETURN(memory().limit, ParseBytes("memory", flag("memory")));
  }
  if (!flag("memory-reservation").empty()) {
    ASSIGN_OR_RETURN(memory().reservation,
                     ParseBytes("memory-reservation", flag("memory-reservation")));
  }
  if (!flag("memory-swap").empty()) {
    ASSIGN_OR_RETURN(memory().swap, ParseBytes("memory-swap", flag("memory-swap")));
  }
  if (!flag("pids-limit").empty()) {
    ASSIGN_OR_RETURN(int64_t v, ParseInt("pids-limit", flag("pids-limit")));
    r.pids = oci::PidsResources{v};
  }
  RETURN_IF_ERROR(r.Validate());
  return r;
}

}  // namespace

Verb UpdateVerb(const GlobalFlags& g) {
  auto f = std::make_shared<UpdateFlags>();
  Verb v{.name = "update",
         .help = "change a container's resources (its VM grows to fit)",
         .flags = {{.names = "-r,--resources",
                    .help = "OCI LinuxResources JSON from this file, or - for stdin",
                    .into = &f->resources_file}},
         .run = [&g, f] {
           absl::StatusOr<oci::Resources> r = UpdateResources(*f);
           if (!r.ok()) return Fail(r.status().message());
           return Done(MakeContainers(g).Update(f->id, *r));
         }};
  for (const char* name : kSupported) {
    v.flags.push_back({.names = absl::StrCat("--", name), .into = &f->values[name]});
  }
  for (const char* name : kUnsupported) {
    v.flags.push_back({.names = absl::StrCat("--", name),
                       .help = "not supported in the guest",
                       .into = &f->values[name]});
  }
  v.flags.push_back({.names = "id", .into = &f->id, .required = true});
  return v;
}

}  // namespace runvm
