"""Kubernetes' path: containerd 1.6's CRI plugin with a RuntimeClass handler "runvm" of type
io.containerd.runc.v2 whose BinaryName is runvm, driven over CRI v1 as the kubelet drives it."""
import os
import unittest

import grpc

import harness
from containerd import BUSYBOX, Containerd, write_bridge_network
from cri_client import Cri

# The runc shim's root for the k8s.io namespace: the runvm state root the CRI plugin uses.
K8S_ROOT = "/run/containerd/runc/k8s.io"
SUBNET = "10.99.0"


class CriTest(harness.EngineTest):
    roots = (K8S_ROOT,)

    def setUp(self):
        super().setUp()
        d = self.dir
        # A network namespace of the test's own holds containerd, so the CNI bridge and its
        # addresses exist only there (the pods' namespaces are made by containerd).
        self.netns = f"runvm-cri-{os.getpid()}"
        harness.sh("ip", "netns", "add", self.netns)
        harness.sh("ip", "-n", self.netns, "link", "set", "lo", "up")
        write_bridge_network(f"{d}/cni", "runvm-test", f"{SUBNET}.0/24", f"{d}/cni-ipam")
        self.containerd = Containerd(d, handlers={"runvm": self.runvm}, cni_dir=f"{d}/cni",
                                     netns=self.netns)
        self.containerd.import_images("k8s.io")
        self.socket = self.containerd.socket
        self.cri = Cri(self.socket, d)
        self.pb = self.cri.pb
        self.logs = f"{d}/pod-logs"

    def stop_engine(self):
        if not hasattr(self, "containerd"):
            return
        try:
            if hasattr(self, "cri"):
                for pod in self.cri.ListPodSandbox().items:
                    self.cri.StopPodSandbox(pod_sandbox_id=pod.id)
                    self.cri.RemovePodSandbox(pod_sandbox_id=pod.id)
                self.cri.close()
        finally:
            self.containerd.stop()
            harness.sh("ip", "netns", "delete", self.netns, check=False)

    # ---- the kubelet's calls ----

    def pod_config(self, name, network):
        pb = self.pb
        ns = pb.NamespaceOption(network=network, pid=pb.CONTAINER)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="runvm-test"),
            hostname="" if network == pb.NODE else name, log_directory=self.logs,
            linux=pb.LinuxPodSandboxConfig(
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)))

    def run_pod(self, name, network):
        config = self.pod_config(name, network)
        pod = self.cri.RunPodSandbox(config=config, runtime_handler="runvm").pod_sandbox_id
        self.assertRegex(pod, "^[0-9a-f]{64}$")
        return pod, config

    def create(self, pod, pod_config, name, script, cpu_quota=0, memory=0):
        pb = self.pb
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=BUSYBOX),
            command=["sh", "-c", script], log_path=f"{name}.log",
            linux=pb.LinuxContainerConfig(
                security_context=pb.LinuxContainerSecurityContext(
                    namespace_options=pod_config.linux.security_context.namespace_options),
                resources=pb.LinuxContainerResources(
                    cpu_period=100000 if cpu_quota else 0, cpu_quota=cpu_quota,
                    memory_limit_in_bytes=memory)))
        return self.cri.CreateContainer(pod_sandbox_id=pod, config=config,
                                        sandbox_config=pod_config).container_id

    def status(self, cid):
        return self.cri.ContainerStatus(container_id=cid).status

    def exec_sync(self, cid, script, timeout=60):
        r = self.cri.ExecSync(container_id=cid, cmd=["sh", "-c", script], timeout=timeout)
        return r.stdout.decode(), r.stderr.decode(), r.exit_code

    def log_lines(self, name):
        """The CRI log file as (stream, text) pairs: "<time> stdout F text" per line."""
        with open(f"{self.logs}/{name}.log") as f:
            return [tuple(line.rstrip("\n").split(" ", 3)[1::2]) for line in f]

    def qemus(self):
        return [p for p in harness.processes_marked([K8S_ROOT + "/"])
                if "qemu-system" in harness.cmdline(p)]

    # ---- the tests ----

    def test_host_network_pod_through_its_whole_life(self):
        pb = self.pb
        pod, config = self.run_pod("hostnet", pb.NODE)
        status = self.cri.PodSandboxStatus(pod_sandbox_id=pod).status
        self.assertEqual(status.state, pb.SANDBOX_READY)
        self.assertEqual(status.runtime_handler, "runvm")
        self.assertEqual(len(self.qemus()), 1, "the pod's VM")

        cid = self.create(pod, config, "worker",
                          'echo out; echo err >&2; trap "echo got-term; exit 0" TERM;'
                          " while :; do sleep 1; done", cpu_quota=50000, memory=128 << 20)
        self.assertEqual(self.status(cid).state, pb.CONTAINER_CREATED)
        self.cri.StartContainer(container_id=cid)
        self.assertEqual(self.status(cid).state, pb.CONTAINER_RUNNING)
        self.assertEqual(len(self.qemus()), 1, "the container joined the pod's VM")
        harness.wait_for("the container's log", lambda: len(self.log_lines("worker")) >= 2, 30)
        self.assertEqual(sorted(self.log_lines("worker")), [("stderr", "err"), ("stdout", "out")])

        # ExecSync: stdout, stderr and the exit code; the limits, as the container sees them.
        out, err, code = self.exec_sync(
            cid, "echo o; echo e >&2; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max; exit 3")
        self.assertEqual((out, err, code), ("o\n134217728\n50000 100000\n", "e\n", 3))
        # The pod's VM grew by the container's CPU limit (Kata's rule: default_vcpus + 1).
        self.assertEqual(self.exec_sync(cid, "nproc")[0], "2\n")
        # Its timeout is enforced: the call fails so, and the process does not stay behind.
        with self.assertRaises(grpc.RpcError) as timed_out:
            self.exec_sync(cid, "sleep 1000", timeout=2)
        self.assertEqual(timed_out.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertNotIn("sleep 1000", self.exec_sync(cid, "ps -o args")[0])

        self.cri.UpdateContainerResources(
            container_id=cid, linux=pb.LinuxContainerResources(
                cpu_period=100000, cpu_quota=100000, memory_limit_in_bytes=256 << 20))
        self.assertEqual(self.exec_sync(cid, "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max")[0],
                         "268435456\n100000 100000\n")

        stats = self.cri.ContainerStats(container_id=cid).stats
        self.assertEqual(stats.attributes.id, cid)
        self.assertGreater(stats.cpu.timestamp, 0)
        self.assertGreater(stats.memory.timestamp, 0)

        # Stop with a grace period: the workload's TERM trap runs and it exits 0.
        self.cri.StopContainer(container_id=cid, timeout=20)
        st = self.status(cid)
        self.assertEqual((st.state, st.exit_code), (pb.CONTAINER_EXITED, 0))
        self.assertIn(("stdout", "got-term"), self.log_lines("worker"))

        # A container that ends by itself reports its exit code.
        cid2 = self.create(pod, config, "quitter", "exit 3")
        self.cri.StartContainer(container_id=cid2)
        harness.wait_for("quitter's exit",
                         lambda: self.status(cid2).state == pb.CONTAINER_EXITED, 60)
        self.assertEqual(self.status(cid2).exit_code, 3)

        self.cri.RemoveContainer(container_id=cid)
        self.cri.RemoveContainer(container_id=cid2)
        self.cri.StopPodSandbox(pod_sandbox_id=pod)
        self.assertEqual(self.cri.PodSandboxStatus(pod_sandbox_id=pod).status.state,
                         pb.SANDBOX_NOTREADY)
        self.cri.RemovePodSandbox(pod_sandbox_id=pod)
        self.assertEqual(self.qemus(), [])

    def test_pod_on_a_cni_bridge(self):
        pb = self.pb
        pod, config = self.run_pod("bridged", pb.POD)
        ip = self.cri.PodSandboxStatus(pod_sandbox_id=pod).status.network.ip
        self.assertTrue(ip.startswith(SUBNET + "."), f"the pod's address {ip!r}")
        cid = self.create(pod, config, "app", "while :; do sleep 1; done")
        self.cri.StartContainer(container_id=cid)
        # An exec in a container whose namespaces the CRI plugin names by host paths
        # (/proc/<pid>/ns/ipc of the sandbox, the CNI's netns).
        out, err, code = self.exec_sync(cid, "hostname; cat /etc/hostname; test -s /etc/resolv.conf")
        self.assertEqual((out, err, code), ("bridged\nbridged\n", "", 0))
        # The CNI's address is the container's: the pod's namespace was carried into the VM.
        out, err, code = self.exec_sync(cid, "ip -o -4 addr show eth0")
        self.assertEqual(code, 0, err)
        self.assertIn(f"inet {ip}/24", out)
        # The bridge (the CNI's gateway, in containerd's namespace) and the pod reach each other.
        out, err, code = self.exec_sync(cid, f"ping -c 3 -W 5 {SUBNET}.1")
        self.assertEqual(code, 0, out + err)
        harness.sh("ip", "netns", "exec", self.netns, "busybox", "ping", "-c", "3", "-W", "5", ip)
        self.cri.StopContainer(container_id=cid, timeout=0)
        self.assertEqual(self.status(cid).exit_code, 137)
        self.cri.RemoveContainer(container_id=cid)
        self.cri.StopPodSandbox(pod_sandbox_id=pod)
        self.cri.RemovePodSandbox(pod_sandbox_id=pod)
        # The IPAM address is released, and no tap or filter of runvm's is left anywhere.
        self.assertFalse(os.path.exists(f"{self.dir}/cni-ipam/runvm-test/{ip}"),
                         "host-local still holds the pod's address")
        self.assertEqual(self.qemus(), [])
        self.assertNotIn("_runvm", harness.sh("ip", "-n", self.netns, "-o", "link").stdout)
        for ns in harness.sh("ip", "netns", "list").stdout.split():
            self.assertNotIn("_runvm", harness.sh("ip", "-n", ns, "-o", "link", check=False).stdout)


if __name__ == "__main__":
    unittest.main()
