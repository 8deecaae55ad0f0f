// `runvm ps ID [-- PS-OPTIONS]` without --format json: the container's processes (the guest's)
// as a table in the shape of procps' `ps -ef`, which runc prints:
//
//   UID          PID    PPID  C STIME TTY          TIME CMD
//   root         123     101  0 09:02 ?        00:00:00 sh -c while :; do sleep 1; done
//
// runc runs the host's ps(1) with the options given after the id and keeps the container's lines;
// the guest has no procps, so runvm renders the table itself and takes the options it can honour:
// the selections -e, -A, -a, -x (every process of the container is listed anyway), -f (the
// default full format) and -o FIELDS (uid, user, pid, ppid, c, stime, tty, time, cmd, args,
// comm). Anything else is refused, naming the option.
#ifndef RUNVM_RUNTIME_CLI_PS_TABLE_H_
#define RUNVM_RUNTIME_CLI_PS_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/agent_protocol.h"

namespace runvm {

absl::StatusOr<std::string> RenderPs(const std::vector<agent_proto::ProcessEntry>& processes,
                                     const std::vector<std::string>& ps_options, absl::Time now);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_CLI_PS_TABLE_H_
