// `runvm events [--stats] [--interval D] ID`: runc's stats lines (and oom lines) until the
// container stops.
#include <algorithm>
#include <iostream>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "runtime/cli/verb.h"

namespace runvm {
namespace {

struct EventsFlags {
  std::string id;
  bool stats = false;
  std::string interval = "5s";
};

// runc's stats event: {"type":"stats","id":...,"data":{"cpu":...,"memory":...,"pids":...}},
// with cpu times in nanoseconds and "max" as the largest unsigned 64-bit number.
nlohmann::ordered_json StatsEvent(const std::string& id, const agent_proto::CgroupStats& st) {
  using J = nlohmann::ordered_json;
  auto limit = [](int64_t v) -> J {
    return v < 0 ? J(std::numeric_limits<uint64_t>::max()) : J(v);
  };
  J data;
  data["cpu"] = {{"usage",
                  {{"total", st.cpu_usage_usec * 1000},
                   {"kernel", st.cpu_system_usec * 1000},
                   {"user", st.cpu_user_usec * 1000}}},
                 {"throttling",
                  {{"periods", st.cpu_periods},
                   {"throttledPeriods", st.cpu_throttled_periods},
                   {"throttledTime", st.cpu_throttled_usec * 1000}}}};
  data["memory"] = {{"usage",
                     {{"limit", limit(st.memory_max)},
                      {"usage", st.memory_current},
                      {"max", st.memory_peak},
                      {"failcnt", st.oom}}},
                    {"swap", {{"limit", limit(st.swap_max)}, {"usage", st.swap_current}}},
                    {"raw", st.memory_stat}};
  data["pids"] = {{"current", st.pids_current}, {"limit", st.pids_max < 0 ? 0 : st.pids_max}};
  data["blkio"] = J::object();
  data["hugetlb"] = J::object();
  return {{"type", "stats"}, {"id", id}, {"data", std::move(data)}};
}

// runc events: with --stats one stats line; otherwise a stats line every interval and an oom
// line whenever the container's OOM kill count grows, until the container stops.
int RunEvents(Containers& containers, const EventsFlags& c) {
  absl::Duration interval;
  if (!absl::ParseDuration(c.interval, &interval) || interval <= absl::ZeroDuration()) {
    return Fail(absl::StrCat("--interval \"", c.interval, "\": not a duration (5s, 500ms)"));
  }
  int64_t ooms = -1;
  auto report_ooms = [&](const agent_proto::CgroupStats& st) {
    if (ooms >= 0 && st.oom_kill > ooms) {
      std::cout << nlohmann::ordered_json{{"type", "oom"}, {"id", c.id}}.dump() << std::endl;
    }
    ooms = st.oom_kill;
  };
  for (;;) {
    absl::StatusOr<agent_proto::CgroupStats> st = containers.Stats(c.id);
    if (!st.ok()) {
      // The stream ends with the container, after an oom line if the memory limit killed it
      // (its last figures are still in the guest until it is deleted).
      if (!c.stats && ooms >= 0 && absl::IsFailedPrecondition(st.status())) {
        absl::StatusOr<agent_proto::CgroupStats> last = containers.Stats(c.id, /*after_exit=*/true);
        if (last.ok()) report_ooms(*last);
        return 0;
      }
      return Fail(st.status().message());
    }
    report_ooms(*st);
    std::cout << StatsEvent(c.id, *st).dump() << std::endl;
    if (c.stats) return 0;
    // Waits for the interval, looking every 100 ms whether the container has ended, so that the
    // stream ends (and an OOM kill shows) with it rather than an interval later.
    const absl::Time next = absl::Now() + interval;
    while (absl::Now() < next) {
      absl::SleepFor(std::min(absl::Milliseconds(100), next - absl::Now()));
      absl::StatusOr<OciState> state = containers.State(c.id);
      if (!state.ok() || state->status == ContainerStatus::kStopped) break;
    }
  }
}

}  // namespace

Verb EventsVerb(const GlobalFlags& g) {
  auto f = std::make_shared<EventsFlags>();
  return {
      .name = "events",
      .help = "the container's stats (and oom events) as JSON lines",
      .flags = {{.names = "--stats", .help = "print the stats once and exit", .into = &f->stats},
                {.names = "--interval",
                 .help = "how often, e.g. 5s or 500ms (default 5s)",
                 .into = &f->interval},
                {.names = "id", .into = &f->id, .required = true}},
      .run = [&g, f] {
        Containers containers = MakeContainers(g);
        return RunEvents(containers, *f);
      }};
}

}  // namespace runvm
