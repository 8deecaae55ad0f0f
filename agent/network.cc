#include "agent/network.h"

#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"

namespace runvm::agent {
namespace {

using agent_proto::GuestInterface;
using agent_proto::GuestRoute;

// libnl objects, released on scope exit.
struct Release {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
template <typename T>
using Owned = std::unique_ptr<T, Release>;

absl::Status NlError(int err, const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", nl_geterror(err)));
}

// The name of the interface whose MAC is `mac`, or "" while there is none.
std::string NameByMac(const std::string& sysfs, const std::string& mac) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(sysfs + "/class/net", ec)) {
    absl::StatusOr<std::string> address = ReadFile(entry.path().string() + "/address", 64);
    if (address.ok() &&
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(*address)) == absl::AsciiStrToLower(mac)) {
      return entry.path().filename().string();
    }
  }
  return "";
}

absl::StatusOr<Owned<rtnl_link>> GetLink(nl_sock* sock, const std::string& name) {
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(sock, 0, name.c_str(), &raw); err < 0) {
    return NlError(err, "interface " + name);
  }
  return Owned<rtnl_link>(raw);
}

absl::Status ChangeLink(nl_sock* sock, const std::string& name, const std::string& new_name,
                        int64_t mtu, bool up) {
  ASSIGN_OR_RETURN(Owned<rtnl_link> link, GetLink(sock, name));
  Owned<rtnl_link> change(rtnl_link_alloc());
  if (!new_name.empty() && new_name != name) rtnl_link_set_name(change.get(), new_name.c_str());
  if (mtu > 0) rtnl_link_set_mtu(change.get(), static_cast<unsigned>(mtu));
  if (up) rtnl_link_set_flags(change.get(), IFF_UP);
  if (int err = rtnl_link_change(sock, link.get(), change.get(), 0); err < 0) {
    return NlError(
        err, absl::StrCat("interface ", name,
                          new_name.empty() || new_name == name ? "" : " (to be " + new_name + ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Owned<nl_addr>> ParseAddress(const std::string& text, int family,
                                            const std::string& what) {
  nl_addr* raw = nullptr;
  if (int err = nl_addr_parse(text.c_str(), family, &raw); err < 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": \"", text, "\": ", nl_geterror(err)));
  }
  return Owned<nl_addr>(raw);
}

absl::Status AddAddress(nl_sock* sock, int ifindex, const std::string& cidr,
                        const std::string& what) {
  ASSIGN_OR_RETURN(Owned<nl_addr> local, ParseAddress(cidr, AF_UNSPEC, what + ": address"));
  Owned<rtnl_addr> addr(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(addr.get(), ifindex);
  rtnl_addr_set_family(addr.get(), nl_addr_get_family(local.get()));
  if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0) {
    return NlError(err, absl::StrCat(what, ": address ", cidr));
  }
  // The host's interface holds this address already; the guest need not probe for it.
  if (nl_addr_get_family(local.get()) == AF_INET6) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  int err = rtnl_addr_add(sock, addr.get(), NLM_F_CREATE);
  if (err < 0 && err != -NLE_EXIST) return NlError(err, absl::StrCat(what, ": address ", cidr));
  return absl::OkStatus();
}

absl::Status AddRoute(nl_sock* sock, int ifindex, const GuestRoute& route,
                      const std::string& what) {
  const std::string label = absl::StrCat(what, ": route ", route.dest,
                                         route.gateway.empty() ? "" : " via " + route.gateway);
  ASSIGN_OR_RETURN(Owned<nl_addr> dst, ParseAddress(route.dest, AF_UNSPEC, label));
  const int family = nl_addr_get_family(dst.get());
  Owned<rtnl_route> r(rtnl_route_alloc());
  rtnl_route_set_family(r.get(), family);
  rtnl_route_set_table(r.get(), RT_TABLE_MAIN);
  rtnl_route_set_type(r.get(), RTN_UNICAST);
  rtnl_route_set_protocol(r.get(), RTPROT_BOOT);
  rtnl_route_set_scope(r.get(), route.gateway.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
  if (int err = rtnl_route_set_dst(r.get(), dst.get()); err < 0) return NlError(err, label);
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  rtnl_route_nh_set_ifindex(nh, ifindex);
  if (!route.gateway.empty()) {
    absl::StatusOr<Owned<nl_addr>> gw = ParseAddress(route.gateway, family, label);
    if (!gw.ok()) {
      rtnl_route_nh_free(nh);
      return gw.status();
    }
    rtnl_route_nh_set_gateway(nh, gw->get());
  }
  rtnl_route_add_nexthop(r.get(), nh);  // the route owns it now
  int err = rtnl_route_add(sock, r.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (err < 0 && err != -NLE_EXIST) return NlError(err, label);
  return absl::OkStatus();
}

}  // namespace

absl::Status ConfigureNetwork(const agent_proto::NetworkConfig& config, const std::string& sysfs) {
  const absl::Time deadline =
      absl::Now() + absl::Milliseconds(std::clamp<int64_t>(config.timeout_ms, 0, 120000));
  // Where each NIC is now.
  std::vector<std::string> current;
  for (const GuestInterface& i : config.interfaces) {
    if (i.name.empty() || i.name.size() >= IFNAMSIZ || i.name.find('/') != i.name.npos) {
      return absl::InvalidArgumentError(absl::StrCat("interface name \"", i.name, "\" (MAC ", i.mac,
                                                     "): not a usable interface name"));
    }
    std::string name;
    while ((name = NameByMac(sysfs, i.mac)).empty() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    if (name.empty()) {
      return absl::DeadlineExceededError(absl::StrCat("interface ", i.name, ": no NIC with MAC ",
                                                      i.mac, " appeared within ", config.timeout_ms,
                                                      " ms"));
    }
    current.push_back(name);
  }
  Owned<nl_sock> sock(nl_socket_alloc());
  if (!sock) return absl::ResourceExhaustedError("netlink socket");
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) return NlError(err, "netlink");
  RETURN_IF_ERROR(ChangeLink(sock.get(), "lo", "", 0, /*up=*/true));
  // Names in two passes, so that NICs the kernel named in another order can swap their names.
  for (size_t n = 0; n < current.size(); ++n) {
    if (current[n] == config.interfaces[n].name) continue;
    const std::string temporary = absl::StrCat("rvtmp", n);
    RETURN_IF_ERROR(ChangeLink(sock.get(), current[n], temporary, 0, false));
    current[n] = temporary;
  }
  for (size_t n = 0; n < current.size(); ++n) {
    const GuestInterface& i = config.interfaces[n];
    const std::string what = "interface " + i.name;
    RETURN_IF_ERROR(ChangeLink(sock.get(), current[n], i.name, i.mtu, false));
    RETURN_IF_ERROR(ChangeLink(sock.get(), i.name, "", 0, /*up=*/true));
    ASSIGN_OR_RETURN(Owned<rtnl_link> link, GetLink(sock.get(), i.name));
    const int ifindex = rtnl_link_get_ifindex(link.get());
    for (const std::string& a : i.addresses) {
      RETURN_IF_ERROR(AddAddress(sock.get(), ifindex, a, what));
    }
  }
  // Routes after every address: a gateway may be reached through another interface.
  for (const GuestInterface& i : config.interfaces) {
    ASSIGN_OR_RETURN(Owned<rtnl_link> link, GetLink(sock.get(), i.name));
    for (const GuestRoute& r : i.routes) {
      RETURN_IF_ERROR(
          AddRoute(sock.get(), rtnl_link_get_ifindex(link.get()), r, "interface " + i.name));
    }
  }
  return absl::OkStatus();
}

}  // namespace runvm::agent
