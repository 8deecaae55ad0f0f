// The fixture of the pod end-to-end tests (pod_test.cc, security_test.cc): OciTest plus
// bundles with the CRI's pod annotations, create + start as an engine runs them, and what a
// pod's VM is doing.
#ifndef RUNVM_TESTS_E2E_POD_FIXTURE_H_
#define RUNVM_TESTS_E2E_POD_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "hypervisor/qmp/client.h"
#include "tests/e2e/oci_fixture.h"

namespace runvm::e2e {

class PodTest : public OciTest {
 protected:
  // A bundle of its own for container `id` of pod `sandbox` ("" for no pod annotations).
  Bundle PodBundle(const std::string& id, const std::string& type, const std::string& sandbox,
                   std::vector<std::string> args) {
    Bundle b = MakeBusyboxBundle(dir_.path() + "/" + id);
    b.spec.process.args = std::move(args);
    b.spec.root.readonly = false;
    if (!type.empty()) {
      b.spec.annotations["io.kubernetes.cri.container-type"] = type;
      b.spec.annotations["io.kubernetes.cri.sandbox-id"] = sandbox;
    }
    b.Save();
    return b;
  }
  // create + start, as an engine does; the container's id is taken from the bundle's name.
  void Start(const Bundle& b, const std::string& id) {
    EngineIo io = Create({"create", "--bundle", b.path, id});
    ASSERT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
    CommandResult r = Runvm({"start", id});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  // Ids in the order TearDown deletes them: members first, then the sandbox.
  std::string PodId(const std::string& name) {
    const std::string id = NewId() + "-" + name;
    ids_.back() = id;
    return id;
  }
  CommandResult Exec(const std::string& id, const std::string& script) {
    return Runvm({"exec", id, "sh", "-c", script});
  }
  int64_t Counter(const Bundle& b) {
    int64_t v = -1;
    absl::StatusOr<std::string> n = ReadFile(b.rootfs + "/tmp/n");
    if (n.ok()) (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(*n), &v);
    return v;
  }
  int64_t CounterAbove(const Bundle& b, int64_t than) {
    for (int i = 0; i < 300 && Counter(b) <= than; ++i) absl::SleepFor(absl::Milliseconds(50));
    return Counter(b);
  }
  // QEMU processes of this test's sandboxes.
  int QemuCount() {
    int n = 0;
    for (const ProcessIdentity& p : Helpers()) n += absl::StrContains(p.exe, "qemu-system");
    return n;
  }
  // QEMU's run state ("running", "paused"), asked on the sandbox's QMP socket.
  std::string VmRunState(const std::string& sandbox) {
    absl::StatusOr<std::string> text = ReadFile(root_ + "/" + sandbox + "/sandbox.json");
    if (!text.ok()) return "?";
    Json j = Json::parse(*text, nullptr, false);
    const std::string run_dir = j.value("data", Json::object()).value("run_dir", "");
    absl::StatusOr<std::unique_ptr<qmp::Client>> qmp =
        qmp::Client::Connect(run_dir + "/qmp.sock", absl::Now() + absl::Seconds(5));
    if (!qmp.ok()) return std::string(qmp.status().message());
    absl::StatusOr<Json> status =
        (*qmp)->Execute("query-status", Json::object(), absl::Now() + absl::Seconds(5));
    return status.ok() ? status->value("status", "?") : std::string(status.status().message());
  }
  void ExpectPodGone() {
    for (const std::string& id : ids_) ExpectNothingLeft(id);
    EXPECT_EQ(QemuCount(), 0);
  }
};

}  // namespace runvm::e2e

#endif  // RUNVM_TESTS_E2E_POD_FIXTURE_H_
