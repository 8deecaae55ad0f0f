#include "network/endpoint.h"

#include <linux/if.h>
#include <linux/if_arp.h>
#include <netlink/route/nexthop.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/netns.h"
#include "base/status.h"
#include "network/netlink.h"
#include "nlohmann/json.hpp"
#include "persist/fields.h"

namespace runvm::network {
namespace {

using Json = nlohmann::json;

// Visits every object of `cache` as a T*.
template <typename T, typename F>
void Each(nl_cache* cache, F&& visit) {
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    visit(reinterpret_cast<T*>(o));
  }
}

std::string Destination(rtnl_route* route) {
  nl_addr* dst = rtnl_route_get_dst(route);
  if (dst == nullptr || nl_addr_get_prefixlen(dst) == 0) {
    return rtnl_route_get_family(route) == AF_INET6 ? "::/0" : "0.0.0.0/0";
  }
  return nl::AddressWithPrefix(dst);
}

// The routes of the main table that leave by `ifindex`, except those the kernel made itself
// (from an address, or IPv6's link-local and multicast ones).
std::vector<agent_proto::GuestRoute> RoutesOf(nl_cache* routes, int ifindex) {
  std::vector<agent_proto::GuestRoute> out;
  Each<rtnl_route>(routes, [&](rtnl_route* r) {
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST ||
        rtnl_route_get_protocol(r) == RTPROT_KERNEL || rtnl_route_get_nnexthops(r) != 1) {
      return;
    }
    rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
    if (rtnl_route_nh_get_ifindex(nh) != ifindex) return;
    nl_addr* gateway = rtnl_route_nh_get_gateway(nh);
    out.push_back(
        {.dest = Destination(r), .gateway = gateway != nullptr ? nl::AddressOnly(gateway) : ""});
  });
  // On-link routes first: a gateway must be reachable when its route is added.
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.gateway.empty() && !b.gateway.empty();
  });
  return out;
}

absl::StatusOr<std::vector<Endpoint>> DiscoverHere(const std::string& netns) {
  ASSIGN_OR_RETURN(nl::Socket sock, nl::Connect());
  nl_cache *raw_links = nullptr, *raw_addrs = nullptr, *raw_routes = nullptr;
  const std::string where = "network namespace " + netns;
  if (int err = rtnl_link_alloc_cache(sock.get(), AF_UNSPEC, &raw_links); err < 0) {
    return nl::Error(err, where + ": list links");
  }
  nl::Cache links(raw_links);
  if (int err = rtnl_addr_alloc_cache(sock.get(), &raw_addrs); err < 0) {
    return nl::Error(err, where + ": list addresses");
  }
  nl::Cache addrs(raw_addrs);
  if (int err = rtnl_route_alloc_cache(sock.get(), AF_UNSPEC, 0, &raw_routes); err < 0) {
    return nl::Error(err, where + ": list routes");
  }
  nl::Cache routes(raw_routes);

  std::vector<rtnl_link*> ordered;
  Each<rtnl_link>(links.get(), [&](rtnl_link* l) { ordered.push_back(l); });
  std::sort(ordered.begin(), ordered.end(), [](rtnl_link* a, rtnl_link* b) {
    return rtnl_link_get_ifindex(a) < rtnl_link_get_ifindex(b);
  });
  std::vector<Endpoint> out;
  for (rtnl_link* l : ordered) {
    if (rtnl_link_get_flags(l) & IFF_LOOPBACK) continue;
    const std::string name = rtnl_link_get_name(l);
    const char* kind = rtnl_link_get_type(l);
    const std::string what = absl::StrCat("interface ", name, " in ", where);
    if (rtnl_link_get_arptype(l) != ARPHRD_ETHER) {
      char type[32];
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": link type ", nl_llproto2str(rtnl_link_get_arptype(l), type, sizeof type),
          " has no Ethernet MAC, and internetworking_model \"tcfilter\" carries Ethernet"
          " interfaces only"));
    }
    if (kind != nullptr && std::string(kind) == "tun") {
      return absl::InvalidArgumentError(
          absl::StrCat(what,
                       ": a tun/tap device is the end of some other program's channel, not a pod"
                       " interface runvm can carry"));
    }
    nl_addr* mac = rtnl_link_get_addr(l);
    if (mac == nullptr || nl_addr_get_len(mac) != 6) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": no MAC address"));
    }
    char mac_text[32];
    Endpoint e{.interface = name, .kind = kind != nullptr ? kind : ""};
    e.guest.mac = nl_addr2str(mac, mac_text, sizeof mac_text);
    e.guest.name = absl::StrCat("eth", out.size());
    e.guest.mtu = rtnl_link_get_mtu(l);
    const int ifindex = rtnl_link_get_ifindex(l);
    Each<rtnl_addr>(addrs.get(), [&](rtnl_addr* a) {
      if (rtnl_addr_get_ifindex(a) != ifindex) return;
      // The guest's kernel makes its IPv6 link-local address from the same MAC.
      if (rtnl_addr_get_family(a) == AF_INET6 && rtnl_addr_get_scope(a) == RT_SCOPE_LINK) return;
      if (nl_addr* local = rtnl_addr_get_local(a)) {
        e.guest.addresses.push_back(nl::AddressWithPrefix(local));
      }
    });
    e.guest.routes = RoutesOf(routes.get(), ifindex);
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<Endpoint> EndpointFromJson(const Json& j, size_t index) {
  const std::string what = absl::StrCat("pod network: endpoints[", index, "]");
  if (!j.is_object()) return absl::InvalidArgumentError(what + ": not an object");
  const persist::Fields f(j, what);
  Endpoint e;
  ASSIGN_OR_RETURN(e.interface, f.String("interface"));
  ASSIGN_OR_RETURN(e.kind, f.String("kind"));
  ASSIGN_OR_RETURN(e.tap, f.String("tap"));
  ASSIGN_OR_RETURN(e.queues, f.Int("queues"));
  ASSIGN_OR_RETURN(e.nic, f.String("nic"));
  auto guest = j.find("guest");
  if (guest == j.end()) return f.Missing("guest", "an object");
  ASSIGN_OR_RETURN(e.guest, agent_proto::InterfaceFromJson(*guest, what + ": guest"));
  return e;
}

}  // namespace

Json PodNetworkToJson(const PodNetwork& network) {
  Json endpoints = Json::array();
  for (const Endpoint& e : network.endpoints) {
    endpoints.push_back({{"interface", e.interface},
                         {"kind", e.kind},
                         {"guest", agent_proto::InterfaceToJson(e.guest)},
                         {"tap", e.tap},
                         {"queues", e.queues},
                         {"nic", e.nic}});
  }
  return {{"netns", network.netns},
          {"netns_inode", network.netns_inode},
          {"model", network.model},
          {"endpoints", std::move(endpoints)}};
}

absl::StatusOr<PodNetwork> PodNetworkFromJson(const Json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("pod network: not an object");
  const persist::Fields f(j, "pod network");
  PodNetwork n;
  ASSIGN_OR_RETURN(n.netns, f.String("netns"));
  ASSIGN_OR_RETURN(int64_t inode, f.Int("netns_inode"));
  n.netns_inode = static_cast<uint64_t>(inode);
  ASSIGN_OR_RETURN(n.model, f.String("model"));
  auto endpoints = j.find("endpoints");
  if (endpoints == j.end() || !endpoints->is_array()) return f.Missing("endpoints", "a list");
  for (size_t i = 0; i < endpoints->size(); ++i) {
    ASSIGN_OR_RETURN(Endpoint e, EndpointFromJson((*endpoints)[i], i));
    n.endpoints.push_back(std::move(e));
  }
  return n;
}

absl::StatusOr<std::vector<Endpoint>> DiscoverEndpoints(const std::string& netns) {
  absl::StatusOr<std::vector<Endpoint>> found = absl::InternalError("discovery did not run");
  RETURN_IF_ERROR(InNetworkNamespace(netns, [&] {
    found = DiscoverHere(netns);
    return absl::OkStatus();
  }));
  return found;
}

}  // namespace runvm::network
