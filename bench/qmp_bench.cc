// bench/run qmp: the QMP client against the floor of the same bytes on the same kind of socket.
//
// One bare QEMU (-machine none) with two monitors: the client runs on monitor 0, the floor (a
// minimal write-then-read-to-newline loop with no parsing beyond finding the line end) on
// monitor 1. Figures: query-status round trip; connect + greeting + negotiation.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/unix_socket.h"
#include "bench/report.h"
#include "hypervisor/qmp/client.h"
#include "tests/testing/bare_qemu.h"

namespace {

using runvm::Fd;

// Reads one "\r\n"-terminated line; the floor's whole parser.
bool ReadLine(int fd, std::string& buf) {
  for (;;) {
    size_t nl = buf.find('\n');
    if (nl != std::string::npos) {
      buf.erase(0, nl + 1);
      return true;
    }
    char tmp[4096];
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, n);
  }
}

bool WriteAll(int fd, const std::string& s) {
  return ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

// The client's exact negotiation bytes (with an id: QEMU 7.2 answers a command that carries an
// id about 80 us later than one without, so the floor must send the same bytes).
constexpr char kCaps[] = "{\"execute\":\"qmp_capabilities\",\"id\":\"runvm-1\"}\r\n";

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 2000;
  auto qemu = runvm::testing::BareQemu::Start(2);
  if (!qemu.ok()) {
    std::fprintf(stderr, "qmp_bench: %s\n", std::string(qemu.status().message()).c_str());
    return 1;
  }
  // Round trip: query-status.
  std::vector<double> client_ms, floor_ms;
  {
    auto c = runvm::qmp::Client::Connect((*qemu)->monitor_path(0), Soon());
    auto raw = runvm::ConnectUnix((*qemu)->monitor_path(1));
    if (!c.ok() || !raw.ok()) {
      std::fprintf(stderr, "qmp_bench: cannot connect\n");
      return 1;
    }
    std::string buf;
    ReadLine(raw->get(), buf);
    WriteAll(raw->get(), kCaps);
    ReadLine(raw->get(), buf);
    for (int i = 0; i < runs; ++i) {
      absl::Time t0 = absl::Now();
      if (!(*c)->Execute("query-status", nullptr, Soon()).ok()) return 1;
      client_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
      std::string cmd = absl::StrCat("{\"execute\":\"query-status\",\"id\":\"runvm-", i, "\"}\r\n");
      t0 = absl::Now();
      if (!WriteAll(raw->get(), cmd) || !ReadLine(raw->get(), buf)) return 1;
      floor_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    }
  }
  runvm::bench::Emit("qmp", "query-status round trip", runvm::bench::Median(client_ms),
                     runvm::bench::Median(floor_ms), runs);

  // Connect + greeting + negotiation.
  int connects = std::max(100, runs / 10);
  client_ms.clear();
  floor_ms.clear();
  auto client_connect = [&]() {
    absl::Time t0 = absl::Now();
    auto c = runvm::qmp::Client::Connect((*qemu)->monitor_path(0), Soon());
    if (!c.ok()) return false;
    client_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    return true;
  };
  auto raw_connect = [&]() {
    absl::Time t0 = absl::Now();
    auto raw = runvm::ConnectUnix((*qemu)->monitor_path(1));
    std::string buf;
    if (!raw.ok() || !ReadLine(raw->get(), buf) || !WriteAll(raw->get(), kCaps) ||
        !ReadLine(raw->get(), buf)) {
      return false;
    }
    floor_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    return true;
  };
  // Alternate which goes first, so that neither always follows the other's disconnect.
  for (int i = 0; i < connects; ++i) {
    bool ok = i % 2 ? (client_connect() && raw_connect()) : (raw_connect() && client_connect());
    if (!ok) return 1;
  }
  runvm::bench::Emit("qmp", "connect + greeting + negotiation", runvm::bench::Median(client_ms),
                     runvm::bench::Median(floor_ms), connects);
  return 0;
}
