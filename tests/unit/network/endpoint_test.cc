// Endpoint discovery and tcfilter against real network namespaces (made and removed here; the
// tests run as root), and the pod network record's codec.
#include "network/endpoint.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "network/tcfilter.h"
#include "nlohmann/json.hpp"
#include "tests/testing/command.h"
#include "tests/testing/status_matchers.h"

namespace runvm::network {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::RunCommand;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

int Sh(const std::string& script) { return RunCommand({"/bin/sh", "-c", script}).code; }

class EndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = absl::StrCat("runvm-ep", ::getpid());
    path_ = "/run/netns/" + name_;
    ASSERT_EQ(Sh("ip netns add " + name_), 0);
  }
  void TearDown() override { Sh("ip netns del " + name_); }
  std::string In(const std::string& cmd) { return absl::StrCat("ip -n ", name_, " ", cmd); }

  std::string name_, path_;
};

TEST_F(EndpointTest, ReadsEachInterfaceInOrderWithWhatTheGuestNeeds) {
  ASSERT_EQ(
      Sh(In("link set lo up") + " && " + In("link add eth0 type veth peer name p0") + " && " +
         In("link add eth1 mtu 1400 type veth peer name p1") + " && " +
         In("link set eth0 address 02:00:00:00:00:0a up") + " && " +
         In("link set eth1 address 02:00:00:00:00:0b up") + " && " + In("link set p0 up") + " && " +
         In("link set p1 up") + " && " + In("addr add 10.1.0.2/24 dev eth0") + " && " +
         In("addr add fd00:1::2/64 dev eth0 nodad") + " && " + In("addr add 10.2.0.2/16 dev eth1") +
         " && " + In("route add default via 10.1.0.1 dev eth0") + " && " +
         In("route add 10.3.0.0/16 dev eth1")),
      0);
  absl::StatusOr<std::vector<Endpoint>> found = DiscoverEndpoints(path_);
  ASSERT_THAT(found.status(), IsOk());
  // The veth peers are interfaces of the namespace too (each made first): by ifindex.
  std::vector<std::string> names;
  for (const Endpoint& e : *found) names.push_back(e.interface + "=" + e.guest.name);
  ASSERT_THAT(names, ElementsAre("p0=eth0", "eth0=eth1", "p1=eth2", "eth1=eth3"));
  const Endpoint& eth0 = (*found)[1];
  EXPECT_EQ(eth0.kind, "veth");
  EXPECT_EQ(eth0.guest.mac, "02:00:00:00:00:0a");
  EXPECT_EQ(eth0.guest.mtu, 1500);
  // No link-local IPv6 address, no route the kernel made from an address.
  EXPECT_THAT(eth0.guest.addresses, ElementsAre("10.1.0.2/24", "fd00:1::2/64"));
  ASSERT_EQ(eth0.guest.routes.size(), 1u);
  EXPECT_EQ(eth0.guest.routes[0].dest, "0.0.0.0/0");
  EXPECT_EQ(eth0.guest.routes[0].gateway, "10.1.0.1");
  const Endpoint& eth1 = (*found)[3];
  EXPECT_EQ(eth1.guest.mtu, 1400);
  ASSERT_EQ(eth1.guest.routes.size(), 1u);
  EXPECT_EQ(eth1.guest.routes[0].dest, "10.3.0.0/16");
  EXPECT_EQ(eth1.guest.routes[0].gateway, "");
}

TEST_F(EndpointTest, RefusesWhatTcfilterCannotCarryAndWhatIsNoNamespace) {
  ASSERT_EQ(Sh(In("tuntap add dev tun0 mode tun")), 0);
  absl::Status st = DiscoverEndpoints(path_).status();
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("interface tun0 in network namespace " + path_ + ": link type "));
  EXPECT_THAT(std::string(st.message()), HasSubstr("has no Ethernet MAC"));
  EXPECT_TRUE(absl::IsNotFound(DiscoverEndpoints(path_ + "-gone").status()));
  EXPECT_THAT(std::string(DiscoverEndpoints("/proc/self/ns/uts").status().message()),
              HasSubstr("/proc/self/ns/uts: a namespace, but not a network namespace"));
  EXPECT_THAT(std::string(DiscoverEndpoints("/etc/hostname").status().message()),
              HasSubstr("/etc/hostname: not a network namespace"));
}

TEST_F(EndpointTest, RedirectJoinsBothWaysAndRemoveRedirectUndoesIt) {
  ASSERT_EQ(Sh(In("link add eth0 type veth peer name p0") + " && " +
               In("tuntap add dev tap0_runvm mode tap") + " && " + In("link set eth0 up")),
            0);
  ASSERT_THAT(Redirect(path_, "eth0", "tap0_runvm", 1450), IsOk());
  auto tc = [&](const std::string& args) {
    return RunCommand({"/bin/sh", "-c", "ip netns exec " + name_ + " tc " + args}).out;
  };
  EXPECT_THAT(tc("filter show dev eth0 ingress"),
              HasSubstr("Egress Redirect to device tap0_runvm"));
  EXPECT_THAT(tc("filter show dev tap0_runvm ingress"),
              HasSubstr("Egress Redirect to device eth0"));
  EXPECT_THAT(RunCommand({"/bin/sh", "-c", In("link show tap0_runvm")}).out, HasSubstr("mtu 1450"));
  // A second redirect finds the qdisc taken and says whose it is not.
  EXPECT_THAT(std::string(Redirect(path_, "eth0", "tap0_runvm", 1450).message()),
              HasSubstr("eth0 already has an ingress qdisc"));
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  // Another namespace's inode: not this one's to touch.
  EXPECT_THAT(RemoveRedirect(path_, st.st_ino + 1, "eth0"), IsOk());
  EXPECT_THAT(tc("qdisc show dev eth0 ingress"), HasSubstr("ingress"));
  EXPECT_THAT(RemoveRedirect(path_, st.st_ino, "eth0"), IsOk());
  EXPECT_EQ(tc("qdisc show dev eth0 ingress"), "");
  // Idempotent, and nothing to do for a vanished interface or namespace.
  EXPECT_THAT(RemoveRedirect(path_, st.st_ino, "eth0"), IsOk());
  EXPECT_THAT(RemoveRedirect(path_, st.st_ino, "eth9"), IsOk());
  EXPECT_THAT(RemoveRedirect(path_ + "-gone", st.st_ino, "eth0"), IsOk());
}

TEST(PodNetworkRecord, RoundTripsAndNamesABadField) {
  PodNetwork n{.netns = "/run/netns/x", .netns_inode = 4026532174, .model = "tcfilter"};
  n.endpoints.push_back({.interface = "eth0",
                         .kind = "veth",
                         .guest = {.mac = "02:00:00:00:00:01",
                                   .name = "eth0",
                                   .mtu = 1400,
                                   .addresses = {"10.0.0.2/24"},
                                   .routes = {{.dest = "0.0.0.0/0", .gateway = "10.0.0.1"}}},
                         .tap = "tap0_runvm",
                         .queues = 2,
                         .nic = "net0"});
  nlohmann::json j = PodNetworkToJson(n);
  absl::StatusOr<PodNetwork> back = PodNetworkFromJson(j);
  ASSERT_THAT(back.status(), IsOk());
  EXPECT_EQ(*back, n);
  j["endpoints"][0]["guest"]["routes"][0].erase("gateway");
  EXPECT_THAT(std::string(PodNetworkFromJson(j).status().message()),
              HasSubstr("pod network: endpoints[0]: guest: field \"routes\""));
  j["endpoints"][0].erase("tap");
  EXPECT_THAT(std::string(PodNetworkFromJson(j).status().message()), HasSubstr("\"tap\""));
}

TEST(Tcfilter, ProbeWorksOnThisHost) { EXPECT_THAT(ProbeTcFilter(), IsOk()); }

}  // namespace
}  // namespace runvm::network
