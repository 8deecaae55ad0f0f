// The pod network end to end (labels network, e2e): a network namespace built the way the CNI
// bridge plugin builds one (a veth pair, the host end on a bridge in a peer namespace the test
// made, a host-local style address and a default route), carried into the VM by the real runvm:
// the container sees the interface as it was, and traffic flows both ways. Every address lives
// in namespaces the test made and removes; every wait is bounded.
#include <unistd.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/oci_fixture.h"

namespace runvm::e2e {
namespace {

using ::runvm::testing::CommandResult;
using ::runvm::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

CommandResult Sh(const std::string& script) {
  return RunCommand({"/bin/sh", "-c", script}, {}, absl::Seconds(60));
}

class NetworkTest : public OciTest {
 protected:
  void SetUp() override {
    OciTest::SetUp();
    const int n = ::getpid() % 200;
    pod_ = absl::StrCat("runvm-pod", ::getpid());
    peer_ = absl::StrCat("runvm-peer", ::getpid());
    subnet_ = absl::StrCat("10.213.", n);
    ASSERT_EQ(
        Sh(absl::StrCat("ip netns add ", pod_, " && ip netns add ", peer_, " && ip -n ", peer_,
                        " link add br0 type bridge", " && ip -n ", peer_, " link set br0 up",
                        " && ip -n ", peer_, " addr add ", subnet_, ".1/24 dev br0", " && ip -n ",
                        peer_, " addr add fd00:213::1/64 dev br0 nodad", " && ip -n ", peer_,
                        " link set lo up"))
            .code,
        0);
    netns_ = "/run/netns/" + pod_;
  }
  void TearDown() override {
    OciTest::TearDown();
    // Nothing of runvm's is left in the pod's namespace: no tap, no ingress filter.
    CommandResult links = Sh("ip -n " + pod_ + " -o link show");
    EXPECT_THAT(links.out, Not(HasSubstr("_runvm"))) << "a tap is left";
    for (const char* dev : {"eth0", "eth1"}) {
      CommandResult qdisc = Sh(
          absl::StrCat("ip netns exec ", pod_, " tc qdisc show dev ", dev, " ingress 2>/dev/null"));
      EXPECT_EQ(qdisc.out, "") << "an ingress qdisc is left on " << dev;
    }
    Sh("ip netns del " + pod_ + "; ip netns del " + peer_);
  }

  // A veth pair as the bridge plugin makes it: `name` in the pod's namespace with `mac`, `mtu`
  // and `address`, its peer on the bridge; a default route when `gateway` is set.
  void AddInterface(const std::string& name, const std::string& mac, int mtu,
                    const std::string& address, const std::string& gateway) {
    const std::string host_end = absl::StrCat("v", name, ::getpid() % 100000);
    ASSERT_EQ(Sh(absl::StrCat(
                     "ip -n ", peer_, " link add ", host_end, " mtu ", mtu, " type veth peer name ",
                     name, " netns ", pod_, " && ip -n ", peer_, " link set ", host_end,
                     " master br0 up && ip -n ", pod_, " link set ", name, " address ", mac,
                     " mtu ", mtu, " up && ip -n ", pod_, " addr add ", address, " dev ", name,
                     " && ip -n ", pod_, " link set lo up",
                     gateway.empty() ? ""
                                     : absl::StrCat(" && ip -n ", pod_, " route add default via ",
                                                    gateway, " dev ", name)))
                  .code,
              0);
  }

  // The bundle's network namespace: the one at `path`, as engines name the pod's; none at all
  // (nullopt) is the host's network. Saved.
  void UseNetworkNamespace(const std::optional<std::string>& path) {
    std::erase_if(bundle_.spec.linux.namespaces,
                  [](const oci::Namespace& ns) { return ns.type == "network"; });
    if (path) bundle_.spec.linux.namespaces.push_back({.type = "network", .path = *path});
    bundle_.Save();
  }

  // The container, in the pod's namespace, running until deleted.
  std::string RunPod() {
    bundle_.spec.process.args = {"sleep", "600"};
    bundle_.spec.root.readonly = false;  // the transfer's data file
    // ping's raw socket, as an engine grants it when asked (runc's default spec does not).
    for (auto* set : {&bundle_.spec.process.capabilities->bounding,
                      &bundle_.spec.process.capabilities->effective,
                      &bundle_.spec.process.capabilities->permitted}) {
      set->push_back("CAP_NET_RAW");
    }
    UseNetworkNamespace(netns_);
    const std::string id = NewId();
    EngineIo io = Create({"run", "-d", "--bundle", bundle_.path, id});
    EXPECT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
    return id;
  }
  CommandResult Exec(const std::string& id, const std::string& script) {
    return Runvm({"exec", id, "sh", "-c", script});
  }

  std::string pod_, peer_, subnet_, netns_;
};

TEST_F(NetworkTest, TheContainerHasThePodsInterfaceAndReachesItsPeerBothWays) {
  AddInterface("eth0", "02:42:0a:d5:00:02", 1400, subnet_ + ".2/24", subnet_ + ".1");
  const std::string id = RunPod();

  CommandResult addr = Exec(id,
                            "ip -o -4 addr show eth0; cat /sys/class/net/eth0/address "
                            "/sys/class/net/eth0/mtu; ip route show default");
  ASSERT_EQ(addr.code, 0) << addr.err;
  EXPECT_THAT(addr.out, HasSubstr("inet " + subnet_ + ".2/24"));
  EXPECT_THAT(addr.out, HasSubstr("02:42:0a:d5:00:02\n1400\n"));
  EXPECT_THAT(addr.out, HasSubstr("default via " + subnet_ + ".1 dev eth0"));

  // The peer reaches the pod's address, and the container reaches the peer.
  CommandResult ping =
      Sh(absl::StrCat("ip netns exec ", peer_, " busybox ping -c 3 -W 5 ", subnet_, ".2"));
  EXPECT_EQ(ping.code, 0) << ping.out << ping.err;
  CommandResult back = Exec(id, "ping -c 3 -W 5 " + subnet_ + ".1");
  EXPECT_EQ(back.code, 0) << back.out << back.err;

  // A few MiB over TCP from the container to a server in the peer namespace: same digest at
  // both ends. The server takes exactly kBytes (or stops at its deadline) and closes.
  constexpr int kBytes = 4 << 20;
  const std::string received = dir_.path() + "/received";
  CommandResult server_started;
  std::thread server([&] {
    server_started = RunCommand(
        {"/bin/ip", "netns", "exec", peer_, "/usr/bin/python3", "-c",
         absl::StrFormat(
             "import socket,sys\n"
             "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "s.bind(('%s.1', 5201)); s.listen(1); s.settimeout(60)\n"
             "c,_=s.accept(); c.settimeout(60); got=b''\n"
             "while len(got) < %d:\n"
             "  b=c.recv(1<<16)\n"
             "  if not b: break\n"
             "  got+=b\n"
             "open('%s','wb').write(got); c.close()\n",
             subnet_, kBytes, received)},
        {}, absl::Seconds(90));
  });
  absl::SleepFor(absl::Milliseconds(500));  // the server's listen; the client retries anyway
  CommandResult sent = Exec(
      id, absl::StrCat("head -c ", kBytes, " /dev/urandom > /tmp/data && sha256sum /tmp/data && ",
                       "for i in 1 2 3 4 5; do nc -w 30 ", subnet_,
                       ".1 5201 < /tmp/data && break; sleep 1; done"));
  server.join();
  ASSERT_EQ(sent.code, 0) << sent.err;
  EXPECT_EQ(server_started.code, 0) << server_started.err;
  CommandResult digest = Sh("stat -c %s " + received + " && sha256sum < " + received);
  ASSERT_EQ(digest.code, 0) << digest.err;
  std::vector<std::string> lines = absl::StrSplit(digest.out, '\n');
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], absl::StrCat(kBytes));
  const std::string sha = lines[1].substr(0, 64);
  EXPECT_EQ(sha.size(), 64u);
  EXPECT_THAT(sent.out, HasSubstr(sha + "  /tmp/data"));

  // The sandbox's record names the endpoint.
  CommandResult state = Runvm({"sandbox", "state", id});
  EXPECT_THAT(state.out, HasSubstr("\"tap\": \"tap0_runvm\""));
  EXPECT_THAT(state.out, HasSubstr("\"interface\": \"eth0\""));
}

TEST_F(NetworkTest, TwoInterfacesBecomeEth0AndEth1InOrderAndIpv6Works) {
  AddInterface("eth0", "02:42:0a:d5:00:12", 1500, subnet_ + ".12/24", subnet_ + ".1");
  ASSERT_EQ(Sh("ip -n " + pod_ + " addr add fd00:213::12/64 dev eth0 nodad").code, 0);
  ASSERT_EQ(
      Sh(absl::StrCat("ip -n ", peer_, " addr add 10.214.", ::getpid() % 200, ".1/24 dev br0"))
          .code,
      0);
  AddInterface("eth1", "02:42:0a:d6:00:13", 1500,
               absl::StrCat("10.214.", ::getpid() % 200, ".13/24"), "");
  const std::string id = RunPod();
  CommandResult links = Exec(id,
                             "cat /sys/class/net/eth0/address /sys/class/net/eth1/address; "
                             "ip -o addr show");
  ASSERT_EQ(links.code, 0) << links.err;
  EXPECT_THAT(links.out, HasSubstr("02:42:0a:d5:00:12\n02:42:0a:d6:00:13\n"));
  EXPECT_THAT(links.out, HasSubstr("inet6 fd00:213::12/64"));
  CommandResult ping6 = Sh("ip netns exec " + peer_ + " busybox ping -6 -c 3 -W 5 fd00:213::12");
  EXPECT_EQ(ping6.code, 0) << ping6.out << ping6.err;
  CommandResult ping1 = Sh(absl::StrCat("ip netns exec ", peer_, " busybox ping -c 3 -W 5 10.214.",
                                        ::getpid() % 200, ".13"));
  EXPECT_EQ(ping1.code, 0) << ping1.out << ping1.err;
}

// Bad input: named, and nothing is created (no sandbox, no tap, no filter).
TEST_F(NetworkTest, ANamespaceThatIsNoneOrGoneOrAnInterfaceTcfilterCannotCarryIsRefused) {
  bundle_.spec.process.args = {"true"};
  auto run_with = [&](const std::string& path) {
    UseNetworkNamespace(path);
    const std::string id = NewId();
    CommandResult r = Runvm({"run", "--bundle", bundle_.path, id});
    EXPECT_NE(r.code, 0);
    return r.err;
  };
  const std::string not_ns = dir_.Write("not-a-namespace", "");
  EXPECT_THAT(run_with(not_ns), HasSubstr(not_ns + ": not a network namespace"));
  EXPECT_THAT(run_with("/proc/self/ns/mnt"), HasSubstr("not a network namespace"));
  EXPECT_THAT(run_with("/run/netns/rv-gone-" + pod_),
              HasSubstr("network namespace /run/netns/rv-gone-" + pod_ + ": does not exist"));
  ASSERT_EQ(Sh("ip -n " + pod_ + " tuntap add dev tun7 mode tun").code, 0);
  const std::string tun = run_with(netns_);
  EXPECT_THAT(tun, HasSubstr("interface tun7 in network namespace " + netns_ + ": link type "));
  EXPECT_THAT(tun, HasSubstr("has no Ethernet MAC"));
}

// internetworking_model = "none" carries nothing (loopback only, said in the log); "macvtap" is
// not built and is refused before anything is made.
TEST_F(NetworkTest, ModelNoneCarriesNothingAndMacvtapIsRefused) {
  AddInterface("eth0", "02:42:0a:d5:00:22", 1500, subnet_ + ".22/24", "");
  const std::string base = ReadFile(config_).value_or("");
  config_ = dir_.Write("none.toml", base + "[runtime]\ninternetworking_model = \"none\"\n");
  bundle_.spec.process.args = {"sh", "-c", "ls /sys/class/net"};
  UseNetworkNamespace(netns_);
  const std::string none = NewId();
  CommandResult r = Runvm({"run", "--bundle", bundle_.path, none});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "lo\n");
  EXPECT_THAT(ReadFile(log_).value_or(""),
              HasSubstr("internetworking_model \\\"none\\\": network namespace " + netns_ +
                        " is not carried into the VM"));
  EXPECT_EQ(Sh("ip -n " + pod_ + " -o link show | grep -c _runvm").out, "0\n");

  config_ = dir_.Write("macvtap.toml", base + "[runtime]\ninternetworking_model = \"macvtap\"\n");
  const std::string macvtap = NewId();
  r = Runvm({"run", "--bundle", bundle_.path, macvtap});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("internetworking_model \"macvtap\" is not built into this runvm"));
}

// A host-network container (no network namespace in its spec) runs with loopback only, and the
// log says why.
TEST_F(NetworkTest, AHostNetworkContainerIsWarnedAbout) {
  bundle_.spec.process.args = {"true"};
  UseNetworkNamespace(std::nullopt);
  const std::string id = NewId();
  EXPECT_EQ(Runvm({"run", "--bundle", bundle_.path, id}).code, 0);
  EXPECT_THAT(ReadFile(log_).value_or(""),
              HasSubstr("container " + id +
                        ": its spec shares the host's network namespace, which a VM cannot"));
}

}  // namespace
}  // namespace runvm::e2e
