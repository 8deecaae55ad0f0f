// The `runvm` command line: runc's global flags and the verbs implemented so far.
//
//   runvm [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup]
//         [--config FILE] COMMAND ...
//
// Exit codes follow runc: 0 on success, 1 on any error (the error is the last log line and is
// printed on stderr). `check` exits 1 when the host cannot run sandboxes.
#ifndef RUNVM_RUNTIME_CLI_CLI_H_
#define RUNVM_RUNTIME_CLI_CLI_H_

namespace runvm {

int RunCli(int argc, char** argv);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_CLI_CLI_H_
