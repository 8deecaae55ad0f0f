// `runvm ps [-f table|json] ID [[--] PS-OPTIONS]`: the container's processes with the guest's
// pids; the table is runc's `ps -ef` (runtime/cli/ps_table.h).
#include <algorithm>
#include <iostream>
#include <memory>

#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "runtime/cli/ps_table.h"
#include "runtime/cli/verb.h"

namespace runvm {

Verb PsVerb(const GlobalFlags& g) {
  struct Flags {
    std::string format = "table";
    std::vector<std::string> rest;  // the id, then ps(1)'s options
  };
  auto f = std::make_shared<Flags>();
  return {.name = "ps",
          .help = "list a container's processes (pids are the guest's)",
          .flags = {{.names = "-f,--format",
                     .help = "table or json",
                     .into = &f->format,
                     .choices = {"table", "json"}}},
          // As runc: runvm's options come before the id; what follows it is ps(1)'s.
          .rest = &f->rest,
          .footer = "Usage: runvm ps [--format table|json] ID [[--] PS-OPTIONS]",
          .run = [&g, f] {
            if (f->rest.empty()) return Fail("ps: the container id is missing");
            const std::string id = f->rest.front();
            std::vector<std::string> options(f->rest.begin() + 1, f->rest.end());
            std::erase(options, "--");
            absl::StatusOr<std::vector<agent_proto::ProcessEntry>> ps =
                MakeContainers(g).Processes(id);
            if (!ps.ok()) return Fail(ps.status().message());
            if (f->format == "json") {
              nlohmann::json pids = nlohmann::json::array();  // runc's: the pids, nothing else
              for (const agent_proto::ProcessEntry& p : *ps) pids.push_back(p.pid);
              std::cout << pids.dump() << "\n";
              return 0;
            }
            absl::StatusOr<std::string> table = RenderPs(*ps, options, absl::Now());
            if (!table.ok()) return Fail(table.status().message());
            std::cout << *table;
            return 0;
          }};
}

}  // namespace runvm
