// BareQemu: a real QEMU with no guest (-machine none, paused) and N QMP monitors on sockets the
// test pre-binds and hands over by fd, for integration tests and benchmarks of QMP. The process is
// killed and reaped, and its directory removed, on destruction.
//
//   ASSIGN_OR_RETURN(auto qemu, BareQemu::Start(2));
//   auto qmp = qmp::Client::Connect(qemu->monitor_path(0), deadline);
#ifndef RUNVM_TESTS_TESTING_BARE_QEMU_H_
#define RUNVM_TESTS_TESTING_BARE_QEMU_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/process.h"
#include "tests/testing/temp_dir.h"

namespace runvm::testing {

inline constexpr char kQemuBinary[] = "/usr/bin/qemu-system-x86_64";

class BareQemu {
 public:
  static absl::StatusOr<std::unique_ptr<BareQemu>> Start(int monitors = 1);

  std::string monitor_path(int i) const;
  pid_t pid() const { return child_.pid(); }
  // What QEMU wrote on stderr so far.
  std::string stderr_text() const;

 private:
  BareQemu(TempDir dir, Child child) : dir_(std::move(dir)), child_(std::move(child)) {}
  TempDir dir_;  // outlives child_: QEMU is killed before its sockets go
  Child child_;
};

}  // namespace runvm::testing

#endif  // RUNVM_TESTS_TESTING_BARE_QEMU_H_
