// Running a program the way an engine or an operator does, and collecting what it printed.
//
//   CommandResult r = RunCommand({"/usr/local/bin/runvm", "state", "abc"}, {"RUNVM_X=1"});
//   EXPECT_EQ(r.code, 0) << r.err;
#ifndef RUNVM_TESTS_TESTING_COMMAND_H_
#define RUNVM_TESTS_TESTING_COMMAND_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace runvm::testing {

struct CommandResult {
  int code = -1;  // shell convention: 128 + signal when killed; -1 when it could not run
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with `env` added to a minimal environment (PATH only), `input` on its
// stdin (then end of file; without it, /dev/null). Waits at most `timeout`; a command still
// running then is killed and reported with code -1.
CommandResult RunCommand(const std::vector<std::string>& argv, std::vector<std::string> env = {},
                         absl::Duration timeout = absl::Seconds(120),
                         const std::string* input = nullptr);

}  // namespace runvm::testing

#endif  // RUNVM_TESTS_TESTING_COMMAND_H_
