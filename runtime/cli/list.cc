// `runvm list [-f table|json] [-q]`: every container under the root.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "runtime/cli/verb.h"

namespace runvm {

Verb ListVerb(const GlobalFlags& g) {
  struct Flags {
    std::string format = "table";
    bool quiet = false;
  };
  auto f = std::make_shared<Flags>();
  return {.name = "list",
          .help = "list the containers",
          .flags = {{.names = "-f,--format",
                     .help = "table or json",
                     .into = &f->format,
                     .choices = {"table", "json"}},
                    {.names = "-q,--quiet", .help = "only the ids", .into = &f->quiet}},
          .run = [&g, f] {
            absl::StatusOr<std::vector<OciState>> all = MakeContainers(g).List();
            if (!all.ok()) return Fail(all.status().message());
            if (f->quiet) {
              for (const OciState& st : *all) std::cout << st.id << "\n";
            } else if (f->format == "json") {
              nlohmann::ordered_json out = nlohmann::ordered_json::array();
              for (const OciState& st : *all) out.push_back(OciStateToJson(st));
              std::cout << out.dump() << "\n";
            } else {
              std::string text =
                  absl::StrFormat("%-12s   %-8s   %-10s   %-30s   %-30s   %s\n", "ID", "PID",
                                  "STATUS", "BUNDLE", "CREATED", "OWNER");
              for (const OciState& st : *all) {
                absl::StrAppend(
                    &text, absl::StrFormat("%-12s   %-8d   %-10s   %-30s   %-30s   %s\n", st.id,
                                           st.pid, StatusName(st.status), st.bundle, st.created,
                                           st.owner.empty() ? "root" : st.owner));
              }
              std::cout << text;
            }
            return 0;
          }};
}

}  // namespace runvm
