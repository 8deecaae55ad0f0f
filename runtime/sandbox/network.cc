#include "runtime/sandbox/network.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "base/netns.h"
#include "base/status.h"
#include "network/tcfilter.h"
#include "runtime/sandbox/agent_client.h"

namespace runvm {
namespace {

// The guest has the NIC within a few seconds of device_add under TCG; a slow host gets more.
constexpr absl::Duration kGuestNetworkTimeout = absl::Seconds(30);

absl::Status Connect(Sandbox& sb, const std::string& netns, const std::string& model) {
  SandboxRecord& r = sb.record();
  const std::string what = absl::StrCat("sandbox ", r.id, ": network namespace ", netns);
  ASSIGN_OR_RETURN(Fd ns, OpenNetworkNamespace(netns));
  ASSIGN_OR_RETURN(ino_t inode, NetworkNamespaceInode(ns.get()));
  ASSIGN_OR_RETURN(std::vector<network::Endpoint> found, network::DiscoverEndpoints(netns));
  ASSIGN_OR_RETURN(qemu::Hotplug * hotplug, sb.hotplug());
  r.network = network::PodNetwork{.netns = netns, .netns_inode = inode, .model = model};
  const int queues = std::clamp(static_cast<int>(r.vm->config.default_vcpus), 1, kMaxNicQueues);
  agent_proto::NetworkConfig guest{.timeout_ms = absl::ToInt64Milliseconds(kGuestNetworkTimeout)};
  for (size_t i = 0; i < found.size(); ++i) {
    network::Endpoint e = std::move(found[i]);
    e.tap = absl::StrCat("tap", i, "_runvm");
    e.queues = queues;
    // Named in the record before it exists: whatever happens next, a delete knows what to remove.
    r.network->endpoints.push_back(e);
    RETURN_IF_ERROR(sb.Save());
    RUNVM_FAILPOINT("network.connect.before-nic");
    ASSIGN_OR_RETURN(
        qemu::PluggedDevice nic,
        hotplug->AddNic({.tap_name = e.tap, .netns = netns, .mac = e.guest.mac, .queues = queues}));
    r.network->endpoints.back().nic = nic.id;
    RETURN_IF_ERROR(sb.Save());
    RUNVM_FAILPOINT("network.connect.before-filter");
    RETURN_IF_ERROR(network::Redirect(netns, e.interface, e.tap, e.guest.mtu));
    guest.interfaces.push_back(e.guest);
  }
  if (guest.interfaces.empty()) {
    LogWarning(absl::StrCat(what, " has no interface but loopback; the pod has loopback only"));
    return absl::OkStatus();
  }
  RUNVM_FAILPOINT("network.connect.before-guest");
  const absl::Time deadline = absl::Now() + kGuestNetworkTimeout + absl::Seconds(5);
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Connect(r.vm->agent_socket(), deadline));
  return agent
      .Call({.type = agent_proto::kConfigureNetwork, .fields = agent_proto::ToFields(guest)},
            deadline)
      .status();
}

absl::Status CheckModel(const std::string& id, const std::string& model) {
  if (model == "none" || model == "tcfilter") return absl::OkStatus();
  return absl::UnimplementedError(
      absl::StrCat("sandbox ", id, ": internetworking_model \"", model,
                   "\" is not built into this runvm; use \"tcfilter\" (the default) or \"none\""));
}

}  // namespace

absl::Status CheckPodNetwork(const std::string& id, const std::string& netns,
                             const std::string& model) {
  RETURN_IF_ERROR(CheckModel(id, model));
  if (model == "none") return absl::OkStatus();
  return Annotate(network::DiscoverEndpoints(netns).status(),
                  absl::StrCat("sandbox ", id, ": pod network"));
}

absl::Status ConnectPodNetwork(SandboxStore& store, const std::string& id, const std::string& netns,
                               const std::string& model) {
  // The namespace itself is read once more by Connect, as it is now.
  RETURN_IF_ERROR(CheckModel(id, model));
  if (model == "none") {
    LogInfo(absl::StrCat("sandbox ", id, ": internetworking_model \"none\": network namespace ",
                         netns, " is not carried into the VM; the pod has loopback only"));
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Sandbox> sb, store.Open(id, "network"));
  return Annotate(Connect(*sb, netns, model), absl::StrCat("sandbox ", id, ": pod network"));
}

absl::Status ReleasePodNetwork(const SandboxRecord& record) {
  if (!record.network) return absl::OkStatus();
  const network::PodNetwork& n = *record.network;
  absl::Status first;
  for (const network::Endpoint& e : n.endpoints) {
    absl::Status st = network::RemoveRedirect(n.netns, n.netns_inode, e.interface);
    if (!st.ok() && first.ok()) {
      first = Annotate(st, absl::StrCat("sandbox ", record.id, ": release pod network"));
    }
  }
  return first;
}

}  // namespace runvm
